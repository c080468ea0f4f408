import { Controller, Inject, Injectable } from '@nestjs/common';
import { ClientsModule, Ctx, MessagePattern, Payload, RpcException, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, interval, lastValueFrom, map, take, toArray, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { P2PClient, P2PModule, P2PNoHandlerError, P2PServer, P2PService, P2P_NODE, type P2PContext, type Peer } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startApp } from '../nest-helpers.js';

/** Issue 24, items 1 + 2 together: requests to a pattern find their handlers in the real directory of handlers. */

@Controller()
class MathController {
  constructor(private readonly p2p: P2PService) {}

  @MessagePattern('math.*')
  math(@Payload() numbers: number[], @Ctx() ctx: P2PContext): { sum: number; pattern: string; by: string } {
    return { sum: numbers.reduce((a, b) => a + b, 0), pattern: ctx.getPattern(), by: this.p2p.id };
  }

  @MessagePattern('streaming.*')
  streaming(@Payload() n: number): Observable<number> {
    return interval(2).pipe(
      take(n),
      map((i) => i + 1),
    );
  }

  @MessagePattern('exception')
  exception(): never {
    throw new RpcException({ code: 'E_BAD_INPUT', message: 'bad input' });
  }
}

@Injectable()
class UsesMath {
  constructor(@Inject('MATH') readonly client: ClientProxy) {}
}

interface App {
  close(): Promise<void>;
  id: string;
  address: string;
  node: Peer;
  service: P2PService;
}

const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close().catch(() => undefined)));
});

async function start(peers: string[], controllers: Array<new (...args: never[]) => unknown>, extra: object[] = [], providers: Array<new (...args: never[]) => unknown> = []): Promise<App & { get<T>(type: new (...args: never[]) => T): T }> {
  const app = await startApp({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peers, timeoutMs: 2_000 }), ...extra], controllers, providers } as never);
  const service = app.get(P2PService);
  const out = { close: () => app.close(), id: service.id, address: service.address()!, node: app.get<Peer>(P2P_NODE), service, get: <T>(type: new (...args: never[]) => T) => app.get(type) };
  apps.push(out);
  return out;
}

describe('requests to a pattern through the directory of handlers', () => {
  it('a client with no handlers asks math.sum of two servers it learnt from the directory (each answers some), streams, RpcException; one server goes, the other answers', async () => {
    const s1 = await start([], [MathController]);
    const s2 = await start([`${s1.id}@${s1.address}`], [MathController]);
    // The client knows only s1; it learns s2's record from the directory and dials s2 itself.
    const client = await start([`${s1.id}@${s1.address}`], [], [ClientsModule.register([{ name: 'MATH', customClass: P2PClient, options: {} }])], [UsesMath]);
    await waitFor(() => client.node.handlers('math.sum', 'request').length === 2, 5_000, 'both servers in the directory');
    const proxy = client.get(UsesMath).client;
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => firstValueFrom(proxy.send<{ sum: number; pattern: string; by: string }>('math.sum', [i, 1]))));
    const by = new Map<string, number>();
    replies.forEach((reply, i) => {
      expect(reply).toMatchObject({ sum: i + 1, pattern: 'math.sum' });
      by.set(reply.by, (by.get(reply.by) ?? 0) + 1);
    });
    expect([...by.keys()].sort()).toEqual([s1.id, s2.id].sort());
    for (const n of by.values()) expect(n).toBeGreaterThanOrEqual(5);
    expect(await lastValueFrom(proxy.send('streaming.count', 3).pipe(toArray()))).toEqual([1, 2, 3]);
    await expect(firstValueFrom(proxy.send('exception', {}))).rejects.toEqual({ code: 'E_BAD_INPUT', message: 'bad input' });
    // s2 goes (a goodbye; its record goes with it, or expires): every later request is answered by s1.
    await s2.close();
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => firstValueFrom(proxy.send<{ by: string }>('math.sum', [i]))));
    for (const reply of after) expect(reply.by).toBe(s1.id);
  });

  it('no handler: P2PNoHandlerError after the timeout; a handler added at run time answers a request waiting for it; this node\'s own handler counts', async () => {
    const server = await start([], []);
    const client = await start([`${server.id}@${server.address}`], [MathController]);
    await waitFor(() => client.node.peers().length === 1, 3_000, 'the connection');
    const err = await client.service.requestPattern('late.job', 1, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PNoHandlerError);
    expect((err as P2PNoHandlerError).pattern).toBe('late.job');
    const waiting = client.service.requestPattern<string>('late.job', 'x', { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    // The server app gains a handler while it runs: its directory record follows, and the waiting request goes to it.
    server.get(P2PServer).addHandler('late.*', async (data: unknown) => `late ${String(data)}`, false);
    expect(await waiting).toBe('late x');
    // The client handles math.* itself: its own handler counts as one (and answers without a socket).
    const own = await client.service.requestPattern<{ by: string }>('math.sum', [1]);
    expect(own.by).toBe(client.id);
  });
});

import { Controller, Inject, Injectable } from '@nestjs/common';
import { ClientProxyFactory, ClientsModule, Ctx, EventPattern, MessagePattern, Payload, RpcException, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, interval, lastValueFrom, map, take, toArray, type Observable } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { P2PClient, P2PModule, P2PNoHandlerError, P2PServer, P2PService, P2P_NODE, type P2PContext, type Peer } from '../../src/index.js';
import { HandlerTable } from '../pattern-lookup.js';
import { startApp, startNode, type TestNode } from '../nest-helpers.js';

/** A controller as written for Nest's NATS transport: wildcard patterns, a stream, an RpcException. */
@Controller()
class MathController {
  readonly events: string[] = [];

  @MessagePattern('math.*')
  math(@Payload() numbers: number[], @Ctx() ctx: P2PContext): { sum: number; pattern: string; by: string } {
    return { sum: numbers.reduce((a, b) => a + b, 0), pattern: ctx.getPattern(), by: this.id };
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

  @MessagePattern('orders.>')
  orders(@Ctx() ctx: P2PContext): string {
    return `orders.> got ${ctx.getPattern()}`;
  }

  @MessagePattern('orders.eu.*')
  ordersEu(@Ctx() ctx: P2PContext): string {
    return `orders.eu.* got ${ctx.getPattern()}`;
  }

  @EventPattern<string>('notification.*')
  notification(@Payload() data: string, @Ctx() ctx: P2PContext): void {
    this.events.push(`${ctx.getPattern()}:${data}`);
  }

  id = '';
}

@Injectable()
class UsesMath {
  constructor(@Inject('MATH') readonly client: ClientProxy) {}
}

const nodes: TestNode[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await Promise.all(nodes.splice(0).map((n) => n.app.close().catch(() => undefined)));
});

async function server(table: HandlerTable): Promise<TestNode & { math: MathController }> {
  const app = await startApp({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false })], controllers: [MathController] });
  const service = app.get(P2PService);
  const node = { app, service, node: app.get<Peer>(P2P_NODE), id: service.id, address: service.address()! } as TestNode;
  nodes.push(node);
  const math = node.app.get(MathController);
  math.id = node.id;
  for (const pattern of ['math.*', 'streaming.*', 'exception']) table.add(pattern, node.node);
  table.attach(node.node);
  return { ...node, math };
}

describe('P2PClient without a peer: requests to a pattern through the app\'s node', () => {
  it('ClientsModule client asks math.sum of two other nodes (each answers some), streams, gets an RpcException; one server goes, the other answers', async () => {
    const table = new HandlerTable();
    const [s1, s2] = [await server(table), await server(table)];
    // The client app: no handlers, a ClientsModule client with options {} (started last: the client uses the app's node).
    const app = await startApp({
      imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false }), ClientsModule.register([{ name: 'MATH', customClass: P2PClient, options: {} }])],
      providers: [UsesMath],
    });
    closers.push(() => app.close());
    const node = app.get<Peer>(P2P_NODE);
    table.attach(node);
    const { client } = app.get(UsesMath);

    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => firstValueFrom(client.send<{ sum: number; pattern: string; by: string }>('math.sum', [i, 1]))));
    const by = new Map<string, number>();
    replies.forEach((reply, i) => {
      expect(reply.sum).toBe(i + 1);
      expect(reply.pattern).toBe('math.sum');
      by.set(reply.by, (by.get(reply.by) ?? 0) + 1);
    });
    expect([...by.keys()].sort()).toEqual([s1.id, s2.id].sort());
    for (const n of by.values()) expect(n).toBeGreaterThanOrEqual(5);
    expect(await lastValueFrom(client.send('streaming.count', 3).pipe(toArray()))).toEqual([1, 2, 3]);
    await expect(firstValueFrom(client.send('exception', {}))).rejects.toEqual({ code: 'E_BAD_INPUT', message: 'bad input' });

    // One server goes (its record stays in the table, as when a node vanishes): requests continue on the other.
    await s2.app.close();
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => firstValueFrom(client.send<{ by: string }>('math.sum', [i]))));
    for (const reply of after) expect(reply.by).toBe(s1.id);
  });

  it('P2PService.requestPattern and ClientProxyFactory.create({ customClass: P2PClient, options: {} }); no handler: P2PNoHandlerError after the timeout', async () => {
    const table = new HandlerTable();
    const s1 = await server(table);
    const app = await startApp({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false, timeoutMs: 300 })] });
    closers.push(() => app.close());
    table.attach(app.get<Peer>(P2P_NODE));
    const service = app.get(P2PService);
    expect(await service.requestPattern('math.add', [2, 3])).toEqual({ sum: 5, pattern: 'math.add', by: s1.id });
    expect(await lastValueFrom(service.requestPatternStream('streaming.x', 2).pipe(toArray()))).toEqual([1, 2]);

    const client = ClientProxyFactory.create({ customClass: P2PClient, options: {} });
    closers.push(() => client.close());
    expect(await firstValueFrom(client.send('math.mul', [4]))).toMatchObject({ sum: 4, pattern: 'math.mul' });
    const started = Date.now();
    const err = await firstValueFrom(client.send('nobody.home', {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PNoHandlerError);
    expect((err as P2PNoHandlerError).code).toBe('P2P_NO_HANDLER');
    expect((err as P2PNoHandlerError).message).toContain('nobody.home');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    await expect(service.requestPattern('nobody.home', {}, { timeoutMs: 100 })).rejects.toBeInstanceOf(P2PNoHandlerError);
  });

  it('a client without peer and no running node says so; node "private" without peer is refused', async () => {
    expect(() => new P2PClient({ node: 'private' })).toThrow(/without `peer`/);
    const client = new P2PClient({});
    await expect(client.connect()).rejects.toThrow(/none runs/);
  });
});

describe('wildcard handlers in P2PServer', () => {
  it('@MessagePattern("math.*") handles math.sum (ctx.getPattern() is the subject); the most specific wildcard wins; object patterns stay exact', async () => {
    const table = new HandlerTable();
    const s1 = await server(table);
    const b = await startNode({ peerExchange: false });
    nodes.push(b);
    await b.service.connect(`${s1.id}@${s1.address}`);
    expect(await b.service.request(s1.id, 'math.sum', [1, 2])).toEqual({ sum: 3, pattern: 'math.sum', by: s1.id });
    expect(await b.service.request(s1.id, 'orders.eu.created', null)).toBe('orders.eu.* got orders.eu.created');
    expect(await b.service.request(s1.id, 'orders.us.created', null)).toBe('orders.> got orders.us.created');
    expect(await b.service.request(s1.id, 'orders.eu', null)).toBe('orders.> got orders.eu');
    // Not matched: too many tokens for `*`, no token for `>`, an object pattern.
    await expect(b.service.request(s1.id, 'math.sum.extra', [1])).rejects.toThrow(/no matching message handler/);
    await expect(b.service.request(s1.id, 'orders', null)).rejects.toThrow(/no matching message handler/);
    await expect(b.service.request(s1.id, { cmd: 'math.*' }, null)).rejects.toThrow(/no matching message handler/);
    // A handler added at run time is matched too.
    s1.app.get(P2PServer).addHandler('late.*', async (data: unknown) => `late ${String(data)}`, false);
    expect(await b.service.request(s1.id, 'late.one', 'x')).toBe('late x');
    // Events: a wildcard @EventPattern gets the subject as its pattern.
    await b.service.send(s1.id, 'notification.created', 'n1');
    await vi.waitFor(() => expect(s1.math.events).toEqual(['notification.created:n1']));
  });

  it('a neighbour\'s event with no handler is logged once per pattern, never as an error', async () => {
    const table = new HandlerTable();
    const s1 = await server(table);
    const b = await startNode({ peerExchange: false });
    nodes.push(b);
    await b.service.connect(`${s1.id}@${s1.address}`);
    const logger = (s1.app.get(P2PServer) as unknown as { logger: { log: (m: string) => void; error: (m: string) => void } }).logger;
    const log = vi.spyOn(logger, 'log');
    const error = vi.spyOn(logger, 'error');
    for (let i = 0; i < 50; i++) await b.service.broadcast('unhandled.topic', i);
    await b.service.broadcast('other.topic', 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(error).not.toHaveBeenCalled();
    expect(log.mock.calls.filter(([m]) => String(m).includes('unhandled.topic'))).toHaveLength(1);
    expect(log.mock.calls.filter(([m]) => String(m).includes('other.topic'))).toHaveLength(1);
  });
});

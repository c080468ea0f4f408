// Nest's handler pipeline (guards, interceptors, pipes, several handlers per event, streams from
// event handlers, processing hooks) runs for messages that arrive over p2p, the same as it does
// for Nest's own transports (exception filters: nest.spec.ts). P2PServer calls handlers without Nest's hook
// wrappers when no hooks are set (a speed path), so both paths are checked here.
import {
  Controller,
  Injectable,
  ParseIntPipe,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { map, tap, timer, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P2PContext, P2PRemoteError, P2PServer } from '../../src/index.js';
import { MODES, waitFor } from '../helpers.js';
import { connectAndWait, NodeController, startNode, type TestNode } from '../nest-helpers.js';

/** Lets a message through when its payload carries `token: 'open'`. */
@Injectable()
class TokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const data = context.switchToRpc().getData<{ token?: string } | undefined>();
    return data?.token === 'open';
  }
}

/** Wraps a reply, and records that it ran (with the sender from the P2P context). */
@Injectable()
class WrapInterceptor implements NestInterceptor {
  static readonly seen: string[] = [];
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    WrapInterceptor.seen.push(context.switchToRpc().getContext<P2PContext>().getPeer().id);
    return next.handle().pipe(map((value) => ({ wrapped: value })));
  }
}

/** What the event handlers of the receiving app saw, in order (one receiving app per mode, run one after the other). */
const events: string[] = [];

@Controller()
class PipelineController {
  @UseGuards(TokenGuard)
  @MessagePattern('guarded.ask')
  guardedAsk(@Payload() data: { value: number }): number {
    return data.value * 2;
  }

  @UseGuards(TokenGuard)
  @EventPattern('guarded.note')
  guardedNote(@Payload() data: { value: string }): void {
    events.push(`guarded:${data.value}`);
  }

  @UseInterceptors(WrapInterceptor)
  @MessagePattern('wrapped')
  wrapped(@Payload() data: unknown): unknown {
    return data;
  }

  @MessagePattern('plus-one')
  plusOne(@Payload(ParseIntPipe) n: number): number {
    return n + 1;
  }

  /** An event handler that returns a stream: Nest runs it without a subscriber, and so must we. */
  @EventPattern('stream.note')
  streamNote(@Payload() data: string): Observable<number> {
    return timer(1).pipe(tap(() => events.push(`stream:${data}`)));
  }

  @EventPattern('shared.note')
  sharedFirst(@Payload() data: string): void {
    events.push(`first:${data}`);
  }

  @EventPattern('order.marker')
  marker(@Payload() data: string): void {
    events.push(`marker:${data}`);
  }
}

/** A second controller on the same event pattern: Nest chains both handlers. */
@Controller()
class SecondController {
  @EventPattern('shared.note')
  sharedSecond(@Payload() data: string, @Ctx() ctx: unknown): void {
    events.push(`second:${data}:${ctx instanceof P2PContext}`);
  }
}

describe.each(MODES)("Nest's handler pipeline over p2p ($mode)", ({ tls }) => {
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    [a, b] = await Promise.all([
      startNode({ tls, peerExchange: false }),
      startNode({ tls, peerExchange: false }, [NodeController, PipelineController, SecondController]),
    ]);
    await connectAndWait(a, b);
  });

  afterAll(async () => {
    await Promise.all([a, b].map((n) => n?.app.close()));
  });

  /** Sends a marker event and waits for it: the handlers of events sent before it have been called. */
  async function settle(tag: string): Promise<void> {
    await a.service.send(b.id, 'order.marker', tag);
    await waitFor(() => events.includes(`marker:${tag}`));
  }

  it('runs guards: a denied request gets "Forbidden resource", an allowed one its reply', async () => {
    const denied = await a.service.request(b.id, 'guarded.ask', { value: 4 }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(P2PRemoteError);
    expect((denied as P2PRemoteError).message).toMatch(/Forbidden resource/);
    await expect(a.service.request(b.id, 'guarded.ask', { value: 4, token: 'open' })).resolves.toBe(8);
  });

  it('runs guards on events: a denied event never reaches its handler', async () => {
    events.length = 0;
    await a.service.send(b.id, 'guarded.note', { value: 'no-token' });
    await a.service.send(b.id, 'guarded.note', { value: 'let-in', token: 'open' });
    // Both went through the same microtask-only guard, the denied one first: once the allowed one has
    // run and a timer has fired after it (settle), the denied one has been decided too.
    await waitFor(() => events.includes('guarded:let-in'));
    await settle('guards');
    expect([...events].sort()).toEqual(['guarded:let-in', 'marker:guards']);
  });

  it('runs interceptors, which see the P2P context', async () => {
    WrapInterceptor.seen.length = 0;
    await expect(a.service.request(b.id, 'wrapped', 'x')).resolves.toEqual({ wrapped: 'x' });
    expect(WrapInterceptor.seen).toEqual([a.id]);
  });

  it('runs pipes: ParseIntPipe transforms a good payload and refuses a bad one', async () => {
    await expect(a.service.request(b.id, 'plus-one', '41')).resolves.toBe(42);
    await expect(a.service.request(b.id, 'plus-one', 'forty-one')).rejects.toBeInstanceOf(P2PRemoteError);
  });

  it('runs a stream returned by an event handler, and every handler of a shared event pattern', async () => {
    events.length = 0;
    await a.service.send(b.id, 'stream.note', 's1');
    await a.service.send(b.id, 'shared.note', 'n1');
    await waitFor(() => events.includes('stream:s1'));
    await settle('shared');
    expect(events).toContain('first:n1');
    expect(events).toContain('second:n1:true');
    expect(events.filter((e) => e.startsWith('stream:'))).toEqual(['stream:s1']);
  });

  it("runs a stream returned by the handler of a node's own network broadcast (its copy goes through no connection)", async () => {
    events.length = 0;
    await b.service.broadcast('stream.note', 'own', { scope: 'network' });
    await waitFor(() => events.includes('stream:own'));
    expect(events.filter((e) => e.startsWith('stream:'))).toEqual(['stream:own']);
  });

  it('calls processing hooks when they are set: start around the handler, end after it (last: hooks stay set)', async () => {
    const server = b.app.get(P2PServer);
    const calls: string[] = [];
    server.setOnProcessingStartHook((transportId, context, done) => {
      calls.push(`start:${String(transportId)}:${(context as P2PContext).getPattern()}`);
      return done();
    });
    server.setOnProcessingEndHook((_transportId, context) => calls.push(`end:${(context as P2PContext).getPattern()}`));
    await expect(a.service.request(b.id, 'guarded.ask', { value: 1, token: 'open' })).resolves.toBe(2);
    await expect(a.service.request(b.id, 'guarded.ask', { value: 1 })).rejects.toBeInstanceOf(P2PRemoteError);
    await settle('hooks');
    await waitFor(() => calls.length === 6);
    const transport = String(server.transportId);
    expect(calls).toEqual([
      `start:${transport}:guarded.ask`,
      'end:guarded.ask',
      `start:${transport}:guarded.ask`,
      'end:guarded.ask',
      `start:${transport}:order.marker`,
      'end:order.marker',
    ]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstValueFrom, toArray } from 'rxjs';
import { P2PConnectionClosedError, P2PFrameTooLargeError, P2PHandshakeError, P2PPeerNotConnectedError, P2PRemoteError, P2PTimeoutError, type PeerEvent } from '../../src/index.js';
import { ProtobufPayload } from '../../src/wire/codec.js';
import { MODES, waitFor } from '../helpers.js';
import { connectAndWait, startNode, type TestNode } from '../nest-helpers.js';

describe.each(MODES)('three Nest apps over TCP on 127.0.0.1 ($mode)', ({ tls }) => {
  let a: TestNode;
  let b: TestNode;
  let c: TestNode;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startNode({ tls, peerExchange: false }), startNode({ tls, peerExchange: false, maxFrameBytes: 2 * 1024 * 1024 }), startNode({ tls, peerExchange: false })]);
    await connectAndWait(a, b);
    await connectAndWait(a, c);
  });

  afterAll(async () => {
    await Promise.all([a, b, c].map((n) => n?.app.close()));
  });

  it('delivers an event to @EventPattern with the sender in the context', async () => {
    await a.service.send(b.id, 'note', { hi: 1 });
    await waitFor(() => b.controller.received.length === 1);
    expect(b.controller.received[0]).toEqual({ pattern: 'note', from: a.id, data: { hi: 1 } });
    b.controller.received.length = 0;
  });

  it('routes object patterns normalised the way Nest normalises them', async () => {
    await a.service.send(b.id, { v: 1, kind: 'typed' }, 'x');
    await waitFor(() => b.controller.received.length === 1);
    expect(b.controller.received[0]!.pattern).toBe('{"kind":"typed","v":1}');
    b.controller.received.length = 0;
    expect(await a.service.request(b.id, { cmd: 'sum' }, [1, 2, 3])).toBe(6);
  });

  it('answers requests from sync, async and streaming handlers', async () => {
    expect(await a.service.request(b.id, 'echo', { deep: [1, { x: 'y' }] })).toEqual({ deep: [1, { x: 'y' }] });
    expect(await a.service.request(b.id, 'whoami')).toBe(a.id);
    expect(await a.service.request(b.id, 'count', 5)).toBe(5);
    expect(await firstValueFrom(a.service.requestStream(b.id, 'count', 4).pipe(toArray()))).toEqual([1, 2, 3, 4]);
    expect(await firstValueFrom(a.service.requestStream(b.id, 'list').pipe(toArray()))).toEqual(['a', 'b', 'c']);
  });

  it('round-trips binary, utf8 and json payloads with their types', async () => {
    const bytes = Buffer.from([0, 1, 2, 255]);
    const back = await a.service.request<Buffer>(b.id, 'echo', bytes);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.equals(bytes)).toBe(true);
    expect(await a.service.request(b.id, 'typeof', bytes)).toBe('buffer');
    expect(await a.service.request(b.id, 'typeof', 'text')).toBe('string');
    expect(await a.service.request(b.id, 'typeof', 12)).toBe('number');
    expect(await a.service.request(b.id, 'echo', 'ünïcødé ✓')).toBe('ünïcødé ✓');
    expect(await a.service.request(b.id, 'echo', null)).toBeNull();
    expect(await a.service.request(b.id, 'echo', [true, 1.5])).toEqual([true, 1.5]);
  });

  it('passes protobuf payloads through as opaque bytes', async () => {
    const encoded = Buffer.from([0x08, 0x96, 0x01]);
    const back = await a.service.request<Buffer>(b.id, 'echo', new ProtobufPayload(encoded));
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.equals(encoded)).toBe(true);
    expect(await a.service.request(b.id, 'typeof', new ProtobufPayload(encoded))).toBe('buffer');
  });

  it('keeps the connection when an event handler throws', async () => {
    await a.service.send(b.id, 'explode', 1);
    await a.service.send(b.id, 'note', 'after');
    await waitFor(() => b.controller.received.some((r) => r.data === 'after'));
    expect(await a.service.request(b.id, 'echo', 'alive')).toBe('alive');
    b.controller.received.length = 0;
  });

  it('carries a 1 MiB binary payload both ways', async () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const back = await a.service.request<Buffer>(b.id, 'echo', big);
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
  });

  it('turns RpcException and thrown errors into typed remote errors', async () => {
    const rpc = await a.service.request(b.id, 'reject').catch((e: unknown) => e);
    expect(rpc).toBeInstanceOf(P2PRemoteError);
    expect((rpc as P2PRemoteError).error).toEqual({ code: 'E_BAD_INPUT', message: 'bad input' });
    expect((rpc as P2PRemoteError).peerId).toBe(b.id);
    const crash = await a.service.request(b.id, 'crash').catch((e: unknown) => e);
    expect(crash).toBeInstanceOf(P2PRemoteError);
    expect((crash as P2PRemoteError).error).toMatchObject({ status: 'error', message: 'Internal server error' });
  });

  it('answers an unknown pattern with an error reply', async () => {
    const err = await a.service.request(b.id, 'no-such-pattern').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PRemoteError);
    expect((err as P2PRemoteError).message).toMatch(/no matching message handler.*no-such-pattern/);
    // An event pattern is not a message handler.
    await expect(a.service.request(b.id, 'note')).rejects.toBeInstanceOf(P2PRemoteError);
  });

  it('times out with P2PTimeoutError, per call', async () => {
    const started = Date.now();
    const err = await a.service.request(b.id, 'never', null, { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(a.node.connection(b.id)!.pendingRequests).toBe(0);
  });

  it('broadcasts to every connected peer exactly once', async () => {
    b.controller.received.length = 0;
    c.controller.received.length = 0;
    const result = await a.service.broadcast('note', { round: 1 });
    expect(result.sent.sort()).toEqual([b.id, c.id].sort());
    expect(result.failed).toEqual([]);
    await waitFor(() => b.controller.received.length >= 1 && c.controller.received.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(b.controller.received).toEqual([{ pattern: 'note', from: a.id, data: { round: 1 } }]);
    expect(c.controller.received).toEqual([{ pattern: 'note', from: a.id, data: { round: 1 } }]);
  });

  it('refuses a payload above maxFrameBytes on send', async () => {
    // A runs the 4 MiB default; 5 MiB cannot be framed.
    const err = await a.service.send(b.id, 'note', Buffer.alloc(5 * 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PFrameTooLargeError);
    expect((err as P2PFrameTooLargeError).peerId).toBe(b.id);
    // Still connected and working.
    expect(await a.service.request(b.id, 'echo', 'still here')).toBe('still here');
  });

  it('reports peers, connection events and unknown peers', async () => {
    expect(a.service.peers().map((p) => p.id).sort()).toEqual([b.id, c.id].sort());
    const peerB = a.service.peers().find((p) => p.id === b.id)!;
    expect(peerB).toMatchObject({ direction: 'outbound', listenAddress: b.address });
    await expect(a.service.send('0'.repeat(40), 'note', 1)).rejects.toBeInstanceOf(P2PPeerNotConnectedError);
    const d = await startNode({ tls, peerExchange: false });
    try {
      const events: PeerEvent[] = [];
      const sub = d.service.events$.subscribe((e) => events.push(e));
      await connectAndWait(d, c);
      await d.service.disconnect(c.id);
      await waitFor(() => events.length === 2);
      sub.unsubscribe();
      expect(events.map((e) => [e.type, e.peer.id])).toEqual([
        ['connected', c.id],
        ['disconnected', c.id],
      ]);
    } finally {
      await d.app.close();
    }
  });

  it('refuses a connection to itself', async () => {
    await expect(a.service.connect(a.address)).rejects.toBeInstanceOf(P2PHandshakeError);
    expect(a.service.peers().some((p) => p.id === a.id)).toBe(false);
  });

  it('rejects pending requests at once when the peer vanishes', async () => {
    const d = await startNode({ tls, peerExchange: false });
    await connectAndWait(a, d);
    const started = Date.now();
    const pending = a.service.request(d.id, 'never', null, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 30));
    // An abrupt loss of the connection (the process-kill case is in process.spec.ts).
    d.node.connection(a.id)!.raw.destroy();
    const err = await pending;
    expect(err).toBeInstanceOf(P2PConnectionClosedError);
    expect(Date.now() - started).toBeLessThan(1000);
    await d.app.close();
  });
});

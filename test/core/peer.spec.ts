import { afterEach, describe, expect, it } from 'vitest';
import { P2PConnectionClosedError, P2PDialError, P2PHandshakeError, P2PIdentityMismatchError, P2PPeerNotConnectedError, P2PRemoteError, P2PTimeoutError } from '../../src/common/errors.js';
import { type PeerEvent } from '../../src/common/types.js';
import { Peer, type InboundHandler } from '../../src/node/peer.js';
import { MODES, startPeers, waitFor } from '../helpers.js';

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

function track(...peers: Peer[]): Peer[] {
  open.push(...peers);
  return peers;
}

function request(peer: Peer, to: string, pattern: string, data: unknown, timeoutMs?: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const values: unknown[] = [];
    peer.request(to, pattern, data, { next: (v) => values.push(v), error: reject, complete: () => resolve(values) }, { timeoutMs });
  });
}

const echo: InboundHandler = {
  onEvent: () => undefined,
  onRequest: (_peer, topic, data, reply) => {
    if (topic === 'fail') return reply.error({ status: 'error', message: 'nope' });
    if (topic === 'stream') {
      reply.next(1);
      reply.next(2);
      reply.next(3);
      return reply.complete();
    }
    if (topic === 'silent') return;
    reply.next(data);
    reply.complete();
  },
};

describe.each(MODES)('Peer (core, no Nest, $mode)', ({ tls }) => {
  it('connects, exchanges events, requests, streamed and failed replies', async () => {
    const [a, b] = track(...(await startPeers(2, { tls, peerExchange: false })));
    const events: Array<[string, string, unknown]> = [];
    b!.setHandler({ ...echo, onEvent: (peer, topic, data) => void events.push([peer.id, topic, data]) });
    const info = await a!.connect(`${b!.id}@${b!.address()}`);
    expect(info.id).toBe(b!.id);
    expect(info.direction).toBe('outbound');
    await waitFor(() => b!.peers().length === 1);
    expect(b!.peers()[0]!.id).toBe(a!.id);

    a!.send(b!.id, 'greet', { hello: 'world' });
    a!.send(b!.id, 'bytes', Buffer.from([1, 2, 3]));
    a!.send(b!.id, 'text', 'héllo');
    await waitFor(() => events.length === 3);
    expect(events[0]).toEqual([a!.id, 'greet', { hello: 'world' }]);
    expect(Buffer.isBuffer(events[1]![2])).toBe(true);
    expect([...(events[1]![2] as Buffer)]).toEqual([1, 2, 3]);
    expect(events[2]![2]).toBe('héllo');

    expect(await request(a!, b!.id, 'echo', { n: 42 })).toEqual([{ n: 42 }]);
    expect(await request(a!, b!.id, 'stream', null)).toEqual([1, 2, 3]);
    const err = await request(a!, b!.id, 'fail', null).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PRemoteError);
    expect((err as P2PRemoteError).error).toEqual({ status: 'error', message: 'nope' });
    const timeout = await request(a!, b!.id, 'silent', null, 100).catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(P2PTimeoutError);
  });

  it('rejects a wrong expected id, self connections and unknown peers', async () => {
    const [a, b] = track(...(await startPeers(2, { tls, peerExchange: false })));
    const wrong = 'f'.repeat(40);
    await expect(a!.connect(`${wrong}@${b!.address()}`)).rejects.toBeInstanceOf(P2PIdentityMismatchError);
    await expect(a!.connect(a!.address()!)).rejects.toBeInstanceOf(P2PHandshakeError);
    expect(a!.peers()).toEqual([]);
    expect(() => a!.send(wrong, 'x', 1)).toThrow(P2PPeerNotConnectedError);
    await expect(a!.connect('127.0.0.1:1')).rejects.toBeInstanceOf(P2PDialError);
  });

  it('keeps exactly one connection on a simultaneous dial in both directions', async () => {
    const [a, b] = track(...(await startPeers(2, { tls, peerExchange: false })));
    b!.setHandler(echo);
    const [ra, rb] = await Promise.all([a!.connect(b!.address()!), b!.connect(a!.address()!)]);
    expect(ra.id).toBe(b!.id);
    expect(rb.id).toBe(a!.id);
    await waitFor(() => a!.peers().length === 1 && b!.peers().length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(a!.peers()).toHaveLength(1);
    expect(b!.peers()).toHaveLength(1);
    // Both ends kept the same connection: the one dialed by the lower id.
    const lower = a!.id < b!.id ? a! : b!;
    expect(lower.peers()[0]!.direction).toBe('outbound');
    expect(await request(a!, b!.id, 'echo', 'ok')).toEqual(['ok']);
  });

  it('fails pending requests at once when the peer goes away', async () => {
    const [a, b] = track(...(await startPeers(2, { tls, peerExchange: false })));
    b!.setHandler(echo);
    await a!.connect(b!.address()!);
    const started = Date.now();
    const pending = request(a!, b!.id, 'silent', null, 10_000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    b!.connection(a!.id)!.raw.destroy();
    const err = await pending;
    expect(err).toBeInstanceOf(P2PConnectionClosedError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('emits connected and disconnected events', async () => {
    const [a, b] = track(...(await startPeers(2, { tls, peerExchange: false })));
    const seen: PeerEvent[] = [];
    a!.on('peer', (e: PeerEvent) => seen.push(e));
    await a!.connect(b!.address()!);
    await waitFor(() => b!.peers().length === 1);
    await b!.disconnect(a!.id);
    await waitFor(() => seen.length === 2);
    expect(seen.map((e) => e.type)).toEqual(['connected', 'disconnected']);
    expect(seen[1]!.peer.id).toBe(b!.id);
  });
});

describe('networkBroadcastStats()', () => {
  it('returns a snapshot: a later change to the node, or to the snapshot, leaves the other as it was', async () => {
    const [a] = track(...(await startPeers(1)));
    const before = a!.networkBroadcastStats();
    // Before, `repair` was the live object: two snapshots always compared equal, and writing one wrote the node's.
    before.repair.sent = 99;
    before.dropped.rejected = 99;
    before.originated = 99;
    const after = a!.networkBroadcastStats();
    expect(after.repair.sent).toBe(0);
    expect(after.dropped.rejected).toBe(0);
    expect(after.originated).toBe(0);
    expect(after.repair).not.toBe(before.repair);
  });
});

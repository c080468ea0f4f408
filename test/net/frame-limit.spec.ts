import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { P2PFrameTooLargeError, P2PRemoteError } from '../../src/common/errors.js';
import { type Peer } from '../../src/node/peer.js';
import { echo, MODES, startEchoPeer, waitFor } from '../helpers.js';

/**
 * Issue 13, "unknown receiver limit": each hello announces the node's maxFrameBytes, and a
 * sender refuses at the call what the peer would have closed the connection on (and lost).
 */
const open: Peer[] = [];
let tls = true;
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const MiB = 1024 * 1024;

describe.each(MODES)('maxFrameBytes is negotiated ($mode)', (mode) => {
  beforeAll(() => {
    tls = mode.tls;
  });

  async function pair(): Promise<[Peer, Peer]> {
    const big = await startEchoPeer({ tls, peerExchange: false, maxFrameBytes: 16 * MiB, maxQueueBytes: 64 * MiB }, open);
    const small = await startEchoPeer({ tls, peerExchange: false }, open); // the default 4 MiB
    await big.connect(`${small.id}@${small.address()}`);
    await waitFor(() => small.peers().length === 1);
    return [big, small];
  }

  it('a 10 MB send to a peer that accepts 4 MiB is refused at the call, naming its limit; the connection stays up', async () => {
    const [big, small] = await pair();
    const err = (() => {
      try {
        big.send(small.id, 'note', Buffer.alloc(10_000_000));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(P2PFrameTooLargeError);
    expect((err as P2PFrameTooLargeError).limit).toBe(4 * MiB);
    expect((err as Error).message).toMatch(/exceeds the peer's maxFrameBytes 4194304/);
    expect(() => big.request(small.id, 'echo', Buffer.alloc(10_000_000), { next() {}, error() {}, complete() {} })).toThrow(P2PFrameTooLargeError);
    const result = big.broadcast('note', Buffer.alloc(10_000_000));
    expect(result.sent).toEqual([]);
    expect(result.failed[0]?.error).toBeInstanceOf(P2PFrameTooLargeError);
    expect(big.peers()).toHaveLength(1);
    expect(await echo(big, small.id, 'still up')).toBe('still up');
  });

  it('a reply too large for the caller comes back as an error reply at once, not a timeout', async () => {
    const [big, small] = await pair();
    // Big answers a number with a buffer that large: a small request, a reply too large for small's 4 MiB.
    big.setHandler({ onEvent: () => undefined, onRequest: (_p, _t, n, reply) => (reply.next(Buffer.alloc(n as number)), reply.complete()) });
    const started = Date.now();
    const err = await echo(small, big.id, 5 * MiB).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PRemoteError);
    expect(JSON.stringify((err as P2PRemoteError).error)).toMatch(/exceeds the peer's maxFrameBytes 4194304/);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await echo(small, big.id, 10)).toEqual(Buffer.alloc(10));
  });

  it('a relayed network broadcast too large for a neighbour is not sent to it, and is counted', async () => {
    const [big, small] = await pair();
    const result = big.broadcast('note', Buffer.alloc(5 * MiB), { scope: 'network', strategy: 'gossip' });
    expect(result.failed.map((f) => f.peerId)).toEqual([small.id]);
    expect(big.networkBroadcastStats().tooLargeForNeighbour).toBe(1);
    expect(big.peers()).toHaveLength(1);
  });
});

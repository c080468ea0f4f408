import { afterEach, describe, expect, it } from 'vitest';
import type { BroadcastVerdict } from '../../src/broadcast/pipeline.js';
import { silentLogger } from '../../src/common/types.js';
import { Peer } from '../../src/node/peer.js';
import { pointArc } from '../../src/ring/raintree.js';
import { waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

// Issue 22: with a validator that rejects stale broadcasts, a relay that held an honest broadcast
// for 3 s got its honest origin banned (−119) while the relay's own score stayed 0.
const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function node(): Promise<Peer> {
  const peer = new Peer({ listen: '127.0.0.1:0', logger: silentLogger, peerExchange: false });
  open.push(peer);
  peer.setHandler({ onEvent: () => undefined, onRequest: (_p, _t, _d, reply) => reply.complete() });
  await peer.start();
  return peer;
}

/** A hand-driven relay with one key: the origin's only neighbour (`relay`), and the victim's (`toVictim`). */
async function relayBetween(origin: Peer, victim: Peer): Promise<{ relay: RawPeer; toVictim: RawPeer }> {
  const relay = await RawPeer.open(origin.address()!, { tls: true });
  open.push({ close: () => relay.destroy() });
  const toVictim = await RawPeer.open(victim.address()!, { tls: true, identity: relay.identity });
  open.push({ close: () => toVictim.destroy() });
  await waitFor(() => origin.peers().length === 1 && victim.peers().length === 1, 5000, 'both connections');
  return { relay, toVictim };
}

describe('a validator cannot be aimed at an honest origin by a relay', () => {
  it('a broadcast a relay held back until it was stale costs the relay, not its origin; one invalid as sent still costs its origin', async () => {
    const origin = await node();
    const victim = await node();
    const verdicts: BroadcastVerdict[] = [];
    // The application's rule: older than 2 s is invalid, and 'bad' payloads are invalid whenever they come.
    victim.setBroadcastValidator('orders', (b) => {
      const age = (b.receivedAt ?? Date.now()) - b.sentAt;
      const verdict: BroadcastVerdict = b.data === 'bad' || age > 2_000 ? 'reject' : 'accept';
      verdicts.push(verdict);
      return verdict;
    });
    const { relay, toVictim } = await relayBetween(origin, victim);

    origin.broadcast('orders', 'good', { scope: 'network' });
    await waitFor(() => relay.broadcasts().length === 1, 5000, 'the relay to get the honest broadcast');
    const held = relay.broadcasts()[0]!;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    toVictim.sendBroadcast({ ...held, hops: held.hops + 1, arc: pointArc(victim.id) });
    await waitFor(() => verdicts.length >= 1, 5000, 'the validator to judge the held broadcast');
    await waitFor(() => victim.peerScore(relay.identity.peerId) < 0, 5000, 'the relay to pay');
    expect(verdicts[0]).toBe('reject');
    expect(victim.peerScore(origin.id)).toBe(0);

    // Invalid as its origin sent it: the origin pays, as before, even when it comes through the relay at once.
    origin.broadcast('orders', 'bad', { scope: 'network' });
    await waitFor(() => relay.broadcasts().length === 2, 5000, 'the relay to get the bad broadcast');
    const bad = relay.broadcasts()[1]!;
    const relayScore = victim.peerScore(relay.identity.peerId);
    toVictim.sendBroadcast({ ...bad, hops: bad.hops + 1, arc: pointArc(victim.id) });
    await waitFor(() => victim.peerScore(origin.id) < 0, 5000, 'the origin to pay for what it wrote');
    // Scores decay toward 0, so a relay that paid nothing more is at or above where it was.
    expect(victim.peerScore(relay.identity.peerId)).toBeGreaterThanOrEqual(relayScore);
  }, 20_000);

  it('a broadcast a relay sent on with too many hops costs the relay, not its origin', async () => {
    const origin = await node();
    const victim = await node();
    const judged: Array<{ hops: number; verdict: BroadcastVerdict }> = [];
    // The application's rule: a broadcast that passed through more than 3 relays is invalid (issue 22, item 6: "too many hops").
    victim.setBroadcastValidator('orders', (b) => {
      const verdict: BroadcastVerdict = b.hops > 3 ? 'reject' : 'accept';
      judged.push({ hops: b.hops, verdict });
      return verdict;
    });
    const { relay, toVictim } = await relayBetween(origin, victim);

    origin.broadcast('orders', 'good', { scope: 'network' });
    await waitFor(() => relay.broadcasts().length === 1, 5000, 'the relay to get the honest broadcast');
    const honest = relay.broadcasts()[0]!;
    expect(honest.hops).toBeLessThanOrEqual(3);
    // The hop count is a relay's field, not signed: the relay claims 10 relays before it.
    toVictim.sendBroadcast({ ...honest, hops: 10, arc: pointArc(victim.id) });
    await waitFor(() => victim.peerScore(relay.identity.peerId) < 0, 5000, 'the relay to pay');
    // The relay's copy was rejected for its hops (and asked again as sent: hops 0, accepted), the origin untouched.
    expect(judged).toEqual([
      { hops: 10, verdict: 'reject' },
      { hops: 0, verdict: 'accept' },
    ]);
    expect(victim.networkBroadcastStats().dropped.rejected).toBe(1);
    expect(victim.peerScore(origin.id)).toBe(0);
    if (process.env.P2P_TEST_STATS) {
      console.log(`validator-hops: relay score ${victim.peerScore(relay.identity.peerId)}, origin score ${victim.peerScore(origin.id)}, verdicts ${JSON.stringify(judged)}`);
    }
  }, 20_000);
});

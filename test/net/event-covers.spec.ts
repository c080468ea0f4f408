import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from '../../src/node/peer.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { keyInThird } from '../broadcast-mesh.js';

/**
 * Issue 24: a node's ring neighbours prefer nodes that share one of its event patterns (eventCoverPatterns), so that the
 * subscribers of a pattern are each other's neighbours and an event finds a subscriber inside the thirds that hold one
 * (docs/events.md, Covers that share a pattern). Real nodes over TCP, formed by peer exchange from one seed each.
 */
describe('covers that share a pattern, over real sockets', () => {
  const open: Peer[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.close()));
  });

  const N = 24;
  const options = { tls: false, pexIntervalMs: 250, reconnectBaseMs: 100, reconnectMaxMs: 2000, broadcastRepairIntervalMs: 200 };
  const linked = (a: Peer, b: Peer) => a.peers().some((p) => p.id === b.id);

  const form = async (eventCoverPatterns: number, keys: Record<number, string> = {}) => {
    const nodes: Peer[] = [];
    for (let i = 0; i < N; i++) {
      const seed = nodes[Math.floor(i / 2)];
      const key = keys[i] === undefined ? {} : { privateKey: keys[i] };
      nodes.push(await startEchoPeer({ ...options, ...key, eventCoverPatterns, peers: seed ? [`${seed.id}@${seed.address()}`] : [] }, open));
    }
    await waitFor(() => nodes.every((n) => n.peers().length >= 8), 30_000, 'every node at the least degree');
    return nodes;
  };

  /** Two nodes that are not neighbours now. */
  const apart = (nodes: Peer[]) => {
    for (const a of nodes) for (const b of nodes) if (a !== b && !linked(a, b) && !linked(b, a)) return [a, b] as const;
    throw new Error('a full mesh: no pair apart');
  };

  it('two nodes that are not neighbours become neighbours once both handle the same event pattern, and stay within maxPeers', async () => {
    const nodes = await form(4);
    const [a, b] = apart(nodes);
    a.setHandledPatterns({ requests: [], events: ['jobs.done'] });
    b.setHandledPatterns({ requests: [], events: ['jobs.done'] });
    await waitFor(() => linked(a, b) && linked(b, a), 20_000, 'the two subscribers to connect');
    expect(linked(a, b)).toBe(true);
    for (const n of nodes) expect(n.peers().length).toBeLessThanOrEqual(50);
    // Events between them now go over their own connection: the one from a reaches b with no carrier.
    const before = nodes.reduce((t, n) => t + n.networkBroadcastStats().carried, 0);
    await waitFor(() => a.handlers('jobs.done', 'event').length === 2, 5000, 'a to know both subscribers');
    a.broadcast('jobs.done', { n: 1 }, { scope: 'subscribers' });
    await waitFor(() => b.networkBroadcastStats().delivered === 1, 5000, 'b to get the event');
    expect(nodes.reduce((t, n) => t + n.networkBroadcastStats().carried, 0)).toBe(before);
  }, 90_000);

  it('four subscribers of one small topic, two in each of two thirds, end linked to all three others (eventPatternLinks), within maxPeers', async () => {
    // Two subscribers in third 0 of the ring and two in third 1: a subscriber's cover in the other third is one of
    // the two there (the facing one), so the covers alone link each to two of the three others (eventPatternLinks 0:
    // short after 8 s in 2 of 3 runs, measured 2026-12-07; a chance link made the third).
    const at = [3, 7, 11, 15];
    const nodes = await form(4, { [at[0]!]: keyInThird(0), [at[1]!]: keyInThird(0), [at[2]!]: keyInThird(1), [at[3]!]: keyInThird(1) });
    const picked = at.map((i) => nodes[i]!);
    for (const p of picked) p.setHandledPatterns({ requests: [], events: ['alerts.rare'] });
    const links = (p: Peer) => picked.filter((q) => q !== p && linked(p, q)).length;
    await waitFor(() => picked.every((p) => links(p) === 3), 30_000, 'each subscriber to link the three others');
    for (const p of picked) expect(links(p)).toBe(3);
    for (const n of nodes) expect(n.peers().length).toBeLessThanOrEqual(50);
  }, 90_000);
});

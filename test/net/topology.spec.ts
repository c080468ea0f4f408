import { afterEach, describe, expect, it } from 'vitest';
import { type Peer } from '../../src/node/peer.js';
import { GoodbyeReason } from '../../src/wire/control.js';
import { startEchoPeer, waitFor } from '../helpers.js';

/**
 * Issue 15: a node's degree is bounded (maxPeers) even when every node was
 * started knowing the same seed, and a node the seed refuses still joins, from
 * the peers the seed told it before closing.
 */

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe('a bounded degree around a common seed', () => {
  it('the seed holds at most maxPeers connections; the nodes it refuses learn its peers and reach the rest', async () => {
    const common = { pexIntervalMs: 100, maxInboundPerIp: 40, inboundRatePerIp: 100, reconnectBaseMs: 50 };
    const seed = await startEchoPeer({ ...common, maxPeers: 3 }, open);
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, seed.peers().length)), 5);
    const heard = new Map<string, number>();
    const refusals: string[] = [];
    const nodes: Peer[] = [];
    try {
      for (let i = 0; i < 7; i++) {
        const node = await startEchoPeer({ ...common, maxPeers: 8, peers: [`${seed.id}@${seed.address()}`] }, open);
        node.on('peer', (e) => e.type === 'disconnected' && e.peer.id === seed.id && refusals.push(e.reason));
        node.setHandler({ onEvent: (_f, _t, _d, b) => void (b && heard.set(`${node.id}/${b.id}`, (heard.get(`${node.id}/${b.id}`) ?? 0) + 1)), onRequest: () => undefined });
        nodes.push(node);
      }
      // Everyone joins: 8 nodes, each with at least min(8, N − 1) = 7 connections but the seed (3).
      await waitFor(() => nodes.every((n) => n.peers().filter((p) => p.id !== seed.id).length >= 6), 10_000, 'the nodes to find each other');
      expect(most).toBeLessThanOrEqual(3);
      expect(refusals.length).toBeGreaterThan(0);
      expect(refusals.every((r) => r.includes(GoodbyeReason[GoodbyeReason.InboundLimit]))).toBe(true);
      const { id } = nodes[6]!.broadcast('news', 'all', { scope: 'network' });
      await waitFor(() => nodes.every((n) => heard.get(`${n.id}/${id}`) === 1), 5000, 'every node to hear it');
    } finally {
      clearInterval(sample);
    }
  }, 30_000);
});

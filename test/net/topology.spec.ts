import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerExchange } from '../../src/discovery/peer-exchange.js';
import { Peer } from '../../src/node/peer.js';
import { ControlType, GoodbyeReason } from '../../src/wire/control.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 15: a node's degree is bounded (maxPeers) even when every node was
 * started knowing the same seed, and a node the seed refuses still joins, from
 * the peers the seed told it before closing.
 */

const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
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

  it('a node refused for maxInboundPerIp is told the refusing node\'s peers too, and joins through them (issue 23)', async () => {
    const common = { pexIntervalMs: 100, reconnectBaseMs: 50, reconnectMaxMs: 500 };
    // A seed behind which every dialer shares one IP (one NAT, here loopback held to the per-IP limits): one slot for it.
    // It dials nobody itself (maxOutbound 0): the refused node can learn of the others only from the refusal.
    const seed = await startEchoPeer({ ...common, maxInboundPerIp: 1, perIpLimitsOnLoopback: true, maxOutbound: 0 }, open);
    const first = await startEchoPeer({ ...common, peers: [`${seed.id}@${seed.address()}`] }, open);
    await waitFor(() => seed.peers().length === 1, 5000, 'the first node to connect to the seed');
    const late = new Peer({ ...common, listen: '127.0.0.1:0', peers: [`${seed.id}@${seed.address()}`] });
    open.push(late);
    const refusals: string[] = [];
    late.on('peer', (e) => e.type === 'disconnected' && e.peer.id === seed.id && refusals.push(e.reason));
    const heard: string[] = [];
    first.setHandler({ onEvent: (_f, _t, _d, b) => void (b && heard.push(b.id)), onRequest: () => undefined });
    await late.start();
    await waitFor(() => late.peers().some((p) => p.id === first.id), 5000, 'the refused node to reach the seed\'s other peer');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0]).toMatch(/InboundLimit: inbound limit of 1 per IP reached for 127\.0\.0\.1; dial the peers just sent/);
    expect(seed.refused).toBeGreaterThan(0);
    expect(seed.peers().map((p) => p.id)).toEqual([first.id]);
    const { id } = late.broadcast('news', 'all', { scope: 'network' });
    await waitFor(() => heard.includes(id!), 5000, 'the first node to hear the refused node\'s broadcast');
  }, 20_000);

  it('a refusal hands over at most 8 peers, however many the refusing node has', async () => {
    const hub = await startEchoPeer({ pexIntervalMs: 100, maxPeers: 12 }, open);
    for (let i = 0; i < 12; i++) await startEchoPeer({ pexIntervalMs: 60_000, peerExchange: false, peers: [`${hub.id}@${hub.address()}`] }, open);
    await waitFor(() => hub.peers().length === 12, 5000, 'the hub to fill up');
    const raw = await RawPeer.open(hub.address()!, { tls: true });
    raws.push(raw);
    await waitFor(() => raw.closed, 5000, 'the refusal');
    expect(raw.goodbye()?.reason).toBe(GoodbyeReason.InboundLimit);
    const pex = raw.controls.filter((c) => c.type === ControlType.PeerExchange);
    expect(pex).toHaveLength(1);
    expect(parsePeerExchange((pex[0] as { body: Buffer }).body, () => false).entries).toHaveLength(8);
  }, 20_000);
});

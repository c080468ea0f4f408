import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { encodeIds } from '../../src/broadcast/repair.js';
import { type PeerOptions } from '../../src/node/peer-options.js';
import { type Peer } from '../../src/node/peer.js';
import { pointArc, RING_ROOT } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { ControlType, GoodbyeReason } from '../../src/wire/control.js';
import { broadcastMeshes, repairFrame } from '../broadcast-mesh.js';
import { echo, waitFor } from '../helpers.js';

/**
 * Issue 15, found by a hostile review of repair and routing: a single neighbour
 * must not make a node upload a broadcast many times, switch off its repair,
 * or make the network flood a RainTree broadcast. Real nodes over TLS on
 * 127.0.0.1; the hostile neighbour is a hand-driven peer with its own key.
 */

const { mesh: meshOf, raw: rawOf, heardOf } = broadcastMeshes();
const mesh = (n: number, options: PeerOptions = {}) => meshOf(true, n, options);
const raw = (to: Peer) => rawOf(true, to);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const totalSent = (nodes: Peer[]) => nodes.reduce((a, p) => a + p.networkBroadcastStats().sent, 0);

describe('hostile neighbours against repair and routing (TLS)', () => {
  it('one IWANT naming the same id 1 024 times gets one copy, not 256 (it was a 940-fold upload)', async () => {
    const [a] = await mesh(2, { broadcastRepairIntervalMs: 60_000 });
    const { id } = a!.broadcast('news', Buffer.alloc(64 * 1024), { scope: 'network' });
    const greedy = await raw(a!);
    greedy.write(repairFrame(ControlType.BroadcastIWant, encodeIds(Array(1024).fill(Buffer.from(id!, 'hex')))));
    await waitFor(() => greedy.broadcasts().some((m) => m.id === id), 3000, 'the answer');
    await sleep(500);
    expect(greedy.broadcasts().filter((m) => m.id === id)).toHaveLength(1);
    // Asked again, it is known to hold it: no second copy.
    greedy.write(repairFrame(ControlType.BroadcastIWant, encodeIds([Buffer.from(id!, 'hex')])));
    await sleep(300);
    expect(greedy.broadcasts().filter((m) => m.id === id)).toHaveLength(1);
  });

  it('a neighbour stuffing IHAVEs with made-up ids does not stop a node from repairing what its honest neighbours announce', async () => {
    const nodes = await mesh(4);
    const stuffer = await raw(nodes[0]!);
    let stop = false;
    let frames = 0;
    const pump = (async () => {
      // Bounded: at most 10 s of 4 frames of 1 024 ids every 5 ms.
      const until = Date.now() + 10_000;
      while (!stop && Date.now() < until) {
        for (let i = 0; i < 4; i++, frames++) stuffer.write(repairFrame(ControlType.BroadcastIHave, encodeIds(Array.from({ length: 1024 }, () => randomBytes(16)))));
        await sleep(5);
      }
    })();
    try {
      await sleep(300);
      const courier = await raw(nodes[1]!);
      const m = createNetworkMessage(courier.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('"x"') });
      courier.sendBroadcast({ ...m, arc: pointArc(nodes[1]!.id) }); // node 1 alone gets it; repair must do the rest
      await waitFor(() => heardOf(m.id).length === 4, 5000, 'all four nodes, node 0 by repair despite the stuffer');
      expect(heardOf(m.id)).toEqual(nodes.map((p) => p.id).sort());
    } finally {
      stop = true;
      await pump;
    }
    expect(frames).toBeGreaterThan(40);
  });

  it('a neighbour that announces ids and never sends them is banned for its broken promises; one missed answer costs a point', async () => {
    const [a, b] = await mesh(2);
    const liar = await raw(a!);
    // One made-up id, asked for and never sent: a point, no more.
    liar.write(repairFrame(ControlType.BroadcastIHave, encodeIds([randomBytes(16)])));
    await waitFor(() => a!.peerScore(liar.identity.peerId) < 0, 3000, 'the first broken promise');
    expect(a!.peerScore(liar.identity.peerId)).toBeGreaterThan(-2);
    // 16 made-up ids every interval (200 ms), none ever sent: about 16 points an interval, banned within a few seconds.
    const started = Date.now();
    for (let i = 0; i < 40 && !liar.goodbye(); i++) {
      liar.write(repairFrame(ControlType.BroadcastIHave, encodeIds(Array.from({ length: 16 }, () => randomBytes(16)))));
      await sleep(200);
    }
    await liar.whenClosed();
    expect(liar.goodbye()?.reason).toBe(GoodbyeReason.Banned);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(a!.bans().some((ban) => ban.peerId === liar.identity.peerId)).toBe(true);
    // The honest neighbour, which answers what it announces, keeps its score and is served.
    const { id } = b!.broadcast('news', 'after', { scope: 'network' });
    await waitFor(() => heardOf(id!).length === 2, 3000, 'an honest broadcast');
    expect(a!.peerScore(b!.id)).toBe(0);
    expect(await echo(b!, a!.id, 'still served')).toBe('still served');
  });

  it('a relay that resends a RainTree broadcast as gossip is cut off (the origin signs its strategy); nothing floods', async () => {
    const nodes = await mesh(6);
    const hostile = await raw(nodes[0]!);
    const m = createNetworkMessage(hostile.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('"x"') });
    hostile.sendBroadcast({ ...m, arc: RING_ROOT });
    await waitFor(() => heardOf(m.id).length === 6, 3000, 'all six');
    await sleep(300);
    const tree = totalSent(nodes);
    hostile.sendBroadcast({ ...m, strategy: 'gossip' });
    await hostile.whenClosed();
    expect(hostile.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    await sleep(300);
    expect(totalSent(nodes)).toBe(tree);
    expect(heardOf(m.id)).toEqual(nodes.map((p) => p.id).sort());
    expect(await echo(nodes[1]!, nodes[0]!.id, 'still served')).toBe('still served');
  });

  it('one broadcast handed over with more arcs than an honest network uses is not flooded past the limit', async () => {
    const nodes = await mesh(6);
    const hostile = await raw(nodes[0]!);
    const self = BigInt(`0x${nodes[0]!.id}`);
    const m = createNetworkMessage(hostile.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('"x"') });
    // Arcs that all hold node 0: from node 0 to a little further each time (16 distinct arcs).
    const hex = (v: bigint) => (v % 2n ** 160n).toString(16).padStart(40, '0');
    for (let k = 1n; k <= 16n; k++) hostile.sendBroadcast({ ...m, arc: { from: nodes[0]!.id, to: hex(self + k) } });
    await waitFor(() => heardOf(m.id).length === 6, 3000, 'all six (the rest by repair)');
    await sleep(500);
    const stats = nodes[0]!.networkBroadcastStats();
    expect(stats.tooManyArcs).toBe(8);
    expect(stats.duplicates).toBe(15);
    // Each arc holds node 0 alone: nothing to hand on, and no flood anywhere (it used to gossip past 8 arcs).
    expect(totalSent(nodes)).toBe(0);
    expect(heardOf(m.id)).toEqual(nodes.map((p) => p.id).sort());
  });
});

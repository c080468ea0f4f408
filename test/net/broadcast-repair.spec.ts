import { describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { encodeIds, parseIds } from '../../src/broadcast/repair.js';
import { REPAIR_RANDOM, REPAIR_WATCHERS } from '../../src/broadcast/repair-watchers.js';
import { loadIdentity } from '../../src/common/identity.js';
import { type PeerOptions } from '../../src/node/peer-options.js';
import { pointArc } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { ControlType, GoodbyeReason, type Control } from '../../src/wire/control.js';
import { broadcastMeshes, repairFrame } from '../broadcast-mesh.js';
import { echo, MODES, waitFor } from '../helpers.js';
import type { RawPeer } from '../raw-peer.js';

/**
 * Issue 15, repair: a broadcast a relay delivered to one node and handed on to
 * nobody still reaches every node, within about one repair interval, once each.
 * Real nodes on 127.0.0.1; the relay that drops is a hand-driven peer with its
 * own key, which also sends malformed and greedy repair frames.
 */

const { mesh, raw, heardOf } = broadcastMeshes();

const wants = (r: RawPeer) =>
  r.controls.filter((c): c is Control & { type: ControlType.BroadcastIWant; body: Buffer } => c.type === ControlType.BroadcastIWant).flatMap((c) => parseIds(c.body, 'IWANT').map((b) => b.toString('hex')));

describe.each(MODES)('repair of network broadcasts ($mode)', ({ tls }) => {
  it('a broadcast a relay handed to one node only reaches the other three by repair, once each, within about one interval', async () => {
    const nodes = await mesh(tls, 4);
    const dropper = await raw(tls, nodes[0]!);
    const identity = dropper.identity;
    // Signed by the dropper's own key and addressed to node 0 alone: it delivers and hands nothing on.
    const m = createNetworkMessage(identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('"dropped"') });
    const sentAt = Date.now();
    dropper.sendBroadcast({ ...m, arc: pointArc(nodes[0]!.id) });
    await waitFor(() => heardOf(m.id).length === 4, 3000, 'every node to have it');
    const took = Date.now() - sentAt;
    await new Promise((r) => setTimeout(r, 500)); // room for a second copy to show up
    expect(heardOf(m.id)).toEqual(nodes.map((p) => p.id).sort());
    const stats = nodes.map((p) => p.networkBroadcastStats());
    expect(stats[0]!.sent).toBe(0); // node 0 relayed nothing: the others got it by repair
    expect(stats.reduce((a, s) => a + s.repair.sent, 0)).toBe(3);
    // Grace (interval / 2) + at most one interval + a round trip, with room for a loaded machine.
    expect(took).toBeLessThan(2000);
  });

  it('without repair (broadcastRepairIntervalMs 0) the same broadcast stays with node 0: the control for the test above', async () => {
    const nodes = await mesh(tls, 4, { broadcastRepairIntervalMs: 0 });
    const dropper = await raw(tls, nodes[0]!);
    const m = createNetworkMessage(dropper.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('"dropped"') });
    dropper.sendBroadcast({ ...m, arc: pointArc(nodes[0]!.id) });
    await waitFor(() => heardOf(m.id).length === 1, 3000, 'node 0 to have it');
    await new Promise((r) => setTimeout(r, 1000));
    expect(heardOf(m.id)).toEqual([nodes[0]!.id]);
  });

  it('with peer exchange on, a broadcast left with one node still reaches all, once each; a healthy one costs at most N × 8 IHAVE entries (its 2 watchers and 6 random announcers per node, counted)', async () => {
    const n = 8;
    // broadcastRepairFanout governs events for subscribers only: 1 here changes nothing for a network broadcast.
    const nodes = await mesh(tls, n, { peerExchange: true, pexIntervalMs: 200, broadcastRepairFanout: 1 });
    // Every node's peer exchange lists its 7 connections: each knows which neighbours it watches.
    await new Promise((r) => setTimeout(r, 800));
    const dropper = await raw(tls, nodes[0]!);
    const m = createNetworkMessage(dropper.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('"dropped"') });
    dropper.sendBroadcast({ ...m, arc: pointArc(nodes[0]!.id) });
    await waitFor(() => heardOf(m.id).length === n, 4000, 'every node to have it');
    await new Promise((r) => setTimeout(r, 500));
    expect(heardOf(m.id)).toEqual(nodes.map((p) => p.id).sort());
    // The raw peer sends no peer exchange: it would count as a connection of node 0's.
    dropper.destroy();
    await waitFor(() => nodes[0]!.peers().length === n - 1, 3000, 'the raw peer to be gone');

    const stats = () => nodes.map((p) => p.networkBroadcastStats().repair);
    const before = stats();
    const id = nodes[3]!.broadcast('news', 'healthy', { scope: 'network' }).id!;
    await waitFor(() => heardOf(id).length === n, 3000, 'the healthy broadcast');
    await new Promise((r) => setTimeout(r, 600)); // past the grace and a run on every node
    const after = stats();
    const entries = after.reduce((a, s, i) => a + s.announced - before[i]!.announced, 0);
    // A node whose RainTree copy came after a watcher's grace (a loaded machine) asks for it; once it has it, it tells
    // every neighbour not known to have it (n − 2 at most): the design's figure for that case, counted, not a looser bound.
    const asked = after.filter((s, i) => s.requested > before[i]!.requested).length;
    // Each node has REPAIR_WATCHERS (2) watchers and tells REPAIR_RANDOM (6) more at random; every neighbour would be up to n × (n − 2).
    expect(entries).toBeGreaterThan(0);
    expect(entries).toBeLessThanOrEqual(n * (REPAIR_WATCHERS + REPAIR_RANDOM) + asked * (n - 2));
    expect(heardOf(id)).toHaveLength(n);
  });

  it('an IHAVE from a neighbour makes the node ask it for the id; a neighbour that never answers is replaced by the next announcer', async () => {
    const [a, b] = await mesh(tls, 2);
    const liar = await raw(tls, a!);
    const m = createNetworkMessage(liar.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic: 'news', payload: Buffer.from('1') });
    // The liar announces an id a does not have, and never answers a's request.
    liar.write(repairFrame(ControlType.BroadcastIHave, encodeIds([Buffer.from(m.id, 'hex')])));
    await waitFor(() => wants(liar).includes(m.id), 2000, 'a to ask the liar');
    // The genuine message reaches b alone (through another connection); b announces it to a, which asks b next.
    const courier = await raw(tls, b!);
    courier.sendBroadcast({ ...m, arc: pointArc(b!.id) });
    await waitFor(() => heardOf(m.id).length === 2, 3000, 'a to get it from b after the liar never answered');
    await new Promise((r) => setTimeout(r, 300));
    expect(heardOf(m.id)).toEqual([a!.id, b!.id].sort());
    expect(wants(liar).filter((id) => id === m.id)).toHaveLength(1);
    expect(a!.networkBroadcastStats().repair.requested).toBe(2);
  });

  it('answers a greedy IWANT with at most 256 messages an interval, and closes on a malformed IHAVE while honest peers keep being served', async () => {
    const [a, b] = await mesh(tls, 2, { broadcastRepairIntervalMs: 60_000, broadcastOriginBurst: 400, broadcastOriginRate: 400 });
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(a!.broadcast('news', i, { scope: 'network' }).id!);
    const greedy = await raw(tls, a!);
    greedy.write(repairFrame(ControlType.BroadcastIWant, encodeIds(ids.map((id) => Buffer.from(id, 'hex')))));
    await waitFor(() => greedy.broadcasts().length >= 256, 3000, 'the answers');
    await new Promise((r) => setTimeout(r, 300));
    expect(greedy.broadcasts()).toHaveLength(256);
    // Each answer is the origin's signed message, addressed to the asker alone.
    for (const copy of greedy.broadcasts()) expect(copy.arc).toEqual(pointArc(greedy.identity.peerId));

    greedy.write(repairFrame(ControlType.BroadcastIHave, Buffer.from([0, 5, 1, 2, 3])));
    await greedy.whenClosed();
    expect(greedy.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(await echo(b!, a!.id, 'still served')).toBe('still served');
  });
});

// The id helpers are part of the wire format: keep them round-tripping.
describe('IHAVE / IWANT bodies', () => {
  it('round-trip', () => {
    const ids = [loadIdentity().peerId.slice(0, 32), 'ab'.repeat(16)].map((h) => Buffer.from(h, 'hex'));
    expect(parseIds(encodeIds(ids), 'x').map((b) => b.toString('hex'))).toEqual(ids.map((b) => b.toString('hex')));
  });
});

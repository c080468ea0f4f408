import { describe, expect, it } from 'vitest';
import { createNetworkMessage, type NetworkMessage } from '../../src/broadcast/codec.js';
import { REPAIR_WATCHERS, isWatcherOf } from '../../src/broadcast/repair-watchers.js';
import { loadIdentity } from '../../src/common/identity.js';
import { type Peer } from '../../src/node/peer.js';
import { inArc, pointArc, type Arc } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { broadcastMeshes, makeDropper } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 22, item 2, against repair watchers: a node hears of a network broadcast's id from its watchers, so hostile
 * neighbours that are both of V's watchers, while V's relay dropped V's copy, would keep the broadcast from V.
 * Real nodes over TLS on 127.0.0.1, peer exchange on (views need it). V's watchers for the epochs of the test are
 * real nodes made droppers (deliver, never forward, announce or answer). The origin is a hand-driven peer that
 * hands every honest node but V an arc holding that node alone and not a point arc (what a tree gives a leaf whose
 * relay for V dropped V's copy: they hold it from the tree, V has nothing). V must still get each broadcast from its
 * honest neighbours' repair (on main: broadcastRepairFanout random announcers; with watchers: REPAIR_RANDOM beside them).
 * Run with P2P_TEST_STATS=1 to print what it measured.
 */

const { node, heardOf } = broadcastMeshes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const EPOCH_MS = 10_000; // repair.ts DESIGNATION_EPOCH_US

describe('hostile watchers and a dropped relay copy (TLS, peer exchange on)', () => {
  const INTERVAL = 250;
  const NODES = 16;
  const BROADCASTS = 3;

  it(`V, whose watchers drop everything and whose tree copy was dropped, gets each of ${BROADCASTS} honest broadcasts within a few repair intervals`, async () => {
    // A full mesh that stays one: node i configured with every earlier one (configured peers are never let go).
    const nodes: Peer[] = [];
    for (let i = 0; i < NODES; i++) {
      const peers = nodes.map((n) => `${n.id}@${n.address()}`);
      nodes.push(await node(true, { broadcastRepairIntervalMs: INTERVAL, peerExchange: true, pexIntervalMs: 200, maxOutbound: 32, peers }));
    }
    await waitFor(() => nodes.every((p) => p.peers().length === NODES - 1), 15_000, `the mesh (degrees ${nodes.map((p) => p.peers().length).join(' ')})`).catch((err: Error) => {
      throw new Error(`${err.message}: degrees ${nodes.map((p) => p.peers().length).join(' ')}`);
    });
    const v = nodes[0]!;
    const delivered = new Set<string>();
    v.setHandler({
      onEvent: (_from, _topic, _data, meta) => void (meta && delivered.add(meta.id)),
      onRequest: (_p, _t, data, reply) => (reply.next(data), reply.complete()),
    });
    // Every neighbour's view of V: V's connections are the whole mesh. Wait for peer exchange to have said so.
    await sleep(1500);
    const ids = nodes.map((n) => n.id);
    const reaches = (peer: string, arc: Arc) => peer === v.id && ids.some((id) => id !== v.id && inArc(id, arc));
    // V's watchers for this epoch and the next two (the test takes a few seconds and may straddle a turn).
    const epoch = Math.floor(Date.now() / EPOCH_MS);
    const watchers = nodes.slice(1).filter((n) => [0, 1, 2].some((e) => isWatcherOf({ self: n.id, reaches }, v.id, epoch + e, REPAIR_WATCHERS)));
    for (const w of watchers) makeDropper(w);
    const honest = nodes.slice(1).filter((n) => !watchers.includes(n));

    // The origin: one key, a link to each honest node (not to V, not to the droppers).
    const identity = loadIdentity();
    const links: RawPeer[] = [];
    try {
      for (const h of honest) {
        links.push(await RawPeer.open(h.address()!, { tls: true, identity }));
        await waitFor(() => h.peers().some((p) => p.id === identity.peerId), 3000, 'the origin to be admitted');
      }
      const sent: string[] = [];
      const missed: string[] = [];
      const latency: number[] = [];
      for (let k = 0; k < BROADCASTS; k++) {
        const m: NetworkMessage = createNetworkMessage(identity, {
          timestampUs: Date.now() * 1000,
          strategy: 'raintree',
          encoding: Encoding.Json,
          topic: 'news',
          payload: Buffer.from(JSON.stringify({ k })),
        });
        sent.push(m.id);
        const at = Date.now();
        // Each honest node: an arc holding it alone, two ids wide (a point arc would read as a repair answer).
        honest.forEach((h, i) => links[i]!.sendBroadcast({ ...m, arc: { from: h.id, to: pointArc(pointArc(h.id).to).to } }));
        const got = await waitFor(() => delivered.has(m.id), INTERVAL * 8, 'V to deliver').then(
          () => true,
          () => false,
        );
        if (got) latency.push(Date.now() - at);
        else missed.push(m.id);
      }
      report(
        `hostile watchers: ${watchers.length} droppers (V's watchers over 3 epochs), ${honest.length} honest holders; ` +
          `V missed ${missed.length} of ${BROADCASTS}; latency ${latency.join(' ')} ms`,
      );
      // The attack's preconditions held: no honest node is V's watcher, and the droppers forwarded nothing to V.
      expect(honest.every((h) => ![0, 1, 2].some((e) => isWatcherOf({ self: h.id, reaches }, v.id, epoch + e, REPAIR_WATCHERS)))).toBe(true);
      expect(watchers.length).toBeGreaterThan(0);
      // Every honest node held each broadcast (from the origin: droppers may fetch it later, as watchers of no one).
      for (const id of sent) expect(heardOf(id)).toEqual(expect.arrayContaining(honest.map((h) => h.id)));
      expect(missed).toEqual([]);
    } finally {
      links.forEach((l) => l.destroy());
    }
  }, 60_000);
});

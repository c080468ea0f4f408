import { describe, expect, it } from 'vitest';
import type { Peer } from '../../src/node/peer.js';
import { broadcastMeshes, keyInThird, makeDropper } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/**
 * Issue 24, 100 % of live subscribers with dropping relays: a node that emits events to a topic it does not subscribe
 * to connects to a few of the topic's subscribers (eventFanout, gossipsub's fanout), so that when every path from it
 * meets a dropping carrier, its repair still tells a subscriber, and the subscribers' repair the rest. Real nodes over
 * TCP, wired by hand so that O's only neighbour is the dropping carrier D:
 *
 *   O (origin, third 2) ── D (carrier, third 0, drops) ── A (subscriber, third 0)
 *                           └───────────────────────────── B (subscriber, third 1) ── A
 */
describe('events for subscribers: a publisher’s fanout past a dropping carrier, over real sockets', () => {
  const { node, heardOf } = broadcastMeshes();
  const EVENTS = 10;

  const build = async (eventFanout?: number) => {
    const options = { maxInboundPerIp: 20 };
    const O = await node(false, { ...options, privateKey: keyInThird(2), ...(eventFanout === undefined ? {} : { eventFanout }) });
    const D = await node(false, { ...options, privateKey: keyInThird(0) });
    const A = await node(false, { ...options, privateKey: keyInThird(0) });
    const B = await node(false, { ...options, privateKey: keyInThird(1) });
    for (const [a, b] of [
      [O, D],
      [D, A],
      [D, B],
      [A, B],
    ] as Array<[Peer, Peer]>) {
      await a.connect(`${b.id}@${b.address()}`);
    }
    A.setHandledPatterns({ requests: [], events: ['alerts.*'] });
    B.setHandledPatterns({ requests: [], events: ['alerts.disk'] });
    const all = [O, D, A, B];
    await waitFor(() => all.every((n) => n.handlers('alerts.disk', 'event').length === 2), 8000, 'every node to know both subscribers');
    makeDropper(D); // accepts and relays nothing, announces and answers nothing
    return { O, D, A, B, all };
  };

  const emit = (O: Peer, from: number) => {
    const ids: string[] = [];
    for (let e = from; e < from + EVENTS; e++) ids.push(O.broadcast('alerts.disk', { e }, { scope: 'subscribers' }).id!);
    return ids;
  };

  it('with the default fanout, O dials both subscribers: its first events reach them by repair, later ones directly, each once', async () => {
    const { O, D, A, B, all } = await build();
    expect(O.peers().map((p) => p.id)).toEqual([D.id]);
    const first = emit(O, 0);
    const want = [A.id, B.id].sort();
    await waitFor(() => first.every((id) => heardOf(id).length === 2), 8000, 'both subscribers to get the first events');
    await waitFor(() => [A.id, B.id].every((id) => O.peers().some((p) => p.id === id)), 3000, 'O to be connected to both subscribers');
    // Once connected, an event goes to a subscriber neighbour first: no repair is needed for these.
    const servedBefore = O.networkBroadcastStats().repair.sent + A.networkBroadcastStats().repair.sent + B.networkBroadcastStats().repair.sent;
    const later = emit(O, EVENTS);
    await waitFor(() => later.every((id) => heardOf(id).length === 2), 8000, 'both subscribers to get the later events');
    await sleep(600); // three repair intervals: a late or second copy would show
    for (const id of [...first, ...later]) expect(heardOf(id)).toEqual(want);
    expect(A.networkBroadcastStats().delivered).toBe(2 * EVENTS);
    expect(B.networkBroadcastStats().delivered).toBe(2 * EVENTS);
    for (const n of all.filter((x) => x !== A && x !== B)) expect(n.networkBroadcastStats().delivered).toBe(0);
    const servedAfter = O.networkBroadcastStats().repair.sent + A.networkBroadcastStats().repair.sent + B.networkBroadcastStats().repair.sent;
    expect(servedAfter - servedBefore).toBeLessThan(EVENTS);
  });

  it('without a fanout (eventFanout 0) the same events are lost for both: every path from O went through the dropping carrier', async () => {
    const { O, D, A, B } = await build(0);
    const ids = emit(O, 0);
    await sleep(1000); // five repair intervals
    for (const id of ids) expect(heardOf(id)).toEqual([]);
    expect(A.networkBroadcastStats().delivered + B.networkBroadcastStats().delivered).toBe(0);
    expect(O.peers().map((p) => p.id)).toEqual([D.id]);
  });
});

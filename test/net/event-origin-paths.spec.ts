import { describe, expect, it } from 'vitest';
import type { Peer } from '../../src/node/peer.js';
import { broadcastMeshes, keyInThird, makeDropper } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/**
 * Issue 24: an event for subscribers from a node that does not subscribe leaves in the thirds where its subscribers
 * part, each carried to a subscriber on its own (eventOriginPaths), so one dropping carrier in front of a sparse
 * subscriber does not lose it for every subscriber; repair among the subscribers brings it to the one cut off.
 * Real nodes over TCP, wired by hand:
 *
 *   O (origin, third 2) ── D (carrier, third 0, drops) ── A (subscriber, third 0)
 *    └──────────────────── H (carrier, third 1) ───────── B (subscriber, third 1) ── A
 */
describe('events for subscribers: an origin’s paths around a dropping carrier, over real sockets', () => {
  const { node, heardOf } = broadcastMeshes();
  const EVENTS = 10;

  const build = async (eventOriginPaths: number) => {
    const options = { maxInboundPerIp: 20 };
    // No fanout (event-fanout.spec.ts): O reaches the subscribers only through its paths.
    const O = await node(false, { ...options, privateKey: keyInThird(2), eventOriginPaths, eventFanout: 0 });
    const D = await node(false, { ...options, privateKey: keyInThird(0) });
    const A = await node(false, { ...options, privateKey: keyInThird(0) });
    const H = await node(false, { ...options, privateKey: keyInThird(1) });
    const B = await node(false, { ...options, privateKey: keyInThird(1) });
    for (const [a, b] of [
      [O, D],
      [O, H],
      [D, A],
      [H, B],
      [A, B],
    ] as Array<[Peer, Peer]>) {
      await a.connect(`${b.id}@${b.address()}`);
    }
    A.setHandledPatterns({ requests: [], events: ['alerts.*'] });
    B.setHandledPatterns({ requests: [], events: ['alerts.disk'] });
    const all = [O, D, A, H, B];
    await waitFor(() => all.every((n) => n.handlers('alerts.disk', 'event').length === 2), 8000, 'every node to know both subscribers');
    makeDropper(D); // accepts and relays nothing, announces and answers nothing
    return { O, D, A, H, B, all };
  };

  it('with the default 3 paths, both subscribers get every event once, the one behind the dropping carrier by repair from the other', async () => {
    const { O, A, B, all } = await build(3);
    const ids: string[] = [];
    for (let e = 0; e < EVENTS; e++) ids.push(O.broadcast('alerts.disk', { e }, { scope: 'subscribers' }).id!);
    const want = [A.id, B.id].sort();
    await waitFor(() => ids.every((id) => heardOf(id).length === 2), 8000, 'both subscribers to get every event');
    await sleep(600); // three repair intervals: a late or second copy would show
    for (const id of ids) expect(heardOf(id)).toEqual(want);
    // Counted: every event delivered once at each subscriber, none at the others; A's came by repair (B served them).
    expect(A.networkBroadcastStats().delivered).toBe(EVENTS);
    expect(B.networkBroadcastStats().delivered).toBe(EVENTS);
    for (const n of all.filter((x) => x !== A && x !== B)) expect(n.networkBroadcastStats().delivered).toBe(0);
    expect(B.networkBroadcastStats().repair.sent).toBeGreaterThanOrEqual(EVENTS);
  });

  it('with one path (eventOriginPaths 1) the same events are lost for both: the path went through the dropping carrier', async () => {
    const { O, A, B } = await build(1);
    const ids: string[] = [];
    for (let e = 0; e < EVENTS; e++) ids.push(O.broadcast('alerts.disk', { e }, { scope: 'subscribers' }).id!);
    await sleep(1000); // five repair intervals
    for (const id of ids) expect(heardOf(id)).toEqual([]);
    expect(A.networkBroadcastStats().delivered + B.networkBroadcastStats().delivered).toBe(0);
  });
});

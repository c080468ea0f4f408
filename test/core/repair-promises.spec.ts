import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BroadcastRepair, encodeIds, type RepairHost } from '../../src/broadcast/repair.js';

/**
 * Broken promises (broadcast-repair.ts): a neighbour that announced ids and sent
 * none of those it was asked for within an interval is reported, once per interval;
 * one that sent some of them, or whose frames its budget dropped unread, is not.
 * A recording host and a hand-driven clock.
 */
function harness(neighbours: string[], intervalMs = 500) {
  let now = 1_000;
  const broken: Array<{ peer: string; count: number }> = [];
  const host: RepairHost = {
    selfId: peer(0),
    neighbours: () => neighbours,
    has: () => false,
    sendIHave: () => undefined,
    sendIWant: () => undefined,
    sendBroadcast: () => undefined,
    brokePromises: (peer, count) => void broken.push({ peer, count }),
  };
  const repair = new BroadcastRepair(host, { intervalMs, cacheBytes: 1 << 20, fanout: 6 }, () => now);
  return { repair, broken, advance: (ms: number) => void (now += ms) };
}
const peer = (n: number) => n.toString(16).padStart(40, '0');
const fresh = (n: number) => Array.from({ length: n }, () => randomBytes(16));

describe('broken promises of repair', () => {
  it('ids announced and never sent are reported once the interval is over, with their number', () => {
    const h = harness([peer(1)]);
    h.repair.onIHave(peer(1), encodeIds(fresh(5)));
    h.advance(400);
    h.repair.tick();
    expect(h.broken).toEqual([]); // not an interval yet
    h.advance(100);
    h.repair.tick();
    expect(h.broken).toEqual([{ peer: peer(1), count: 5 }]);
    // Nobody else announced them: they are given up, not reported again.
    h.advance(500);
    h.repair.tick();
    expect(h.broken).toHaveLength(1);
  });

  it('a neighbour that sent one of the ids it was asked for (at its answer bound, say) is not reported', () => {
    const h = harness([peer(1)]);
    const ids = fresh(3);
    h.repair.onIHave(peer(1), encodeIds(ids));
    h.repair.arrived(peer(1), ids[0]!.toString('hex'));
    h.advance(500);
    h.repair.tick();
    expect(h.broken).toEqual([]);
  });

  it('a frame of that neighbour dropped unread by its budget excuses it; a frame naming another id does not', () => {
    const h = harness([peer(1), peer(2)]);
    h.repair.onIHave(peer(1), encodeIds(fresh(2)));
    h.repair.onIHave(peer(2), encodeIds(fresh(2)));
    h.repair.arrived(peer(1)); // over its budget: it may have been the answer
    h.repair.arrived(peer(2), randomBytes(16).toString('hex')); // a relay of something else
    h.advance(500);
    h.repair.tick();
    expect(h.broken).toEqual([{ peer: peer(2), count: 2 }]);
  });
});

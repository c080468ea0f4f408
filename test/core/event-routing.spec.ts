import { describe, expect, it } from 'vitest';
import { coverNeeds, facingMember, planTopology } from '../../src/discovery/ring-topology.js';
import { routeArcs } from '../../src/broadcast/router.js';
import { RING_ROOT, branchOf, firstMember, inArc, sortedHas, thirdsOf } from '../../src/ring/raintree.js';
import { randomIds as makeIds, rng } from '../../src/sim/ids.js';

const randomIds = (n: number, seed: number) => makeIds(n, rng(seed));

/** Issue 24: events for subscribers meet fewer carriers (docs/events.md, How it travels). */
describe('events for subscribers: covers that share a pattern, carriers that hand the whole arc on', () => {
  const ids = randomIds(2000, 24);
  const self = ids[100]!;
  const pick = (n: number, seed: number) => {
    const random = rng(seed);
    const out = new Set<string>();
    while (out.size < n) out.add(ids[Math.floor(random() * ids.length)]!);
    out.delete(self);
    return [...out].sort();
  };

  it('firstMember finds the first member of an arc by binary search, leaving self out', () => {
    const members = pick(30, 1);
    for (const arc of [RING_ROOT, ...thirdsOf(RING_ROOT), ...thirdsOf(thirdsOf(RING_ROOT)[1]!)]) {
      const inside = members.filter((x) => inArc(x, arc));
      const start = inside.findIndex((x) => x >= arc.from);
      const expected = arc.from === arc.to ? members[0] : inside.length === 0 ? undefined : inside[Math.max(0, start)];
      expect(firstMember(members, arc, self)).toBe(expected);
    }
    expect(firstMember([self], RING_ROOT, self)).toBeUndefined();
  });

  it('planTopology dials, in each third, a node sharing one of its patterns when the third holds one it knows', () => {
    const sharing = [...pick(60, 2), self].sort();
    const base = { self, known: ids, inbound: [], outbound: [], maxDegree: 100, keep: () => false, skip: () => false };
    const plain = planTopology(base);
    const biased = planTopology({ ...base, topics: [sharing] });
    expect(biased.needs).toBe(plain.needs);
    expect(biased.dial.length).toBe(plain.dial.length);
    for (const need of coverNeeds(self, ids)) {
      const held = sharing.some((x) => x !== self && inArc(x, need.arc));
      const chosen = biased.dial.find((x) => inArc(x, need.arc));
      // Still one cover per third (any member covers it); a sharing one wherever the third holds one.
      expect(chosen).toBeDefined();
      expect(sortedHas(sharing, chosen!)).toBe(held);
    }
    // Only ids it knows of otherwise: a record alone names no address.
    const stranger = 'f'.repeat(40);
    const withStranger = planTopology({ ...base, known: ids, topics: [[stranger]] });
    expect(withStranger.dial).not.toContain(stranger);
    // Nothing shared: the facing member, as before.
    expect(planTopology({ ...base, topics: [] }).dial).toEqual(plain.dial);
  });

  it('the pattern floor (eventPatternLinks): a small topic whose other members share a third gets them all, drawn beside the covers, kept, within the places left', () => {
    // Three other members, two of them in the same sibling third of self: the covers link one of those two.
    const top = coverNeeds(self, ids)[0]!;
    const inTop = ids.filter((x) => inArc(x, top.arc));
    const other = ids.find((x) => x !== self && !inArc(x, top.arc) && coverNeeds(self, ids).some((n) => n !== top && inArc(x, n.arc)))!;
    const list = [self, inTop[3]!, inTop[500]!, other].sort();
    const base = { self, known: ids, inbound: [], outbound: [], maxDegree: 100, keep: () => false, skip: () => false, topics: [list] };
    const members = (dial: string[]) => list.filter((x) => x !== self && dial.includes(x));
    const covers = planTopology(base);
    expect(members(covers.dial)).toHaveLength(2);
    const floored = planTopology({ ...base, topicFloor: 3, draw: rng(7) });
    expect(members(floored.dial)).toHaveLength(3);
    // The floor adds dials; it takes no third's cover away.
    expect(floored.dial.slice(0, covers.dial.length)).toEqual(covers.dial);
    // A member it is already connected to (dialed, not a cover) counts, and is not let go as redundant; without the floor it is.
    const extra = members(floored.dial).find((x) => !covers.dial.includes(x))!;
    const connected = { ...base, outbound: [...covers.dial, extra] };
    expect(planTopology(connected).redundant).toContain(extra);
    const kept = planTopology({ ...connected, topicFloor: 3, draw: rng(7) });
    expect(kept.redundant).not.toContain(extra);
    expect(kept.dial).toHaveLength(0);
    // Only ids known from others (trusted), and never past maxPeers: a node full of inbound neighbours dials none.
    expect(members(planTopology({ ...base, topicFloor: 3, draw: rng(7), trusted: (x) => x !== extra }).dial)).not.toContain(extra);
    const filler = ids.filter((x) => x !== self && !list.includes(x)).slice(0, 2 * covers.needs);
    const full = planTopology({ ...base, topicFloor: 3, draw: rng(7), inbound: filler, maxDegree: filler.length });
    expect(members(full.dial)).toEqual([]);
    // One place left: one floor dial, not two.
    const oneLeft = planTopology({ ...base, topicFloor: 3, draw: rng(7), inbound: filler.slice(1), maxDegree: filler.length });
    expect(oneLeft.dial.filter((x) => !covers.dial.includes(x)).length).toBeLessThanOrEqual(1);
    // A topic it shares with one node: one link, however high the floor.
    expect(members(planTopology({ ...base, topics: [[self, other].sort()], topicFloor: 6, draw: rng(7) }).dial)).toEqual([other]);
    // At most topicFloor connections beside the covers, all patterns together (as eventFanout bounds the fanout): two
    // topics of 10 members in one third each get one cover between them, and would want 2 + 3 more; 3 are dialed.
    const one = [self, ...inTop.slice(0, 10)].sort();
    const two = [self, ...inTop.slice(100, 110)].sort();
    const both = { ...base, topics: [one, two] };
    const coverDials = planTopology(both).dial;
    const both3 = planTopology({ ...both, topicFloor: 3, draw: rng(7) }).dial;
    expect(both3.slice(0, coverDials.length)).toEqual(coverDials);
    expect(both3.length - coverDials.length).toBe(3);
    // Outbound ones it holds count too: with those 3 connected, none more is dialed, and a fourth sharing a pattern is let go.
    const extras = both3.slice(coverDials.length);
    const fourth = two.find((x) => x !== self && !both3.includes(x))!;
    const holding = planTopology({ ...both, outbound: [...both3, fourth], topicFloor: 3, draw: rng(7) });
    expect(holding.dial).toHaveLength(0);
    expect(holding.redundant).toEqual([fourth]);
    for (const x of extras) expect(holding.redundant).not.toContain(x);
  });

  it('at a tight degree bound (maxPeers under twice its needs) the facing member is dialed whatever its patterns', () => {
    const sharing = [...pick(60, 3), self].sort();
    const base = { self, known: ids, inbound: [], outbound: [], maxDegree: 8, keep: () => false, skip: () => false };
    expect(planTopology({ ...base, topics: [sharing] }).dial).toEqual(planTopology(base).dial);
  });

  it('a carrier hands the whole arc to a subscriber neighbour inside it, else a level nearer the first subscriber; never to a non-neighbour', () => {
    const subscribers = pick(40, 4);
    const carrier = ids.find((x) => !sortedHas(subscribers, x) && x !== self)!;
    const prefer = (x: string) => sortedHas(subscribers, x);
    const arc = RING_ROOT;
    // A subscriber among its neighbours: the whole arc, to it.
    const neighbours = [ids[5]!, subscribers[3]!, ids[700]!].filter((x) => x !== carrier);
    const toSubscriber = routeArcs(carrier, arc, neighbours, () => subscribers, () => false, prefer);
    expect(toSubscriber).toHaveLength(1);
    expect(toSubscriber[0]!.arc).toEqual(arc);
    expect(toSubscriber[0]!.inside[0]).toBe(subscribers[3]);
    // None: one neighbour, in the third where the first subscriber leaves the carrier's own, nearest it first.
    const branch = branchOf(carrier, firstMember(subscribers, arc, carrier)!)!;
    const plainNeighbours = ids.filter((x) => !prefer(x) && x !== carrier).filter((x, i) => i % 97 === 0 || (inArc(x, branch.arc) && i % 5 === 0));
    expect(plainNeighbours.some((x) => inArc(x, branch.arc))).toBe(true);
    const walk = routeArcs(carrier, arc, plainNeighbours, () => subscribers, () => false, prefer);
    expect(walk).toHaveLength(1);
    expect(walk[0]!.arc).toEqual(arc);
    for (const x of walk[0]!.inside) {
      expect(plainNeighbours).toContain(x);
      expect(inArc(x, branch.arc)).toBe(true);
    }
    // A subscriber routes by thirds, as before: one arc per third that holds a subscriber.
    const asSubscriber = routeArcs(subscribers[0]!, arc, plainNeighbours, () => subscribers, () => false, prefer);
    expect(asSubscriber.length).toBeGreaterThan(1);
  });

  it('an origin that does not subscribe hands on the thirds where the subscribers part (independent paths); one subscriber: two first hops', () => {
    const subscribers = pick(40, 5);
    const origin = ids.find((x) => !sortedHas(subscribers, x) && x !== self)!;
    const prefer = (x: string) => sortedHas(subscribers, x);
    const neighbours = ids.filter((x) => x !== origin).filter((_, i) => i % 37 === 0);
    const routes = routeArcs(origin, RING_ROOT, neighbours, () => subscribers, () => false, prefer, 3);
    expect(routes.map((r) => r.arc)).toEqual(thirdsOf(RING_ROOT));
    for (const route of routes) for (const x of route.inside) (expect(neighbours).toContain(x), expect(inArc(x, route.arc)).toBe(true));
    const one = [subscribers[7]!];
    const single = routeArcs(origin, RING_ROOT, neighbours, () => one, () => false, (x) => x === one[0], 3);
    expect(single).toHaveLength(1);
    expect(single[0]!.copies).toBe(2);
    // A relay (paths 1) walks one path.
    expect(routeArcs(origin, RING_ROOT, neighbours, () => one, () => false, (x) => x === one[0])[0]!.copies).toBeUndefined();
  });

  it('facingMember looks at no more than `tries` members (a pattern anyone may hold costs a bounded walk)', () => {
    const need = coverNeeds(self, ids)[0]!;
    let looked = 0;
    expect(facingMember(self, need, ids, () => (looked++, true), 32)).toBeUndefined();
    expect(looked).toBe(32);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coverNeeds, facingMember, planTopology, type CoverNeed } from '../../src/discovery/ring-topology.js';
import { RING_ROOT, arcLength, inArc, membersOf, occupiedBy, planForward, thirdsOf } from '../../src/ring/raintree.js';
import { randomIds as makeIds, rng } from '../../src/sim/ids.js';

const id = (n: bigint | number) => BigInt(n).toString(16).padStart(40, '0');
const randomIds = (n: number, seed: number) => makeIds(n, rng(seed));

describe('RainTree planner (thirds of the id space)', () => {
  it('splits an arc into three contiguous thirds that partition it, the whole ring included', () => {
    for (const arc of [RING_ROOT, { from: id(10), to: id(100) }, { from: 'f'.repeat(39) + '0', to: id(16) }]) {
      const thirds = thirdsOf(arc);
      expect(thirds).toHaveLength(3);
      expect(thirds[0]!.from).toBe(arc.from);
      expect(thirds[2]!.to).toBe(arc.to);
      expect(thirds[0]!.to).toBe(thirds[1]!.from);
      expect(thirds[1]!.to).toBe(thirds[2]!.from);
      expect(thirds.reduce((a, t) => a + arcLength(t), 0n)).toBe(arcLength(arc));
    }
    // Arcs shorter than three ids leave empty thirds out instead of turning them into whole rings.
    expect(thirdsOf({ from: id(5), to: id(6) })).toEqual([{ from: id(5), to: id(6) }]);
  });

  it('hands every other known node to exactly one arc, none holding the node itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer(), (n, seed) => {
        const ids = randomIds(n, seed);
        const self = ids[Math.abs(seed) % n]!;
        const arcs = planForward(self, RING_ROOT, occupiedBy(ids, self));
        const covered = arcs.flatMap((arc) => membersOf(ids, arc));
        expect(arcs.every((arc) => !inArc(self, arc))).toBe(true);
        expect(covered.sort()).toEqual(ids.filter((x) => x !== self));
        // Two arcs a level, about log3 N levels.
        expect(arcs.length).toBeLessThanOrEqual(2 * (Math.ceil(Math.log(Math.max(n, 3)) / Math.log(3)) + 12));
      }),
      { numRuns: 200 },
    );
  });

  it('returns nothing for an arc with only the receiver in it', () => {
    const ids = [id(1), id(2)];
    expect(planForward(id(1), { from: id(1), to: id(2) }, occupiedBy(ids, id(1)))).toEqual([]);
  });
});

describe('ring topology (bounded degree)', () => {
  it('dials one member of each third that holds a node, and no more than maxDegree', () => {
    const ids = randomIds(200, 3);
    const self = ids[17]!;
    const plan = planTopology({ self, known: ids, inbound: [], outbound: [], maxDegree: 100, keep: () => false, skip: () => false });
    expect(plan.dial.length).toBe(plan.needs);
    expect(new Set(plan.dial).size).toBe(plan.dial.length);
    const capped = planTopology({ self, known: ids, inbound: [], outbound: [], maxDegree: 4, keep: () => false, skip: () => false });
    expect(capped.dial.length).toBe(4);
    // The largest thirds come first.
    expect(capped.dial).toEqual(plan.dial.slice(0, 4));
  });

  it('faces the same member as the copying version it replaced (by index, for large views)', () => {
    // The version before facingMember worked by index: it copied the members of both thirds out (O(N) per need).
    const reference = (self: string, need: CoverNeed, known: readonly string[], skip: (id: string) => boolean) => {
      const members = membersOf(known, need.arc);
      if (members.length === 0) return undefined;
      const own = membersOf(known, need.own);
      const start = Math.floor((Math.max(0, own.indexOf(self)) * members.length) / Math.max(1, own.length));
      for (let i = 0; i < members.length; i++) {
        const id = members[(start + i) % members.length]!;
        if (id !== self && !skip(id)) return id;
      }
      return undefined;
    };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer(), fc.boolean(), (n, seed, selfKnown) => {
        const ids = randomIds(n, seed);
        const self = ids[Math.abs(seed) % n]!;
        const known = selfKnown ? ids : ids.filter((x) => x !== self);
        const random = rng(seed ^ 0x5eed);
        const skipped = new Set(ids.filter(() => random() < 0.3));
        const skip = (x: string) => skipped.has(x);
        for (const need of coverNeeds(self, ids)) {
          expect(facingMember(self, need, known, skip)).toBe(reference(self, need, known, skip));
          expect(facingMember(self, need, known, () => false)).toBe(reference(self, need, known, () => false));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('counts an inbound connection as cover only when it is the member this node would dial, or no other can be dialed (issue 22, eclipse)', () => {
    const ids = randomIds(50, 9);
    const self = ids[0]!;
    const base = { self, known: ids, maxDegree: 100, keep: () => false, skip: () => false };
    const first = planTopology({ ...base, inbound: [], outbound: [] });
    const target = first.dial[0]!;
    const sameThird = ids.find((x) => x !== target && x !== self && planTopology({ ...base, inbound: [x], outbound: [] }).dial[0] !== target);
    expect(sameThird).toBeDefined();
    // The facing member dialed in: it covers its third, and a second outbound connection there is redundant.
    expect(planTopology({ ...base, inbound: [target], outbound: [sameThird!] }).redundant).toEqual([sameThird]);
    // Another member dialed in: the outbound one of this node's choosing stays; alone, it is dialed beside the inbound one.
    expect(planTopology({ ...base, inbound: [sameThird!], outbound: [target] }).redundant).toEqual([]);
    const beside = planTopology({ ...base, inbound: [sameThird!], outbound: [] });
    expect(beside.dial).toContain(target);
    expect(beside.unchosen).toBeGreaterThan(0);
    // An inbound neighbour it could not have dialed (no address) is never its choice; with no other member to dial it still covers.
    expect(planTopology({ ...base, inbound: [target], outbound: [] }).chosen).toEqual([target]);
    expect(planTopology({ ...base, inbound: [target], outbound: [], dialable: () => false }).chosen).toEqual([]);
    expect(planTopology({ ...base, inbound: [sameThird!], outbound: [], skip: (x) => x !== sameThird }).dial).toEqual([]);
  });
});

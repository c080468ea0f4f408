import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeNetwork, membersOf, planForward, rng, simulateGossip, simulateRainTree, wholeRing } from '../../src/core/index.js';

const id = (n: number) => n.toString(16).padStart(40, '0');

describe('RainTree planner', () => {
  it('splits an arc into three contiguous thirds that cover every other member once', () => {
    const view = Array.from({ length: 10 }, (_, i) => id(i * 10));
    const branches = planForward(view, view[0]!, wholeRing(view[0]!));
    expect(branches.map((b) => b.members.length)).toEqual([3, 3, 3]);
    expect(branches.flatMap((b) => b.members)).toEqual(view.slice(1));
    // Each branch's arc holds exactly its members, in ring order.
    for (const b of branches) expect(membersOf(view, b.arc)).toEqual(b.members);
    expect(branches[2]!.arc.to).toBe(view[0]); // the last third runs up to the originator
  });

  it('wraps around the ring from an originator in the middle', () => {
    const view = Array.from({ length: 5 }, (_, i) => id(i));
    const branches = planForward(view, view[3]!, wholeRing(view[3]!));
    expect(branches.flatMap((b) => b.members)).toEqual([view[4], view[0], view[1], view[2]]);
    expect(branches.map((b) => b.members.length)).toEqual([2, 1, 1]);
  });

  it('returns nothing for an arc with only the receiver in it', () => {
    const view = [id(1), id(2)];
    expect(planForward(view, id(1), { from: id(1), to: id(2) })).toEqual([]);
  });
});

describe('RainTree in simulation (property tests)', () => {
  it('reaches every node once with exactly N − 1 sends and ≤ ⌈log3 N⌉ + 1 hops, N from 1 to 2000', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer(), (n, seed) => {
        const random = rng(seed);
        const net = makeNetwork(n, 0, 4, random);
        const origin = net.ids[Math.floor(random() * n)]!;
        const r = simulateRainTree(net, origin);
        expect(r.delivered).toBe(n);
        expect(r.duplicates).toBe(0);
        expect(r.messages).toBe(n - 1);
        expect(r.maxSentByOne).toBeLessThanOrEqual(3);
        expect(r.maxHops).toBeLessThanOrEqual(Math.ceil(Math.log(n) / Math.log(3) - 1e-9) + 1);
      }),
      { numRuns: 150 },
    );
  });

  it('with 10 % of nodes dead, reaches 100 % of the live ones, each once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer(), (n, seed) => {
        const random = rng(seed);
        const net = makeNetwork(n, 0.1, 4, random);
        const live = [...net.alive];
        const origin = live[Math.floor(random() * live.length)]!;
        const r = simulateRainTree(net, origin);
        expect(r.delivered).toBe(r.live);
        expect(r.duplicates).toBe(0);
        expect(r.messages).toBe(r.live - 1);
      }),
      { numRuns: 150 },
    );
  });

  it('gossip also covers a connected network, at many more messages', () => {
    const random = rng(42);
    const net = makeNetwork(500, 0, 8, random);
    const g = simulateGossip(net, net.ids[0]!);
    const t = simulateRainTree(net, net.ids[0]!);
    expect(g.delivered).toBe(500);
    expect(g.messages).toBeGreaterThan(4 * t.messages);
  });
});

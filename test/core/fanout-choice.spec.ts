import { describe, expect, it } from 'vitest';
import { fanoutTargets } from '../../src/broadcast/fanout-choice.js';
import { rng } from '../../src/sim/ids.js';

const id = (n: number) => n.toString(16).padStart(40, '0');

describe('fanoutTargets: the subscribers a publisher dials', () => {
  const subscribers = Array.from({ length: 100 }, (_, i) => id(i * 7));

  it('dials enough to have `want` subscribing neighbours, never one it is connected to, each once', () => {
    const neighbours = [subscribers[3]!, id(1)]; // one subscribing neighbour, one not
    const out = fanoutTargets(subscribers, neighbours, 3, rng(1));
    expect(out).toHaveLength(2);
    expect(new Set(out).size).toBe(2);
    for (const x of out) {
      expect(subscribers).toContain(x);
      expect(neighbours).not.toContain(x);
    }
  });

  it('dials nothing when `want` neighbours subscribe already, or when want is 0, or nobody subscribes', () => {
    expect(fanoutTargets(subscribers, subscribers.slice(10, 13), 3, rng(1))).toEqual([]);
    expect(fanoutTargets(subscribers, [], 0, rng(1))).toEqual([]);
    expect(fanoutTargets([], [], 3, rng(1))).toEqual([]);
  });

  it('dials every subscriber when there are fewer than `want`, and draws at random among many (not the nearest ids)', () => {
    expect(fanoutTargets(subscribers.slice(0, 2), [], 3, rng(1)).sort()).toEqual(subscribers.slice(0, 2));
    const counts = new Map<string, number>();
    const random = rng(7);
    for (let i = 0; i < 2000; i++) for (const x of fanoutTargets(subscribers, [], 3, random)) counts.set(x, (counts.get(x) ?? 0) + 1);
    // 6 000 draws over 100 subscribers: every one drawn, none more than twice its share.
    expect(counts.size).toBe(100);
    expect(Math.max(...counts.values())).toBeLessThan(120);
  });
});

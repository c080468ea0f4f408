import { describe, expect, it } from 'vitest';
import { PartialFrameBudget, type PartialFrameHolder } from '../../src/connection/partial-frames.js';

let clock = 0;
const now = () => clock;

/** A connection that, once evicted, leaves the budget as a socket does (release after the cut). */
function holder(name: string, progressAt: number, log: string[], budget: () => PartialFrameBudget): PartialFrameHolder & { message?: string } {
  const h: PartialFrameHolder & { message?: string } = {
    progressAt,
    evict(message) {
      h.message = message;
      log.push(name);
      budget().release(h); // a no-op by then: the budget forgot it first
    },
  };
  return h;
}

describe('PartialFrameBudget', () => {
  it('adds, replaces and releases what each holder reports', () => {
    const budget = new PartialFrameBudget(1000, 100, now);
    const log: string[] = [];
    const a = holder('a', 0, log, () => budget);
    const b = holder('b', 0, log, () => budget);
    budget.report(a, 300);
    budget.report(b, 200);
    budget.report(a, 600); // growth replaces, it does not add
    expect(budget.total).toBe(800);
    expect(budget.holders).toBe(2);
    budget.release(a);
    budget.release(a);
    expect(budget.total).toBe(200);
    budget.report(b, 0);
    expect(budget.total).toBe(0);
    expect(budget.holders).toBe(0);
    expect(log).toEqual([]);
  });

  it('past the limit, closes the largest stalled frame first, even when a larger one is still arriving', () => {
    clock = 10_000;
    const budget = new PartialFrameBudget(1000, 1000, now);
    const log: string[] = [];
    const stalledSmall = holder('stalledSmall', 1000, log, () => budget);
    const stalledLarge = holder('stalledLarge', 2000, log, () => budget);
    const arriving = holder('arriving', 9_900, log, () => budget);
    budget.report(stalledSmall, 200);
    budget.report(stalledLarge, 300);
    budget.report(arriving, 450);
    expect(log).toEqual([]);
    budget.report(arriving, 700); // 1200 > 1000: one stalled frame must go
    expect(log).toEqual(['stalledLarge']);
    expect(budget.total).toBe(900);
    expect(stalledLarge.message).toMatch(/over maxPartialFrameBytes \(1000\): this connection holds the largest stalled one \(300 bytes\)/);
    budget.report(arriving, 900); // 1100: the other stalled one, though smaller than the arriving frame
    expect(log).toEqual(['stalledLarge', 'stalledSmall']);
    expect(budget.total).toBe(900);
    expect(budget.holders).toBe(1);
  });

  it('with nothing stalled, closes the largest, which may be the one reporting', () => {
    clock = 5000;
    const budget = new PartialFrameBudget(1000, 1000, now);
    const log: string[] = [];
    const a = holder('a', 5000, log, () => budget);
    const b = holder('b', 5000, log, () => budget);
    budget.report(a, 400);
    budget.report(b, 500);
    budget.report(b, 800);
    expect(log).toEqual(['b']);
    expect(b.message).toMatch(/largest one \(800 bytes\)/);
    expect(budget.total).toBe(400);
  });

  it('closes as many as it takes to fit', () => {
    clock = 0;
    const budget = new PartialFrameBudget(100, 1000, now);
    const log: string[] = [];
    const small = [1, 2, 3].map((i) => holder(`s${i}`, 0, log, () => budget));
    small.forEach((h, i) => budget.report(h, 30 + i));
    const big = holder('big', -5000, log, () => budget); // stalled: goes first
    budget.report(big, 100);
    expect(log).toEqual(['big']);
    expect(budget.total).toBe(93);
    budget.report(small[0]!, 90); // 153, none stalled: the largest goes, the reporter itself
    expect(log).toEqual(['big', 's1']);
    expect(budget.total).toBe(63);
  });
});

import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../src/broadcast/replay-window.js';

/**
 * Issue 22: what a node keeps per broadcast, per origin and per peer is bounded by its
 * configuration, however long the traffic lasts. Each case runs far past the bound on an
 * injected clock and checks what is still held, forgotten entries awaiting lazy removal included.
 */

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const sig = Buffer.alloc(64);

describe('ReplayWindow holds at most the window\'s worth of entries', () => {
  it('an origin that broadcasts forever, the cache never full: its queue holds what is live, not every id it ever sent', () => {
    const c = clock();
    const windowMs = 10_000;
    const w = new ReplayWindow(20_000, windowMs, 1000, c.now);
    let n = 0;
    // 100 a second for 30 windows: 30 000 ids, 1 000 of them inside the window at any time.
    for (let ms = 0; ms < 30 * windowMs; ms += 10) {
      c.advance(10);
      expect(w.add(`id${n++}`, 'origin', c.now(), sig)).toBeDefined();
    }
    const held = w.footprint;
    expect(held.live).toBeLessThanOrEqual(1001);
    expect(held.queued).toBe(held.live); // expired ids leave the origin's queue as they expire
    expect(held.heap).toBe(held.live);
    expect(held.origins).toBe(1);
  });

  // 3 origins, 100 ids a second in all, for 10 minutes, in a window of 60 s. A cache of 1 500 holds
  // 15 s of them: the oldest is past MIN_WINDOW_MS and goes (rule 1). One of 500 holds 5 s: each
  // newcomer pushes out its own origin's oldest (rule 2).
  it.each([
    ['by age (rule 1)', 1_500],
    ['by origin (rule 2)', 500],
  ])('a full cache that makes room %s: every queue stays within twice its live entries', (_, max) => {
    const c = clock();
    const w = new ReplayWindow(max, 60_000, 1000, c.now);
    let n = 0;
    for (let ms = 0; ms < 600_000; ms += 10) {
      c.advance(10);
      expect(w.add(`id${n}`, `origin${n++ % 3}`, c.now(), sig)).toBeDefined();
    }
    const held = w.footprint;
    expect(held.live).toBe(max);
    expect(held.queued).toBeLessThanOrEqual(2 * held.live + 3 * 64);
    expect(held.heap).toBeLessThanOrEqual(2 * max);
  });

  it('ids that arrive out of timestamp order (different paths): forgotten ones in the middle of a queue are let go too', () => {
    const c = clock();
    const windowMs = 5_000;
    const w = new ReplayWindow(100_000, windowMs, 5_000, c.now);
    let n = 0;
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let ms = 0; ms < 60 * windowMs; ms += 5) {
      c.advance(5);
      // Dated up to 4.9 s early or late: arrival order and expiry order differ widely.
      const t = c.now() + Math.round((random() - 0.5) * 9_800);
      if (w.check(t, 'origin') === 'ok') w.add(`id${n++}`, 'origin', t, sig);
    }
    const held = w.footprint;
    expect(n).toBeGreaterThan(50_000);
    expect(held.live).toBeLessThanOrEqual(2 * 2_000); // 200 a second for at most window + skew
    expect(held.queued).toBeLessThanOrEqual(2 * held.live + 64);
  });

  it('origins that come and go are forgotten with their ids, raised floors included', () => {
    const c = clock();
    const w = new ReplayWindow(100, 10_000, 0, c.now);
    for (let i = 0; i < 10_000; i++) {
      c.advance(1);
      // Each origin sends two ids at once; the full cache of young ids makes it push out its first (its floor rises).
      w.add(`a${i}`, `origin${i}`, c.now(), sig);
      w.add(`b${i}`, `origin${i}`, c.now(), sig);
    }
    expect(w.footprint.origins).toBeLessThanOrEqual(100 + 10_000); // live ones, and raised floors still in the window
    c.advance(10_001);
    w.get('anything'); // expiry runs on use
    expect(w.footprint).toEqual({ live: 0, queued: 0, heap: 0, origins: 0 });
  });
  it('an entry holds no view into the buffer its signature came in (a frame, or the 8 KiB pool slab of a small copy)', () => {
    const c = clock();
    const w = new ReplayWindow(10, 1000, 0, c.now);
    const slab = Buffer.alloc(8192, 7);
    const signature = slab.subarray(100, 164);
    c.advance(1);
    const entry = w.add('a', 'o', c.now(), signature)!;
    for (const value of Object.values(entry)) expect(ArrayBuffer.isView(value)).toBe(false);
    expect(Buffer.from(entry.signature, 'latin1').equals(signature)).toBe(true);
  });
});

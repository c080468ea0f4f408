import { describe, expect, it } from 'vitest';
import { HandlerChoice } from '../../src/directory/handler-choice.js';

/** A deterministic random source (LCG), so the spread figures do not depend on luck. */
function seeded(seed = 42): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe('HandlerChoice (power of two choices by cost)', () => {
  it('chooses the only candidate, and none of none', () => {
    const choice = new HandlerChoice();
    expect(choice.choose([])).toBeUndefined();
    expect(choice.choose(['a'])).toBe('a');
  });

  it('spreads 64 requests in flight over three equal handlers within 1.5x of the mean share', () => {
    const choice = new HandlerChoice({ random: seeded() });
    const ids = ['a', 'b', 'c'];
    for (const id of ids) choice.replied(id, 5);
    const counts = new Map(ids.map((id) => [id, 0]));
    // 64 in flight at any time, 3 000 requests in all: each ends after the other 63 started.
    const inFlight: string[] = [];
    for (let i = 0; i < 3000; i++) {
      if (inFlight.length === 64) {
        const done = inFlight.shift()!;
        choice.replied(done, 5);
        choice.ended(done);
      }
      const id = choice.choose(ids)!;
      choice.started(id);
      inFlight.push(id);
      counts.set(id, counts.get(id)! + 1);
    }
    const mean = 3000 / 3;
    for (const n of counts.values()) expect(n).toBeLessThanOrEqual(1.5 * mean);
    for (const n of counts.values()) expect(n).toBeGreaterThan(0.5 * mean);
    // P2C with in-flight costs keeps them much closer than the bound.
    expect(Math.max(...counts.values()) / mean).toBeLessThan(1.1);
  });

  it('prefers a faster handler, but still sends some to a slower one as its queue grows', () => {
    const choice = new HandlerChoice({ random: seeded(7) });
    choice.replied('fast', 2);
    choice.replied('slow', 20);
    const counts = { fast: 0, slow: 0 };
    const inFlight: Array<'fast' | 'slow'> = [];
    for (let i = 0; i < 2000; i++) {
      if (inFlight.length === 32) choice.ended(inFlight.shift()!);
      const id = choice.choose(['fast', 'slow']) as 'fast' | 'slow';
      choice.started(id);
      inFlight.push(id);
      counts[id]++;
    }
    expect(counts.fast).toBeGreaterThan(counts.slow * 3);
    expect(counts.slow).toBeGreaterThan(0);
  });

  it('stops choosing a handler that failed until its retry time, then probes it with one request at a time', () => {
    let now = 1_000;
    const choice = new HandlerChoice({ retryAfterMs: 1_000, now: () => now, random: seeded(3) });
    choice.started('bad');
    choice.failed('bad');
    choice.ended('bad');
    for (let i = 0; i < 200; i++) expect(choice.choose(['bad', 'good'])).toBe('good');
    now += 1_000;
    // Retry time passed: 'bad' is a candidate again; once chosen, it is probed and nothing else goes to it meanwhile.
    let probe: string | undefined;
    for (let i = 0; i < 50 && !probe; i++) if (choice.choose(['bad', 'good']) === 'bad') probe = 'bad';
    expect(probe).toBe('bad');
    choice.started('bad');
    for (let i = 0; i < 200; i++) expect(choice.choose(['bad', 'good'])).toBe('good');
    // The probe fails: blocked again, twice as long.
    choice.failed('bad');
    choice.ended('bad');
    now += 1_500;
    for (let i = 0; i < 200; i++) expect(choice.choose(['bad', 'good'])).toBe('good');
    now += 600;
    choice.started('bad');
    choice.replied('bad', 3);
    choice.ended('bad');
    expect(choice.isFailing('bad')).toBe(false);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(choice.choose(['bad', 'good'])!);
    expect(seen).toEqual(new Set(['bad', 'good']));
  });

  it('passes over a handler to avoid (silent) while another will do, and still chooses one when all fail', () => {
    const choice = new HandlerChoice({ random: seeded(5) });
    for (let i = 0; i < 100; i++) expect(choice.choose(['x', 'y'], (id) => id === 'x')).toBe('y');
    choice.failed('x');
    choice.failed('y');
    choice.failed('y');
    // Both failing: the one failing for the shorter pause (x) rather than no handler at all.
    expect(choice.choose(['x', 'y'])).toBe('x');
  });

  it('when every handler is failing, chooses the one whose pause ends first: fewer failures in a row beat an older first failure', () => {
    let now = 0;
    const choice = new HandlerChoice({ retryAfterMs: 1_000, now: () => now, random: seeded(9) });
    // 'old' failed first and has kept failing, each time its pause ended (probed): at 0, 1, 3 and 7 s; its pause is now 8 s, to 15 s.
    for (const at of [0, 1_000, 3_000, 7_000]) {
      now = at;
      choice.started('old');
      choice.failed('old');
      choice.ended('old');
    }
    // 'recent' failed once, at t = 10 s: its pause ends at t = 11 s.
    now = 10_000;
    choice.failed('recent');
    now = 10_500;
    expect(choice.choose(['old', 'recent'])).toBe('recent');
    // Equal pauses: the one with fewer failures in a row.
    const tie = new HandlerChoice({ retryAfterMs: 1_000, maxRetryMs: 1_000, now: () => 0 });
    tie.failed('twice');
    tie.started('twice'); // probed, and failed again
    tie.failed('twice');
    tie.ended('twice');
    tie.failed('once');
    expect(tie.choose(['twice', 'once'])).toBe('once');
  });

  it('forgets a handler whose record is gone: at once when idle, else when its last request in flight ends', () => {
    const choice = new HandlerChoice();
    choice.replied('idle', 3);
    choice.forget('idle');
    expect(choice.latencyMs('idle')).toBeUndefined();
    const s = choice.started('busy');
    choice.repliedOn(s, 4);
    choice.forget('busy');
    expect(choice.inFlight('busy')).toBe(1);
    choice.endedOn('busy', s);
    expect(choice.latencyMs('busy')).toBeUndefined();
    expect(choice.lastUsed('busy')).toBeUndefined();
  });

  it('counts the failures of requests sent before a pause as one outage: the pause doubles per failed probe, not per request', () => {
    let now = 0;
    const choice = new HandlerChoice({ retryAfterMs: 1_000, now: () => now, random: seeded(2) });
    // 8 requests in flight to a handler that froze: they time out one after another.
    for (let i = 0; i < 8; i++) choice.started('frozen');
    for (let i = 0; i < 8; i++, now += 10) {
      choice.failed('frozen');
      choice.ended('frozen');
    }
    // Paused for 1 s from the first timeout (before: 2^7 s, capped at 30 s): probed at 1 s.
    now = 1_000;
    expect(choice.choose(['frozen', 'other'], () => false)).toBeDefined();
    const probed = Array.from({ length: 50 }, () => choice.choose(['frozen', 'other'])).includes('frozen');
    expect(probed).toBe(true);
  });

  it('keeps its memory bounded', () => {
    const choice = new HandlerChoice({ maxTracked: 100 });
    for (let i = 0; i < 10_000; i++) choice.replied(`id${i}`, 1);
    expect(choice.latencyMs('id9999')).toBe(1);
    expect(choice.latencyMs('id0')).toBeUndefined();
  });

  it('passes over a handler that answers every request at once with an error (consecutive errors), and takes it back once it answers', () => {
    let now = 0;
    const choice = new HandlerChoice({ random: seeded(), now: () => now });
    const ids = ['bad', 'b', 'c'];
    const counts = new Map(ids.map((id) => [id, 0]));
    // One request at a time, one a millisecond: 'bad' answers in 0.2 ms with an error, the others in 2 ms with a value.
    for (let i = 0; i < 3000; i++, now++) {
      const id = choice.choose(ids)!;
      counts.set(id, counts.get(id)! + 1);
      choice.started(id);
      choice.replied(id, id === 'bad' ? 0.2 : 2, id === 'bad');
      choice.ended(id);
    }
    // Before: 'bad' drew 68 % of the requests (fair share 33 %).
    expect(counts.get('bad')!).toBeLessThan(0.05 * 3000);
    expect(choice.isFailing('bad')).toBe(true);
    // A probe answered with a value: healthy again.
    now += 60_000;
    choice.started('bad');
    choice.replied('bad', 2);
    choice.ended('bad');
    expect(choice.isFailing('bad')).toBe(false);
  });
});

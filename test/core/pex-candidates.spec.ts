import { describe, expect, it } from 'vitest';
import { PEX_DIALS_PER_INTERVAL, PEX_UNPROVEN_PER_SOURCE, PexCandidates } from '../../src/discovery/pex-candidates.js';

/**
 * Which candidates a node dials (src/discovery/pex-candidates.ts): in turn from each neighbour that named some, and on
 * a forming round's budget, one neighbour's unanswered dials hold at most PEX_UNPROVEN_PER_SOURCE places. The attack
 * over sockets (a neighbour naming made-up ids at addresses that never answer): test/net/review22-netgroup-lan-pex.spec.ts.
 */
const INTERVAL = 30_000;
const FORMING = 1_000;
const id = (source: string, i: number) => `${source}${i}`.padEnd(40, '0');

function candidates(now: { t: number }): PexCandidates {
  const c = new PexCandidates({ intervalMs: INTERVAL, backoff: { baseMs: 1_000, maxMs: 60_000 } }, () => now.t);
  // The liar's names come first (its exchange arrived first), then an honest neighbour's.
  for (let i = 0; i < 10; i++) expect(c.offer('liar', id('a', i), `10.0.0.${i}:1`, true)).toBeUndefined();
  for (let i = 0; i < 5; i++) expect(c.offer('honest', id('b', i), `10.1.0.${i}:1`, true)).toBeUndefined();
  return c;
}

describe('peer-exchange candidates: whose names are dialed (issue 22 review: black holes named first)', () => {
  it('take() serves the neighbours that named candidates in turn, not oldest first overall', () => {
    const now = { t: 1_000_000 };
    const c = candidates(now);
    const taken = c.take(PEX_DIALS_PER_INTERVAL, () => false).map((k) => k.id[0]);
    expect(taken).toEqual(['a', 'b', 'a', 'b']);
  });

  it("a neighbour reached through another's candidate shares its namer's turn and places (a Sybil the liar names gains it nothing)", () => {
    const now = { t: 1_000_000 };
    const c = new PexCandidates({ intervalMs: INTERVAL, backoff: { baseMs: 1_000, maxMs: 60_000 } }, () => now.t);
    // The liar names its Sybil first, which answers: this node dials it, and it becomes a neighbour.
    c.offer('liar', id('y', 0), '10.9.0.1:1', true);
    const [sybil] = c.take(1, () => false, FORMING);
    expect(sybil!.id).toBe(id('y', 0));
    c.reached(sybil!.id);
    c.remove(sybil!.id);
    // Both name black holes; an honest neighbour names real peers after them.
    for (let i = 0; i < 4; i++) c.offer('liar', id('a', i), `10.0.0.${i}:1`, true);
    for (let i = 0; i < 4; i++) c.offer(id('y', 0), id('s', i), `10.8.0.${i}:1`, true);
    for (let i = 0; i < 4; i++) c.offer('honest', id('b', i), `10.1.0.${i}:1`, true);
    now.t += FORMING;
    const first = c.take(PEX_DIALS_PER_INTERVAL, () => false, FORMING).map((k) => k.id[0]);
    // One turn for the liar and its Sybil together, one for the honest neighbour; 2 places each at most.
    expect(first.filter((k) => k === 'b').length).toBe(2);
    expect(first.filter((k) => k !== 'b').length).toBe(2);
    // The honest dials answer: their places are free, and the liar's chain, holding its 2, still gets none of them.
    now.t += FORMING;
    for (const b of [0, 1]) c.reached(id('b', b));
    expect(c.take(PEX_DIALS_PER_INTERVAL, (k) => k.startsWith('b'), FORMING)).toEqual([]);
    expect(c.takeId(id('s', 3), FORMING)).toBeUndefined();
    // The honest neighbour's next names do get them.
    expect(c.take(PEX_DIALS_PER_INTERVAL, () => false, FORMING).map((k) => k.id[0])).toEqual(['b', 'b']);
  });

  it('the turn goes on across calls: one place at a time still serves each neighbour in turn', () => {
    const now = { t: 1_000_000 };
    const c = candidates(now);
    const taken: string[] = [];
    for (let i = 0; i < PEX_DIALS_PER_INTERVAL; i++) taken.push(...c.take(1, () => false).map((k) => k.id[0]!));
    expect(taken).toEqual(['a', 'b', 'a', 'b']);
  });

  it("on a forming round's budget, one neighbour's unanswered dials hold at most half of it; an answer frees its place", () => {
    const now = { t: 1_000_000 };
    const c = candidates(now);
    // The liar's candidates alone are due (the honest ones skipped): it gets its share, and no more.
    const liar = c.take(PEX_DIALS_PER_INTERVAL, (k) => k.startsWith('b'), FORMING);
    expect(liar.length).toBe(PEX_UNPROVEN_PER_SOURCE);
    now.t += FORMING;
    expect(c.take(PEX_DIALS_PER_INTERVAL, (k) => k.startsWith('b'), FORMING)).toEqual([]);
    expect(c.takeId(id('a', 5), FORMING)).toBeUndefined();
    // The honest neighbour's names still get the rest.
    const honest = c.take(PEX_DIALS_PER_INTERVAL, () => false, FORMING);
    expect(honest.map((k) => k.id[0])).toEqual(['b', 'b']);
    // One of the liar's dials answers (the id was there after all): its place is free again.
    now.t += FORMING;
    c.reached(liar[0]!.id);
    expect(c.takeId(id('a', 5), FORMING)?.id).toBe(id('a', 5));
    // On the interval's budget (not forming) the share does not apply: the window's own bound does.
    const later = { t: now.t + INTERVAL };
    now.t = later.t;
    expect(c.take(PEX_DIALS_PER_INTERVAL, () => false).length).toBe(PEX_DIALS_PER_INTERVAL);
  });
});

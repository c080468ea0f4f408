import { describe, expect, it } from 'vitest';
import { isWildcard, SubjectIndex, subjectMatches } from '../../src/common/subject.js';

describe('NATS-style subjects', () => {
  it('tells wildcard patterns from exact ones, object patterns included', () => {
    expect(isWildcard('math.*')).toBe(true);
    expect(isWildcard('orders.>')).toBe(true);
    expect(isWildcard('>')).toBe(true);
    expect(isWildcard('math.sum')).toBe(false);
    expect(isWildcard('a.>.b')).toBe(false);
    expect(isWildcard('a*.b')).toBe(false);
    expect(isWildcard('{"cmd":"*"}')).toBe(false);
  });

  it('matches as Nest’s NATS transport does', () => {
    expect(subjectMatches('math.*', 'math.sum')).toBe(true);
    expect(subjectMatches('math.*', 'math')).toBe(false);
    expect(subjectMatches('math.*', 'math.sum.int')).toBe(false);
    expect(subjectMatches('*.sum', 'math.sum')).toBe(true);
    expect(subjectMatches('orders.>', 'orders.eu.created')).toBe(true);
    expect(subjectMatches('orders.>', 'orders.eu')).toBe(true);
    expect(subjectMatches('orders.>', 'orders')).toBe(false);
    expect(subjectMatches('>', 'x')).toBe(true);
    expect(subjectMatches('a.*', 'a.')).toBe(false);
    expect(subjectMatches('{"cmd":"sum"}', '{"cmd":"sum"}')).toBe(true);
    expect(subjectMatches('a.>.b', 'a.x.b')).toBe(false);
  });

  it('indexes patterns and finds every value a subject reaches, once each', () => {
    const index = new SubjectIndex<string>();
    index.add('math.sum', 'exact');
    index.add('math.*', 'star');
    index.add('*.sum', 'star-first');
    index.add('math.>', 'tail');
    index.add('>', 'all');
    index.add('{"cmd":"sum"}', 'object');
    index.add('math.*', 'exact');
    expect([...index.match('math.sum')].sort()).toEqual(['all', 'exact', 'star', 'star-first', 'tail']);
    expect([...index.match('math.sum.int')].sort()).toEqual(['all', 'tail']);
    expect([...index.match('math')].sort()).toEqual(['all']);
    expect([...index.match('{"cmd":"sum"}')]).toEqual(['object']);
    expect(index.size).toBe(7);
    expect(index.delete('math.*', 'star')).toBe(true);
    expect(index.delete('math.*', 'star')).toBe(false);
    expect(index.delete('>', 'all')).toBe(true);
    expect(index.delete('nope.*', 'all')).toBe(false);
    expect([...index.match('math.sum')].sort()).toEqual(['exact', 'star-first', 'tail']);
    expect(index.size).toBe(5);
  });

  it('agrees with subjectMatches on generated patterns and subjects', () => {
    const tokens = ['a', 'b', '*', '>'];
    const patterns: string[] = [];
    for (const x of tokens) for (const y of ['', ...tokens]) for (const z of ['', ...tokens]) patterns.push([x, y, z].filter(Boolean).join('.'));
    const subjects = ['a', 'b', 'a.b', 'b.a', 'a.a.a', 'a.b.b', 'b.b.b.b'];
    const index = new SubjectIndex<string>();
    for (const p of patterns) index.add(p, p);
    for (const s of subjects) {
      const expected = patterns.filter((p) => subjectMatches(p, s)).sort();
      expect([...index.match(s)].sort(), s).toEqual([...new Set(expected)]);
    }
  });
});

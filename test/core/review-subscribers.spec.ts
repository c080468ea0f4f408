import { describe, expect, it } from 'vitest';
import { subjectMatches } from '../../src/common/subject.js';
import { Subscribers } from '../../src/node/subscribers.js';

/**
 * The kept subscriber lists (src/node/subscribers.ts) are updated one changed node at a time:
 * after any sequence of record changes they equal a fresh lookup, and a list is never changed in
 * place (the router and the digest cache hold the arrays they were given).
 */
describe('Subscribers: kept lists follow record changes', () => {
  it('equal a fresh lookup after 2 000 random changes, with topics read now and then; held arrays never change', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const ids = Array.from({ length: 60 }, (_, i) => (i * 2654435761 % 2 ** 32).toString(16).padStart(40, '0'));
    const patterns = ['>', 'a.*', 'a.b', 'b.>', 'c'];
    const records = new Map<string, string[]>();
    let lookups = 0;
    const lookup = {
      handlers: (topic: string) => {
        lookups++;
        return [...records].filter(([, ps]) => ps.some((p) => subjectMatches(p, topic))).map(([id]) => ({ id, address: null, self: false })).sort((x, y) => (x.id < y.id ? -1 : 1));
      },
      handles: (id: string, topic: string) => records.get(id)?.some((p) => subjectMatches(p, topic)) ?? false,
    };
    const subs = new Subscribers(ids[0]!, lookup);
    const topics = ['a.b', 'a.c', 'b.x.y', 'c', 'd'];
    const held: Array<{ ids: readonly string[]; copy: string[] }> = [];
    for (let step = 0; step < 2000; step++) {
      const id = ids[rand(ids.length)]!;
      if (rand(4) === 0) records.delete(id);
      else records.set(id, patterns.filter(() => rand(3) === 0));
      subs.changed(id);
      if (rand(step < 1000 ? 3 : 400) === 0) {
        const topic = topics[rand(topics.length)]!;
        const list = subs.of(topic);
        held.push({ ids: list, copy: [...list] });
        const before = lookups;
        expect(list).toEqual(lookup.handlers(topic).map((h) => h.id));
        lookups = before;
      }
    }
    for (const h of held) expect(h.ids).toEqual(h.copy);
    // Kept lists were mostly brought up to date, not looked up again (long gaps, past the change log, are).
    expect(lookups).toBeLessThan(held.length);
  });
});

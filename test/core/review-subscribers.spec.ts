import { describe, expect, it } from 'vitest';
import { subjectMatches } from '../../src/common/subject.js';
import { Subscribers } from '../../src/node/subscribers.js';
import { RecordTable } from '../../src/directory/record-table.js';
import { randomBytes } from 'node:crypto';

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
      ids: (topic: string) => {
        lookups++;
        return [...records].filter(([, ps]) => ps.some((p) => subjectMatches(p, topic))).map(([id]) => id).sort();
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
        expect(list).toEqual(lookup.ids(topic));
        lookups = before;
      }
    }
    for (const h of held) expect(h.ids).toEqual(h.copy);
    // Kept lists were mostly brought up to date, not looked up again (long gaps, past the change log, are).
    expect(lookups).toBeLessThan(held.length);
  });
});

describe('RecordTable.matchIds: each pattern keeps its sorted ids', () => {
  it('equal the ids of the matching live records after random puts (leaving ones included) and removals; kept lists never change in place', () => {
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const table = new RecordTable(500);
    const ids = Array.from({ length: 300 }, (_, i) =>
      // A run of ids sharing their first 32 bits, as ground keys would: ordered by the full id.
      (i < 20 ? 'abcdef01' + randomBytes(16).toString('hex') : randomBytes(20).toString('hex')),
    );
    const patterns = ['>', 'a.*', 'a.b', 'b.>', 'c', '*.b'];
    const live = new Map<string, { events: string[]; leaving: boolean }>();
    const held: Array<{ ids: readonly string[]; copy: string[] }> = [];
    let seq = 1;
    for (let step = 0; step < 3000; step++) {
      const id = ids[rand(ids.length)]!;
      const slot = table.find(id);
      if (slot >= 0 && rand(5) === 0) {
        table.remove(slot);
        live.delete(id);
      } else {
        const events = patterns.filter(() => rand(3) === 0).sort();
        const leaving = rand(6) === 0;
        table.put({ id, publicKey: Buffer.alloc(32), seq: seq++, issuedAt: 1, leaving, address: '', requests: [], events, signature: Buffer.alloc(64) }, 0, 3);
        live.set(id, { events, leaving });
      }
      if (rand(10) === 0) {
        const topic = ['a.b', 'a.c', 'b.x.y', 'c', 'd', 'q.b'][rand(6)]!;
        const got = table.matchIds(topic, 'event');
        held.push({ ids: got, copy: [...got] });
        const want = [...live].filter(([, r]) => !r.leaving && r.events.some((p) => subjectMatches(p, topic))).map(([i]) => i).sort();
        expect(got).toEqual(want);
      }
    }
    for (const h of held) expect(h.ids).toEqual(h.copy);
  });
});

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import {
  BroadcastRepair,
  FOLLOW_UP_INTERVALS,
  MAX_ANNOUNCERS,
  MAX_PROMISED_PER_INTERVAL,
  encodeIds,
  parseIds,
  type PromiseRecordStats,
  type RepairHost,
} from '../../src/broadcast/repair.js';
import { loadIdentity } from '../../src/common/identity.js';
import { Encoding } from '../../src/wire/constants.js';

/**
 * Promises of repair (src/broadcast/repair.ts): an id a neighbour announced and was asked for
 * is a promise; it is broken when the neighbour does not send it within the follow-up time
 * (FOLLOW_UP_INTERVALS), and charged only while the neighbour breaks more than a tenth of its
 * recent promises; a node never asks one neighbour for more than it may serve, nor announces
 * more to one. And withholding: an id several neighbours announced is not left waiting on one.
 * A recording host and a hand-driven clock, as CometBFT tests a reactor.
 */
const INTERVAL = 500;
const FOLLOW_UP = FOLLOW_UP_INTERVALS * INTERVAL;

function harness(neighbours: string[], intervalMs = INTERVAL) {
  let now = 1_000;
  const broken: Array<{ peer: string; count: number; record: PromiseRecordStats }> = [];
  const wants: Array<{ to: string; ids: string[] }> = [];
  const haves: Array<{ to: string; ids: string[] }> = [];
  const has = new Set<string>();
  const host: RepairHost = {
    selfId: peer(0),
    neighbours: () => neighbours,
    has: (id) => has.has(id),
    sendIHave: (to, body) => void haves.push({ to, ids: ids(body) }),
    sendIWant: (to, body) => void wants.push({ to, ids: ids(body) }),
    sendBroadcast: () => undefined,
    brokePromises: (peer, count, record) => void broken.push({ peer, count, record }),
  };
  const repair = new BroadcastRepair(host, { intervalMs, cacheBytes: 1 << 24, fanout: 6 }, () => now);
  /** `ms` later, with the half-interval steps and interval ticks of a running node on the way. */
  const advance = (ms: number) => {
    for (let left = ms; left > 0; ) {
      const step = Math.min(left, intervalMs);
      now += step;
      left -= step;
      if (step === intervalMs) repair.tick();
    }
  };
  const reported = (who: string) => broken.filter((b) => b.peer === who).reduce((a, b) => a + b.count, 0);
  return { repair, broken, wants, haves, has, advance, reported, tick: () => repair.tick(), moveClock: (ms: number) => void (now += ms) };
}
const peer = (n: number) => n.toString(16).padStart(40, '0');
const fresh = (n: number) => Array.from({ length: n }, () => randomBytes(16));
const hex = (b: Buffer) => b.toString('hex');
const ids = (body: Buffer) => parseIds(body, 'test').map(hex);
const asked = (wants: Array<{ to: string; ids: string[] }>, id: string) => wants.filter((w) => w.ids.includes(id)).map((w) => w.to);

describe('broken promises of repair', () => {
  it('ids announced and never sent are reported with their number once the follow-up time is over, not before, and once', () => {
    const h = harness([peer(1)]);
    h.repair.onIHave(peer(1), encodeIds(fresh(5)));
    h.moveClock(FOLLOW_UP - 1);
    h.tick();
    expect(h.broken).toEqual([]); // the answer may still come
    h.moveClock(1);
    h.tick();
    expect(h.broken.map((b) => [b.peer, b.count])).toEqual([[peer(1), 5]]);
    h.moveClock(INTERVAL);
    h.tick();
    expect(h.broken).toHaveLength(1);
  });

  it('an answer that comes after the retry time but within the follow-up is a promise kept', () => {
    const h = harness([peer(1), peer(2)]);
    const [id] = fresh(1);
    h.repair.onIHave(peer(1), encodeIds([id!]));
    h.repair.onIHave(peer(2), encodeIds([id!]));
    h.advance(INTERVAL); // peer 2 is asked too
    expect(asked(h.wants, hex(id!))).toEqual([peer(1), peer(2)]);
    h.repair.arrived(peer(2), hex(id!));
    h.repair.arrived(peer(1), hex(id!)); // late, but sent
    h.has.add(hex(id!));
    h.advance(FOLLOW_UP + INTERVAL);
    expect(h.broken).toEqual([]);
    expect(h.repair.promiseRecord(peer(1))!.kept).toBeGreaterThan(0.8); // decayed a little
  });

  it('each frame of that neighbour dropped unread by this node’s budget excuses one unanswered id; a frame naming another id excuses none', () => {
    const h = harness([peer(1), peer(2)]);
    h.repair.onIHave(peer(1), encodeIds(fresh(3)));
    h.repair.onIHave(peer(2), encodeIds(fresh(2)));
    h.repair.arrived(peer(1)); // over its budget: it may have been an answer
    h.repair.arrived(peer(1));
    h.repair.arrived(peer(2), randomBytes(16).toString('hex')); // a relay of something else
    h.advance(FOLLOW_UP);
    expect(h.broken.map((b) => [b.peer, b.count])).toEqual([
      [peer(1), 1],
      [peer(2), 2],
    ]);
  });

  it('a neighbour that keeps nearly all its promises is not charged for a rare miss', () => {
    const h = harness([peer(1)]);
    for (let round = 0; round < 10; round++) {
      const batch = fresh(10);
      h.repair.onIHave(peer(1), encodeIds(batch));
      for (const id of batch.slice(round === 9 ? 1 : 0)) h.repair.arrived(peer(1), hex(id)); // one missed, in the last round
      h.advance(INTERVAL);
    }
    h.advance(FOLLOW_UP);
    expect(h.broken).toEqual([]);
    const record = h.repair.promiseRecord(peer(1))!;
    expect(record.broken).toBeGreaterThan(0.5);
    expect(record.broken / (record.kept + record.broken)).toBeLessThan(0.1);
  });

  it('keeping one promise an interval does not buy immunity: a neighbour that breaks more than a tenth of its promises is charged for each', () => {
    const h = harness([peer(1)]);
    for (let round = 0; round < 12; round++) {
      const [kept, ...withheld] = fresh(3);
      h.repair.onIHave(peer(1), encodeIds([kept!, ...withheld]));
      h.repair.arrived(peer(1), hex(kept!));
      h.advance(INTERVAL);
    }
    h.advance(FOLLOW_UP);
    // 12 kept, 24 broken: every broken one is charged.
    expect(h.reported(peer(1))).toBe(24);
    expect(h.broken.every((b) => b.record.broken / (b.record.kept + b.record.broken) > 0.1)).toBe(true);
  });

  it('a neighbour is asked for no more than it may serve an interval; ids past that are neither asked for nor charged', () => {
    const h = harness([peer(1)]);
    const many = fresh(300);
    h.repair.onIHave(peer(1), encodeIds(many));
    expect(h.wants.flatMap((w) => w.ids)).toHaveLength(MAX_PROMISED_PER_INTERVAL);
    h.advance(FOLLOW_UP);
    expect(h.reported(peer(1))).toBe(MAX_PROMISED_PER_INTERVAL);
  });

  it('a node announces to one neighbour no more ids an interval than it may be asked for; the rest go out in the next intervals', () => {
    const h = harness([peer(1)]);
    const identity = loadIdentity();
    const messages = Array.from({ length: 200 }, (_, i) =>
      createNetworkMessage(identity, { timestampUs: 1_764_000_000_000_000 + i, encoding: Encoding.Json, topic: 't', payload: Buffer.from(String(i)), strategy: 'raintree' }),
    );
    for (const m of messages) h.repair.got(m, []);
    h.moveClock(INTERVAL / 2);
    h.tick();
    expect(h.haves.flatMap((x) => x.ids)).toHaveLength(MAX_PROMISED_PER_INTERVAL);
    h.moveClock(INTERVAL);
    h.tick();
    expect(h.haves.flatMap((x) => x.ids).sort()).toEqual(messages.map((m) => m.id).sort());
  });
});

describe('repair that withholding cannot stop', () => {
  const [id] = fresh(1);
  const raw = () => encodeIds([id!]);

  it('asks the first announcer at once; when it has not sent the id within an interval, the two next at once', () => {
    const h = harness([peer(1), peer(2), peer(3), peer(4)]);
    for (const n of [1, 2, 3, 4]) h.repair.onIHave(peer(n), raw());
    expect(asked(h.wants, hex(id!))).toEqual([peer(1)]);
    h.moveClock(INTERVAL - 1);
    h.tick();
    expect(asked(h.wants, hex(id!))).toEqual([peer(1)]);
    h.moveClock(1);
    h.tick();
    expect(asked(h.wants, hex(id!))).toEqual([peer(1), peer(2), peer(3)]);
  });

  it('once an id has been announced for two intervals, every announcer not asked yet is asked, and later announcers at once', () => {
    const h = harness(Array.from({ length: 8 }, (_, i) => peer(i + 1)));
    for (const n of [1, 2, 3, 4, 5, 6]) h.repair.onIHave(peer(n), raw());
    h.advance(INTERVAL); // 2 and 3
    h.advance(INTERVAL); // two intervals: all the rest
    expect(asked(h.wants, hex(id!)).sort()).toEqual([1, 2, 3, 4, 5, 6].map(peer).sort());
    h.repair.onIHave(peer(7), raw());
    expect(asked(h.wants, hex(id!))).toContain(peer(7));
  });

  it('an announcer that comes while no ask is in flight is asked at once', () => {
    const h = harness([peer(1), peer(2)]);
    h.repair.onIHave(peer(1), raw());
    h.moveClock(INTERVAL);
    h.repair.onIHave(peer(2), raw());
    expect(asked(h.wants, hex(id!))).toEqual([peer(1), peer(2)]);
  });

  it(`remembers up to ${MAX_ANNOUNCERS} announcers per id: five Sybils that announce first do not hide the honest one`, () => {
    const sybils = [1, 2, 3, 4, 5].map(peer);
    const honest = peer(9);
    const h = harness([...sybils, honest]);
    for (const s of sybils) h.repair.onIHave(s, raw());
    h.repair.onIHave(honest, raw());
    h.advance(2 * INTERVAL);
    expect(asked(h.wants, hex(id!))).toContain(honest);
  });

  it('prefers the announcers with the better record of promises', () => {
    const sybils = [1, 2, 3].map(peer);
    const honest = peer(9);
    const h = harness([...sybils, honest]);
    // A history: the honest one sent what it was asked for; the Sybils did not.
    for (let round = 0; round < 4; round++) {
      const [mine] = fresh(1);
      h.repair.onIHave(honest, encodeIds([mine!]));
      h.repair.arrived(honest, hex(mine!));
      h.has.add(hex(mine!));
      for (const s of sybils) h.repair.onIHave(s, encodeIds(fresh(1)));
      h.advance(INTERVAL);
    }
    h.advance(FOLLOW_UP);
    h.wants.length = 0;
    // A Sybil announces first; after one interval, the honest announcer is among the two asked.
    h.repair.onIHave(sybils[0]!, raw());
    for (const s of sybils.slice(1)) h.repair.onIHave(s, raw());
    h.repair.onIHave(honest, raw());
    h.advance(INTERVAL);
    expect(asked(h.wants, hex(id!))).toEqual([sybils[0], honest, sybils[1]]);
  });
});

import { describe, expect, it } from 'vitest';
import { type NetworkMessage } from '../../src/broadcast/codec.js';
import { BroadcastRepair, MAX_REPAIR_IDS, encodeIds, parseIds, type RepairHost } from '../../src/broadcast/repair.js';
import { P2PProtocolError } from '../../src/common/errors.js';
import { type Arc } from '../../src/ring/raintree.js';
import { randomId, rng } from '../../src/sim/ids.js';
import { decodeNetworkMessage, createNetworkMessage } from '../../src/broadcast/codec.js';
import { OriginKeys } from '../../src/broadcast/signature.js';
import { loadIdentity } from '../../src/common/identity.js';
import { Encoding } from '../../src/wire/constants.js';
import { inArc } from '../../src/ring/raintree.js';

/** BroadcastRepair against a recording host and a hand-driven clock (as CometBFT tests a reactor). */
function harness(neighbours: string[], intervalMs = 500, fanout = 6, random: () => number = Math.random, reaches?: (neighbour: string, arc: Arc) => boolean) {
  let now = 1_000;
  const sent: Array<{ kind: 'have' | 'want' | 'data'; to: string; body: Buffer }> = [];
  const has = new Set<string>();
  const host: RepairHost = {
    selfId: peer(0),
    neighbours: () => neighbours,
    reaches,
    has: (id) => has.has(id),
    sendIHave: (to, body) => void sent.push({ kind: 'have', to, body }),
    sendIWant: (to, body) => void sent.push({ kind: 'want', to, body }),
    sendBroadcast: (to, body) => void sent.push({ kind: 'data', to, body }),
  };
  const repair = new BroadcastRepair(host, { intervalMs, cacheBytes: 1 << 20, fanout }, () => now, random);
  return { repair, sent, has, advance: (ms: number) => void (now += ms), take: () => sent.splice(0) };
}

const identity = loadIdentity();
let ts = 1_764_000_000_000_000;
function message(timestampUs = (ts += 1000)): NetworkMessage {
  return createNetworkMessage(identity, { timestampUs, encoding: Encoding.Json, topic: 'news', payload: Buffer.from('{"a":1}'), strategy: 'raintree' });
}
const ids = (body: Buffer) => parseIds(body, 'test').map((b) => b.toString('hex'));
const peer = (n: number) => n.toString(16).padStart(40, '0');

describe('repair by lazy pull (broadcast-repair.ts)', () => {
  it('announces an id once, after the grace, only to neighbours not known to hold it', () => {
    const h = harness([peer(1), peer(2), peer(3)]);
    const m = message();
    h.repair.got(m, [peer(1)]);
    h.repair.tick();
    expect(h.take()).toEqual([]); // younger than the grace: the RainTree copy may still be on its way
    h.advance(250);
    h.repair.heldBy(m.id, peer(2));
    h.repair.tick();
    const out = h.take();
    expect(out.map((s) => [s.kind, s.to])).toEqual([['have', peer(3)]]);
    expect(ids(out[0]!.body)).toEqual([m.id]);
    h.advance(500);
    h.repair.tick();
    expect(h.take()).toEqual([]); // once only: an idle network sends nothing
    expect(h.repair.stats.announced).toBe(1);
  });

  it('asks the first announcer for a missing id, the next one if it does not answer, and stops once it has it', () => {
    const h = harness([peer(1), peer(2)]);
    const m = message();
    h.repair.onIHave(peer(1), encodeIds([Buffer.from(m.id, 'hex')]));
    h.repair.onIHave(peer(2), encodeIds([Buffer.from(m.id, 'hex')]));
    expect(h.take().map((s) => [s.kind, s.to])).toEqual([['want', peer(1)]]);
    h.advance(500);
    h.repair.tick();
    expect(h.take().map((s) => [s.kind, s.to])).toEqual([['want', peer(2)]]);
    h.has.add(m.id);
    h.advance(500);
    h.repair.tick();
    expect(h.take()).toEqual([]);
    // An id it already has is never asked for.
    h.repair.onIHave(peer(1), encodeIds([Buffer.from(m.id, 'hex')]));
    expect(h.take()).toEqual([]);
  });

  it('answers an IWANT with the signed message addressed to the asker alone, up to 256 a neighbour per interval', () => {
    const h = harness([peer(1)]);
    const messages = Array.from({ length: 300 }, message);
    for (const m of messages) h.repair.got(m, []);
    const asked = messages.map((m) => Buffer.from(m.id, 'hex'));
    h.repair.onIWant(peer(1), encodeIds(asked));
    const data = h.take().filter((s) => s.kind === 'data');
    expect(data).toHaveLength(256);
    const copy = decodeNetworkMessage(data[0]!.body, new OriginKeys());
    expect(copy.id).toBe(messages[0]!.id);
    expect(copy.signature.equals(messages[0]!.signature)).toBe(true);
    expect(inArc(peer(1), copy.arc)).toBe(true);
    expect(inArc(peer(2), copy.arc)).toBe(false); // the arc holds the asker only: delivered, handed on to nobody
    h.advance(500);
    h.repair.tick();
    h.take();
    h.repair.onIWant(peer(1), encodeIds(asked.slice(256)));
    expect(h.take().filter((s) => s.kind === 'data')).toHaveLength(44);
  });

  it('announces an id to at most `fanout` neighbours, drawn at random among those not known to hold it', () => {
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    const chosen: string[][] = [];
    for (const seed of [1, 2]) {
      const h = harness(neighbours, 500, 6, rng(seed));
      const m = message();
      h.repair.got(m, [peer(1), peer(2)]);
      h.advance(250);
      h.repair.tick();
      const out = h.take();
      expect(out.every((s) => s.kind === 'have' && ids(s.body)[0] === m.id)).toBe(true);
      const to = out.map((s) => s.to);
      expect(new Set(to).size).toBe(6);
      expect(to).not.toContain(peer(1)); // it came from or went to them
      expect(to).not.toContain(peer(2));
      chosen.push(to.sort());
    }
    expect(chosen[0]).not.toEqual(chosen[1]); // a draw, not a fixed choice
  });

  it('ids of one tick go to the same few neighbours: under load, fanout frames a tick, not one per neighbour', () => {
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    const h = harness(neighbours, 500, 6, rng(3));
    const messages = Array.from({ length: 50 }, () => message());
    for (const m of messages) h.repair.got(m, []);
    h.advance(250);
    h.repair.tick();
    const out = h.take();
    expect(out).toHaveLength(6);
    for (const frame of out) expect(ids(frame.body).sort()).toEqual(messages.map((m) => m.id).sort());
  });

  it('past the per-neighbour bound, ids wait for the next intervals, before newer ones and in the order they came, each announced once; a message past its keeping time is forgotten', () => {
    // One neighbour, so that every id goes to it (fanout 6 of one): MAX_PROMISED_PER_INTERVAL (128) an interval.
    const h = harness([peer(1)], 500, 6, rng(4));
    const older = Array.from({ length: 300 }, () => message());
    for (const m of older) h.repair.got(m, []);
    h.advance(250);
    const perInterval: string[][] = [];
    const interval = () => {
      h.repair.tick();
      perInterval.push(h.take().flatMap((s) => ids(s.body)));
      h.advance(500);
    };
    interval();
    const newer = Array.from({ length: 10 }, () => message());
    for (const m of newer) h.repair.got(m, []);
    for (let i = 0; i < 3; i++) interval();
    expect(perInterval.map((x) => x.length)).toEqual([128, 128, 54, 0]);
    // Oldest first, none twice, none left out: what the bound held back goes before ids that came after it.
    expect(perInterval.flat()).toEqual([...older, ...newer].map((m) => m.id));
    expect(h.repair.stats.announced).toBe(310);
    // Six intervals after it came, a message is no longer served.
    h.advance(6 * 500);
    h.repair.tick();
    h.repair.onIWant(peer(2), encodeIds([Buffer.from(newer[9]!.id, 'hex')]));
    expect(h.take()).toEqual([]);
  });

  it('designated announcers change with the epoch of the broadcasts, not per id: ids of one epoch share their frames', () => {
    const random = rng(7);
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    // Each neighbour has 3 other connections somewhere on the ring (what its peer exchange said).
    const theirs = new Map(neighbours.map((nb) => [nb, Array.from({ length: 3 }, () => randomId(random))]));
    const reaches = (nb: string, arc: Arc) => theirs.get(nb)!.some((id) => inArc(id, arc));
    const start = 1_764_000_000_000_000; // the start of a 10-second epoch
    const sent = (timestamps: number[]) => {
      const h = harness(neighbours, 500, 6, rng(8), reaches);
      const messages = timestamps.map((t) => message(t));
      for (const m of messages) h.repair.got(m, []);
      h.advance(250);
      h.repair.tick();
      return { out: h.take(), messages };
    };
    const one = sent(Array.from({ length: 50 }, (_, i) => start + i * 1000));
    expect(one.out.length).toBeGreaterThan(6); // designated for some neighbours, beyond the fanout
    expect(one.out.length).toBeLessThan(20);
    for (const frame of one.out) expect(ids(frame.body).sort()).toEqual(one.messages.map((m) => m.id).sort());
    // Over many epochs this node is designated for other neighbours: ids of different epochs go to more of them.
    const many = sent(Array.from({ length: 50 }, (_, i) => start + i * 10_000_000));
    expect(many.out.length).toBeGreaterThan(one.out.length);
  });

  it('a node that had to ask for an id announces it at once to every neighbour not known to hold it: its neighbours likely missed it too', () => {
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    const h = harness(neighbours, 500, 2, rng(4));
    const m = message();
    h.repair.onIHave(peer(1), encodeIds([Buffer.from(m.id, 'hex')]));
    h.repair.onIHave(peer(2), encodeIds([Buffer.from(m.id, 'hex')]));
    expect(h.take().map((s) => [s.kind, s.to])).toEqual([['want', peer(1)]]);
    h.repair.got(m, [peer(1)]); // the answer
    const out = h.take();
    expect(out.every((s) => s.kind === 'have' && ids(s.body)[0] === m.id)).toBe(true);
    // Not to peer 1 (it answered) nor peer 2 (it announced it), no grace, no tick.
    expect(out.map((s) => s.to).sort()).toEqual(neighbours.slice(2).sort());
    h.advance(500);
    h.repair.tick();
    expect(h.take()).toEqual([]); // once
  });

  it("also tells each neighbour for which it is the designated announcer (first of the neighbour's connections clockwise from a point of its id and the epoch), beyond the fanout", () => {
    const neighbours = Array.from({ length: 12 }, (_, i) => peer(i + 1));
    // Peer exchange says nothing of the neighbours' connections: this node may be first for each of them, so all are told.
    const blind = harness(neighbours, 500, 1, rng(5), () => false);
    blind.repair.got(message(), []);
    blind.advance(250);
    blind.repair.tick();
    expect(blind.take()).toHaveLength(12);
    // Each neighbour is connected all round the ring: someone comes before this node, so the fanout alone is told.
    const crowded = harness(neighbours, 500, 1, rng(5), () => true);
    crowded.repair.got(message(), []);
    crowded.advance(250);
    crowded.repair.tick();
    expect(crowded.take()).toHaveLength(1);
    // The arc asked about ends at this node and starts at a point that depends on the neighbour (and the epoch).
    const asked: Arc[] = [];
    const h = harness([peer(1), peer(2)], 500, 0, rng(6), (_neighbour, arc) => (asked.push(arc), true));
    h.repair.got(message(), []);
    h.advance(250);
    h.repair.tick();
    expect(asked.map((a) => a.to)).toEqual([peer(0), peer(0)]);
    expect(asked[0]!.from).not.toBe(asked[1]!.from);
  });

  it('refuses malformed IHAVE / IWANT bodies with a typed protocol error', () => {
    const h = harness([peer(1)]);
    expect(() => h.repair.onIHave(peer(1), Buffer.alloc(1))).toThrow(P2PProtocolError);
    expect(() => h.repair.onIHave(peer(1), Buffer.from([0, 2, ...Buffer.alloc(16)]))).toThrow(/says 2 ids in 18 bytes/);
    const tooMany = Buffer.alloc(2 + (MAX_REPAIR_IDS + 1) * 16);
    tooMany.writeUInt16BE(MAX_REPAIR_IDS + 1, 0);
    expect(() => h.repair.onIWant(peer(1), tooMany)).toThrow(P2PProtocolError);
  });

  it('keeps messages within the byte bound and forgets them after six intervals', () => {
    const h = harness([peer(1)]);
    const small = new BroadcastRepair(
      { selfId: peer(0), neighbours: () => [peer(1)], has: () => false, sendIHave: () => undefined, sendIWant: () => undefined, sendBroadcast: (to, body) => void h.sent.push({ kind: 'data', to, body }) },
      { intervalMs: 500, cacheBytes: 2_000, fanout: 6 },
    );
    const messages = Array.from({ length: 50 }, message);
    for (const m of messages) small.got(m, []);
    small.onIWant(peer(1), encodeIds(messages.map((m) => Buffer.from(m.id, 'hex'))));
    const answered = h.take().length;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(50); // the oldest went out past 2 000 bytes

    const m = message();
    h.repair.got(m, []);
    h.advance(6 * 500 + 1);
    h.repair.tick();
    h.take();
    h.repair.onIWant(peer(1), encodeIds([Buffer.from(m.id, 'hex')]));
    expect(h.take()).toEqual([]);
  });

  it('a silent node (test-only dropRelays) announces and answers nothing', () => {
    const h = harness([peer(1)]);
    h.repair.silent = true;
    const m = message();
    h.repair.got(m, []);
    h.advance(1000);
    h.repair.tick();
    h.repair.onIWant(peer(1), encodeIds([Buffer.from(m.id, 'hex')]));
    expect(h.take()).toEqual([]);
  });
});

describe('repair of events for subscribers: the designated announcer (broadcast-repair.ts)', () => {
  // Node 0 (a subscriber that has the event) and its neighbour P (a subscriber the tree left out). P's other
  // connections are carriers and bystanders, which lie everywhere on the ring (`reaches` says yes to any arc unless
  // `only` leaves them out) and never have the event: with fanout 0, only the designated rule can tell P.
  const P = peer(7);
  const run = (strategy: 'raintree' | 'subscribers') => {
    const sent: string[] = [];
    const host: RepairHost = {
      selfId: peer(0),
      neighbours: () => [P],
      reaches: (_neighbour, _arc, only) => (only ? [peer(9)].some(only) : true),
      has: () => false,
      sendIHave: (to) => void sent.push(to),
      sendIWant: () => undefined,
      sendBroadcast: () => undefined,
      wants: (id) => id === P || id === peer(0),
    };
    let now = 1_000;
    const repair = new BroadcastRepair(host, { intervalMs: 500, cacheBytes: 1 << 20, fanout: 0 }, () => now, rng(1));
    const m = createNetworkMessage(identity, { timestampUs: (ts += 1000), encoding: Encoding.Json, topic: 'alerts.disk', payload: Buffer.from('{}'), strategy });
    repair.got(m, []);
    now += 250;
    repair.tick();
    return sent;
  };

  it('an event for subscribers: chosen among P’s subscribing neighbours, so node 0 tells P (a carrier that never has it cannot)', () => {
    expect(run('subscribers')).toEqual([P]);
  });

  it('a broadcast to every node: chosen among all of P’s neighbours, as before (here one of the others)', () => {
    expect(run('raintree')).toEqual([]);
  });
});

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
import { RING_ROOT, inArc, pointArc, thirdsOf } from '../../src/ring/raintree.js';
import { REPAIR_RANDOM, isWatcherOf } from '../../src/broadcast/repair-watchers.js';

const thirdOf = (id: string) => thirdsOf(RING_ROOT).findIndex((t) => inArc(id, t));

/** BroadcastRepair against a recording host and a hand-driven clock (as CometBFT tests a reactor). */
function harness(neighbours: string[], intervalMs = 500, fanout = 6, random: () => number = Math.random, reaches?: (neighbour: string, arc: Arc) => boolean, self = peer(0), randomAnnouncers = 0) {
  let now = 1_000;
  const sent: Array<{ kind: 'have' | 'want' | 'data'; to: string; body: Buffer }> = [];
  const has = new Set<string>();
  const host: RepairHost = {
    selfId: self,
    neighbours: () => neighbours,
    reaches,
    has: (id) => has.has(id),
    sendIHave: (to, body) => void sent.push({ kind: 'have', to, body }),
    sendIWant: (to, body) => void sent.push({ kind: 'want', to, body }),
    sendBroadcast: (to, body) => void sent.push({ kind: 'data', to, body }),
  };
  // No random announcers beside the watchers unless a test asks: these tests count exactly whom watchers tell.
  const repair = new BroadcastRepair(host, { intervalMs, cacheBytes: 1 << 20, fanout, randomAnnouncers }, () => now, random);
  return { repair, sent, has, advance: (ms: number) => void (now += ms), take: () => sent.splice(0) };
}

const identity = loadIdentity();
let ts = 1_764_000_000_000_000;
function message(timestampUs = (ts += 1000), strategy: 'raintree' | 'subscribers' = 'raintree'): NetworkMessage {
  return createNetworkMessage(identity, { timestampUs, encoding: Encoding.Json, topic: 'news', payload: Buffer.from('{"a":1}'), strategy });
}
/** An event for subscribers (the host tells any neighbour: it has no `wants`). */
const event = (timestampUs = (ts += 1000)) => message(timestampUs, 'subscribers');
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
    const messages = Array.from({ length: 300 }, () => message());
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

  it('in a full mesh every node has exactly 2 watchers (REPAIR_WATCHERS), one in each third of the ring but its own: the IHAVE entries of a healthy broadcast are at most 2 N, counted', () => {
    const random = rng(11);
    for (let round = 0; round < 20; round++) {
      const all = Array.from({ length: 16 }, () => randomId(random)).sort();
      const m = message();
      const epoch = Math.floor(m.timestampUs / 10_000_000);
      // Every node got the broadcast; each announces to the neighbours it watches, as BroadcastRepair does.
      const told = new Map<string, string[]>(all.map((id) => [id, []]));
      let entries = 0;
      // Peer exchange: every node knows the others' connections (the whole mesh).
      const reaches = (neighbour: string, arc: Arc) => all.some((id) => id !== neighbour && inArc(id, arc));
      for (const self of all) {
        const neighbours = all.filter((id) => id !== self);
        const h = harness(neighbours, 500, 2, random, reaches, self);
        h.repair.got(m, []);
        h.advance(250);
        h.repair.tick();
        for (const s of h.take()) {
          expect(s.kind).toBe('have');
          told.get(s.to)!.push(self);
          entries += ids(s.body).length;
        }
        // The same choice as the function the node runs.
        for (const peer of neighbours) expect(told.get(peer)!.includes(self)).toBe(isWatcherOf({ self, reaches }, peer, epoch, 2));
      }
      expect(entries).toBeLessThanOrEqual(2 * all.length);
      for (const [peer, watchers] of told) {
        expect(watchers).toHaveLength(2);
        const thirds = watchers.map((w) => thirdOf(w));
        expect(new Set(thirds).size).toBe(2);
        // Unless its own third is all the ring holds besides (never, with 16 random ids), not in its own third.
        expect(thirds).not.toContain(thirdOf(peer));
      }
    }
  });

  it('views that differ (each neighbour knows a random part of a node\'s connections) leave every node at least one watcher in each slot\'s third: a view misses connections, never adds one', () => {
    const random = rng(21);
    for (let round = 0; round < 40; round++) {
      const all = Array.from({ length: 12 }, () => randomId(random)).sort();
      // A sparse mesh: each pair linked with odds 1/2.
      const links = new Map<string, Set<string>>(all.map((id) => [id, new Set()]));
      for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) if (random() < 0.5) (links.get(all[i]!)!.add(all[j]!), links.get(all[j]!)!.add(all[i]!));
      const epoch = 1000 + round;
      for (const node of all) {
        const mine = [...links.get(node)!];
        if (mine.length === 0) continue;
        // Each neighbour's view of `node`: a random part of its true connections (what it has evidence of, or nothing).
        const watchers = mine.filter((self) => {
          const part = mine.filter(() => random() < 0.5);
          const reaches = (nb: string, arc: Arc) => nb === node && part.some((id) => id !== self && inArc(id, arc));
          return isWatcherOf({ self, reaches }, node, epoch, 2);
        });
        // The true watcher of slot 0 (first from the point over all its connections) always knows itself.
        expect(watchers.length).toBeGreaterThan(0);
        const truth = (nb: string, arc: Arc) => nb === node && mine.some((id) => inArc(id, arc));
        for (const self of mine) if (isWatcherOf({ self, reaches: truth }, node, epoch, 2)) expect(watchers).toContain(self);
      }
    }
  });

  it('a neighbour that said nothing of its connections (peer exchange off, or not yet) is watched by every neighbour; one that said is watched by few', () => {
    const draw = rng(8);
    const all = Array.from({ length: 13 }, () => randomId(draw));
    const self = all[0]!;
    const neighbours = all.slice(1);
    const silentOne = neighbours[6]!;
    // Every neighbour but peer 7 named the whole mesh: this node watches few of them; peer 7 said nothing.
    const reaches = (nb: string, arc: Arc) => nb !== silentOne && all.some((id) => id !== nb && inArc(id, arc));
    for (let round = 0; round < 5; round++) {
      const h = harness(neighbours, 500, 2, rng(7), reaches, self);
      h.repair.got(message(), []);
      h.advance(250);
      h.repair.tick();
      expect(h.take().map((s) => s.to)).toContain(silentOne);
    }
    // Those that said: this node watches some of them in some epochs, never all of them in one.
    let told = 0;
    for (let epoch = 0; epoch < 20; epoch++) {
      const watched = neighbours.filter((nb) => nb !== silentOne && isWatcherOf({ self, reaches }, nb, epoch, 2));
      told += watched.length;
      expect(watched.length).toBeLessThan(neighbours.length - 1);
    }
    expect(told).toBeGreaterThan(0);
    // Peer exchange off: nobody said, and every neighbour is told.
    const off = harness(neighbours, 500, 2, rng(7), undefined, self);
    off.repair.got(message(), []);
    off.advance(250);
    off.repair.tick();
    expect(off.take()).toHaveLength(neighbours.length);
  });

  it('a watcher tells the node it watches of a copy it sent it itself (it may have been dropped there); other announcements spare it', () => {
    const neighbours = Array.from({ length: 6 }, (_, i) => peer(i + 1));
    // Every neighbour said nothing of its connections: this node watches all of them.
    const h = harness(neighbours, 500, 2, rng(6));
    const m = message();
    h.repair.got(m, [peer(1)], [peer(2), peer(3)]);
    h.advance(250);
    h.repair.tick();
    // Not peer 1 (it sent the copy); peers 2 and 3 were sent one, and are told still.
    expect(h.take().map((s) => s.to).sort()).toEqual(neighbours.slice(1).sort());
    // Peer 2 asks: the copy sent to it was dropped there. Answered, once.
    h.repair.onIWant(peer(2), encodeIds([Buffer.from(m.id, 'hex')]));
    h.repair.onIWant(peer(2), encodeIds([Buffer.from(m.id, 'hex')]));
    expect(h.take().map((s) => [s.kind, s.to])).toEqual([['data', peer(2)]]);
  });

  it('ids of one run share one frame per watched neighbour: under load, a few frames a run, not one per id', () => {
    const draw = rng(4);
    const neighbours = Array.from({ length: 20 }, () => randomId(draw));
    const self = randomId(draw);
    // A full mesh its peer exchange told of.
    const reaches = (nb: string, arc: Arc) => [self, ...neighbours].some((id) => id !== nb && inArc(id, arc));
    const h = harness(neighbours, 500, 2, draw, reaches, self);
    const start = 1_764_000_000_000_000; // the start of a 10-second epoch
    const messages = Array.from({ length: 50 }, (_, i) => message(start + i * 1000));
    for (const m of messages) h.repair.got(m, []);
    h.advance(250);
    h.repair.tick();
    const out = h.take();
    expect(out.length).toBeGreaterThan(0);
    expect(out.length).toBeLessThan(neighbours.length);
    for (const frame of out) expect(ids(frame.body).sort()).toEqual(messages.map((m) => m.id).sort());
  });

  it("with peer exchange, a node watches a neighbour only if it is the neighbour's first connection clockwise from the epoch's point in that third", () => {
    const neighbours = Array.from({ length: 12 }, (_, i) => peer(i + 1));
    // Each neighbour is connected all round the ring: someone comes before this node, so nobody is watched.
    const crowded = harness(neighbours, 500, 2, rng(5), () => true);
    crowded.repair.got(message(), []);
    crowded.advance(250);
    crowded.repair.tick();
    expect(crowded.take()).toHaveLength(0);
    // Each neighbour said its only connection is this node: this node is its watcher in every slot.
    const alone = harness(neighbours, 500, 2, rng(5), (_nb, arc) => inArc(peer(0), arc));
    alone.repair.got(message(), []);
    alone.advance(250);
    alone.repair.tick();
    expect(alone.take()).toHaveLength(12);
  });

  it('beside its watchers, a node tells REPAIR_RANDOM (6) neighbours at random not known to have a network broadcast: hostile watchers alone cannot keep it from a node', () => {
    const neighbours = Array.from({ length: 12 }, (_, i) => peer(i + 1));
    // Each neighbour is connected all round the ring: this node watches nobody, so all it tells are the random ones.
    const h = harness(neighbours, 500, 2, rng(5), () => true, peer(0), REPAIR_RANDOM);
    h.repair.got(message(), [peer(1)]);
    h.advance(250);
    h.repair.tick();
    const to = h.take().map((s) => s.to);
    expect(new Set(to).size).toBe(REPAIR_RANDOM);
    expect(to).not.toContain(peer(1)); // it sent the copy
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
    const messages = Array.from({ length: 50 }, () => message());
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

describe('repair of events for subscribers: random and designated announcers, not watchers (broadcast-repair.ts)', () => {
  it('announces an id to at most `fanout` neighbours, drawn at random among those not known to hold it (a copy this node sent spares one)', () => {
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    const chosen: string[][] = [];
    for (const seed of [1, 2]) {
      const h = harness(neighbours, 500, 6, rng(seed));
      const m = event();
      h.repair.got(m, [peer(1)], [peer(2)]);
      h.advance(250);
      h.repair.tick();
      const out = h.take();
      expect(out.every((s) => s.kind === 'have' && ids(s.body)[0] === m.id)).toBe(true);
      const to = out.map((s) => s.to);
      expect(new Set(to).size).toBe(6);
      expect(to).not.toContain(peer(1)); // it came from them
      expect(to).not.toContain(peer(2)); // it went to them: as before watchers, only a watcher tells a node of a copy it sent
      chosen.push(to.sort());
    }
    expect(chosen[0]).not.toEqual(chosen[1]); // a draw, not a fixed choice
  });

  it('waits half an interval (its grace before watchers), where a network broadcast waits 0.3 of one', () => {
    const neighbours = Array.from({ length: 4 }, (_, i) => peer(i + 1));
    const h = harness(neighbours, 500, 6, rng(2));
    const e = event();
    const m = message();
    h.repair.got(e, []);
    h.repair.got(m, []);
    h.advance(200);
    h.repair.tick();
    // Peer exchange off (no `reaches`): every neighbour watches every other, so the network broadcast goes to all 4.
    expect(h.take().flatMap((s) => ids(s.body))).toEqual([m.id, m.id, m.id, m.id]);
    h.advance(50);
    h.repair.tick();
    expect(h.take().flatMap((s) => ids(s.body))).toEqual([e.id, e.id, e.id, e.id]);
  });

  it('a copy of its own from the origin (its fanout: a point arc) is not taken for a failed tree: no announcement to all at once', () => {
    const neighbours = Array.from({ length: 6 }, (_, i) => peer(i + 1));
    const h = harness(neighbours, 500, 1, rng(3), () => true);
    const e = event();
    h.repair.got({ ...e, arc: pointArc(peer(0)) }, [peer(1)]);
    expect(h.take()).toEqual([]);
    // A network broadcast's copy for this node alone that it did not ask for is: the tree failed here, all are told.
    const m = message();
    h.repair.got({ ...m, arc: pointArc(peer(0)) }, [peer(1)]);
    expect(h.take().map((s) => s.to).sort()).toEqual(neighbours.slice(1).sort());
  });

  it('ids of one tick go to the same few neighbours: under load, fanout frames a tick, not one per neighbour', () => {
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    const h = harness(neighbours, 500, 6, rng(3));
    const messages = Array.from({ length: 50 }, () => event());
    for (const m of messages) h.repair.got(m, []);
    h.advance(250);
    h.repair.tick();
    const out = h.take();
    expect(out).toHaveLength(6);
    for (const frame of out) expect(ids(frame.body).sort()).toEqual(messages.map((m) => m.id).sort());
  });

  it('designated announcers change with the epoch of the events, not per id: ids of one epoch share their frames', () => {
    const random = rng(7);
    const neighbours = Array.from({ length: 20 }, (_, i) => peer(i + 1));
    // Each neighbour has 3 other connections somewhere on the ring (what its peer exchange said).
    const theirs = new Map(neighbours.map((nb) => [nb, Array.from({ length: 3 }, () => randomId(random))]));
    const reaches = (nb: string, arc: Arc) => theirs.get(nb)!.some((id) => inArc(id, arc));
    const start = 1_764_000_000_000_000; // the start of a 10-second epoch
    const sent = (timestamps: number[]) => {
      const h = harness(neighbours, 500, 6, rng(8), reaches);
      const messages = timestamps.map((t) => event(t));
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

  it("also tells each neighbour for which it is the designated announcer (first of the neighbour's connections clockwise from a point of its id and the epoch), beyond the fanout", () => {
    const neighbours = Array.from({ length: 12 }, (_, i) => peer(i + 1));
    // Peer exchange says nothing of the neighbours' connections: this node may be first for each of them, so all are told.
    const blind = harness(neighbours, 500, 1, rng(5), () => false);
    blind.repair.got(event(), []);
    blind.advance(250);
    blind.repair.tick();
    expect(blind.take()).toHaveLength(12);
    // Each neighbour is connected all round the ring: someone comes before this node, so the fanout alone is told.
    const crowded = harness(neighbours, 500, 1, rng(5), () => true);
    crowded.repair.got(event(), []);
    crowded.advance(250);
    crowded.repair.tick();
    expect(crowded.take()).toHaveLength(1);
    // The arc asked about ends at this node and starts at a point that depends on the neighbour (and the epoch).
    const asked: Arc[] = [];
    const h = harness([peer(1), peer(2)], 500, 0, rng(6), (_neighbour, arc) => (asked.push(arc), true));
    h.repair.got(event(), []);
    h.advance(250);
    h.repair.tick();
    expect(asked.map((a) => a.to)).toEqual([peer(0), peer(0)]);
    expect(asked[0]!.from).not.toBe(asked[1]!.from);
  });

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
    const repair = new BroadcastRepair(host, { intervalMs: 500, cacheBytes: 1 << 20, fanout: 0, randomAnnouncers: 0 }, () => now, rng(1));
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

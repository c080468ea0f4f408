import { describe, expect, it } from 'vitest';
import { BroadcastBudget } from '../../src/broadcast/budget.js';
import { createNetworkMessage, decodeNetworkMessage, draftNetworkMessage, encodeNetworkMessage, signBatch, verifyNetworkMessage } from '../../src/broadcast/codec.js';
import { ReplayWindow, MIN_WINDOW_MS } from '../../src/broadcast/replay-window.js';
import { OriginKeys, isSmallOrderKey } from '../../src/broadcast/signature.js';
import { loadIdentity } from '../../src/common/identity.js';
import { BucketTable, TokenBucket } from '../../src/common/token-bucket.js';
import { BanList } from '../../src/trust/ban-list.js';
import { BAN_SCORE, PeerScores, SCORE_HALF_LIFE_MS } from '../../src/trust/peer-score.js';
import { decodePayload } from '../../src/wire/codec.js';
import { Encoding, HEADER_BYTES } from '../../src/wire/constants.js';
import { ControlType, decodeControl, encodeControl } from '../../src/wire/control.js';
import { BATCHED_BROADCAST, SIGNED_BROADCAST } from './golden-vectors.js';

/** The trust policies alone, on an injected clock (the socket tests cover them end to end). */
function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('ReplayWindow', () => {
  const sig = Buffer.alloc(64);

  it('accepts timestamps inside [now − window, now + skew] and after its start, and refuses the rest', () => {
    const c = clock();
    const w = new ReplayWindow(10, 1000, 100, c.now);
    expect(w.check(c.now() - 1, 'o')).toBe('stale'); // dated before the start: it may have been accepted before a restart
    expect(w.check(c.now(), 'o')).toBe('ok');
    c.advance(5000);
    expect(w.check(c.now(), 'o')).toBe('ok');
    expect(w.check(c.now() - 1000, 'o')).toBe('ok');
    expect(w.check(c.now() - 1001, 'o')).toBe('stale');
    expect(w.check(c.now() + 100, 'o')).toBe('ok');
    expect(w.check(c.now() + 101, 'o')).toBe('future');
  });

  it('remembers an id until its timestamp leaves the window, then forgets it (its copies are then stale)', () => {
    const c = clock();
    const w = new ReplayWindow(10, 1000, 100, c.now);
    c.advance(1);
    w.add('a', 'o', c.now(), sig);
    c.advance(999);
    expect(w.get('a')).toBeDefined();
    c.advance(2);
    expect(w.get('a')).toBeUndefined();
    expect(w.size).toBe(0);
  });

  it('when full, forgets an id older than MIN_WINDOW_MS and raises the floor to it: nothing forgotten comes back', () => {
    const c = clock();
    const w = new ReplayWindow(3, 60_000, 1000, c.now);
    c.advance(60_000);
    // Inserted out of timestamp order: the heap, not the insertion order, decides.
    w.add('t3', 'a', c.now() - 30_000, sig);
    w.add('t1', 'b', c.now() - 50_000, sig);
    w.add('t2', 'c', c.now() - 40_000, sig);
    expect(w.add('new', 'd', c.now(), sig)).toBeDefined();
    expect(w.get('t1')).toBeUndefined();
    expect(w.floor).toBe(c.now() - 50_000);
    expect(w.check(c.now() - 50_000, 'b')).toBe('stale');
    expect(w.check(c.now() - 49_999, 'b')).toBe('ok');
    for (const id of ['t2', 't3', 'new']) expect(w.get(id)).toBeDefined();
  });

  it('with only young ids, an origin that floods pushes out its own (its floor rises), never the window shrunk', () => {
    const c = clock();
    const w = new ReplayWindow(3, 60_000, 5000, c.now);
    c.advance(60_000);
    w.add('h1', 'honest', c.now() - 100, sig);
    w.add('x1', 'flooder', c.now() + 4000, sig);
    w.add('x2', 'flooder', c.now() + 4001, sig);
    expect(w.add('x3', 'flooder', c.now() + 4002, sig)).toBeDefined();
    expect(w.get('x1')).toBeUndefined();
    expect(w.check(c.now() + 4000, 'flooder')).toBe('stale'); // x1 cannot come back
    expect(w.check(c.now() + 4003, 'flooder')).toBe('ok');
    expect(w.get('h1')).toBeDefined(); // the honest id stays
    expect(w.check(c.now(), 'honest')).toBe('ok'); // and the window did not move
    expect(w.add('h2', 'honest', c.now(), sig)).toBeDefined(); // the flooder holds more (2): it pays again, honest keeps h1
    expect(w.get('h1')).toBeDefined();
    expect(w.get('x2')).toBeUndefined();
    c.advance(4002 + MIN_WINDOW_MS + 1);
    expect(w.add('s1', 'sybil', c.now(), sig)).toBeDefined(); // once ids are older than MIN_WINDOW_MS, room is made
    expect(w.floor).toBeLessThanOrEqual(c.now() - MIN_WINDOW_MS);
  });

  it('with only young ids, a new origin\'s id is let in at the cost of the origin holding the most (issue 22: a flood of a few keys dropped the broadcasts of rare and new origins)', () => {
    const c = clock();
    const w = new ReplayWindow(4, 60_000, 5000, c.now);
    c.advance(60_000);
    w.add('h1', 'honest', c.now(), sig);
    for (let i = 1; i <= 3; i++) w.add(`x${i}`, 'flooder', c.now() + i, sig);
    expect(w.add('n1', 'newcomer', c.now() + 10, sig)).toBeDefined();
    expect(w.get('x1')).toBeUndefined(); // the flooder's oldest
    expect(w.check(c.now() + 1, 'flooder')).toBe('stale'); // x1 cannot come back
    expect(w.check(c.now() + 4, 'flooder')).toBe('ok'); // its new ones still pass
    for (const id of ['h1', 'x2', 'x3', 'n1']) expect(w.get(id)).toBeDefined();
    expect(w.add('h2', 'honest', c.now() + 11, sig)).toBeDefined(); // the flooder (2) still pays for honest (1)
    expect(w.get('x2')).toBeUndefined();
    expect(w.get('h1')).toBeDefined();
    // Every origin at one id: nobody floods, the newcomer's origin holds none, and it is refused.
    expect(w.add('h3', 'honest', c.now() + 12, sig)).toBeDefined(); // honest (2, as many as any) pushes out its own h1
    expect(w.get('h1')).toBeUndefined();
    expect(w.add('n2', 'newcomer', c.now() + 13, sig)).toBeDefined(); // honest at 2 pays: h2 goes
    expect(w.get('h2')).toBeUndefined();
    expect(w.add('s1', 'sybil', c.now() + 14, sig)).toBeDefined(); // newcomer at 2 pays
    const held = ['x3', 'h3', 'n1', 'n2', 's1'].filter((id) => w.get(id) !== undefined);
    expect(held).toHaveLength(4);
    expect(w.add('s2', 'other', c.now() + 15, sig)).toBeUndefined(); // four origins at one id each: refused
  });

  it('keeps track of the origin holding the most ids as ids come and go (it pays at once, whatever came before)', () => {
    const c = clock();
    const w = new ReplayWindow(6, 1000, 5000, c.now);
    c.advance(10);
    w.add('a1', 'a', c.now(), sig);
    w.add('a2', 'a', c.now(), sig);
    w.add('a3', 'a', c.now(), sig);
    w.add('b1', 'b', c.now() + 500, sig);
    w.add('b2', 'b', c.now() + 500, sig);
    c.advance(1001); // a's ids left the window: b (2) holds the most now
    w.add('c1', 'c', c.now(), sig);
    w.add('c2', 'c', c.now(), sig);
    w.add('c3', 'c', c.now(), sig);
    w.add('d1', 'd', c.now(), sig); // 6: b2 b1 c1 c2 c3 d1 (b's timestamps are oldest but young)
    expect(w.size).toBe(6);
    expect(w.add('e1', 'e', c.now(), sig)).toBeDefined();
    expect(w.get('c1')).toBeUndefined(); // c (3) pays, not b (2) whose ids are older
    expect(w.get('b1')).toBeDefined();
  });

  it('forgets an origin\'s raised floor only once it has left the window', () => {
    const c = clock();
    const w = new ReplayWindow(1, 1000, 0, c.now);
    c.advance(10);
    w.add('x1', 'o', c.now(), sig);
    c.advance(1);
    w.add('x2', 'o', c.now(), sig); // pushes out x1: floor of o = x1's timestamp
    c.advance(500);
    expect(w.check(c.now() - 501, 'o')).toBe('stale');
    c.advance(600); // both left the window
    expect(w.get('x2')).toBeUndefined();
    expect(w.check(c.now(), 'o')).toBe('ok');
  });
});

describe('token buckets', () => {
  it('refill at their rate up to their burst', () => {
    const c = clock();
    const b = new TokenBucket(10, 20, c.now());
    for (let i = 0; i < 20; i++) expect(b.take(1, c.now())).toBe(true);
    expect(b.take(1, c.now())).toBe(false);
    c.advance(100); // one token
    expect(b.take(1, c.now())).toBe(true);
    expect(b.take(1, c.now())).toBe(false);
    c.advance(60_000);
    expect(b.isFull(c.now())).toBe(true);
  });

  it('a bucket table stays within its size, forgetting refilled buckets first', () => {
    const c = clock();
    const t = new BucketTable(1, 2, 3, c.now);
    t.take('busy', 2);
    t.take('idle1', 1);
    t.take('idle2', 1);
    c.advance(1500); // idle buckets refill; "busy" holds 1.5 of 2
    t.take('new', 1);
    expect(t.size).toBeLessThanOrEqual(3);
    expect(t.take('busy', 1)).toBe(true);
    expect(t.take('busy', 1)).toBe(false); // its state survived the eviction
  });

  it('the originator holds itself to its burst; receivers allow each origin twice that', () => {
    const c = clock();
    const budget = new BroadcastBudget(
      { originRate: 100, originBurst: 200, originBytesPerSec: 1e6, neighbourRate: 1000, neighbourBytesPerSec: 1e7, maxFrameBytes: 4096, unknownOriginRate: 20 },
      c.now,
    );
    let own = 0;
    while (budget.takeOwn(10)) own++;
    expect(own).toBe(200);
    let theirs = 0;
    while (budget.takeOrigin('o', 10)) theirs++;
    expect(theirs).toBe(400);
    expect(budget.originAllowance).toBe(400);
  });

  const limits = { originRate: 100, originBurst: 200, originBytesPerSec: 1e6, neighbourRate: 1000, neighbourBytesPerSec: 1e7, maxFrameBytes: 4096, unknownOriginRate: 20 };

  /** `rate` drops' worth a second for `ms`, the origin of each from `origin(i)`: the first call that charges (its time), or none. */
  function overFor(budget: BroadcastBudget, c: ReturnType<typeof clock>, peer: string, rate: number, ms: number, origin: (i: number) => string): number | undefined {
    let charged: number | undefined;
    for (let i = 0, t = 0; t < ms; i++, t += 1000 / rate) {
      if (budget.takeUnknownOrigin(peer, origin(i), false).sustained && charged === undefined) charged = t;
      c.advance(1000 / rate);
    }
    return charged;
  }

  it('unknown origins: 5 s worth at once, gossip costs 5, per neighbour', () => {
    const c = clock();
    const budget = new BroadcastBudget(limits, c.now);
    let taken = 0;
    while (budget.takeUnknownOrigin('x', 'k', false).ok) taken++;
    expect(taken).toBe(100);
    c.advance(250); // 5 tokens: one gossip broadcast
    expect(budget.takeUnknownOrigin('x', 'k', true).ok).toBe(true);
    expect(budget.takeUnknownOrigin('x', 'k', false).ok).toBe(false);
    expect(budget.takeUnknownOrigin('y', 'k', true).ok).toBe(true);
    expect(budget.throttled('x')).toBe(false);
  });

  it('unknown origins: a neighbour introducing new keys past the budget is throttled and charged (once a second) after half a second, and a pause clears it', () => {
    const c = clock();
    const budget = new BroadcastBudget(limits, c.now);
    // 900 a second, a new key every 10: its burst (100) is spent in about 0.11 s; from then on over.
    const charged = overFor(budget, c, 'x', 900, 1000, (i) => `k${Math.floor(i / 10)}`);
    // Half a second over at least, and more than the budget's worth (100 + 20/s) dropped past its 3 main keys: by 0.7 s.
    expect(charged).toBeGreaterThanOrEqual(600);
    expect(charged).toBeLessThanOrEqual(700);
    expect(budget.throttled('x')).toBe(true);
    c.advance(100);
    expect(budget.takeUnknownOrigin('x', 'new', true)).toEqual({ ok: false, sustained: false }); // charged at most once a second
    // A throttled neighbour's frames cost 4: 2 000 of budget holds 500 of them.
    let frames = 0;
    while (budget.takeNeighbour('x', 10)) frames++;
    expect(frames).toBe(500);
    c.advance(10_000);
    expect(budget.throttled('x')).toBe(false);
    expect(budget.takeUnknownOrigin('x', 'k', false).ok).toBe(true); // refilled, and the streak is over
  });

  it('unknown origins: a relay over the budget with 3 origins, at any rate, is dropped past it, never throttled nor charged', () => {
    const c = clock();
    const budget = new BroadcastBudget(limits, c.now);
    let taken = 0;
    // 90 a second for 20 s, from 3 origins in turn (an honest relay of its neighbours' own broadcasts, peer exchange off).
    for (let i = 0; i < 1800; i++) {
      const r = budget.takeUnknownOrigin('h', `o${i % 3}`, false);
      if (r.ok) taken++;
      expect(r.sustained).toBe(false);
      c.advance(1000 / 90);
    }
    expect(taken).toBeGreaterThanOrEqual(100 + 19 * 20);
    expect(taken).toBeLessThanOrEqual(100 + 20 * 20 + 1);
    expect(budget.throttled('h')).toBe(false);
  });

  it('unknown origins: one origin at 90/s beside a new key in every 6 broadcasts (what a relay passes on of throwaway keys within its 80%): never charged', () => {
    const c = clock();
    const budget = new BroadcastBudget(limits, c.now);
    // 106 a second for 20 s: 90 of one origin, 16 of keys never seen again (its node-wide relays of unknown origins).
    expect(overFor(budget, c, 'h', 106, 20_000, (i) => (i % 106 < 90 ? 'a' : `k${i}`))).toBeUndefined();
    expect(budget.throttled('h')).toBe(false);
    // New keys at 60 a second beside it: more than the budget's worth from others (about 52 of them dropped a second), charged.
    const charged = overFor(budget, c, 'x', 150, 20_000, (i) => (i % 150 < 90 ? 'a' : `k${i}`));
    expect(charged).toBeGreaterThan(2000);
    expect(charged).toBeLessThan(6000);
  });

  it('unknown origins: a neighbour over the budget with one origin for a minute banks nothing: new keys after it are charged within a second and a half', () => {
    const c = clock();
    const budget = new BroadcastBudget(limits, c.now);
    expect(overFor(budget, c, 'x', 90, 60_000, () => 'a')).toBeUndefined();
    const charged = overFor(budget, c, 'x', 900, 3000, (i) => `k${Math.floor(i / 10)}`);
    expect(charged).toBeLessThanOrEqual(1500);
  });
});

describe('PeerScores and BanList', () => {
  it('one invalid signature reaches the ban score; scores decay by half per half-life', () => {
    const c = clock();
    const s = new PeerScores(100, c.now);
    expect(s.penalize('a', 'invalid-signature')).toBe(BAN_SCORE);
    s.penalize('b', 'rejected');
    c.advance(SCORE_HALF_LIFE_MS);
    expect(s.score('b')).toBeCloseTo(-5);
    expect(s.penalize('b', 'protocol-error')).toBeCloseTo(-55);
  });

  it('bans expire, never cover the shared loopback address, and unban lifts an id with its IP', () => {
    const c = clock();
    const bans = new BanList(100, c.now);
    bans.add({ peerId: 'x', ip: '10.0.0.7', durationMs: 1000, reason: 'test' });
    bans.add({ peerId: 'y', ip: '127.0.0.1', durationMs: 1000, reason: 'test' });
    expect(bans.ip('10.0.0.7')?.peerId).toBe('x');
    expect(bans.ip('127.0.0.1')).toBeUndefined();
    expect(bans.remove('x')).toBe(true);
    expect(bans.ip('10.0.0.7')).toBeUndefined();
    c.advance(1001);
    expect(bans.peer('y')).toBeUndefined();
    expect(bans.list()).toEqual([]);
  });
});

describe('signed broadcast codec', () => {
  it('round-trips, derives the id and origin from the signed bytes, and verifies only the genuine signature', () => {
    const identity = loadIdentity('22'.repeat(32));
    const keys = new OriginKeys();
    const m = createNetworkMessage(identity, { timestampUs: 1_764_000_000_123_456, encoding: Encoding.Utf8, topic: 'news', payload: Buffer.from('hi'), strategy: 'raintree' });
    const back = decodeNetworkMessage(encodeNetworkMessage(m), keys);
    expect(back).toMatchObject({ id: m.id, origin: identity.peerId, timestampUs: 1_764_000_000_123_456, topic: 'news', strategy: 'raintree' });
    expect(back.payload.toString()).toBe('hi');
    expect(verifyNetworkMessage(back, keys)).toBe('signature');
    const tampered = Buffer.from(encodeNetworkMessage(m));
    tampered[tampered.length - 1] ^= 1;
    const t = decodeNetworkMessage(tampered, keys);
    expect(t.id).not.toBe(m.id);
    expect(verifyNetworkMessage(t, keys)).toBe('invalid');
    // A key that is not a curve point is just an invalid signature, never a throw.
    expect(verifyNetworkMessage({ ...back, originKey: Buffer.alloc(32, 0xff) }, keys)).toBe('invalid');
    // A small-order "key" (here the identity point) verifies trivial signatures for any message: refused.
    const identityPoint = Buffer.alloc(32);
    identityPoint[0] = 1;
    expect(isSmallOrderKey(identityPoint)).toBe(true);
    expect(verifyNetworkMessage({ ...back, originKey: identityPoint, signature: Buffer.concat([identityPoint, Buffer.alloc(32)]) }, keys)).toBe('invalid');
    expect(isSmallOrderKey(identity.publicKeyRaw)).toBe(false);
  });

  it("keeps a frame's parts as views only when the frame has memory of its own (assembled from several reads), else copies them", () => {
    const identity = loadIdentity('22'.repeat(32));
    const keys = new OriginKeys();
    const m = createNetworkMessage(identity, { timestampUs: 1_764_000_000_123_456, encoding: Encoding.Binary, topic: 'big', payload: Buffer.alloc(16 * 1024, 7), strategy: 'raintree' });
    const body = encodeNetworkMessage(m);
    // A frame assembled from several reads: a buffer of exactly the frame (the control type byte, then the body).
    const assembled = Buffer.allocUnsafeSlow(1 + body.length);
    body.copy(assembled, 1);
    const viewed = decodeNetworkMessage(assembled.subarray(1), keys);
    expect(viewed.signed.buffer).toBe(assembled.buffer);
    expect(verifyNetworkMessage(viewed, keys)).toBe('signature');
    // Frames inside a larger read chunk: copied out, so that the message keeps none of the chunk.
    const chunk = Buffer.allocUnsafeSlow(3 * (1 + body.length));
    body.copy(chunk, 1);
    const copied = decodeNetworkMessage(chunk.subarray(1, 1 + body.length), keys);
    expect(copied.signed.buffer).not.toBe(chunk.buffer);
    expect(copied.signature.buffer).not.toBe(chunk.buffer);
    expect(copied.id).toBe(viewed.id);
    chunk.fill(0);
    expect(copied.payload.equals(Buffer.alloc(16 * 1024, 7))).toBe(true);
  });

  it('the origin signs its strategy: a gossip broadcast has another id, and a relay part that disagrees is a protocol error', () => {
    const identity = loadIdentity('22'.repeat(32));
    const keys = new OriginKeys();
    const fields = { timestampUs: 1_764_000_000_123_456, encoding: Encoding.Utf8, topic: 'news', payload: Buffer.from('hi') };
    const tree = createNetworkMessage(identity, { ...fields, strategy: 'raintree' });
    const gossip = createNetworkMessage(identity, { ...fields, strategy: 'gossip' });
    expect(gossip.id).not.toBe(tree.id);
    expect(decodeNetworkMessage(encodeNetworkMessage(gossip), keys)).toMatchObject({ id: gossip.id, strategy: 'gossip', encoding: Encoding.Utf8 });
    // A relay turning either into the other: the relay byte no longer matches what the origin signed.
    expect(() => decodeNetworkMessage(encodeNetworkMessage({ ...tree, strategy: 'gossip' }), keys)).toThrow(/strategy gossip is not the one its origin signed/);
    expect(() => decodeNetworkMessage(encodeNetworkMessage({ ...gossip, strategy: 'raintree' }), keys)).toThrow(/strategy raintree is not the one its origin signed/);
  });

  it('an event for subscribers only is signed as such: a relay cannot turn it into a broadcast to every node, nor a broadcast into one', () => {
    const identity = loadIdentity('23'.repeat(32));
    const keys = new OriginKeys();
    const fields = { timestampUs: 1_764_000_000_123_456, encoding: Encoding.Json, topic: 'orders.created', payload: Buffer.from('{"n":1}') };
    const tree = createNetworkMessage(identity, { ...fields, strategy: 'raintree' });
    const event = createNetworkMessage(identity, { ...fields, strategy: 'subscribers' });
    expect(new Set([tree.id, event.id]).size).toBe(2);
    expect(decodeNetworkMessage(encodeNetworkMessage(event), keys)).toMatchObject({ id: event.id, strategy: 'subscribers', encoding: Encoding.Json });
    for (const other of ['raintree', 'gossip'] as const) {
      expect(() => decodeNetworkMessage(encodeNetworkMessage({ ...event, strategy: other }), keys)).toThrow(new RegExp(`strategy ${other} is not the one its origin signed`));
    }
    expect(() => decodeNetworkMessage(encodeNetworkMessage({ ...tree, strategy: 'subscribers' }), keys)).toThrow(/strategy subscribers is not the one its origin signed/);
  });
});

describe('golden vector: a signed network broadcast (docs/wire-format.md)', () => {
  it('decodes to its id and origin, verifies, and signing the same fields again gives the same bytes', () => {
    const frame = Buffer.from(SIGNED_BROADCAST.hex, 'hex');
    const control = decodeControl(frame.subarray(HEADER_BYTES));
    expect(control.type).toBe(ControlType.NetworkBroadcast);
    const keys = new OriginKeys();
    const m = decodeNetworkMessage((control as { body: Buffer }).body, keys);
    expect(m).toMatchObject({ id: SIGNED_BROADCAST.id, origin: SIGNED_BROADCAST.peerId, topic: 'news', timestampUs: 1_764_000_000_000_000, hops: 0 });
    expect(decodePayload(m.encoding, m.payload)).toEqual({ a: 1 });
    expect(verifyNetworkMessage(m, keys)).toBe('signature');
    const again = createNetworkMessage(loadIdentity(SIGNED_BROADCAST.seed), { timestampUs: 1_764_000_000_000_000, encoding: Encoding.Json, topic: 'news', payload: Buffer.from('{"a":1}'), strategy: 'raintree' });
    expect(Buffer.concat(encodeControl({ type: ControlType.NetworkBroadcast, body: encodeNetworkMessage(again) }).chunks).toString('hex')).toBe(SIGNED_BROADCAST.hex);
  });

  it('a message of a batch of three: its proof leads to the root the origin signed, and signing the batch again gives the same bytes', () => {
    const frame = Buffer.from(BATCHED_BROADCAST.hex, 'hex');
    const keys = new OriginKeys();
    const m = decodeNetworkMessage((decodeControl(frame.subarray(HEADER_BYTES)) as { body: Buffer }).body, keys);
    expect(m).toMatchObject({ id: BATCHED_BROADCAST.id, topic: 'news', timestampUs: 1_764_000_000_000_002 });
    expect(verifyNetworkMessage(m, keys)).toBe('signature');
    const identity = loadIdentity(BATCHED_BROADCAST.seed);
    const batch = [1, 2, 3].map((a, i) =>
      draftNetworkMessage(identity, { timestampUs: 1_764_000_000_000_000 + i, encoding: Encoding.Json, topic: 'news', payload: Buffer.from(`{"a":${a}}`), strategy: 'raintree' }),
    );
    signBatch(identity, batch);
    expect(Buffer.concat(encodeControl({ type: ControlType.NetworkBroadcast, body: encodeNetworkMessage(batch[2]!) }).chunks).toString('hex')).toBe(BATCHED_BROADCAST.hex);
    // Its batch-mates, checked after it, skip Ed25519: the batch is remembered as verified.
    expect(verifyNetworkMessage(batch[0]!, keys)).toBe('batch');
    expect(verifyNetworkMessage(batch[1]!, keys)).toBe('batch');
  });
});

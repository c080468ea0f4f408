import { afterEach, describe, expect, it, vi } from 'vitest';
import { draftNetworkMessage, signBatch, type NetworkMessage } from '../../src/broadcast/codec.js';
import { DEFAULTS } from '../../src/common/defaults.js';
import { P2PRateLimitError } from '../../src/common/errors.js';
import { loadIdentity, type Identity } from '../../src/common/identity.js';
import type { BroadcastMeta } from '../../src/common/types.js';
import { P2PSocket } from '../../src/connection/socket.js';
import type { PeerOptions } from '../../src/node/peer-options.js';
import type { Peer } from '../../src/node/peer.js';
import { Encoding } from '../../src/wire/constants.js';
import { GoodbyeReason } from '../../src/wire/control.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 21: an origin signs the network broadcasts it starts in one synchronous run as one batch (one
 * Ed25519 signature over a Merkle root, src/broadcast/merkle.ts), and every message still travels, is
 * checked and is judged alone. Real nodes on 127.0.0.1 over plaintext TCP (the batches are above the
 * channel); hostile relays and origins are hand-driven peers.
 */

interface Heard {
  node: string;
  topic: string;
  data: unknown;
  meta: BroadcastMeta;
}

const open: Peer[] = [];
const raws: RawPeer[] = [];
let heard: Heard[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
  heard = [];
});

async function node(options: PeerOptions = {}): Promise<Peer> {
  const peer = await startEchoPeer({ tls: false, peerExchange: false, ...options }, open);
  peer.setHandler({
    onEvent: (_from, topic, data, meta) => void (meta && heard.push({ node: peer.id, topic, data, meta })),
    onRequest: (_p, _t, data, reply) => (reply.next(data), reply.complete()),
  });
  return peer;
}

async function link(a: Peer, b: Peer): Promise<void> {
  await a.connect(`${b.id}@${b.address()}`);
  await waitFor(() => b.peers().some((p) => p.id === a.id), 3000, 'both ends to register the connection');
}

async function raw(to: Peer, identity?: Identity): Promise<RawPeer> {
  const r = await RawPeer.open(to.address()!, { tls: false, ...(identity ? { identity } : {}) });
  raws.push(r);
  await waitFor(() => to.peers().some((p) => p.id === r.identity.peerId), 3000, 'the raw peer to be admitted');
  return r;
}

/** `data`, each a broadcast on `topic` by `identity`, signed as one batch as an origin's loop would be. */
function batch(identity: Identity, data: unknown[], topic = 'news'): NetworkMessage[] {
  const now = Date.now() * 1000;
  const messages = data.map((d, i) =>
    draftNetworkMessage(identity, { timestampUs: now + i, encoding: Encoding.Json, topic, payload: Buffer.from(JSON.stringify(d)), strategy: 'raintree' }),
  );
  signBatch(identity, messages);
  return messages;
}

const heardOn = (peer: Peer, topic = 'news') => heard.filter((h) => h.node === peer.id && h.topic === topic).map((h) => h.data);
const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));
const countOf = (m: NetworkMessage) => m.proof.readUInt16BE(0);

describe('batched origin signatures (issue 21)', () => {
  it('a lone broadcast leaves at once, in the same turn of the event loop, alone in its batch; a loop\'s broadcasts share one signature, awaited or not', async () => {
    const o = await node();
    const r = await raw(o);
    // The frame trace: each network broadcast frame O queues, and whether any timer or immediate had run by then.
    let macrotaskRan = false;
    const trace: boolean[] = [];
    const send = P2PSocket.prototype.sendNetworkBroadcast;
    vi.spyOn(P2PSocket.prototype, 'sendNetworkBroadcast').mockImplementation(function (this: P2PSocket, body: Buffer) {
      trace.push(macrotaskRan);
      return send.call(this, body);
    });
    o.broadcast('news', 'alone', { scope: 'network' });
    setImmediate(() => (macrotaskRan = true));
    setTimeout(() => (macrotaskRan = true), 0);
    await new Promise((resolve) => setImmediate(resolve));
    // Queued before any timer or immediate could fire: no wait for a batch to fill.
    expect(trace).toEqual([false]);
    await waitFor(() => r.broadcasts().length === 1, 3000, 'the raw peer to get it');
    const [lone] = r.broadcasts();
    expect(countOf(lone!)).toBe(1);
    expect(lone!.proof.length).toBe(4); // leaf count 1, index 0, no sibling

    for (let i = 0; i < 10; i++) o.broadcast('news', `loop ${i}`, { scope: 'network' });
    await waitFor(() => r.broadcasts().length === 11, 3000, 'the loop\'s ten broadcasts');
    const loop = r.broadcasts().slice(1);
    expect(new Set(loop.map((m) => m.signature.toString('hex'))).size).toBe(1);
    expect(loop.map(countOf)).toEqual(Array(10).fill(10));
    expect(loop.map((m) => m.proof.readUInt16BE(2))).toEqual([...Array(10).keys()]);

    // A loop that awaits between its broadcasts (no I/O in between) is one batch too: the batch is signed in process.nextTick.
    for (let i = 0; i < 10; i++) await o.broadcast('news', `awaited ${i}`, { scope: 'network' });
    await waitFor(() => r.broadcasts().length === 21, 3000, 'the awaited ten');
    const awaited = r.broadcasts().slice(11);
    expect(new Set(awaited.map((m) => m.signature.toString('hex'))).size).toBe(1);
    expect(awaited.map(countOf)).toEqual(Array(10).fill(10));
  });

  it('broadcasts started just before close() leave before the goodbye', async () => {
    const o = await node();
    const r = await raw(o);
    for (let i = 0; i < 3; i++) o.broadcast('news', `last ${i}`, { scope: 'network' });
    await o.close();
    await r.whenClosed();
    expect(r.broadcasts().filter((m) => m.topic === 'news').map((m) => m.payload.toString())).toEqual(['last 0', 'last 1', 'last 2']);
    expect(r.goodbye()?.reason).toBe(GoodbyeReason.Normal);
  });

  it('a batch with one message a validator rejects: the others are delivered, and verified by one signature check', async () => {
    const [o, w] = [await node(), await node()];
    await link(o, w);
    w.setBroadcastValidator('orders', (b) => ((b.data as { n: number }).n === 2 ? 'reject' : 'accept'));
    const before = w.networkBroadcastStats();
    for (let n = 0; n < 5; n++) o.broadcast('orders', { n }, { scope: 'network' });
    await waitFor(() => heardOn(w, 'orders').length === 4 && w.networkBroadcastStats().dropped.rejected === 1, 3000, 'four of five delivered');
    await settle();
    expect(heardOn(w, 'orders')).toEqual([{ n: 0 }, { n: 1 }, { n: 3 }, { n: 4 }]);
    expect(heardOn(o, 'orders')).toHaveLength(5); // the origin's own handler gets its own
    const after = w.networkBroadcastStats();
    expect(after.dropped.rejected - before.dropped.rejected).toBe(1);
    // One Ed25519 check stood for the batch; the rest reached its root by their proofs.
    expect(after.verifiedByBatch - before.verifiedByBatch).toBeGreaterThanOrEqual(4);
  });

  it('a batch tampered in one message: that message is refused and its sender banned; its batch-mates, relayed by an honest peer, are delivered', async () => {
    const w = await node();
    const origin = loadIdentity();
    const genuine = batch(origin, [0, 1, 2, 3, 4].map((n) => ({ n })));
    // The hostile relay forwards the first two as they are, then the third with its payload altered (same
    // signature, same proof): the proof leads to another root, which the origin never signed.
    const hostile = await raw(w);
    const tampered = { ...genuine[2]!, ...batch(origin, [{ n: 9999 }])[0]!, signature: genuine[2]!.signature, proof: genuine[2]!.proof };
    hostile.sendBroadcast(genuine[0]!);
    hostile.sendBroadcast(genuine[1]!);
    hostile.sendBroadcast(tampered);
    await hostile.whenClosed();
    expect(hostile.goodbye()?.reason).toBe(GoodbyeReason.Banned);
    expect(hostile.goodbye()?.message).toMatch(/invalid-signature/);
    expect(w.bans().map((b) => b.peerId)).toEqual([hostile.identity.peerId]);
    expect(w.networkBroadcastStats().dropped.invalidSignature).toBe(1);
    await settle();
    expect(heardOn(w)).toEqual([{ n: 0 }, { n: 1 }]);
    // An honest relay brings the whole batch: the genuine third and the two the hostile one never sent.
    const honest = await raw(w);
    for (const m of genuine) honest.sendBroadcast(m);
    await waitFor(() => heardOn(w).length === 5, 3000, 'the honest batch-mates');
    expect(heardOn(w)).toEqual([0, 1, 2, 3, 4].map((n) => ({ n })));
    expect(heardOn(w).some((d) => (d as { n: number }).n === 9999)).toBe(false);
    expect(honest.closed).toBe(false);
    expect(w.networkBroadcastStats().dropped.invalidSignature).toBe(1);
  });

  it('a batch replayed after the replay window\'s cache is full is not delivered twice', async () => {
    // A small cache and no unknown-origin budget in the way (the attacker is the origin and a neighbour anyway).
    const w = await node({ broadcastCacheSize: 50, broadcastOriginBurst: 1000 });
    const attacker = await raw(w);
    const captured = batch(attacker.identity, [0, 1, 2, 3, 4].map((n) => ({ captured: n })));
    for (const m of captured) attacker.sendBroadcast(m);
    await waitFor(() => heardOn(w).length === 5, 3000, 'the first delivery');
    // 100 fresh ids in the attacker's own name, in two batches: once the cache is full, each pushes out its oldest.
    for (const half of [0, 1]) for (const m of batch(attacker.identity, Array.from({ length: 50 }, (_, i) => ({ fresh: half * 50 + i })))) attacker.sendBroadcast(m);
    await waitFor(() => heardOn(w).length === 105, 5000, 'the fresh ids');
    const before = w.networkBroadcastStats();
    for (const m of captured) attacker.sendBroadcast(m);
    // Replayed by another peer too: the window, not the connection, refuses it.
    const other = await raw(w);
    for (const m of captured) other.sendBroadcast(m);
    await waitFor(() => w.networkBroadcastStats().dropped.stale - before.dropped.stale === 10, 3000, 'both replays refused as stale');
    await settle();
    expect(heardOn(w).filter((d) => 'captured' in (d as object))).toHaveLength(5);
    expect(heardOn(w)).toHaveLength(105);
    expect(attacker.closed).toBe(false); // a replay is not proof of malice: any relay may be late
  });

  it('with default settings, 1 000 network broadcasts in a loop: none refused with P2PRateLimitError, all delivered everywhere', async () => {
    const peers = [await node(), await node(), await node(), await node()];
    for (let i = 0; i < peers.length; i++) for (let j = i + 1; j < peers.length; j++) await link(peers[i]!, peers[j]!);
    const [origin, ...others] = peers as [Peer, ...Peer[]];
    let refused = 0;
    for (let i = 0; i < 1000; i++) {
      try {
        origin.broadcast('news', i, { scope: 'network' });
      } catch (err) {
        if (!(err instanceof P2PRateLimitError)) throw err;
        refused++;
      }
    }
    expect(refused).toBe(0);
    await waitFor(() => others.every((p) => heardOn(p).length === 1000), 20_000, 'every node to deliver all 1 000');
    for (const p of others) {
      expect(new Set(heardOn(p)).size).toBe(1000);
      const { dropped, verified, verifiedByBatch } = p.networkBroadcastStats();
      expect(dropped.originBudget + dropped.neighbourBudget).toBe(0);
      // Batches of 64 (broadcastBatchMax): about 16 signature checks for 1 000 broadcasts, the rest by proof.
      expect(verifiedByBatch).toBeGreaterThan(verified);
    }
  }, 30_000);

  it('with default budgets, an origin flooding a neighbour with batched broadcasts is held to twice the burst plus the rate, and banned', async () => {
    const w = await node();
    const flooder = await raw(w);
    const { broadcastOriginRate: rate, broadcastOriginBurst: burst } = DEFAULTS;
    // Three times what a receiver allows at once (twice the burst), signed in batches of 64 as a loop would be.
    const total = 6 * burst;
    const frames: NetworkMessage[] = [];
    for (let i = 0; i < total; i += 64) frames.push(...batch(flooder.identity, Array.from({ length: Math.min(64, total - i) }, (_, k) => i + k)));
    const started = Date.now();
    for (const m of frames) flooder.sendBroadcast(m);
    await flooder.whenClosed(20_000);
    expect(flooder.goodbye()?.reason).toBe(GoodbyeReason.Banned);
    expect(flooder.goodbye()?.message).toMatch(/over-budget/);
    const seconds = (Date.now() - started) / 1000;
    await settle();
    const { dropped, verified, verifiedByBatch } = w.networkBroadcastStats();
    expect(dropped.originBudget).toBeGreaterThan(0);
    // Delivered: at most what a receiver allows an origin (twice the burst, and the rate while the flood lasted).
    expect(heardOn(w).length).toBeLessThanOrEqual(2 * burst + Math.ceil(rate * (seconds + 1)));
    expect(heardOn(w).length).toBeGreaterThanOrEqual(2 * burst);
    // And the batches cost one Ed25519 check each, not one per message.
    expect(verified).toBeLessThanOrEqual(Math.ceil(total / 64) + 1);
    expect(verifiedByBatch).toBeGreaterThan(verified);
  }, 30_000);
});

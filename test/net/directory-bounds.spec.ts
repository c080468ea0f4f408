import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { signRecord } from '../../src/directory/record.js';
import type { Peer } from '../../src/node/peer.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import type { RawPeer } from '../raw-peer.js';
import { digest, page, record } from '../directory-wire.js';

/**
 * Hostile review of the directory, two findings (docs/directory.md, Trust and Memory), each sent
 * exactly as the reviewer did by a hand-driven peer admitted by node V of a TLS mesh:
 * - a copy of V's own record signed by the attacker's key, whose seq would have pushed V's own
 *   next record past its decoder's bound (V's timers then threw: a process crash);
 * - throwaway-key records of deep wildcard patterns, which grew the subject index by one trie
 *   node a token (249 MiB of heap across two nodes for 8 records).
 */

const { mesh, raw } = broadcastMeshes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const MiB = 2 ** 20;

/** V's directory internals: this run's seq and its own record's bytes. */
const own = (p: Peer) => (p as unknown as { directory: { directory: { lastSeq: number; ownRecord: Buffer } } }).directory.directory;

/** Uncaught exceptions during a test (a throwing timer), which vitest would otherwise report only at the end. */
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);
afterEach(() => {
  process.off('uncaughtException', onUncaught);
  uncaught.length = 0;
});

describe('directory: a forged copy of a node\'s own record (H1)', () => {
  it("signed by the attacker's key, seq near 2^31 past issuedAt: refused before it moves seq, sender penalised; V keeps publishing, its timers and close() do not throw", async () => {
    process.on('uncaughtException', onUncaught);
    // TTL 3 s: V re-publishes every second, so the test sees its timer run after the attack.
    const nodes = await mesh(true, 3, { directoryTtlMs: 3000 });
    const [v, w] = nodes as [Peer, Peer];
    v.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
    await waitFor(() => w.handlers('orders.reserve', 'request').length === 1, 3000, 'the honest record');
    const hostile = await raw(true, v);
    const seqBefore = own(v).lastSeq;
    const issuedAt = Date.now() + 4900; // within broadcastClockSkewMs (5 s)
    const forged = record(v.identity, { seq: issuedAt + 2 ** 31 - 1, issuedAt }, hostile.identity);
    digest(hostile);
    page(hostile, [forged]);
    await waitFor(() => v.directoryStats().refused.badSignature === 1, 2000, 'the refusal');
    expect(v.peerScore(hostile.identity.peerId)).toBeLessThan(0);
    expect(own(v).lastSeq).toBeLessThan(Date.now() + 1000); // was issuedAt + 2^31 − 1 (24 days ahead)
    expect(own(v).lastSeq).toBeGreaterThanOrEqual(seqBefore);
    // V's next record is valid everywhere (before the fix: setHandledPatterns threw, W never saw it).
    expect(() => v.setHandledPatterns({ requests: ['orders.x'], events: [] })).not.toThrow();
    await waitFor(() => w.handlers('orders.x', 'request').length === 1, 4000, 'the next honest record');
    await sleep(1500); // a re-publish tick and an expiry sweep
    expect(uncaught).toEqual([]);
    expect(w.directoryStats().refused.malformed).toBe(0);
    await expect(v.close()).resolves.toBeUndefined();
    expect(uncaught).toEqual([]);
  });

  it('400 forged own copies with rising seq in a page: V signs nothing and checks one signature, the sender is penalised', async () => {
    const nodes = await mesh(true, 2);
    const [v] = nodes as [Peer];
    v.setHandledPatterns({ requests: ['a'], events: [] });
    const hostile = await raw(true, v);
    const bytesBefore = own(v).ownRecord;
    const seqBefore = own(v).lastSeq;
    const now = Date.now();
    const forged = Array.from({ length: 400 }, (_, i) => record(v.identity, { seq: now + 1000 + i, issuedAt: now }, hostile.identity));
    digest(hostile, 8);
    page(hostile, forged);
    await waitFor(() => v.directoryStats().refused.badSignature >= 1, 3000, 'the refusal');
    await sleep(300);
    expect(v.peerScore(hostile.identity.peerId)).toBeLessThan(0);
    // One signature checked: the rest of a page after a rejected record is not judged.
    expect(v.directoryStats().refused.badSignature).toBe(1);
    // Before the fix: seq jumped to now + 1399 and V re-signed its record once a copy (400 Ed25519 signatures).
    expect(own(v).ownRecord).toBe(bytesBefore);
    expect(own(v).lastSeq).toBe(seqBefore);
  });

  it("a copy signed by V's own key (a past run, or a leaked key) 24 days ahead: refused as future, V's seq stays within reach", async () => {
    const [v, w] = (await mesh(true, 2)) as [Peer, Peer];
    v.setHandledPatterns({ requests: ['a'], events: [] });
    const hostile = await raw(true, v);
    const issuedAt = Date.now() + 4900;
    digest(hostile);
    page(hostile, [record(v.identity, { seq: issuedAt + 2 ** 31 - 1, issuedAt })]);
    await waitFor(() => v.directoryStats().refused.future === 1, 2000, 'the refusal');
    expect(own(v).lastSeq).toBeLessThan(Date.now() + 1000);
    // A past run's copy a little ahead (within the skew and margin) still moves seq past it, as before.
    const pastRun = Date.now() + 3000;
    page(hostile, [record(v.identity, { seq: pastRun, issuedAt: Date.now() })]);
    await waitFor(() => own(v).lastSeq > pastRun, 2000, 'seq past the past run');
    v.setHandledPatterns({ requests: ['b'], events: [] });
    await waitFor(() => w.handlers('b', 'request').length === 1, 4000, 'the next record');
  });
});

/** The reviewer's input: `count` throwaway-key records of `patterns` wildcard patterns, each `*` then a tag then `x` tokens up to `bytes`. */
function deepRecords(count: number, patterns: number, bytes: number, maxTokens = Infinity): Buffer[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, r) => {
    const sybil = loadIdentity();
    const requests = Array.from({ length: patterns }, (_, i) => {
      const tokens = ['*', `${r}_${i}`];
      while (tokens.join('.').length + 2 <= bytes && tokens.length < maxTokens) tokens.push('x');
      return tokens.join('.');
    });
    return signRecord(sybil, { publicKey: sybil.publicKeyRaw, seq: now, issuedAt: now, leaving: false, address: '127.0.0.1:9', requests, events: [] });
  });
}

describe('directory: deep wildcard patterns from throwaway keys (H2)', () => {
  it('8 records of 256 wildcard patterns of 120 tokens, by page to V: refused as malformed, sender penalised, no heap growth on V or W', async () => {
    const [v, w] = (await mesh(true, 2, { directorySyncIntervalMs: 1000 })) as [Peer, Peer];
    const recs = deepRecords(8, 256, 240);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const hostile = await raw(true, v);
    digest(hostile, 1);
    for (const r of recs) page(hostile, [r]);
    await waitFor(() => v.directoryStats().refused.malformed >= 1 || hostile.closed, 3000, 'the refusals');
    await sleep(2500); // two anti-entropy rounds: nothing to carry to W
    expect(v.peerScore(hostile.identity.peerId)).toBeLessThan(0);
    for (const p of [v, w]) expect(p.directoryStats().patterns).toBe(0);
    gc();
    // Before the fix: +249 MiB across the two nodes.
    expect((process.memoryUsage().heapUsed - heapBefore) / MiB).toBeLessThan(8);
  }, 20_000);

  it('records within the token bound: the pattern memory budget holds, the rest refused as full without penalty, and the heap follows the counted bytes', async () => {
    const budget = 2 * MiB;
    const [v, w] = (await mesh(true, 2, { directorySyncIntervalMs: 1000, directoryMaxPatternMemory: budget })) as [Peer, Peer];
    // 16 tokens each (the default bound): ≈ 2 × 16 × 560 B counted a pattern, so ≈ 290 KiB a record of 32.
    const recs = deepRecords(20, 32, 240, 16);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const hostile = await raw(true, v);
    digest(hostile, 1);
    for (const r of recs) page(hostile, [r]);
    await waitFor(() => v.directoryStats().accepted + v.directoryStats().refused.full >= 20, 5000, 'every record judged');
    const accepted = v.directoryStats().accepted;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(20);
    expect(v.directoryStats().refused.malformed).toBe(0);
    expect(v.peerScore(hostile.identity.peerId)).toBeGreaterThanOrEqual(0); // `full` is no misbehaviour: an honest relay may send it
    expect(hostile.closed).toBe(false);
    await waitFor(() => w.directoryStats().records >= accepted, 8000, 'W gets them by anti-entropy');
    for (const p of [v, w]) expect(p.directoryStats().patternMemory).toBeLessThanOrEqual(budget);
    gc();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    const counted = v.directoryStats().patternMemory + w.directoryStats().patternMemory;
    // The cost model is an upper bound of what the index weighs (plus the pages' and records' own bytes, a few MiB at most).
    expect(growth).toBeLessThan(counted + 4 * MiB);
  }, 30_000);
});

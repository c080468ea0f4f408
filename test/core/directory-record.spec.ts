import { describe, expect, it } from 'vitest';
import { P2PProtocolError } from '../../src/common/errors.js';
import { loadIdentity } from '../../src/common/identity.js';
import { decodeRecord, encodeRecord, RECORD_FIXED_BYTES, signRecord, verifyRecord, type RecordFields } from '../../src/directory/record.js';
import { RecordTable } from '../../src/directory/record-table.js';
import { Directory } from '../../src/directory/directory.js';

/** The directory record's codec (docs/directory.md, Record) and the compact table that holds records. */

const LIMITS = { maxPatterns: 256, maxPatternBytes: 256 };
const key = loadIdentity('00'.repeat(31) + '01');
const fields: RecordFields = {
  publicKey: key.publicKeyRaw,
  seq: 1_700_000_000_000,
  issuedAt: 1_700_000_000_000,
  leaving: false,
  address: '10.0.0.1:4000',
  requests: ['math.*', '{"cmd":"sum"}'],
  events: ['notification'],
};
/** Also in docs/directory.md: Ed25519 signatures are deterministic, so the bytes are too. */
const GOLDEN =
  '01' + // version
  '4cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241aedf0a5ba29' + // public key
  '0000018bcfe56800' + // seq
  '0000018bcfe56800' + // issuedAt
  '00' + // flags
  '0d' + '31302e302e302e313a34303030' + // address
  '0002' + '0001' + // 2 request patterns, 1 event pattern
  '0006' + '6d6174682e2a' + '000d' + '7b22636d64223a2273756d227d' + '000c' + '6e6f74696669636174696f6e' +
  '3d1f9387ef2ab109540f56d48fd43d59e7ad4ec9a787425f454d4601c4d65c0cf2d70c0dee6eb220fdb57b1dff33417d2717ef29381853e6ba5599a29af52407';

describe('directory record codec', () => {
  it('matches the golden vector, round-trips, and verifies', () => {
    const bytes = signRecord(key, fields);
    expect(bytes.toString('hex')).toBe(GOLDEN);
    const record = decodeRecord(bytes, LIMITS);
    expect(record).toMatchObject({ ...fields, id: '4a67330b803d5c88757afb9328615344a89c4983' });
    expect(encodeRecord(record).equals(bytes)).toBe(true);
    expect(verifyRecord(bytes, record.publicKey)).toBe(true);
  });

  it('a flipped bit anywhere fails the signature, or the decode', () => {
    const bytes = signRecord(key, fields);
    for (let i = 0; i < bytes.length; i++) {
      const bad = Buffer.from(bytes);
      bad[i]! ^= 0x01;
      let ok: boolean;
      try {
        const r = decodeRecord(bad, LIMITS);
        ok = verifyRecord(bad, r.publicKey) && r.publicKey.equals(key.publicKeyRaw);
      } catch (err) {
        expect(err).toBeInstanceOf(P2PProtocolError);
        ok = false;
      }
      expect(ok, `byte ${i}`).toBe(false);
    }
  });

  it('refuses truncations, trailing bytes and everything over its bounds with P2PProtocolError', () => {
    const bytes = signRecord(key, fields);
    for (let n = 0; n < bytes.length; n++) expect(() => decodeRecord(bytes.subarray(0, n), LIMITS)).toThrow(P2PProtocolError);
    expect(() => decodeRecord(Buffer.concat([bytes, Buffer.of(0)]), LIMITS)).toThrow(P2PProtocolError);
    const many = signRecord(key, { ...fields, requests: Array.from({ length: 300 }, (_, i) => `p${i}`) });
    expect(() => decodeRecord(many, LIMITS)).toThrow(/301 patterns, over 256/);
    const long = signRecord(key, { ...fields, events: ['x'.repeat(257)] });
    expect(() => decodeRecord(long, LIMITS)).toThrow(/257 bytes/);
    const badAddress = Buffer.from(bytes);
    badAddress[1 + 32 + 16 + 2] = 0x0a; // a newline in the address
    expect(() => decodeRecord(badAddress, LIMITS)).toThrow(/printable/);
    const flags = Buffer.from(bytes);
    flags[1 + 32 + 16] = 0x02;
    expect(() => decodeRecord(flags, LIMITS)).toThrow(/flags/);
    const huge = Buffer.from(bytes);
    huge.writeUInt32BE(0xffffffff, 1 + 32);
    expect(() => decodeRecord(huge, LIMITS)).toThrow(/2\^53/);
    expect(() => decodeRecord(signRecord(key, { ...fields, issuedAt: fields.seq - 2 ** 31 }), LIMITS)).toThrow(/24 days/);
    expect(RECORD_FIXED_BYTES).toBe(119);
  });
});

describe('record table', () => {
  const make = (i: number, patterns: string[], seq = 1) => {
    const id = loadIdentity((i + 1).toString(16).padStart(64, '0'));
    return decodeRecord(signRecord(id, { ...fields, publicKey: id.publicKeyRaw, seq: fields.seq + seq, requests: patterns, events: [] }), LIMITS);
  };

  it('indexes, replaces and removes; patterns are held once and freed with their last record; the digest follows', () => {
    const t = new RecordTable(1000);
    const empty = [...t.bucketHashes];
    const records = Array.from({ length: 200 }, (_, i) => make(i, [`svc.${i % 7}`, 'all.>']));
    for (const r of records) t.put(r, 0, 3);
    expect(t.size).toBe(200);
    expect(t.distinctPatterns).toBe(8);
    expect(t.match('svc.3', 'request').size).toBe(records.filter((_, i) => i % 7 === 3).length);
    expect(t.match('all.x.y', 'request').size).toBe(200);
    expect(t.match('all.x', 'event').size).toBe(0);
    const snapshot = [...t.bucketHashes];
    // Replace one: its patterns move, the digest changes; put it back: the digest is as before.
    const slot = t.find(records[5]!.id);
    t.put(make(5, ['other'], 2), 0, 3);
    expect(t.find(records[5]!.id)).toBe(slot);
    expect(t.match('other', 'request').size).toBe(1);
    expect([...t.bucketHashes]).not.toEqual(snapshot);
    t.put(records[5]!, 0, 3);
    expect([...t.bucketHashes]).toEqual(snapshot);
    expect(t.distinctPatterns).toBe(8);
    // Remove all but one, in an order that exercises the id table's backward shift.
    for (const r of records.slice(1).reverse()) t.remove(t.find(r.id));
    expect(t.size).toBe(1);
    expect(t.find(records[0]!.id)).toBeGreaterThanOrEqual(0);
    for (const r of records.slice(1)) expect(t.find(r.id)).toBe(-1);
    expect(t.distinctPatterns).toBe(2);
    t.remove(t.find(records[0]!.id));
    expect([...t.bucketHashes]).toEqual(empty);
    expect([...t.bucketCounts].every((n) => n === 0)).toBe(true);
    expect(t.distinctPatterns).toBe(0);
  });

  it('counts pattern memory (entries and wildcard trie nodes per kind), refuses past its budget, and frees it all with the records', () => {
    const t = new RecordTable(1000, 40_000);
    const wild = make(1, ['a.*.b.c', 'exact.one']);
    // 2 entries (200 B + 2 B a code unit) and 4 trie nodes of the wildcard (560 B each).
    expect(t.wouldOverflowPatterns(wild)).toBe(false);
    t.put(wild, 0, 3);
    expect(t.patternMemory).toBe(200 + 14 + 200 + 18 + 4 * 560);
    // The same patterns again cost nothing; a deep fresh one past the budget is refused.
    expect(t.wouldOverflowPatterns(make(2, ['a.*.b.c']))).toBe(false);
    const deep = make(3, Array.from({ length: 8 }, (_, i) => `*.${i}.x.x.x.x.x.x.x.x`));
    expect(t.wouldOverflowPatterns(deep)).toBe(true);
    t.put(make(2, ['a.*.b.c']), 0, 3);
    t.remove(t.find(wild.id));
    t.remove(t.find(make(2, []).id));
    expect(t.patternMemory).toBe(0);
  });

  it('the decoder refuses a wildcard pattern over maxPatternTokens, not an exact one', () => {
    const limits = { ...LIMITS, maxPatternTokens: 4 };
    expect(() => decodeRecord(signRecord(key, { ...fields, requests: ['a.b.c.*.e'] }), limits)).toThrow(/5 tokens \(at most 4\)/);
    expect(decodeRecord(signRecord(key, { ...fields, requests: ['a.b.c.*'], events: ['a.b.c.d.e.f'] }), limits).events).toEqual(['a.b.c.d.e.f']);
  });

  it('fills to a maxRecords that is not a power of two (its id table still probes a power of two)', () => {
    const t = new RecordTable(100);
    const records = Array.from({ length: 100 }, (_, i) => make(i, ['a']));
    for (const r of records) t.put(r, 0, 3);
    expect(t.full).toBe(true);
    for (const r of records) expect(t.find(r.id)).toBeGreaterThanOrEqual(0);
    expect(t.find(make(500, []).id)).toBe(-1);
    for (const r of records) t.remove(t.find(r.id));
    expect(t.size).toBe(0);
  });

  it('gives back the record as signed, whatever its address (packed IPv4 or not)', () => {
    const t = new RecordTable(10);
    const addresses = ['10.0.0.1:4000', '255.255.255.255:65535', '0.0.0.0:0', '010.0.0.1:4000', '10.0.0.256:1', '1.2.3.4:70000', '[::1]:4000', 'node-a.example:4000', ''];
    addresses.forEach((address, i) => {
      const id = loadIdentity((i + 1).toString(16).padStart(64, '0'));
      const r = decodeRecord(signRecord(id, { ...fields, publicKey: id.publicKeyRaw, address }), LIMITS);
      t.put(r, 0, 3);
      const back = t.record(t.find(r.id));
      expect(back.address).toBe(address);
      expect(encodeRecord(back).equals(encodeRecord(r))).toBe(true);
      expect(verifyRecord(encodeRecord(back), back.publicKey)).toBe(true);
    });
    // A slot reused by a record with another kind of address keeps no trace of the old one.
    const first = t.find(decodeRecord(signRecord(loadIdentity('1'.padStart(64, '0')), { ...fields, publicKey: loadIdentity('1'.padStart(64, '0')).publicKeyRaw }), LIMITS).id);
    t.remove(first);
    const again = loadIdentity('ff'.padStart(64, '0'));
    t.put(decodeRecord(signRecord(again, { ...fields, publicKey: again.publicKeyRaw, address: '' }), LIMITS), 0, 3);
    expect(t.address(t.find(again.peerId))).toBe('');
  });
});

describe("this node's own record", () => {
  it('stays decodable whatever its seq was raised to: sign() keeps seq − issuedAt under 2^31, and neither setOwn nor leave throws', () => {
    const errors: string[] = [];
    const logger = { log: () => undefined, warn: () => undefined, error: (m: string) => errors.push(m) };
    const host = { selfId: key.peerId, logger, isRunning: () => false, publish: () => 0, penalize: () => undefined, changed: () => undefined, isKnown: () => false };
    const options = { ...LIMITS, maxPatternTokens: 16, maxPatternMemory: 1 << 24, maxRecords: 10, updateRate: 0.5, updateBurst: 3, ttlMs: 60_000, clockSkewMs: 5000, unvouchedUpdateRate: 20 };
    const d = new Directory(host, key, () => null, options);
    d.setOwn({ requests: ['a'], events: [] });
    (d as unknown as { lastSeq: number }).lastSeq = Date.now() + 2 ** 40; // as the forged own copy once set it
    expect(() => d.setOwn({ requests: ['b'], events: [] })).not.toThrow();
    const own = decodeRecord(d.ownRecord!, LIMITS);
    expect(own.requests).toEqual(['b']);
    expect(own.seq - own.issuedAt).toBeLessThan(2 ** 31);
    expect(() => d.leave()).not.toThrow();
    expect(errors).toEqual([]);
  });
});

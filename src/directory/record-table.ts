import { createHash, randomInt } from 'node:crypto';
import { isWildcard, SubjectIndex, subjectMatches } from '../common/subject.js';
import type { DirectoryRecord } from './record.js';

/**
 * Every record a node holds, laid out to be small at 100 000 records (docs/directory.md,
 * Memory): one slot per record in typed arrays (id, key, signature, seq, times), no object
 * per record; each distinct pattern string held once, a record holding 16-bit refs to them
 * (one short string per record); subject → patterns by `SubjectIndex` over the distinct
 * patterns, and pattern → nodes by a packed array of slots per pattern and kind.
 * Ids are found by an open-addressing table keyed by their first bytes.
 */

export type PatternKind = 'request' | 'event';
const ID_BYTES = 20;
const KEY_BYTES = 32;
const SIG_BYTES = 64;
/** Patterns are referred to by 16-bit indexes: at most this many distinct ones are held. */
export const MAX_DISTINCT_PATTERNS = 65_535;
/**
 * The cost model of `patternMemory` (V8's heap after GC: 5 000 wildcard patterns of ≈ 127 tokens weighed 321 MiB):
 * a distinct pattern's entry (its object, map entry, member list) plus its string at 2 bytes a code unit,
 * and a wildcard pattern's trie nodes (a Map and two Sets each, ≈ 530 B measured), one a token and kind,
 * counted as if no prefix were shared (an upper bound).
 */
export const PATTERN_ENTRY_BYTES = 200;
export const TRIE_NODE_BYTES = 560;
/** Buckets of the anti-entropy digest: records by the first byte of their id. */
export const DIGEST_BUCKETS = 256;

/**
 * Slots of nodes per pattern and kind, unordered. Removal is O(1): it only counts (`size`), and
 * leaves the slot's entry behind, stale; `compact` drops the stale entries (the table tells which
 * are live), when they outnumber the live ones (amortised O(1) a removal) or before a lookup reads
 * the list. It used to scan the list to remove a slot, so that an expiry sweep of n records that
 * share a pattern took O(n²) (100 000 records: 3.3 s, test/core/directory-table.spec.ts).
 */
class Members {
  slots = new Int32Array(4);
  /** Entries in `slots`, stale ones included. */
  length = 0;
  /** Live members. */
  size = 0;
  add(slot: number, live: (slot: number) => boolean): void {
    if (this.length === this.slots.length) {
      if (this.length > 2 * this.size) this.compact(live);
      if (this.length === this.slots.length) {
        const grown = new Int32Array(this.slots.length * 2);
        grown.set(this.slots);
        this.slots = grown;
      }
    }
    this.slots[this.length++] = slot;
    this.size++;
  }
  /** The slot was already unlisted by the table (`live` says no): only counted here. */
  delete(live: (slot: number) => boolean): void {
    this.size--;
    if (this.length > 2 * this.size + 16) this.compact(live);
  }
  get stale(): boolean {
    return this.length !== this.size;
  }
  /** Keeps the live entries, once each (a slot removed then added again has two), and shrinks the array when it is mostly empty. */
  compact(live: (slot: number) => boolean): void {
    const seen = new Set<number>();
    let n = 0;
    for (let i = 0; i < this.length; i++) {
      const slot = this.slots[i]!;
      if (seen.has(slot) || !live(slot)) continue;
      seen.add(slot);
      this.slots[n++] = slot;
    }
    this.length = n;
    if (this.slots.length > 64 && n < this.slots.length / 4) this.slots = this.slots.slice(0, Math.max(4, n * 2));
  }
}

interface Pattern {
  text: string;
  refs: number;
  request: Members | undefined;
  event: Members | undefined;
  /** The ids of the live (not leaving) records holding it, per kind, sorted: built when first asked, then kept up to date (`sortedIds`). */
  requestIds?: readonly string[];
  eventIds?: readonly string[];
}

/**
 * Ids held in the patterns' sorted id lists, all kinds together; past it they are all dropped and rebuilt
 * as asked (a rebuild is a numeric sort: about 5 ms for 50 000 ids). 4 M: 32 MiB of references at most,
 * where 100 000 records of 10 patterns each need 1 M.
 */
const MAX_SORTED_IDS = 4_000_000;

export class RecordTable {
  private capacity = 0;
  private count = 0;
  /** A Buffer, so that an id prints as hex without a view object per call (lookups print hundreds). */
  private ids = Buffer.alloc(0);
  private keys = new Uint8Array(0);
  private sigs = new Uint8Array(0);
  /** seq; issuedAt as seq minus it (the record's decoder bounds the difference to 32 bits); the local time of the last accepted update, in tenths of a second since the table was made. */
  private seqs = new Float64Array(0);
  private issuedBefore = new Int32Array(0);
  private updated = new Uint32Array(0);
  private readonly epoch = Date.now();
  /** Update tokens of the slot's origin (rate per origin). */
  private tokens = new Float32Array(0);
  /** bit 0 leaving, bit 1 in use, bit 2 address packed as IPv4, bit 3 unvouched (held for `introducers[slot]` alone). */
  private flags = new Uint8Array(0);
  /** Tag of the neighbour that brought an unvouched record (flag bit 3): what its quota and eviction are counted against. */
  private introducers = new Int32Array(0);
  /** Unvouched records per introducer tag: how many, and their slots (stale entries dropped lazily). */
  private readonly introduced = new Map<number, { count: number; slots: number[] }>();
  private unvouchedTotal = 0;
  private requestCounts = new Uint16Array(0);
  /** An IPv4 `a.b.c.d:port` address, packed (flag bit 2): 6 bytes where a string costs about 40. */
  private ipv4 = new Uint32Array(0);
  private ports = new Uint16Array(0);
  /** Any other address (IPv6, host names), by slot; absent: none (''). */
  private readonly otherAddresses = new Map<number, string>();
  /** Each slot's id as text, made once (a lookup of 50 000 ids made 50 000 strings each time). */
  private idText: string[] = [];
  /** Ids held in the patterns' sorted id lists (MAX_SORTED_IDS). */
  private sortedCount = 0;
  /** The record's patterns: one UTF-16 code unit per pattern index, requests first. */
  private refs: string[] = [];
  /** Free slots, a stack: `free[0..freeCount)`. */
  private free = new Int32Array(0);
  private freeCount = 0;
  /** id → slot + 1 (0: empty), linear probing on the id's first 4 bytes. */
  private table = new Int32Array(0);
  private readonly seed = randomInt(2 ** 32 - 1);

  private readonly patterns: Array<Pattern | undefined> = [];
  private readonly patternIndex = new Map<string, number>();
  private readonly freePatterns: number[] = [];
  private readonly subjects: Record<PatternKind, SubjectIndex<number>> = { request: new SubjectIndex(), event: new SubjectIndex() };

  /** Per digest bucket: records, and the XOR of their (id, seq) hashes (two 32-bit halves). */
  readonly bucketCounts = new Uint32Array(DIGEST_BUCKETS);
  readonly bucketHashes = new Uint32Array(DIGEST_BUCKETS * 2);

  /** The distinct patterns' and their index's counted bytes (PATTERN_ENTRY_BYTES, TRIE_NODE_BYTES). */
  patternMemory = 0;

  constructor(
    readonly maxRecords: number,
    /** Budget of `patternMemory`: a record that would pass it is refused (`wouldOverflowPatterns`). */
    readonly maxPatternMemory = Number.POSITIVE_INFINITY,
  ) {}

  get size(): number {
    return this.count;
  }

  /**
   * The id table's hash: 8 bytes of the id mixed with a secret seed. An id is a SHA-256 prefix, but a throwaway
   * key can be ground until its id lands where chosen: without the seed, keys ground into one run of the table
   * would make every probe there walk them all.
   */
  private hashOf(id: Uint8Array): number {
    // murmur3's finaliser over each word: every bit of the result depends on every bit of the seed and the id's 8 bytes.
    let h = this.seed ^ ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ ((id[4]! << 24) | (id[5]! << 16) | (id[6]! << 8) | id[7]!);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** Distinct patterns held. */
  get distinctPatterns(): number {
    return this.patternIndex.size;
  }

  /** The slot of a peer id, or -1. */
  find(id: string): number {
    return this.findBytes(Buffer.from(id, 'hex'));
  }

  private findBytes(id: Uint8Array): number {
    if (this.capacity === 0) return -1;
    const mask = this.table.length - 1;
    for (let i = this.hashOf(id) & mask; ; i = (i + 1) & mask) {
      const entry = this.table[i]!;
      if (entry === 0) return -1;
      if (this.idEquals(entry - 1, id)) return entry - 1;
    }
  }

  private idEquals(slot: number, id: Uint8Array): boolean {
    const o = slot * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) if (this.ids[o + i] !== id[i]) return false;
    return true;
  }

  id(slot: number): string {
    return this.idText[slot] ?? this.ids.toString('hex', slot * ID_BYTES, (slot + 1) * ID_BYTES);
  }
  seq(slot: number): number {
    return this.seqs[slot]!;
  }
  issuedAt(slot: number): number {
    return this.seqs[slot]! - this.issuedBefore[slot]!;
  }
  leaving(slot: number): boolean {
    return (this.flags[slot]! & 1) !== 0;
  }
  address(slot: number): string {
    if (!(this.flags[slot]! & 4)) return this.otherAddresses.get(slot) ?? '';
    const ip = this.ipv4[slot]!;
    return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${this.ports[slot]}`;
  }
  bucketOf(slot: number): number {
    return this.ids[slot * ID_BYTES]!;
  }

  /** Takes one update token of the slot's origin (`rate`/s, up to `burst`); false when it has none. */
  takeToken(slot: number, rate: number, burst: number, now: number): boolean {
    const tenths = this.tenths(now);
    const tokens = this.tokensAt(slot, rate, burst, tenths);
    if (tokens < 1) return false;
    this.tokens[slot] = tokens - 1;
    this.updated[slot] = tenths;
    return true;
  }

  /** Whether `takeToken` would succeed now, without taking one (a cheap refusal before a signature check). */
  hasToken(slot: number, rate: number, burst: number, now: number): boolean {
    return this.tokensAt(slot, rate, burst, this.tenths(now)) >= 1;
  }

  private tokensAt(slot: number, rate: number, burst: number, tenths: number): number {
    return Math.min(burst, this.tokens[slot]! + ((tenths - this.updated[slot]!) / 10) * rate);
  }

  /** The record in a slot, as decoded (for encoding into a sync page, or for tests). */
  record(slot: number): DirectoryRecord {
    const refs = this.refs[slot]!;
    const patterns = Array.from(refs, (c) => this.patterns[c.charCodeAt(0)]!.text);
    const requests = this.requestCounts[slot]!;
    return {
      id: this.id(slot),
      publicKey: Buffer.from(this.keys.subarray(slot * KEY_BYTES, (slot + 1) * KEY_BYTES)),
      seq: this.seqs[slot]!,
      issuedAt: this.issuedAt(slot),
      leaving: this.leaving(slot),
      address: this.address(slot),
      requests: patterns.slice(0, requests),
      events: patterns.slice(requests),
      signature: Buffer.from(this.sigs.subarray(slot * SIG_BYTES, (slot + 1) * SIG_BYTES)),
    };
  }

  /** Whether `record` would need patterns past MAX_DISTINCT_PATTERNS, or `patternMemory` past its budget (its patterns already held cost nothing). */
  wouldOverflowPatterns(record: DirectoryRecord): boolean {
    const fresh = new Set<string>();
    let bytes = 0;
    for (const kind of ['request', 'event'] as const) {
      for (const p of new Set(kind === 'request' ? record.requests : record.events)) {
        const index = this.patternIndex.get(p);
        if (index === undefined && !fresh.has(p)) {
          fresh.add(p);
          bytes += entryCost(p);
        }
        if (index === undefined || !this.patterns[index]![kind]) bytes += indexCost(p);
      }
    }
    return this.patternIndex.size + fresh.size > MAX_DISTINCT_PATTERNS || this.patternMemory + bytes > this.maxPatternMemory;
  }

  /** Whether a new record fits (`maxRecords`). */
  get full(): boolean {
    return this.count >= this.maxRecords;
  }

  /**
   * Inserts or replaces the record of `record.id` (the caller judged it newer and valid, and
   * made room). `burst` fills a new origin's update tokens. Returns its slot.
   */
  put(record: DirectoryRecord, now: number, burst: number, introducer?: number): number {
    const idBytes = Buffer.from(record.id, 'hex');
    let slot = this.findBytes(idBytes);
    let unvouched = introducer !== undefined;
    // Duplicates within a kind are one pattern: a record is a set per kind.
    const requests = [...new Set(record.requests)];
    const events = [...new Set(record.events)];
    // A re-published record (same patterns, every node every 10 min) leaves the member lists alone.
    // (A record turning leaving, or back, is re-indexed: the sorted id lists hold live records only.)
    const samePatterns = slot >= 0 && this.leaving(slot) === record.leaving && this.holdsExactly(slot, requests, events);
    if (slot >= 0) {
      if (samePatterns) this.toggleDigest(slot);
      else this.unindex(slot);
      // A newer version keeps its record's standing, and vouched arrivals vouch for it.
      if (this.unvouched(slot) && !unvouched) this.vouch(slot);
      unvouched = this.unvouched(slot);
    } else {
      slot = this.allocate(idBytes);
      this.bucketCounts[idBytes[0]!]!++;
      this.tokens[slot] = burst;
      this.updated[slot] = this.tenths(now);
    }
    this.keys.set(record.publicKey, slot * KEY_BYTES);
    this.sigs.set(record.signature, slot * SIG_BYTES);
    this.seqs[slot] = record.seq;
    this.issuedBefore[slot] = record.seq - record.issuedAt;
    if (unvouched && !this.unvouched(slot)) this.introduce(slot, introducer!);
    this.flags[slot] = 2 | (record.leaving ? 1 : 0) | (unvouched ? 8 : 0);
    this.otherAddresses.delete(slot);
    const packed = packIpv4(record.address);
    if (packed) {
      this.flags[slot]! |= 4;
      this.ipv4[slot] = packed.ip;
      this.ports[slot] = packed.port;
    } else if (record.address !== '') {
      this.otherAddresses.set(slot, record.address);
    }
    if (!samePatterns) {
      this.requestCounts[slot] = requests.length;
      const codes = [...requests.map((p) => this.ref(p, 'request', slot)), ...events.map((p) => this.ref(p, 'event', slot))];
      // One flat string (concatenation would build a rope of ConsStrings, 32 bytes a pattern).
      this.refs[slot] = String.fromCharCode(...codes);
    }
    this.toggleDigest(slot);
    return slot;
  }

  /** Whether the slot's record has exactly these patterns, in this order (a record's are sorted by its node). */
  private holdsExactly(slot: number, requests: readonly string[], events: readonly string[]): boolean {
    const refs = this.refs[slot]!;
    if (this.requestCounts[slot] !== requests.length || refs.length !== requests.length + events.length) return false;
    for (let i = 0; i < refs.length; i++) {
      const index = this.patternIndex.get(i < requests.length ? requests[i]! : events[i - requests.length]!);
      if (index !== refs.charCodeAt(i)) return false;
    }
    return true;
  }

  /** Removes a slot's record. */
  remove(slot: number): void {
    if (this.unvouched(slot)) this.vouch(slot);
    this.unindex(slot);
    this.bucketCounts[this.bucketOf(slot)]!--;
    const idBytes = this.ids.subarray(slot * ID_BYTES, (slot + 1) * ID_BYTES);
    this.unhash(slot, idBytes);
    this.ids.fill(0, slot * ID_BYTES, (slot + 1) * ID_BYTES);
    this.idText[slot] = '';
    this.flags[slot] = 0;
    this.otherAddresses.delete(slot);
    this.refs[slot] = '';
    this.free[this.freeCount++] = slot;
    this.count--;
  }

  /** Whether the slot's record is held on its introducer's word alone (docs/directory.md, Bounds). */
  unvouched(slot: number): boolean {
    return (this.flags[slot]! & 8) !== 0;
  }

  /** Unvouched records held. */
  get unvouchedCount(): number {
    return this.unvouchedTotal;
  }

  /** Unvouched records a neighbour (by its tag) introduced and are held. */
  unvouchedBy(introducer: number): number {
    return this.introduced.get(introducer)?.count ?? 0;
  }

  /** Evidence arrived for an unvouched record: it no longer counts against its introducer. */
  vouch(slot: number): void {
    this.flags[slot]! &= ~8;
    const tag = this.introducers[slot]!;
    const entry = this.introduced.get(tag)!;
    this.unvouchedTotal--;
    if (--entry.count === 0) this.introduced.delete(tag);
  }

  private introduce(slot: number, tag: number): void {
    this.flags[slot]! |= 8;
    this.introducers[slot] = tag;
    let entry = this.introduced.get(tag);
    if (!entry) this.introduced.set(tag, (entry = { count: 0, slots: [] }));
    entry.count++;
    this.unvouchedTotal++;
    entry.slots.push(slot);
    // Stale entries (vouched or removed since) are dropped once they outnumber the live ones.
    if (entry.slots.length > 2 * entry.count + 16) entry.slots = [...new Set(entry.slots.filter((s) => this.unvouchedOf(s, tag)))];
  }

  private unvouchedOf(slot: number, tag: number): boolean {
    return (this.flags[slot]! & 10) === 10 && this.introducers[slot] === tag;
  }

  /** A slot to evict for a record with evidence: an unvouched one of the neighbour that introduced the most; -1 when none is held. O(introducers), amortised. */
  evictable(): number {
    let best: { count: number; slots: number[] } | undefined;
    let bestTag = 0;
    for (const [tag, entry] of this.introduced) {
      if (!best || entry.count > best.count) {
        best = entry;
        bestTag = tag;
      }
    }
    while (best && best.slots.length > 0) {
      const slot = best.slots.pop()!;
      if (this.unvouchedOf(slot, bestTag)) return slot;
    }
    return -1;
  }

  /** Every slot in use. */
  *slots(): Generator<number> {
    for (let slot = 0; slot < this.capacity; slot++) if (this.flags[slot]! & 2) yield slot;
  }

  /** Slots of the records with a pattern of `kind` matching `subject` (leaving ones included: the caller filters). */
  match(subject: string, kind: PatternKind): Set<number> {
    const out = new Set<number>();
    for (const index of this.subjects[kind].match(subject)) {
      const members = this.patterns[index]![kind]!;
      if (members.stale) members.compact(this.liveIn(index, kind));
      for (let i = 0; i < members.length; i++) out.add(members.slots[i]!);
    }
    return out;
  }

  /** Whether the slot's record has a pattern of `kind` matching `subject` (leaving or not: the caller checks). O(its patterns). */
  handles(slot: number, subject: string, kind: PatternKind): boolean {
    if (!(this.flags[slot]! & 2)) return false;
    const refs = this.refs[slot]!;
    const requests = this.requestCounts[slot]!;
    const to = kind === 'request' ? requests : refs.length;
    for (let i = kind === 'request' ? 0 : requests; i < to; i++) if (subjectMatches(this.patterns[refs.charCodeAt(i)]!.text, subject)) return true;
    return false;
  }

  /** Nodes per distinct pattern and kind (metrics), at most `limit` patterns. */
  patternCounts(limit: number): Array<{ pattern: string; requests: number; events: number }> {
    const out: Array<{ pattern: string; requests: number; events: number }> = [];
    for (const p of this.patterns) {
      if (!p) continue;
      if (out.length >= limit) break;
      out.push({ pattern: p.text, requests: p.request?.size ?? 0, events: p.event?.size ?? 0 });
    }
    return out;
  }

  private ref(text: string, kind: PatternKind, slot: number): number {
    let index = this.patternIndex.get(text);
    if (index === undefined) {
      index = this.freePatterns.pop() ?? this.patterns.length;
      this.patterns[index] = { text, refs: 0, request: undefined, event: undefined };
      this.patternIndex.set(text, index);
      this.patternMemory += entryCost(text);
    }
    const p = this.patterns[index]!;
    p.refs++;
    let members = p[kind];
    if (!members) {
      members = p[kind] = new Members();
      this.subjects[kind].add(text, index);
      this.patternMemory += indexCost(text);
    }
    members.add(slot, this.liveIn(index, kind));
    if (!this.leaving(slot)) this.sortedChange(p, kind, this.id(slot), true);
    return index;
  }

  /** Sorted ids of the live records whose `kind` patterns match `subject`: a pattern's own list when one matches, else a merge. */
  matchIds(subject: string, kind: PatternKind): readonly string[] {
    const lists: Array<readonly string[]> = [];
    for (const index of this.subjects[kind].match(subject)) lists.push(this.sortedIds(index, kind));
    if (lists.length <= 1) return lists[0] ?? [];
    return mergeSorted(lists);
  }

  /** Sorted ids of the live records that hold exactly pattern `text` as `kind` (no wildcard matching), [] when none does. */
  patternIds(text: string, kind: PatternKind): readonly string[] {
    const index = this.patternIndex.get(text);
    return index === undefined || !this.patterns[index]?.[kind] ? [] : this.sortedIds(index, kind);
  }

  /** Pattern `index`'s sorted ids of `kind`: kept, or built now by a numeric sort of the members' first 32 bits (ties by full id). */
  private sortedIds(index: number, kind: PatternKind): readonly string[] {
    const p = this.patterns[index]!;
    const key = kind === 'request' ? 'requestIds' : 'eventIds';
    const kept = p[key];
    if (kept) return kept;
    const members = p[kind]!;
    if (members.stale) members.compact(this.liveIn(index, kind));
    const ids = this.capacity > 2 ** 21 ? this.sortedByText(members) : this.sortedByKey(members);
    if (this.sortedCount + ids.length > MAX_SORTED_IDS) this.dropSorted();
    this.sortedCount += ids.length;
    p[key] = ids;
    return ids;
  }

  /** The live members' ids, sorted as strings (a table past 2^21 slots, whose slot no longer fits beside a 32-bit key). */
  private sortedByText(members: Members): string[] {
    const ids: string[] = [];
    for (let i = 0; i < members.length; i++) if (!this.leaving(members.slots[i]!)) ids.push(this.id(members.slots[i]!));
    return ids.sort();
  }

  /** The live members' ids, sorted by a number: the id's first 32 bits and the slot; runs of equal first bits then by full id. */
  private sortedByKey(members: Members): string[] {
    const keys = new Float64Array(members.length);
    let n = 0;
    for (let i = 0; i < members.length; i++) {
      const slot = members.slots[i]!;
      if (this.leaving(slot)) continue;
      keys[n++] = this.ids.readUInt32BE(slot * ID_BYTES) * 2 ** 21 + slot;
    }
    const sorted = keys.subarray(0, n).sort();
    const ids = Array.from(sorted, (k) => this.id(k % 2 ** 21));
    // Equal first 32 bits (chance, or ground keys): those runs are put in full-id order.
    for (let i = 1; i < ids.length; i++) {
      if (Math.floor(sorted[i]! / 2 ** 21) !== Math.floor(sorted[i - 1]! / 2 ** 21)) continue;
      let j = i - 1;
      while (j > 0 && Math.floor(sorted[j - 1]! / 2 ** 21) === Math.floor(sorted[i]! / 2 ** 21)) j--;
      let k = i;
      while (k + 1 < ids.length && Math.floor(sorted[k + 1]! / 2 ** 21) === Math.floor(sorted[i]! / 2 ** 21)) k++;
      const run = ids.slice(j, k + 1).sort();
      for (let r = 0; r < run.length; r++) ids[j + r] = run[r]!;
      i = k;
    }
    return ids;
  }

  /** Puts `id` in, or takes it out of, a pattern's kept sorted ids (a new array: callers keep the one they got). */
  private sortedChange(p: Pattern, kind: PatternKind, id: string, add: boolean): void {
    const key = kind === 'request' ? 'requestIds' : 'eventIds';
    const ids = p[key];
    if (!ids) return;
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[mid]! < id) lo = mid + 1;
      else hi = mid;
    }
    const has = ids[lo] === id;
    if (has === add) return;
    p[key] = add ? [...ids.slice(0, lo), id, ...ids.slice(lo)] : [...ids.slice(0, lo), ...ids.slice(lo + 1)];
    this.sortedCount += add ? 1 : -1;
  }

  /** Drops every kept sorted id list (over MAX_SORTED_IDS). */
  private dropSorted(): void {
    for (const p of this.patterns) {
      if (!p) continue;
      p.requestIds = undefined;
      p.eventIds = undefined;
    }
    this.sortedCount = 0;
  }

  /** Whether a slot's record holds pattern `index` of `kind` now: what tells a live entry of its member list from a stale one. */
  private liveIn(index: number, kind: PatternKind): (slot: number) => boolean {
    return (slot) => {
      if (!(this.flags[slot]! & 2)) return false;
      const refs = this.refs[slot]!;
      const requests = this.requestCounts[slot]!;
      const to = kind === 'request' ? requests : refs.length;
      for (let i = kind === 'request' ? 0 : requests; i < to; i++) if (refs.charCodeAt(i) === index) return true;
      return false;
    };
  }

  private unref(index: number, kind: PatternKind, slot: number): void {
    const p = this.patterns[index]!;
    const members = p[kind]!;
    members.delete(this.liveIn(index, kind));
    this.sortedChange(p, kind, this.id(slot), false);
    if (members.size === 0) {
      p[kind] = undefined;
      const key = kind === 'request' ? 'requestIds' : 'eventIds';
      this.sortedCount -= p[key]?.length ?? 0;
      p[key] = undefined;
      this.subjects[kind].delete(p.text, index);
      this.patternMemory -= indexCost(p.text);
    }
    if (--p.refs === 0) {
      this.patternMemory -= entryCost(p.text);
      this.patterns[index] = undefined;
      this.patternIndex.delete(p.text);
      this.freePatterns.push(index);
    }
  }

  /** Drops a slot's patterns and digest share (before a replace or a removal). */
  private unindex(slot: number): void {
    this.toggleDigest(slot);
    const refs = this.refs[slot]!;
    const requests = this.requestCounts[slot]!;
    // Unlisted first, so that the member lists see the slot's entries as stale.
    this.refs[slot] = '';
    for (let i = 0; i < refs.length; i++) this.unref(refs.charCodeAt(i), i < requests ? 'request' : 'event', slot);
  }

  /** XORs the slot's (id, seq) hash into its bucket (in or out: XOR is its own inverse). */
  private toggleDigest(slot: number): void {
    const h = entryHash(this.ids.subarray(slot * ID_BYTES, (slot + 1) * ID_BYTES), this.seqs[slot]!);
    const bucket = this.bucketOf(slot);
    this.bucketHashes[bucket * 2] = this.bucketHashes[bucket * 2]! ^ h[0]!;
    this.bucketHashes[bucket * 2 + 1] = this.bucketHashes[bucket * 2 + 1]! ^ h[1]!;
  }

  /** Tenths of a second since the table was made: 32 bits last 13 years. */
  private tenths(now: number): number {
    return Math.max(0, Math.round((now - this.epoch) / 100));
  }

  private allocate(idBytes: Uint8Array): number {
    if (this.freeCount === 0) this.grow();
    const slot = this.free[--this.freeCount]!;
    this.ids.set(idBytes, slot * ID_BYTES);
    this.idText[slot] = Buffer.from(idBytes).toString('hex');
    this.count++;
    const mask = this.table.length - 1;
    let i = this.hashOf(idBytes) & mask;
    while (this.table[i] !== 0) i = (i + 1) & mask;
    this.table[i] = slot + 1;
    return slot;
  }

  /** Backward-shift deletion: the probe chains stay unbroken without tombstones. */
  private unhash(slot: number, idBytes: Uint8Array): void {
    const mask = this.table.length - 1;
    let i = this.hashOf(idBytes) & mask;
    while (this.table[i] !== slot + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const entry = this.table[j]!;
      if (entry === 0) break;
      const home = this.hashOf(this.ids.subarray((entry - 1) * ID_BYTES, entry * ID_BYTES)) & mask;
      // Move the entry back to the hole when its home is not cyclically within (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        this.table[i] = entry;
        i = j;
      }
    }
    this.table[i] = 0;
  }

  private grow(): void {
    const old = this.capacity;
    // Doubling, but never past maxRecords: at 100 000 records the slots are exactly what is held.
    const capacity = Math.min(Math.max(64, old * 2), Math.max(this.maxRecords, old + 1));
    const grow = <A extends Buffer | Uint8Array | Float64Array | Float32Array | Int32Array | Uint32Array | Uint16Array>(a: A, per: number, make: (n: number) => A): A => {
      const b = make(capacity * per);
      b.set(a as never);
      return b;
    };
    this.ids = grow(this.ids, ID_BYTES, (n) => Buffer.alloc(n));
    this.keys = grow(this.keys, KEY_BYTES, (n) => new Uint8Array(n));
    this.sigs = grow(this.sigs, SIG_BYTES, (n) => new Uint8Array(n));
    this.seqs = grow(this.seqs, 1, (n) => new Float64Array(n));
    this.issuedBefore = grow(this.issuedBefore, 1, (n) => new Int32Array(n));
    this.updated = grow(this.updated, 1, (n) => new Uint32Array(n));
    this.free = grow(this.free, 1, (n) => new Int32Array(n));
    this.tokens = grow(this.tokens, 1, (n) => new Float32Array(n));
    this.flags = grow(this.flags, 1, (n) => new Uint8Array(n));
    this.introducers = grow(this.introducers, 1, (n) => new Int32Array(n));
    this.requestCounts = grow(this.requestCounts, 1, (n) => new Uint16Array(n));
    this.ipv4 = grow(this.ipv4, 1, (n) => new Uint32Array(n));
    this.ports = grow(this.ports, 1, (n) => new Uint16Array(n));
    for (let s = old; s < capacity; s++) {
      this.refs.push('');
    }
    for (let s = capacity - 1; s >= old; s--) this.free[this.freeCount++] = s;
    this.capacity = capacity;
    // The id table stays at most half full, and a power of two (probes wrap with a mask); rebuilt at its new size.
    this.table = new Int32Array(2 ** Math.ceil(Math.log2(capacity * 2)));
    const mask = this.table.length - 1;
    for (let slot = 0; slot < old; slot++) {
      if (!(this.flags[slot]! & 2)) continue;
      let i = this.hashOf(this.ids.subarray(slot * ID_BYTES, (slot + 1) * ID_BYTES)) & mask;
      while (this.table[i] !== 0) i = (i + 1) & mask;
      this.table[i] = slot + 1;
    }
  }
}

/** The sorted union of sorted id lists, each id once. */
function mergeSorted(lists: ReadonlyArray<readonly string[]>): string[] {
  let out: string[] = [...lists[0]!];
  for (let l = 1; l < lists.length; l++) {
    const a = out;
    const b = lists[l]!;
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      const x = a[i]!;
      const y = b[j]!;
      // One string per id (RecordTable.idText): a node in both lists is the same object, told by identity first.
      if (x === y) {
        merged.push(x);
        i++;
        j++;
      } else if (x < y) {
        merged.push(x);
        i++;
      } else {
        merged.push(y);
        j++;
      }
    }
    while (i < a.length) merged.push(a[i++]!);
    while (j < b.length) merged.push(b[j++]!);
    out = merged;
  }
  return out;
}

/** A distinct pattern's counted bytes, its index aside. */
function entryCost(text: string): number {
  return PATTERN_ENTRY_BYTES + 2 * text.length;
}

/** A pattern's counted bytes in one kind's index: its trie nodes when it is a wildcard (an exact one is a map entry, in `entryCost`). */
function indexCost(text: string): number {
  return isWildcard(text) ? TRIE_NODE_BYTES * text.split('.').length : 0;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/;

/** `a.b.c.d:port` as 32 + 16 bits, when it prints back exactly (no leading zeros, each part in range): else undefined. */
function packIpv4(address: string): { ip: number; port: number } | undefined {
  const m = IPV4.exec(address);
  if (!m) return undefined;
  const parts = m.slice(1, 5).map(Number);
  const port = Number(m[5]);
  if (parts.some((p) => p > 255) || port > 65_535 || `${parts.join('.')}:${port}` !== address) return undefined;
  return { ip: ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0, port };
}

/** The digest's share of one (id, seq) pair: 8 bytes of SHA-256 over them, as two 32-bit halves. */
export function entryHash(id: Uint8Array, seq: number): [number, number] {
  const buf = Buffer.allocUnsafe(ID_BYTES + 8);
  buf.set(id, 0);
  buf.writeUInt32BE(Math.floor(seq / 2 ** 32), ID_BYTES);
  buf.writeUInt32BE(seq >>> 0, ID_BYTES + 4);
  const d = createHash('sha256').update(buf).digest();
  return [d.readUInt32BE(0), d.readUInt32BE(4)];
}

import { createHmac, randomBytes } from 'node:crypto';
import { DEFAULTS } from '../common/defaults.js';
import { P2PProtocolError } from '../common/errors.js';
import { escapeControlCharacters } from '../wire/control.js';
import { BucketTable } from '../common/token-bucket.js';
import type { Identity } from '../common/identity.js';
import type { P2PLogger } from '../common/types.js';
import type { Misbehaviour } from '../trust/peer-score.js';
import { decodeRecord, isReserved, signRecord, verifyRecord, type DirectoryRecord, type RecordLimits } from './record.js';
import { RecordTable, type PatternKind } from './record-table.js';

/**
 * The directory of handlers (docs/directory.md): every node's signed record of the patterns
 * it handles, fully replicated as NATS servers replicate subscription interest, so that a
 * lookup is local. Judges every record that arrives (by broadcast or anti-entropy), keeps
 * this node's own record and re-publishes it, expires old records. Needs `DirectoryHost`.
 */

/** A node that handles a pattern (`Peer.handlers()`). */
export interface HandlerInfo {
  /** Its peer id. */
  id: string;
  /** Where it listens (`host:port`), or null when it does not. */
  address: string | null;
  /** True for this node itself. */
  self: boolean;
}

/** A pattern of the directory and how many nodes handle it (`Peer.patternCounts()`). */
export interface PatternCount {
  /** The pattern as its handlers published it (wildcards included). */
  pattern: string;
  /** Nodes with a request handler (`@MessagePattern`) for it. */
  requests: number;
  /** Nodes with an event handler (`@EventPattern`) for it. */
  events: number;
}

/** A record added, replaced or removed (the Peer's `directory` event), so a waiting request can look again. */
export interface DirectoryChange {
  /** The node whose record changed. */
  id: string;
  /** `added`: its patterns are new here; `replaced`: they changed; `removed`: it left, or its record expired. */
  change: 'added' | 'replaced' | 'removed';
}

/** Why a record was refused (`directoryStats().refused`). */
export type DirectoryRefusal =
  | 'malformed'
  | 'wrongOrigin'
  | 'badSignature'
  | 'stale'
  | 'future'
  | 'expired'
  | 'rate'
  | 'full'
  | 'unsolicited'
  | 'neighbourBudget';

/** What the directory holds (`Peer.directoryStats()`). */
export interface DirectoryStats {
  /** Records held, tombstones and this node's own included. */
  records: number;
  /** Distinct pattern strings held. */
  patterns: number;
  /** Bytes the distinct patterns and their wildcard index are counted at, against `directoryMaxPatternMemory` (docs/directory.md, Memory). */
  patternMemory: number;
  /** Records refused since start, by reason (docs/directory.md, Bounds). */
  refused: Record<DirectoryRefusal, number>;
  /** Records accepted from other nodes since start (broadcast or anti-entropy). */
  accepted: number;
  /** Records removed at their expiry since start. */
  expired: number;
  /** Records held on their introducing neighbour's word alone (no other evidence of their node): at most half of `directoryMaxRecords` from one neighbour, and evicted first. */
  unvouched: number;
  /** Distinct nodes whose own record, sent by them (broadcast, or a page over their own connection), was refused for its time (`future`, `expired`): a clock off by more than `broadcastClockSkewMs` (ahead) or `directoryTtlMs` (behind). Each is logged once (warn). */
  skewedNodes: number;
  /** Anti-entropy since start (docs/directory.md, Anti-entropy). */
  sync: SyncStats;
  /** The network broadcasts that carried records (`$p2p.directory`), counted apart from `networkBroadcastStats()`. */
  broadcasts: {
    /** Records this node published. */
    originated: number;
    /** Records delivered to the directory (this node's own included). */
    delivered: number;
    /** Copies that arrived again. */
    duplicates: number;
    /** Data frames sent (relays included). */
    sent: number;
  };
}

/** Counters (`directoryStats().sync`). */
export interface SyncStats {
  /** Digests sent. */
  digestsSent: number;
  /** Digests received. */
  digestsReceived: number;
  /** Digests ignored: sooner than an eighth of an interval after the neighbour's previous one. */
  digestsIgnored: number;
  /** Pages of records sent. */
  pagesSent: number;
  /** Pages of records received. */
  pagesReceived: number;
  /** Records in the pages sent. */
  recordsSent: number;
  /** Records in the pages received (each judged). */
  recordsReceived: number;
}


/** The directory's limits (PeerOptions `directory*`, defaults in DEFAULTS). */
export interface DirectoryOptions extends RecordLimits {
  maxRecords: number;
  /** Bytes the distinct patterns and their index may be counted at (RecordTable's cost model). */
  maxPatternMemory: number;
  /** Record updates accepted a second per origin, and at once. */
  updateRate: number;
  updateBurst: number;
  ttlMs: number;
  /** How far ahead of this node's clock a record may be issued. */
  clockSkewMs: number;
  /**
   * Updates a second one neighbour may hand over in pages of records that only it vouches for (burst
   * UNVOUCHED_UPDATE_BURST_SECONDS worth); past it they are refused `neighbourBudget` before their signature.
   * The node passes its `broadcastUnknownOriginRate`: the same budget its broadcasts of such origins have.
   */
  unvouchedUpdateRate: number;
}

export interface DirectoryHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** Publishes a record of this node network-wide (the reserved topic): the neighbours it went to; may throw a typed error. */
  publish(bytes: Buffer): number;
  penalize(peerId: string, what: Misbehaviour, detail: string, weight?: number): void;
  /** A record was added, replaced or removed. */
  changed(change: DirectoryChange): void;
  /**
   * Whether this node has evidence that `id` is a network member other than the word of neighbour `via` (the one
   * that handed its record over): a neighbour, a proven past one, or a peer-exchange candidate named by another
   * neighbour. A record without it is unvouched: counted against `via`'s quota and evicted first (docs/directory.md, Bounds).
   */
  isKnown(id: string, via: string): boolean;
}

/** What a record's arrival gets, in the broadcast pipeline's terms (its BroadcastVerdict): keep and relay, drop, drop and penalise. */
export type BroadcastVerdict = 'accept' | 'ignore' | 'reject';

/** How a record arrived: relayed by the broadcast pipeline (its origin proven), or in an anti-entropy page. */
export type RecordSource = { via: 'broadcast'; origin: string; from: string } | { via: 'sync'; from: string };

/** How far past `now + clockSkewMs` a verified copy of this node's own record may put its seq: a past run's burst of updates, 1 ms each. */
const OWN_SEQ_MARGIN_MS = 60_000;
/**
 * One neighbour may bring at most this share of `directoryMaxRecords` as unvouched records (of nodes this node
 * has no other evidence of): throwaway keys behind one link fill half the directory at most, never evict a record,
 * and records with evidence evict them first. A joiner in a network past half of `directoryMaxRecords` gets the
 * rest from its next anti-entropy neighbour.
 */
export const UNVOUCHED_SHARE = 1 / 2;
/** The burst of a neighbour's budget of unvouched updates in pages, in seconds of `unvouchedUpdateRate` (the unknown-origin budget's). */
export const UNVOUCHED_UPDATE_BURST_SECONDS = 5;
/** Neighbours whose budget of unvouched updates is tracked at once; a full table forgets refilled buckets first. */
const MAX_BUDGETS = 1024;
/** Nodes whose skewed clock is logged one line each; past them, one line says the rest are only counted. */
const SKEW_LOGGED = 16;
/** Distinct nodes counted as skewed (`directoryStats().skewedNodes`); past it, counting stops. */
const SKEW_COUNTED = 4096;
/** The decoder's bound on seq − issuedAt (record.ts), less one. */
const MAX_SEQ_AHEAD = 2 ** 31 - 1;

const REFUSALS: DirectoryRefusal[] = ['malformed', 'wrongOrigin', 'badSignature', 'stale', 'future', 'expired', 'rate', 'full', 'unsolicited', 'neighbourBudget'];

export class Directory {
  readonly table: RecordTable;
  private readonly refused = Object.fromEntries(REFUSALS.map((r) => [r, 0])) as Record<DirectoryRefusal, number>;
  private accepted = 0;
  private expiredCount = 0;
  private own: { requests: string[]; events: string[] } | undefined;
  private ownBytes: Buffer | undefined;
  private lastSeq = 0;
  /** This node's own publish budget: the receivers' per-origin bucket less one token, so that jitter on the way never trips it. */
  private ownTokens: number;
  private ownTokensAt = 0;
  private publishTimer: NodeJS.Timeout | undefined;
  private republishTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Unvouched records one neighbour may have held (UNVOUCHED_SHARE). */
  private readonly quota: number;
  /** Key of the neighbour tags (`tag`): secret, so that no key can be ground to share a neighbour's tag. */
  private readonly tagKey = randomBytes(16);
  private readonly skewed = new Set<string>();
  /**
   * Per neighbour, updates in its pages of records it alone vouches for. Each origin's own update rate
   * bounds one key, not a neighbour with many: 1 000 throwaway keys rewrote their records 3 000 times
   * in 2 s through one link (a signature check each, the subscriber lists rebuilt each), unpenalised.
   */
  private readonly pageBudget: BucketTable;
  /** The last publish reached no neighbour (a node that sets its handlers, then dials): the next connection sends it again. */
  private unheard = false;

  constructor(
    private readonly host: DirectoryHost,
    private readonly identity: Identity,
    private readonly address: () => string | null,
    readonly options: DirectoryOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.table = new RecordTable(options.maxRecords, options.maxPatternMemory);
    this.quota = Math.max(1, Math.ceil(options.maxRecords * UNVOUCHED_SHARE));
    this.ownTokens = this.ownBurst;
    const rate = options.unvouchedUpdateRate;
    this.pageBudget = new BucketTable(rate, Math.max(1, UNVOUCHED_UPDATE_BURST_SECONDS * rate), MAX_BUDGETS, now);
  }

  private get ownBurst(): number {
    return Math.max(1, this.options.updateBurst - 1);
  }

  /** Starts re-publishing and expiry; publishes this node's record when it has one. */
  start(): void {
    const ttl = this.options.ttlMs;
    this.republishTimer = setInterval(() => this.guarded('re-publish', () => this.own && this.setOwn(this.own)), Math.max(1000, ttl / 3));
    this.republishTimer.unref();
    this.sweepTimer = setInterval(() => this.guarded('expiry', () => this.sweep()), Math.max(250, Math.min(60_000, ttl / 10)));
    this.sweepTimer.unref();
    if (this.own) this.setOwn(this.own);
  }

  stop(): void {
    clearInterval(this.republishTimer);
    clearInterval(this.sweepTimer);
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
  }

  /**
   * Replaces this node's record (a new seq) and publishes it when running. Publishes stay within
   * the update rate every node allows an origin (one token spare): a burst of changes becomes
   * one record, the latest, sent when the rate allows. The caller validated the patterns.
   */
  setOwn(patterns: { requests: readonly string[]; events: readonly string[] }): void {
    this.own = { requests: [...new Set(patterns.requests)].sort(), events: [...new Set(patterns.events)].sort() };
    const bytes = this.sign(false);
    this.applyOwn(bytes);
    if (this.host.isRunning()) this.schedulePublish();
  }

  /** The tombstone this node publishes on close: its record with `leaving` set and no patterns. */
  leave(): Buffer | undefined {
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    if (!this.own) return undefined;
    this.own = { requests: [], events: [] };
    const bytes = this.sign(true);
    this.applyOwn(bytes);
    return bytes;
  }

  /** A timer's work: an exception there would be uncaught (a process crash), so it is logged instead. */
  private guarded(what: string, work: () => unknown): void {
    try {
      work();
    } catch (err) {
      this.host.logger.error(`directory ${what} failed: ${(err as Error).message}`, { event: 'directory' });
    }
  }

  private sign(leaving: boolean): Buffer {
    const now = this.now();
    // seq stays within the decoder's bound from issuedAt (2^31 ms), whatever lastSeq was raised to.
    this.lastSeq = Math.min(Math.max(now, this.lastSeq + 1), now + MAX_SEQ_AHEAD);
    return signRecord(this.identity, {
      publicKey: this.identity.publicKeyRaw,
      seq: this.lastSeq,
      issuedAt: now,
      leaving,
      address: this.address() ?? '',
      requests: this.own!.requests,
      events: this.own!.events,
    });
  }

  /** Keeps a record this node signed; never throws (a timer and `Peer.close()` call it): bytes that do not decode are logged and not kept. */
  private applyOwn(bytes: Buffer): void {
    let record: DirectoryRecord;
    try {
      record = decodeRecord(bytes, { maxPatterns: 65_535, maxPatternBytes: 65_535 });
    } catch (err) {
      this.host.logger.error(`directory: this node's own record does not decode (${(err as Error).message}); the previous one is kept`, { event: 'directory' });
      return;
    }
    this.ownBytes = bytes;
    this.store(record, true);
  }

  private schedulePublish(): void {
    if (this.publishTimer) return; // the pending publish sends the latest record
    const now = this.now();
    this.ownTokens = Math.min(this.ownBurst, this.ownTokens + ((now - this.ownTokensAt) / 1000) * this.options.updateRate);
    this.ownTokensAt = now;
    const wait = this.ownTokens >= 1 ? 0 : Math.ceil(((1 - this.ownTokens) * 1000) / this.options.updateRate);
    if (wait === 0) return this.publishNow();
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      this.guarded('publish', () => this.schedulePublish());
    }, wait);
    this.publishTimer.unref();
  }

  private publishNow(): void {
    if (!this.ownBytes || !this.host.isRunning()) return;
    this.ownTokens -= 1;
    try {
      this.unheard = this.host.publish(this.ownBytes) === 0;
    } catch (err) {
      // Anti-entropy carries it later; a node over its own broadcast budget must not fail its caller.
      this.host.logger.debug?.(`directory record not broadcast now (${(err as Error).message}); anti-entropy will carry it`, { event: 'directory' });
    }
  }

  /**
   * A neighbour connected. When this node's record has reached nobody yet, it is broadcast now, so
   * that the whole network has it in a broadcast's time rather than one anti-entropy round per hop.
   */
  onConnected(peerId?: string): void {
    if (peerId !== undefined) {
      const slot = this.table.find(peerId);
      if (slot >= 0 && this.table.unvouched(slot)) this.table.vouch(slot);
    }
    if (this.unheard && this.host.isRunning()) this.schedulePublish();
  }

  /** This node's current record bytes (for anti-entropy pages and tests). */
  get ownRecord(): Buffer | undefined {
    return this.ownBytes;
  }

  /**
   * Judges a record that arrived from another node, and keeps it when it is valid and newer.
   * The verdict is the broadcast pipeline's: `reject` (its sender is penalised by the caller or
   * the pipeline) for what no honest node sends, `ignore` for what an honest one may.
   */
  receive(bytes: Buffer, source: RecordSource): BroadcastVerdict {
    let record: DirectoryRecord;
    try {
      record = decodeRecord(bytes, this.options);
    } catch (err) {
      if (!(err instanceof P2PProtocolError)) throw err;
      // Over this node's bounds but within the defaults: a node at the defaults (another configuration, another version)
      // holds and sends it, and could not know this node's bounds. Ignored, nobody charged: V with directoryMaxPatterns 4
      // charged honest H 10 points for paging a record of 10 patterns, and judged nothing after it (review of issue 22).
      return this.refuse('malformed', withinDefaultBounds(bytes) ? 'ignore' : 'reject', source, err.message);
    }
    if (source.via === 'broadcast' && source.origin !== record.id) {
      return this.refuse('wrongOrigin', 'reject', source, `a record of ${record.id} broadcast by ${source.origin}: a node may publish only its own`);
    }
    if ([...record.requests, ...record.events].some(isReserved)) return this.refuse('malformed', 'reject', source, 'a reserved ($p2p.) pattern');
    const now = this.now();
    if (record.issuedAt > now + this.options.clockSkewMs) return this.refuseTime('future', record, source, now);
    if (record.issuedAt + this.options.ttlMs < now) return this.refuseTime('expired', record, source, now);
    const holder = this.tag(source.from);
    if (record.id === this.host.selfId) {
      // Checked before it can move lastSeq: anyone can write this node's key into a record, only this key can sign it.
      if (!verifyRecord(bytes, record.publicKey)) return this.refuse('badSignature', 'reject', source, 'a copy of this node\'s own record not signed by its key');
      return this.ownCopy(record, source, now);
    }
    const slot = this.table.find(record.id);
    if (slot >= 0 && record.seq <= this.table.seq(slot)) {
      if (record.seq === this.table.seq(slot)) {
        if (this.table.unvouched(slot) && this.evidence(record.id, source)) this.table.vouch(slot);
        return 'ignore';
      }
      // Stale: never charged. A neighbour seen holding the newer version used to be, as a replayer ("an honest node
      // never goes back"), but a record leaves an honest table when it expires, and its node may sign an older seq
      // afterwards: A gave honest H a short-lived copy of V's seq, let it expire at H, gave H an older seq, and V
      // charged H 10 points for paging it (review of issue 22). Refused before the signature, nothing changes.
      return this.refuse('stale', 'ignore', source, `seq ${record.seq} after it held seq ${this.table.seq(slot)}`);
    }
    // Cheap refusals first: a signature check costs more than all of them.
    // The neighbour's tag when it alone vouches for the record's node (a replacement keeps its record's standing, or gains evidence).
    const introducer = this.evidence(record.id, source) ? undefined : holder;
    if (slot < 0 && !this.hasRoomFor(record, introducer)) return this.refuse('full', 'ignore', source);
    // An update in a page of a node only its sender vouches for: the sender's budget, as broadcasts from unknown
    // origins have theirs (by broadcast, the pipeline charged it already). A new record is bounded by the quota.
    // Not penalised: an honest neighbour pages the updates this node missed, and the rest come again later.
    if (slot >= 0 && introducer !== undefined && source.via === 'sync' && !this.pageBudget.take(source.from, 1)) {
      return this.refuse('neighbourBudget', 'ignore', source);
    }
    // Over the record's update rate, handed over by another node (a page, or a relayed broadcast): whether it is over
    // depends on when the copies arrive, which a relay decides, so only the record's own node sending it pays (review
    // of issue 22: an honest pager was charged 10 points a page, the rest of its page dropped; a relay that held back
    // an honest node's updates and sent them at once had that node charged 10 points each, through the pipeline's
    // "as its origin sent it" re-ask). Ignored, before the signature; anti-entropy brings the newest version later.
    if (slot >= 0 && source.from !== record.id && !this.table.hasToken(slot, this.options.updateRate, this.options.updateBurst, now)) {
      return this.refuse('rate', 'ignore', source);
    }
    if (!verifyRecord(bytes, record.publicKey)) return this.refuse('badSignature', 'reject', source, 'signature is not its own key');
    // A replacement is checked too (its old patterns counted as kept: an upper bound), so that rewriting a record cannot grow the index past its budget.
    if (slot >= 0 && this.table.wouldOverflowPatterns(record)) return this.refuse('full', 'ignore', source);
    if (slot >= 0 && !this.table.takeToken(slot, this.options.updateRate, this.options.updateBurst, now)) {
      return this.refuse('rate', 'reject', source, `record of ${record.id} rewritten over ${this.options.updateRate}/s (burst ${this.options.updateBurst})`);
    }
    if (slot < 0 && !this.makeRoom(record, introducer)) return this.refuse('full', 'ignore', source);
    this.accepted++;
    this.store(record, false, introducer);
    return 'accept';
  }

  /** Evidence of a record's node other than the word of the neighbour that handed it over (DirectoryHost.isKnown). */
  private evidence(id: string, source: RecordSource): boolean {
    return id === source.from || this.host.isKnown(id, source.from);
  }

  /**
   * A record refused for its time. When its node sent it (its own broadcast, whose signature the pipeline checked, or
   * a page from it over its own connection: how a neighbour with a skewed clock hands its record over, as the
   * pipeline drops its skewed broadcasts first), that node's clock is off, and it would vanish from every directory
   * without a word: logged once a node. Another node's copy in a page may be anyone's: only counted.
   */
  private refuseTime(reason: 'future' | 'expired', record: DirectoryRecord, source: RecordSource, now: number): BroadcastVerdict {
    const ownWord = source.via === 'broadcast' || source.from === record.id;
    if (ownWord && !this.skewed.has(record.id) && this.skewed.size < SKEW_COUNTED) {
      this.skewed.add(record.id);
      if (this.skewed.size <= SKEW_LOGGED) {
        const off = Math.round((record.issuedAt - now) / 1000);
        this.host.logger.warn(
          `directory: node ${record.id} (address ${escapeControlCharacters(record.address) || 'none'}, from ${source.from}) issues records ${Math.abs(off)} s ${off > 0 ? 'ahead of' : 'behind'} this node's clock: refused as ${reason} (allowed: ${this.options.clockSkewMs} ms ahead, ${this.options.ttlMs} ms behind), so it is not listed here until its clock is corrected`,
          { event: 'directory', peerId: record.id },
        );
      } else if (this.skewed.size === SKEW_LOGGED + 1) {
        this.host.logger.warn(`directory: more nodes with skewed clocks; they are counted in directoryStats().skewedNodes, not logged`, { event: 'directory' });
      }
    }
    return this.refuse(reason, 'ignore', source);
  }

  /** A neighbour's 32-bit tag (introducer of records): keyed, so that a ground key cannot share an honest neighbour's tag. */
  private tag(peerId: string): number {
    return createHmac('sha256', this.tagKey).update(peerId).digest().readInt32BE(0);
  }

  /**
   * A copy of this node's own record, its signature checked: a newer one is a past run's (same key), so this run's
   * seq jumps past it. An honest seq is a wall-clock time: one past this clock's skew and OWN_SEQ_MARGIN_MS is
   * refused (`future`), so that no record, even one signed with a leaked key, moves seq out of reach.
   */
  private ownCopy(record: DirectoryRecord, source: RecordSource, now: number): BroadcastVerdict {
    if (record.seq > now + this.options.clockSkewMs + OWN_SEQ_MARGIN_MS) return this.refuse('future', 'ignore', source);
    if (record.seq >= this.lastSeq && this.own) {
      this.lastSeq = record.seq;
      this.setOwn(this.own);
    }
    return 'ignore';
  }

  private refuse(reason: DirectoryRefusal, verdict: BroadcastVerdict, source: RecordSource, detail?: string): BroadcastVerdict {
    this.refused[reason]++;
    // A broadcast's rejection is charged by the pipeline (to its origin, or a relay that spoilt it); a page's here.
    if (verdict === 'reject' && source.via === 'sync') this.host.penalize(source.from, 'rejected', `directory record refused (${reason}${detail ? `: ${detail}` : ''})`);
    return verdict;
  }

  /**
   * Whether a new record could have a place (before its signature is checked). One with evidence (`introducer`
   * undefined) may evict an unvouched record; an unvouched one only takes free room, within its introducer's quota.
   */
  private hasRoomFor(record: DirectoryRecord, introducer: number | undefined): boolean {
    if (this.table.wouldOverflowPatterns(record)) return false;
    if (introducer !== undefined) return !this.table.full && this.table.unvouchedBy(introducer) < this.quota;
    return !this.table.full || this.table.unvouchedCount > 0;
  }

  /** Room for one more record: free, or an unvouched record evicted (of the neighbour that introduced the most) for one with evidence. */
  private makeRoom(record: DirectoryRecord, introducer: number | undefined): boolean {
    if (!this.hasRoomFor(record, introducer)) return false;
    if (!this.table.full) return true;
    const slot = this.table.evictable();
    if (slot < 0) return false;
    this.removeSlot(slot);
    return true;
  }

  private store(record: DirectoryRecord, own: boolean, introducer?: number): void {
    const slot = this.table.find(record.id);
    const wasLive = slot >= 0 && !this.table.leaving(slot);
    if (own && slot < 0 && this.table.full) this.evictAny();
    this.table.put(record, this.now(), this.options.updateBurst, introducer);
    if (record.leaving) {
      if (wasLive) this.host.changed({ id: record.id, change: 'removed' });
    } else {
      this.host.changed({ id: record.id, change: wasLive ? 'replaced' : 'added' });
    }
  }

  /** This node's own record always has a place: an unvouched record's, or any other. */
  private evictAny(): void {
    const unvouched = this.table.evictable();
    if (unvouched >= 0) return this.removeSlot(unvouched);
    for (const slot of this.table.slots()) {
      if (this.table.id(slot) === this.host.selfId) continue;
      return this.removeSlot(slot);
    }
  }

  private removeSlot(slot: number): void {
    const id = this.table.id(slot);
    const wasLive = !this.table.leaving(slot);
    this.table.remove(slot);
    if (wasLive) this.host.changed({ id, change: 'removed' });
  }

  /** Removes the records (and tombstones) past their TTL; this node's own is re-published before it expires. */
  sweep(): void {
    const cutoff = this.now() - this.options.ttlMs;
    const expired: number[] = [];
    for (const slot of this.table.slots()) if (this.table.issuedAt(slot) < cutoff && this.table.id(slot) !== this.host.selfId) expired.push(slot);
    for (const slot of expired) {
      this.expiredCount++;
      this.removeSlot(slot);
    }
  }

  /** Nodes whose record has a `kind` pattern matching `subject`, sorted by id; no leaving or expired one. */
  /** The first `limit` distinct patterns held, with how many nodes handle each as a request and as an event. */
  patternCounts(limit: number): PatternCount[] {
    return this.table.patternCounts(limit);
  }

  handlers(subject: string, kind: PatternKind): HandlerInfo[] {
    const cutoff = this.now() - this.options.ttlMs;
    const out: HandlerInfo[] = [];
    for (const slot of this.table.match(subject, kind)) {
      if (this.table.leaving(slot)) continue;
      const id = this.table.id(slot);
      const self = id === this.host.selfId;
      if (!self && this.table.issuedAt(slot) < cutoff) continue;
      out.push({ id, address: this.table.address(slot) || null, self });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * The ids of `handlers(subject, kind)`, sorted, without making a HandlerInfo each: each pattern keeps its sorted
   * ids (RecordTable.matchIds), so that a subject one pattern matches costs a trie walk, and several a merge. A
   * record past its TTL stays in until the sweep removes it (at most `directoryTtlMs` / 10, a minute, later).
   */
  handlerIds(subject: string, kind: PatternKind): readonly string[] {
    return this.table.matchIds(subject, kind);
  }

  /**
   * For up to `limit` of this node's own event patterns, fewest nodes first, the sorted ids of the nodes whose records
   * hold the same pattern, as written (a wildcard is its own text, not what it matches): whom its covers prefer
   * (src/discovery/ring-topology.ts). Patterns only this node holds are left out.
   */
  sharingIds(limit: number): Array<readonly string[]> {
    if (!this.own || limit <= 0) return [];
    const lists = this.own.events.map((p) => this.table.patternIds(p, 'event')).filter((ids) => ids.length > 1);
    return lists.sort((a, b) => a.length - b.length).slice(0, limit);
  }

  /** Node `id`'s entry in `handlers(subject, kind)` now (its record is held, not leaving, not expired, with a matching pattern), else undefined. */
  handler(id: string, subject: string, kind: PatternKind): HandlerInfo | undefined {
    const slot = this.table.find(id);
    if (slot < 0 || this.table.leaving(slot)) return undefined;
    const self = id === this.host.selfId;
    if (!self && this.table.issuedAt(slot) < this.now() - this.options.ttlMs) return undefined;
    return this.table.handles(slot, subject, kind) ? { id, address: this.table.address(slot) || null, self } : undefined;
  }

  stats(): Omit<DirectoryStats, 'sync' | 'broadcasts'> {
    return {
      records: this.table.size,
      patterns: this.table.distinctPatterns,
      patternMemory: this.table.patternMemory,
      refused: { ...this.refused },
      accepted: this.accepted,
      expired: this.expiredCount,
      unvouched: this.table.unvouchedCount,
      skewedNodes: this.skewed.size,
    };
  }

  /** Counts a refusal decided outside `receive` (anti-entropy pages out of bounds). */
  countRefusal(reason: DirectoryRefusal): void {
    this.refused[reason]++;
  }
}

/** The record's patterns are within the default bounds (directoryMaxPatterns, directoryMaxPatternBytes, directoryMaxPatternTokens). */
function withinDefaultBounds(bytes: Buffer): boolean {
  try {
    decodeRecord(bytes, { maxPatterns: DEFAULTS.directoryMaxPatterns, maxPatternBytes: DEFAULTS.directoryMaxPatternBytes, maxPatternTokens: DEFAULTS.directoryMaxPatternTokens });
    return true;
  } catch (err) {
    if (err instanceof P2PProtocolError) return false;
    throw err;
  }
}

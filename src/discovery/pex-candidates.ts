import type { KnownPeer } from './address-book.js';
import { backoffDelay, type BackoffOptions } from './reconnect.js';

/**
 * Peer-exchange entries are hints, not facts: each is a candidate `(id, address)`
 * until a dial to it proves the id, and only then does the address book learn
 * it. Candidates never enter the RainTree view. The limits below bound what a
 * lying neighbour can make this node do (issue 13).
 */

/** Candidates one neighbour may have waiting at a time; a proven or dropped one frees its place. */
export const PEX_MAX_CANDIDATES_PER_SOURCE = 16;
/** Candidate dials in any window of pexIntervalMs (of a forming round while the node is below its least degree), all sources together. */
export const PEX_DIALS_PER_INTERVAL = 4;
/**
 * Places of a forming round's budget that the unanswered dials of one neighbour's candidates may hold: an address that
 * never answers holds its place for an interval, and one neighbour naming such addresses must leave the rest to others.
 * Fixed, not a share of the neighbours naming candidates at the time: the first neighbour's names come before the
 * others', and a share of all then would have let them hold every place for the interval (tried: the LAN node of
 * review22-netgroup-lan-pex stayed at 2). A dial that reaches its id frees its place at once; one that fails holds it
 * for the interval, as one in flight does (else a liar could make the node dial quickly failing addresses without end).
 * A neighbour reached through another's candidate shares its namer's places (lineage below). Open: two independent
 * neighbours that name black holes hold all 4 places (docs/security.md, Names are not places).
 */
export const PEX_UNPROVEN_PER_SOURCE = PEX_DIALS_PER_INTERVAL / 2;
/** Failed dials after which a candidate is dropped and its address refused for a while. */
export const PEX_CANDIDATE_MAX_FAILURES = 2;
/** How long (in pexIntervalMs) a dropped candidate's address is refused, and a candidate may wait. */
export const PEX_QUARANTINE_INTERVALS = 30;
const MAX_QUARANTINED = 4096;
/** Neighbours remembered as reached through another's candidate (their names count against its share), at most. */
const MAX_LINEAGE = 4096;
/** Dials remembered with their namer's chain until they reach their id (those that never do are forgotten first), at most. */
const MAX_DIALED = 256;
/** Further neighbours remembered as naming one candidate: enough to tell a hint one neighbour alone gives. */
const MAX_ALSO_NAMED_BY = 4;

interface Candidate extends KnownPeer {
  /** The neighbour that told us. */
  source: string;
  /** Other neighbours that named it too (at most MAX_ALSO_NAMED_BY), not counted against their quota. */
  also?: Set<string>;
  addedAt: number;
}

export interface CandidateOptions {
  intervalMs: number;
  backoff: BackoffOptions;
}

export class PexCandidates {
  /** One candidate per address (duplicates merge to the first), and one per id. */
  private readonly byAddress = new Map<string, Candidate>();
  private readonly byId = new Map<string, Candidate>();
  private readonly perSource = new Map<string, number>();
  /** Addresses whose candidates failed, refused until the time given (ms since epoch). */
  private readonly quarantined = new Map<string, number>();
  /** When the last candidate dials started, for the sliding window. */
  private dialTimes: number[] = [];
  /**
   * Candidates dialed on a forming round's budget whose id has not answered yet (in flight, or failed), with when:
   * each holds a place of that budget for an interval. A neighbour's list names its inbound peers where they say
   * they listen, so names it vouches for may be a third party's address: those get no more dials than before.
   */
  private readonly quickUnproven = new Map<string, { at: number; source: string | undefined }>();
  /** The neighbour whose names take() served last (by lineage): the next take() starts its turn after it. */
  private lastServed: string | undefined;
  /**
   * Ids dialed as a neighbour's candidates, with the neighbour that named the chain first: once connected, their own
   * names share its turn and its places. Else a neighbour could name one id that answers (a Sybil of its own), have
   * this node dial it and trust it as its own choice, and gain a second share of the places.
   */
  private readonly lineage = new Map<string, string>();
  /** Candidates dialed, with the chain that named them, until they reach their id: only then are they in `lineage`. */
  private readonly dialedFrom = new Map<string, string>();

  constructor(
    private readonly options: CandidateOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.byAddress.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Where candidate `id` says it listens, if it is one. */
  addressOf(id: string): string | undefined {
    return this.byId.get(id)?.address;
  }

  /** The neighbour that named candidate `id`, if it is one. */
  sourceOf(id: string): string | undefined {
    return this.byId.get(id)?.source;
  }

  /** Whether a neighbour other than `neighbour` named candidate `id`. */
  namedByOtherThan(id: string, neighbour: string): boolean {
    const c = this.byId.get(id);
    if (!c) return false;
    if (c.source !== neighbour) return true;
    for (const other of c.also ?? []) if (other !== neighbour) return true;
    return false;
  }

  entries(): KnownPeer[] {
    return [...this.byAddress.values()].map(({ source: _s, addedAt: _a, ...entry }) => entry);
  }

  /** Takes `id` at `address` from `source` as a candidate; returns why not, or undefined. `room`: the book has space. */
  offer(source: string, id: string, address: string, room: boolean): string | undefined {
    const now = this.now();
    if (this.byAddress.has(address)) return 'duplicate address';
    const named = this.byId.get(id);
    if (named) {
      // Remembered as naming it too (when it gives the same address): another neighbour's word that the id exists.
      if (named.address === address && source !== named.source && (named.also?.size ?? 0) < MAX_ALSO_NAMED_BY) (named.also ??= new Set()).add(source);
      return 'id already a candidate';
    }
    const until = this.quarantined.get(address);
    if (until !== undefined && until > now) return 'address failed recently';
    this.quarantined.delete(address);
    if ((this.perSource.get(source) ?? 0) >= PEX_MAX_CANDIDATES_PER_SOURCE) return `over ${PEX_MAX_CANDIDATES_PER_SOURCE} candidates from one peer`;
    if (!room && !this.evictFailed()) return 'address book full';
    const candidate: Candidate = { id, address, failures: 0, nextDialAt: 0, seenAt: now, verified: false, source, addedAt: now };
    this.byAddress.set(address, candidate);
    this.byId.set(id, candidate);
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    return undefined;
  }

  /**
   * Up to `limit` candidates to dial now, within the dial budget, taken in turn from each neighbour that named
   * some (oldest first within each; the neighbour whose candidate is oldest first); each is marked dialed.
   * In turn, not oldest first overall: a neighbour that names made-up ids at addresses that never answer
   * (each holding a forming dial for the handshake timeout) would otherwise take every dial while its names
   * came first, and the honest names of another neighbour would wait behind them.
   * `windowMs`: the budget's window, when shorter than the interval (a node below its least degree).
   */
  take(limit: number, skip: (id: string) => boolean, windowMs = this.options.intervalMs): KnownPeer[] {
    const now = this.now();
    this.expire(now);
    const budget = Math.min(limit, this.budget(now, windowMs));
    if (budget <= 0) return [];
    // On a forming round's budget, each neighbour's unanswered dials hold at most PEX_UNPROVEN_PER_SOURCE places.
    const room = windowMs < this.options.intervalMs ? this.unprovenRoom() : undefined;
    const bySource = new Map<string, Candidate[]>();
    for (const c of this.byAddress.values()) {
      if (c.nextDialAt > now || skip(c.id)) continue;
      const root = this.rootOf(c.source);
      const list = bySource.get(root);
      if (list) list.push(c);
      else bySource.set(root, [c]);
    }
    // The turn goes on from the neighbour after the last one served: a window that frees one place at a time would
    // otherwise give every dial to the neighbour whose candidate is oldest.
    const roots = [...bySource.keys()];
    const after = this.lastServed === undefined ? 0 : roots.indexOf(this.lastServed) + 1;
    const order = [...roots.slice(after), ...roots.slice(0, after)].map((root) => bySource.get(root)!);
    const due: Candidate[] = [];
    for (let round = 0; due.length < budget; round++) {
      let any = false;
      for (const list of order) {
        const c = list[round];
        if (!c) continue;
        any = true;
        if (room) {
          const root = this.rootOf(c.source);
          const left = room.get(root) ?? PEX_UNPROVEN_PER_SOURCE;
          if (left <= 0) continue;
          room.set(root, left - 1);
        }
        due.push(c);
        if (due.length === budget) break;
      }
      if (!any) break;
    }
    for (const c of due) this.dialing(c, now, windowMs);
    if (due.length > 0) this.lastServed = this.rootOf(due[due.length - 1]!.source);
    return due;
  }

  /** The candidate `id` if it may be dialed now (within the dial budget, over `windowMs` as in take()); it is marked dialed. */
  takeId(id: string, windowMs = this.options.intervalMs): KnownPeer | undefined {
    const now = this.now();
    const c = this.byId.get(id);
    if (!c || c.nextDialAt > now) return undefined;
    if (this.budget(now, windowMs) <= 0) return undefined;
    if (windowMs < this.options.intervalMs && (this.unprovenRoom().get(this.rootOf(c.source)) ?? PEX_UNPROVEN_PER_SOURCE) <= 0) return undefined;
    this.dialing(c, now, windowMs);
    return c;
  }

  /** Dials left now over `windowMs`; on a forming round's (short) window, also no more than the unproven quick dials leave. */
  private budget(now: number, windowMs: number): number {
    const left = PEX_DIALS_PER_INTERVAL - this.dialsWithin(now, windowMs);
    if (windowMs >= this.options.intervalMs) return left;
    let unproven = 0;
    for (const [id, { at }] of this.quickUnproven) {
      if (now - at >= this.options.intervalMs) this.quickUnproven.delete(id);
      else unproven++;
    }
    return Math.min(left, PEX_DIALS_PER_INTERVAL - unproven);
  }

  /** Per neighbour whose candidates' quick dials are unanswered (as of budget(), which drops the old): places it has left. */
  private unprovenRoom(): Map<string | undefined, number> {
    const room = new Map<string | undefined, number>();
    for (const { source } of this.quickUnproven.values()) room.set(source, (room.get(source) ?? PEX_UNPROVEN_PER_SOURCE) - 1);
    return room;
  }

  /** The neighbour that first named the chain of candidates `source` was reached through (itself, if none). */
  private rootOf(source: string): string {
    return this.lineage.get(source) ?? source;
  }

  private dialing(c: Candidate, now: number, windowMs: number): void {
    // At most one dial per address per interval, whatever the outcome.
    c.nextDialAt = now + this.options.intervalMs;
    this.dialTimes.push(now);
    const root = this.rootOf(c.source);
    if (windowMs < this.options.intervalMs) this.quickUnproven.set(c.id, { at: now, source: root });
    // Should it answer and become a neighbour, its names are its namer's chain's (reached() makes it so).
    remember(this.dialedFrom, c.id, root, MAX_DIALED);
  }

  /**
   * A dial to `id` that is no candidate but draws on their budget (a proven id at an address no dial of this node's
   * reached: only its word, as a candidate's is a neighbour's): whether one is left, over `windowMs` as in take().
   */
  spend(id: string, windowMs = this.options.intervalMs): boolean {
    const now = this.now();
    if (this.budget(now, windowMs) <= 0) return false;
    this.dialTimes.push(now);
    if (windowMs < this.options.intervalMs) this.quickUnproven.set(id, { at: now, source: undefined });
    return true;
  }

  /** A dial to candidate `id` reached that id (it may have been refused there, or a duplicate): it holds no place of the forming budget. */
  reached(id: string): void {
    this.quickUnproven.delete(id);
    const root = this.dialedFrom.get(id);
    if (root === undefined) return;
    this.dialedFrom.delete(id);
    // Only dials that reached their id: addresses that never answer must not push real neighbours out of the lineage.
    remember(this.lineage, id, root, MAX_LINEAGE);
  }

  /** Candidate dials started in the last `windowMs` (the times of the last interval are kept, whatever the window). */
  private dialsWithin(now: number, windowMs: number): number {
    this.dialTimes = this.dialTimes.filter((t) => now - t < this.options.intervalMs);
    let n = 0;
    for (const t of this.dialTimes) if (now - t < windowMs) n++;
    return n;
  }

  /** Whether `id` is a candidate that could be dialed now. */
  isDue(id: string): boolean {
    const c = this.byId.get(id);
    return c !== undefined && c.nextDialAt <= this.now();
  }

  /** A dial to `id` failed: back off, and after PEX_CANDIDATE_MAX_FAILURES drop it and refuse its address. */
  failed(id: string): void {
    const c = this.byId.get(id);
    if (!c) return;
    c.failures++;
    if (c.failures >= PEX_CANDIDATE_MAX_FAILURES) {
      this.remove(id);
      this.quarantine(c.address);
      return;
    }
    c.nextDialAt = this.now() + Math.max(this.options.intervalMs, backoffDelay(c.failures - 1, this.options.backoff));
  }

  /** The id proved itself (or is otherwise known now): it is no longer a candidate. */
  remove(id: string): void {
    const c = this.byId.get(id);
    if (!c) return;
    this.byId.delete(id);
    this.byAddress.delete(c.address);
    const left = (this.perSource.get(c.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(c.source, left);
    else this.perSource.delete(c.source);
  }

  private quarantineMs(): number {
    return PEX_QUARANTINE_INTERVALS * this.options.intervalMs;
  }

  private quarantine(address: string): void {
    if (this.quarantined.size >= MAX_QUARANTINED) {
      const oldest = this.quarantined.keys().next().value;
      if (oldest !== undefined) this.quarantined.delete(oldest);
    }
    this.quarantined.set(address, this.now() + this.quarantineMs());
  }

  /** Candidates that waited too long age out, so stale hints do not pile up. */
  private expire(now: number): void {
    for (const c of [...this.byAddress.values()]) if (now - c.addedAt > this.quarantineMs()) this.remove(c.id);
  }

  /** Full book: a candidate that already failed makes room for a new one. */
  private evictFailed(): boolean {
    for (const c of this.byAddress.values()) {
      if (c.failures > 0) {
        this.remove(c.id);
        return true;
      }
    }
    return false;
  }
}

/** Sets `key` as the newest entry of `map`, forgetting the oldest past `max`. */
function remember(map: Map<string, string>, key: string, value: string, max: number): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}

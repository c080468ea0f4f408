import { BucketTable, TokenBucket } from '../common/token-bucket.js';

/** How much network-broadcast work one origin, or one neighbour, may cause. */
export interface BudgetLimits {
  /** Broadcasts a second one origin may start. */
  originRate: number;
  /** Broadcasts one origin may start at once. */
  originBurst: number;
  /** Bytes a second of one origin's broadcasts. */
  originBytesPerSec: number;
  /** Broadcast frames a second one neighbour may send us (copies included). */
  neighbourRate: number;
  /** Bytes a second of broadcast frames one neighbour may send us. */
  neighbourBytesPerSec: number;
  /** The largest frame: every byte bucket holds at least one. */
  maxFrameBytes: number;
  /**
   * New broadcasts a second one neighbour may hand us from origins this node has no evidence are network
   * members (burst: UNKNOWN_ORIGIN_BURST_SECONDS worth); a gossip one costs GOSSIP_UNKNOWN_ORIGIN_COST.
   */
  unknownOriginRate: number;
}

/** The unknown-origin burst, in seconds of `unknownOriginRate`. */
export const UNKNOWN_ORIGIN_BURST_SECONDS = 5;
/** Tokens a gossip broadcast from an unknown origin costs: gossip sends a copy per link, RainTree about one per node. */
export const GOSSIP_UNKNOWN_ORIGIN_COST = 5;
/**
 * Over the unknown-origin budget this long without a pause of PAUSE_MS, with more drops from other origins than its
 * EXCUSED_ORIGINS main ones than the whole budget holds (see `takeUnknownOrigin`): the neighbour is throttled and loses a
 * point (then at most one a PAUSE_MS).
 */
export const SUSTAINED_MS = 500;
/**
 * The origins a neighbour over its unknown-origin budget had most broadcasts dropped of, in one stretch over it: their drops
 * never make it an introducer of new origins. An honest relay over the budget carries a few origins the receiver cannot
 * tell are members (with peer exchange off, its neighbours' own broadcasts; review 22), and at most its node-wide share of
 * relays of origins it has no evidence of itself (UNVOUCHED_RELAY_SHARE); throwaway keys keep changing. One key at any rate
 * gains nothing by it: past the budget its broadcasts are dropped unverified.
 */
export const EXCUSED_ORIGINS = 3;
/** Origins whose drops are counted per neighbour over its budget: a new one takes the least counted one's place and count (SpaceSaving). */
const COUNTED_ORIGINS = 8;
/**
 * The drops are counted afresh this often while a neighbour stays over: one that stayed over with a few origins for long
 * would otherwise have banked the budget's worth of all that time before its new origins counted.
 */
const COUNT_WINDOW_MS = 10_000;
/** A neighbour with no unknown-origin drop for this long is no longer over its budget. */
export const PAUSE_MS = 1000;
/** How long a throttled neighbour stays throttled after it was last charged (once a PAUSE_MS while it stays over). */
export const THROTTLE_MS = 10_000;
/** What each broadcast frame of a throttled neighbour costs in its neighbour budget: a quarter of the rate. */
export const THROTTLE_FACTOR = 4;

/**
 * The share of the receivers' unknown-origin rate and burst that this node forwards of broadcasts it took without evidence
 * its neighbours share: a little under, so that jitter on the way never makes an honest relay look over budget.
 */
export const UNVOUCHED_RELAY_SHARE = 0.8;

/** Budgets tracked at once, per kind; a full table forgets refilled buckets first. */
const MAX_TRACKED = 10_000;

/**
 * Token-bucket budgets for network broadcasts. The originator holds itself to
 * its origin budget; receivers allow each origin twice the burst, so that
 * jitter on the way never makes an honest origin look over budget, and each
 * neighbour two seconds' worth. Byte buckets hold two seconds' worth, and at
 * least one frame of maxFrameBytes. The neighbour budget also bounds the
 * signature checks one neighbour can cause (one per new id). A third budget per
 * neighbour bounds the new broadcasts it hands over from origins the node has no
 * evidence of (throwaway keys, docs/security.md); a neighbour that keeps exceeding
 * it with broadcasts of ever new origins is throttled: its frames cost THROTTLE_FACTOR of its neighbour budget.
 */
export class BroadcastBudget {
  private readonly own: { count: TokenBucket; bytes: TokenBucket };
  private readonly originCount: BucketTable;
  private readonly originBytes: BucketTable;
  private readonly neighbourCount: BucketTable;
  private readonly neighbourBytes: BucketTable;
  private readonly unknownOrigins: BucketTable;
  /** Node-wide: broadcasts taken without evidence of their origin that its neighbours share, relayed (`takeUnvouchedRelay`). */
  private readonly unvouchedRelays: TokenBucket;
  /**
   * Neighbours over their unknown-origin budget: since when without a pause, the tokens of their drops by origin since
   * `counted` (COUNTED_ORIGINS at most; afresh each COUNT_WINDOW_MS), and until when they are throttled.
   */
  private readonly over = new Map<
    string,
    { since: number; lastDrop: number; counted: number; drops: Map<string, number>; throttledUntil: number; chargedAt: number }
  >();
  private readonly unknownRate: number;
  private readonly unknownBurst: number;
  /** Receivers' bursts, by which over-budget penalties are scaled. */
  readonly originAllowance: number;
  readonly neighbourAllowance: number;

  constructor(
    limits: BudgetLimits,
    private readonly now: () => number = Date.now,
  ) {
    const bytesBurst = (rate: number) => Math.max(2 * rate, limits.maxFrameBytes);
    const t = now();
    this.own = { count: new TokenBucket(limits.originRate, limits.originBurst, t), bytes: new TokenBucket(limits.originBytesPerSec, bytesBurst(limits.originBytesPerSec), t) };
    this.originAllowance = 2 * limits.originBurst;
    this.neighbourAllowance = 2 * limits.neighbourRate;
    this.originCount = new BucketTable(limits.originRate, this.originAllowance, MAX_TRACKED, now);
    this.originBytes = new BucketTable(limits.originBytesPerSec, 2 * bytesBurst(limits.originBytesPerSec), MAX_TRACKED, now);
    this.neighbourCount = new BucketTable(limits.neighbourRate, this.neighbourAllowance, MAX_TRACKED, now);
    this.neighbourBytes = new BucketTable(limits.neighbourBytesPerSec, bytesBurst(limits.neighbourBytesPerSec), MAX_TRACKED, now);
    const unknownBurst = Math.max(GOSSIP_UNKNOWN_ORIGIN_COST, UNKNOWN_ORIGIN_BURST_SECONDS * limits.unknownOriginRate);
    this.unknownRate = limits.unknownOriginRate;
    this.unknownBurst = unknownBurst;
    this.unknownOrigins = new BucketTable(limits.unknownOriginRate, unknownBurst, MAX_TRACKED, now);
    // At least one gossip broadcast's worth: a receiver's burst holds one too.
    this.unvouchedRelays = new TokenBucket(
      UNVOUCHED_RELAY_SHARE * limits.unknownOriginRate,
      Math.max(GOSSIP_UNKNOWN_ORIGIN_COST, UNVOUCHED_RELAY_SHARE * unknownBurst),
      t,
    );
  }

  /** This node's own broadcast of `bytes`: false when over its origin budget. */
  takeOwn(bytes: number): boolean {
    const now = this.now();
    // Check both before taking either, so a refused broadcast costs nothing.
    if (!this.own.count.take(1, now)) return false;
    if (this.own.bytes.take(bytes, now)) return true;
    this.own.count.take(-1, now);
    return false;
  }

  /** A broadcast frame of `bytes` from a neighbour (any copy); a throttled neighbour's frames cost THROTTLE_FACTOR each. */
  takeNeighbour(peerId: string, bytes: number): boolean {
    return this.neighbourCount.take(peerId, this.throttled(peerId) ? THROTTLE_FACTOR : 1) && this.neighbourBytes.take(peerId, bytes);
  }

  /** Whether `peerId` kept exceeding its unknown-origin budget recently (see `takeUnknownOrigin`). */
  throttled(peerId: string): boolean {
    const state = this.over.get(peerId);
    if (!state) return false;
    if (this.now() < state.throttledUntil) return true;
    if (this.now() - state.lastDrop > PAUSE_MS) this.over.delete(peerId);
    return false;
  }

  /**
   * A new broadcast by `origin` (unverified: not checked yet), an origin this node has no evidence of, that neighbour
   * `peerId` hands over. `ok` false: over its budget, dropped. `sustained` true (at most once a PAUSE_MS): it has been over
   * for SUSTAINED_MS without a pause of PAUSE_MS, and its drops (in the last COUNT_WINDOW_MS at most), past those of its
   * EXCUSED_ORIGINS most dropped origins, hold more tokens than the budget gives in that time (its burst and its rate): it
   * keeps introducing new origins, and is throttled for THROTTLE_MS from now.
   */
  takeUnknownOrigin(peerId: string, origin: string, gossip: boolean): { ok: boolean; sustained: boolean } {
    const cost = gossip ? GOSSIP_UNKNOWN_ORIGIN_COST : 1;
    if (this.unknownOrigins.take(peerId, cost)) return { ok: true, sustained: false };
    const now = this.now();
    let state = this.over.get(peerId);
    if (!state || now - state.lastDrop > PAUSE_MS) {
      if (!state && this.over.size >= MAX_TRACKED) this.over.delete(this.over.keys().next().value!);
      state = { since: now, lastDrop: now, counted: now, drops: new Map(), throttledUntil: state?.throttledUntil ?? 0, chargedAt: state?.chargedAt ?? -Infinity };
      this.over.set(peerId, state);
    }
    state.lastDrop = now;
    if (now - state.counted >= COUNT_WINDOW_MS) [state.counted, state.drops] = [now, new Map()];
    // The origin is the frame's word (unchecked): a neighbour can only excuse more of its own drops by it, and they are dropped alike.
    countDrop(state.drops, origin, cost);
    if (now - state.since < SUSTAINED_MS || now - state.chargedAt < PAUSE_MS) return { ok: false, sustained: false };
    // An honest relay's unvouched relays, the only many origins it hands over beside its own few, hold 80% of this at most.
    if (beyondExcused(state.drops) <= this.unknownBurst + (this.unknownRate * (now - state.counted)) / 1000) return { ok: false, sustained: false };
    state.chargedAt = now;
    state.throttledUntil = now + THROTTLE_MS;
    return { ok: false, sustained: true };
  }

  /**
   * Whether this node may relay a broadcast it took without evidence of its origin that its neighbours share (taken from
   * a neighbour's unknown-origin budget, or a neighbour's own that nothing but its connection vouches for). Its
   * neighbours take such a broadcast from this node's unknown-origin budget: node-wide, each receives at most
   * UNVOUCHED_RELAY_SHARE of that rate and burst from it, however many neighbours hand them over.
   */
  takeUnvouchedRelay(gossip: boolean): boolean {
    return this.unvouchedRelays.take(gossip ? GOSSIP_UNKNOWN_ORIGIN_COST : 1, this.now());
  }

  /** A new, verified broadcast by `origin`. */
  takeOrigin(origin: string, bytes: number): boolean {
    return this.originCount.take(origin, 1) && this.originBytes.take(origin, bytes);
  }
}

/** Adds a drop of `cost` tokens by `origin` (SpaceSaving: the counts sum to all drops, and each one is at least its origin's own). */
function countDrop(drops: Map<string, number>, origin: string, cost: number): void {
  const counted = drops.get(origin);
  if (counted !== undefined) return void drops.set(origin, counted + cost);
  if (drops.size < COUNTED_ORIGINS) return void drops.set(origin, cost);
  let least = '';
  let min = Infinity;
  for (const [o, n] of drops) if (n < min) [least, min] = [o, n];
  drops.delete(least);
  drops.set(origin, min + cost);
}

/** Tokens of drops past those of the EXCUSED_ORIGINS most counted origins (at most what they were: counts only overestimate an origin). */
function beyondExcused(drops: Map<string, number>): number {
  let all = 0;
  for (const n of drops.values()) all += n;
  const most = [...drops.values()].sort((a, b) => b - a).slice(0, EXCUSED_ORIGINS);
  return all - most.reduce((a, n) => a + n, 0);
}

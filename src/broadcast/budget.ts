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
}

/** Budgets tracked at once, per kind; a full table forgets refilled buckets first. */
const MAX_TRACKED = 10_000;

/**
 * Token-bucket budgets for network broadcasts. The originator holds itself to
 * its origin budget; receivers allow each origin twice the burst, so that
 * jitter on the way never makes an honest origin look over budget, and each
 * neighbour two seconds' worth. Byte buckets hold two seconds' worth, and at
 * least one frame of maxFrameBytes. The neighbour budget also bounds the
 * signature checks one neighbour can cause (one per new id).
 */
export class BroadcastBudget {
  private readonly own: { count: TokenBucket; bytes: TokenBucket };
  private readonly originCount: BucketTable;
  private readonly originBytes: BucketTable;
  private readonly neighbourCount: BucketTable;
  private readonly neighbourBytes: BucketTable;
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

  /** A broadcast frame of `bytes` from a neighbour (any copy). */
  takeNeighbour(peerId: string, bytes: number): boolean {
    return this.neighbourCount.take(peerId, 1) && this.neighbourBytes.take(peerId, bytes);
  }

  /** A new, verified broadcast by `origin`. */
  takeOrigin(origin: string, bytes: number): boolean {
    return this.originCount.take(origin, 1) && this.originBytes.take(origin, bytes);
  }
}

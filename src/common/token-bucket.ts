/**
 * Token buckets: `rate` tokens a second up to `burst`. Used for broadcast budgets
 * (per origin and per neighbour) and for the originator's own limit.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  /** When BucketTable last moved it to the end of its use order. */
  movedAt: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
    this.movedAt = now;
  }

  /** Takes `cost` tokens if there are that many; otherwise takes none and returns false. */
  take(cost: number, now: number): boolean {
    this.refill(now);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** Back at its burst: indistinguishable from a new bucket, so it may be forgotten. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  private refill(now: number): void {
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.rate);
      this.updatedAt = now;
    }
  }
}

/** A used bucket is moved to the end of the use order at most this often. */
const MOVE_EVERY_MS = 1000;

/**
 * One bucket per key (an origin id, a neighbour id), at most `max` of them. When
 * full, buckets that have refilled are forgotten first (that loses nothing); if
 * none has, the least recently used goes (to the second: a bucket is moved to the end of the
 * use order at most once a second), which can only make the limit laxer
 * for that key, never stricter for an honest one.
 */
export class BucketTable {
  private readonly buckets = new Map<string, TokenBucket>();
  private sweptAt = -Infinity;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, cost: number): boolean {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.max) this.evict(now);
      bucket = new TokenBucket(this.rate, this.burst, now);
      this.buckets.set(key, bucket);
    } else if (now - bucket.movedAt >= MOVE_EVERY_MS) {
      // Re-inserted: Map order is then least recently used first. Not on every take: a delete and a set per
      // broadcast and neighbour was a few percent of a relay's work, and left the map full of holes.
      bucket.movedAt = now;
      this.buckets.delete(key);
      this.buckets.set(key, bucket);
    }
    return bucket.take(cost, now);
  }

  delete(key: string): void {
    this.buckets.delete(key);
  }

  private evict(now: number): void {
    // The sweep is O(max): at most once a second, so that a flood of new keys costs O(1) each.
    if (now - this.sweptAt >= 1000) {
      this.sweptAt = now;
      for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key);
    }
    if (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

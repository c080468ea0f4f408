/**
 * The node-wide budget for frames that span reads (issue 13, "Partial frames"). Each
 * connection reports the bytes its decoder has allocated for its one partial frame; past
 * `limit` in total, connections are closed, largest stalled frame first, until it fits.
 */

/** A connection as the budget sees it. */
export interface PartialFrameHolder {
  /** When its partial frame last received a byte (ms since the epoch). */
  readonly progressAt: number;
  /** Closes the connection; called once, after the budget has forgotten it. */
  evict(message: string): void;
}

/**
 * When a partial frame counts as stalled for the budget (or at frameStallMs, if shorter): an honest
 * sender's reads are far closer together, while a peer holding memory sits idle.
 */
export const STALLED_AFTER_MS = 1_000;

export class PartialFrameBudget {
  private readonly held = new Map<PartialFrameHolder, number>();
  private totalBytes = 0;

  /**
   * `stalledAfterMs`: a frame that has received nothing for this long is "stalled" and is
   * closed before any frame still arriving, whatever their sizes.
   */
  constructor(
    readonly limit: number,
    private readonly stalledAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Bytes allocated for partial frames across the node. */
  get total(): number {
    return this.totalBytes;
  }

  /** Connections holding a partial frame. */
  get holders(): number {
    return this.held.size;
  }

  /** `holder` now has `bytes` allocated (0: none). Past the limit, closes holders until it fits, maybe this one. */
  report(holder: PartialFrameHolder, bytes: number): void {
    const before = this.held.get(holder) ?? 0;
    if (bytes > 0) this.held.set(holder, bytes);
    else this.held.delete(holder);
    this.totalBytes += bytes - before;
    while (this.totalBytes > this.limit && this.held.size > 0) this.evictOne();
  }

  release(holder: PartialFrameHolder): void {
    this.report(holder, 0);
  }

  private evictOne(): void {
    const now = this.now();
    let victim: PartialFrameHolder | undefined;
    let victimBytes = 0;
    let victimStalled = false;
    for (const [holder, bytes] of this.held) {
      const stalled = now - holder.progressAt >= this.stalledAfterMs;
      // A stalled frame beats one still arriving; between equals, the larger.
      if (!victim || (stalled && !victimStalled) || (stalled === victimStalled && bytes > victimBytes)) {
        victim = holder;
        victimBytes = bytes;
        victimStalled = stalled;
      }
    }
    const total = this.totalBytes;
    this.held.delete(victim!);
    this.totalBytes -= victimBytes;
    victim!.evict(
      `partial frames on this node hold ${total} bytes, over maxPartialFrameBytes (${this.limit}): ` +
        `this connection holds the largest ${victimStalled ? 'stalled ' : ''}one (${victimBytes} bytes)`,
    );
  }
}

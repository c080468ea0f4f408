import type { PartialFrameBudget, PartialFrameHolder } from './partial-frames.js';

/** The connection a FrameWatch looks after. */
export interface FrameWatchHost {
  /** The decoder holds a frame that has begun and is not complete. */
  partial(): boolean;
  /** `received of length bytes`, for the message that closes the connection. */
  progress(): { received: number; length: number };
  /** Closes the connection with a protocol-error goodbye saying `message`. */
  cut(message: string): void;
}

/**
 * One connection's partial frame: cuts it when no byte of it has arrived for `stallMs`
 * (a slow but steady sender is fine), and reports its memory to the node's budget.
 * The keepalive already handles idle connections; this runs only while a frame is pending,
 * and never while the node itself has paused reading (maxConcurrentHandlers): that stall is ours.
 */
export class FrameWatch implements PartialFrameHolder {
  progressAt = Date.now();
  private paused = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: FrameWatchHost,
    private readonly stallMs: number,
    private readonly budget?: PartialFrameBudget,
  ) {}

  /** Bytes were decoded (after each read): the pending frame, if any, progressed. */
  progress(now = Date.now()): void {
    this.progressAt = now;
    if (!this.timer && !this.paused && !this.stopped && this.host.partial()) this.arm(this.stallMs);
  }

  /** The decoder's allocation for its partial frame changed (0: none). May close this or another connection. */
  allocated(bytes: number): void {
    if (!this.stopped) this.budget?.report(this, bytes);
  }

  /** The node stopped reading this connection: its frame waits on us, not on the peer. */
  pause(): void {
    this.paused = true;
  }

  /** Reading again: the peer's clock restarts now. */
  resume(): void {
    this.paused = false;
    this.progress();
  }

  /** The connection is closing: no more cuts, and its memory leaves the budget. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.budget?.release(this);
  }

  evict(message: string): void {
    this.host.cut(message);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  /** One timer per pending frame, not one per read: it re-arms for what is left since the last byte. */
  private check(): void {
    this.timer = undefined;
    if (this.paused || this.stopped || !this.host.partial()) return;
    const idle = Date.now() - this.progressAt;
    if (idle < this.stallMs) return this.arm(this.stallMs - idle);
    const { received, length } = this.host.progress();
    this.host.cut(`frame stalled: ${received} of ${length} bytes received, none for ${idle} ms (frameStallMs ${this.stallMs})`);
  }
}

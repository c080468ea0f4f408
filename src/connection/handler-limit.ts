/**
 * Handler concurrency of one connection, which is its inbound backpressure: counts the
 * application handlers running for it and, once maxConcurrentHandlers are busy, stops
 * reading, so that TCP flow control slows the sender instead of our heap growing; when a
 * handler finishes, the frames held back are decoded and the read resumes. Its host
 * (ReadControl) pauses and resumes the decoder and the socket.
 */

/** How the limit stops and restarts its connection's read. */
export interface ReadControl {
  /** Stops decoding after the current frame, and stops reading the socket. */
  pause(): void;
  /** Decodes the frames the pause held back (they may fill the handlers again); false when that failed. */
  decodeHeld(): boolean;
  /** Reads from the socket again. */
  resume(): void;
  /** The connection has closed: there is nothing to resume. */
  closed(): boolean;
}

export class HandlerLimit {
  private active = 0;
  private paused = false;
  /** A resume waits for the current run of microtasks (see release). */
  private resumeQueued = false;

  constructor(
    private readonly read: ReadControl,
    private readonly max: number,
  ) {}

  /** Handlers running for this connection now. */
  get running(): number {
    return this.active;
  }

  /** A handler starts: at the limit, the read stops. Decoded-but-waiting frames stay in their read chunk. */
  acquire(): void {
    if (++this.active >= this.max && !this.paused) {
      this.paused = true;
      this.read.pause();
    }
  }

  /**
   * A handler is done (bound: it is handed to promises and reply sinks as it is). With the read
   * paused, the frames held back are decoded one microtask later, not here: handlers that settle
   * together (a read's worth of async handlers) free their slots in one run of microtasks, and
   * the held frames then go out in one pass instead of one decode, pause and re-slice per slot.
   */
  readonly release = (): void => {
    this.active--;
    if (this.paused && !this.resumeQueued && this.active < this.max) {
      this.resumeQueued = true;
      queueMicrotask(this.resumeQueuedRead);
    }
  };

  /** Reads again even with every handler busy: the connection is closing and must see the peer's FIN. */
  unpause(): void {
    if (this.paused) this.resume();
  }

  private readonly resumeQueuedRead = (): void => {
    this.resumeQueued = false;
    if (this.paused && this.active < this.max && !this.read.closed()) this.resume();
  };

  /** Decodes what the pause held back; reads from the socket again once that is all dispatched. */
  private resume(): void {
    this.paused = false;
    if (!this.read.decodeHeld()) return;
    // The held frames may have filled the handlers again; the socket then stays paused.
    if (this.paused) return;
    this.read.resume();
  }
}

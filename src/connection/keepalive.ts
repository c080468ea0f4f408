/**
 * The keepalive of one connection: a ping every pingIntervalMs once it is open (none while one is unanswered), the round
 * trip from the matching pong, answers to the remote's pings, and a prompt close when the
 * remote sends nothing for pongTimeoutMs after a ping. Kept with the connection, as
 * CometBFT's MConnection keeps ping/pong. Its host (KeepaliveHost) writes the frames, says
 * when it last read and whether its queue is full, and closes.
 */

import { P2PConnectionClosedError, P2PProtocolError, type PeerRef } from '../common/errors.js';
import { TokenBucket } from '../common/token-bucket.js';
import { ControlType, GoodbyeReason, type Control } from '../wire/control.js';

/** What the keepalive needs from its connection. */
export interface KeepaliveHost {
  ref(): PeerRef;
  writeControl(control: Control): void;
  /** The write queue holds maxQueueBytes or more: the remote is not reading. */
  backlogged(): boolean;
  /** When bytes last arrived from the remote (Date.now()). */
  lastReadAt(): number;
  /** Closes the connection with a goodbye giving `reason`. */
  fail(error: Error, reason: GoodbyeReason): void;
  /** Drops the connection without waiting for the graceful close. */
  destroy(): void;
}

/**
 * Pings a remote may send a second (twice that at once): twice what the fastest honest node sends
 * (pingIntervalMs is at least 10 ms). Past it, a ping is a protocol violation: a peer sent about
 * 1 M a second, all answered, at 49-88 % of a core, and was never cut off (issue 22).
 */
export const MAX_PINGS_PER_SECOND = 200;

export interface KeepaliveTiming {
  pingIntervalMs: number;
  pongTimeoutMs: number;
}

export class Keepalive {
  /** The last measured round trip, null until a pong arrives. */
  rttMs: number | null = null;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private token = 0;
  private sentAt = 0;
  /** The last ping has had no pong yet (nor has its deadline passed). */
  private awaiting = false;
  private readonly pings = new TokenBucket(MAX_PINGS_PER_SECOND, 2 * MAX_PINGS_PER_SECOND, Date.now());

  constructor(
    private readonly host: KeepaliveHost,
    private readonly timing: KeepaliveTiming,
  ) {}

  /** Starts pinging (the hello exchange is done). */
  start(): void {
    const { pingIntervalMs, pongTimeoutMs } = this.timing;
    this.pingTimer = setInterval(() => {
      // One ping in flight: a neighbour that stalled (GC, a loaded host) reads every ping sent meanwhile at
      // once, and at 10 ms a stall of 4 s passed its ping budget: it cut this honest node off (review of issue 22).
      if (this.awaiting) return;
      this.token = (this.token + 1) >>> 0;
      this.sentAt = Date.now();
      this.awaiting = true;
      this.host.writeControl({ type: ControlType.Ping, token: this.token });
      // One pong deadline at a time, from the first ping still unanswered: a ping
      // interval shorter than the pong timeout must not keep pushing it back.
      if (this.pongTimer) return;
      const since = this.sentAt;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = undefined;
        // The peer read and wrote meanwhile (its pong may have been dropped while its queue was full): ping again.
        this.awaiting = false;
        if (this.host.lastReadAt() < since) {
          this.host.fail(new P2PConnectionClosedError(`peer silent for ${pongTimeoutMs} ms after a ping`, this.host.ref()), GoodbyeReason.IdleTimeout);
          // A peer that does not answer will not read a graceful close either: drop it as soon as the
          // goodbye has been handed to the kernel (next tick), not after closeGraceMs.
          setImmediate(() => this.host.destroy());
        }
      }, pongTimeoutMs);
      this.pongTimer.unref();
    }, pingIntervalMs);
    this.pingTimer.unref();
  }

  /** A ping from the remote: answered, unless its queue is full; throws P2PProtocolError past MAX_PINGS_PER_SECOND. */
  onPing(token: number): void {
    if (!this.pings.take(1, Date.now())) throw new P2PProtocolError(`more than ${MAX_PINGS_PER_SECOND} pings a second`);
    // A peer that pings but never reads must not grow our queue: pongs are dropped then.
    if (!this.host.backlogged()) this.host.writeControl({ type: ControlType.Pong, token });
  }

  onPong(token: number): void {
    if (token !== this.token || !this.awaiting) return;
    this.awaiting = false;
    this.rttMs = Date.now() - this.sentAt;
  }

  /** No more pings or deadlines: the connection is closing. */
  stop(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}

/**
 * What one connection may write, and when: data frames only while it is open and within
 * maxFrameBytes (ours, and the peer's from its hello) and maxQueueBytes; control frames
 * past the queue limit (small and protocol-driven) until it has closed; optional control
 * traffic only while the peer reads. Frames go to the WriteQueue and are counted in the
 * metrics sink. Its host (OutboxHost) says where the connection is in its life.
 */

import type { Socket } from 'node:net';
import { P2PConnectionClosedError, P2PFrameTooLargeError, P2PQueueFullError, type PeerRef } from '../common/errors.js';
import { frameKind, frameSize } from '../wire/codec.js';
import { FLAG_CONTROL } from '../wire/constants.js';
import { controlBody, type Control } from '../wire/control.js';
import type { MetricsSink } from './metrics.js';
import { WriteQueue } from './write-queue.js';

/** What the outbox needs from its connection. */
export interface OutboxHost {
  state(): 'handshaking' | 'open' | 'closing' | 'closed';
  ref(): PeerRef;
  /** The peer's maxFrameBytes, from its hello (read only once the connection is open). */
  theirMaxFrameBytes(): number;
  metrics(): MetricsSink | undefined;
}

export interface OutboxLimits {
  maxFrameBytes: number;
  maxQueueBytes: number;
}

export class Outbox {
  readonly queue: WriteQueue;

  constructor(
    private readonly raw: Socket,
    private readonly host: OutboxHost,
    private readonly limits: OutboxLimits,
  ) {
    this.queue = new WriteQueue(raw);
  }

  /** The queue holds maxQueueBytes or more: the peer is not reading. */
  get backlogged(): boolean {
    return this.queue.queuedBytes >= this.limits.maxQueueBytes;
  }

  /** Queues a data frame. Throws P2PConnectionClosedError, P2PFrameTooLargeError or P2PQueueFullError. */
  frame(flags: number, nonce: number, topic: Buffer | undefined, payload: Buffer): void {
    const size = frameSize(topic, payload.length);
    this.check(size);
    this.queue.push(flags, nonce, topic, payload);
    this.host.metrics()?.frame('out', frameKind(flags), size);
  }

  /**
   * Throws what `frame` would for a frame of `size` bytes with `alsoQueued` more bytes queued before it,
   * and queues nothing: the origin of a network broadcast routes its batch before it signs it.
   */
  check(size: number, alsoQueued = 0): void {
    const { maxFrameBytes, maxQueueBytes } = this.limits;
    if (this.host.state() !== 'open') throw this.notOpen();
    if (size > maxFrameBytes) {
      throw new P2PFrameTooLargeError(size, maxFrameBytes, this.host.ref());
    }
    // The peer would close the connection on it, and the message would be lost: refuse it here instead.
    const theirs = this.host.theirMaxFrameBytes();
    if (size > theirs) throw new P2PFrameTooLargeError(size, theirs, this.host.ref(), true);
    const queued = this.queue.queuedBytes + alsoQueued;
    if (queued + size > maxQueueBytes) {
      this.host.metrics()?.error('P2PQueueFullError');
      throw new P2PQueueFullError(queued, maxQueueBytes, this.host.ref());
    }
  }

  /** Queues a control frame the protocol requires (hello, ping, pong, goodbye): no queue limit. */
  control(control: Control): void {
    if (this.host.state() === 'closed' || this.raw.destroyed) return;
    const body = controlBody(control);
    this.queue.push(FLAG_CONTROL, 0, undefined, body);
    this.host.metrics()?.frame('out', 'control', frameSize(undefined, body.length));
  }

  /** Queues optional control traffic (peer exchange): never to a connection not open, or a peer that is not reading. */
  optional(control: Control): void {
    if (this.host.state() === 'open' && !this.backlogged) this.control(control);
  }

  /**
   * Resolves once the queue is below half of maxQueueBytes, so that sends have room
   * again; rejects with P2PConnectionClosedError if the connection closes first.
   */
  whenWritable(): Promise<void> {
    if (this.host.state() !== 'open') return Promise.reject(this.notOpen());
    // At least the socket's own high-water mark: below it the socket may never emit 'drain'.
    return this.queue.whenBelow(Math.max(this.limits.maxQueueBytes / 2, this.raw.writableHighWaterMark));
  }

  private notOpen(): P2PConnectionClosedError {
    return new P2PConnectionClosedError(`connection is ${this.host.state() === 'handshaking' ? 'not open yet' : 'closed'}`, this.host.ref());
  }
}

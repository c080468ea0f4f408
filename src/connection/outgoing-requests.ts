/**
 * The requests one connection has sent and awaits replies to: numbers each by a nonce
 * (PendingRequests), times it (a reply timeout that each streamed value re-arms, and an
 * optional total deadline), matches response frames to it, reports its outcome to the
 * metrics sink, and fails what is outstanding when the connection closes. Its host
 * (RequestsHost) writes the request frame and names the peer.
 */

import { P2PConnectionClosedError, P2PRemoteError, P2PTimeoutError, type PeerRef } from '../common/errors.js';
import type { LogEvent } from '../common/types.js';
import { decodePayloadAt, encodePayload } from '../wire/codec.js';
import { Encoding, ENCODING_MASK, FLAG_END, FLAG_ERROR, FLAG_REQUEST, FLAG_WRAPPED } from '../wire/constants.js';
import { withMetadata, type Metadata } from '../wire/metadata.js';
import type { MetricsSink, RequestOutcome } from './metrics.js';
import { PendingRequests, type PendingRequest, type RequestObserver } from './pending-requests.js';

/** What outgoing requests need from their connection. */
export interface RequestsHost {
  /** Queues a data frame; throws a typed error when it cannot (closed, too large, queue full). */
  writeFrame(flags: number, nonce: number, topic: Buffer, payload: Buffer): void;
  ref(): PeerRef;
  /** The metrics sink, read at each request. */
  metrics(): MetricsSink | undefined;
  log(level: 'debug', message: string, event: LogEvent): void;
}

export type { RequestObserver };

export class OutgoingRequests {
  private readonly pending = new PendingRequests();

  constructor(private readonly host: RequestsHost) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Sends a request (throws as writeFrame does); returns a function that cancels it, after which late replies are ignored.
   * `timeoutMs` is the longest wait for each reply value; `firstMs`, when given, for the first one instead (a request to a
   * pattern that spent part of its timeout finding and dialing a handler has only the rest of it left).
   */
  send(
    pattern: string,
    topic: Buffer,
    data: unknown,
    timeoutMs: number,
    observer: RequestObserver,
    deadlineMs?: number,
    metadata?: Metadata,
    firstMs?: number,
  ): () => void {
    const { encoding, bytes } = encodePayload(data);
    const entry: PendingRequest = { pattern, timeoutMs, timer: undefined, observer: this.measured(pattern, observer) };
    const now = Date.now();
    if (deadlineMs !== undefined) {
      entry.deadlineMs = deadlineMs;
      entry.deadlineAt = now + deadlineMs;
    }
    const nonce = this.pending.add(entry);
    try {
      this.host.writeFrame(FLAG_WRAPPED | FLAG_REQUEST | encoding, nonce, withMetadata(topic, metadata), bytes);
    } catch (err) {
      this.pending.take(nonce);
      throw err;
    }
    this.armTimeout(nonce, entry, firstMs, now);
    return () => void this.pending.take(nonce);
  }

  /** A response frame, its body `bytes[start, end)`: one value of the reply stream, its end, or an error reply. */
  onResponse(flags: number, nonce: number, bytes: Buffer, start: number, end: number): void {
    const entry = this.pending.get(nonce);
    if (!entry) {
      // A reply that arrives after its timeout or cancellation: harmless, dropped.
      this.host.log('debug', `reply for unknown nonce ${nonce} dropped`, 'connection-error');
      return;
    }
    if (flags & FLAG_ERROR) {
      this.pending.take(nonce);
      entry.observer.error(new P2PRemoteError(decodePayloadAt(Encoding.Json, bytes, start, end), this.host.ref()));
      return;
    }
    const encoding = (flags & ENCODING_MASK) as Encoding;
    const last = (flags & FLAG_END) !== 0;
    const bareEnd = last && encoding === Encoding.Binary && start === end;
    if (last) this.pending.take(nonce);
    else this.armTimeout(nonce, entry);
    if (!bareEnd) entry.observer.next(decodePayloadAt(encoding, bytes, start, end));
    if (last) entry.observer.complete();
  }

  /** The connection closed (`reason`): every request still waiting fails with P2PConnectionClosedError. */
  failAll(reason: string): void {
    if (this.pending.size === 0) return;
    this.pending.failAll(() => new P2PConnectionClosedError(`connection closed before the reply: ${reason}`, this.host.ref()));
  }

  /** The observer, timed into the metrics sink when there is one (and untouched when there is not). */
  private measured(pattern: string, observer: RequestObserver): RequestObserver {
    const sink = this.host.metrics();
    if (!sink) return observer;
    const started = process.hrtime.bigint();
    const done = (outcome: RequestOutcome) => sink.request(pattern, Number(process.hrtime.bigint() - started) / 1e9, outcome);
    return {
      next: (value) => observer.next(value),
      error: (err) => {
        done(err instanceof P2PTimeoutError ? 'timeout' : err instanceof P2PRemoteError ? 'remote_error' : 'closed');
        sink.error(err.constructor.name);
        observer.error(err);
      },
      complete: () => {
        done('ok');
        observer.complete();
      },
    };
  }

  /**
   * Arms the request's one timer: for the wait for the next value (`ms`), or for what is left of the
   * deadline when that comes first. A request that ends with its first reply (most do) so sets and
   * clears one timer, not two; when both are equal the gap's timeout is the one reported, as before.
   */
  private armTimeout(nonce: number, entry: PendingRequest, ms = entry.timeoutMs, now = Date.now()): void {
    clearTimeout(entry.timer);
    const left = entry.deadlineAt === undefined ? Infinity : entry.deadlineAt - now;
    const total = left < ms;
    entry.timer = setTimeout(
      () => {
        if (this.pending.take(nonce)) entry.observer.error(new P2PTimeoutError(entry.pattern, total ? entry.deadlineMs! : ms, this.host.ref(), total));
      },
      total ? Math.max(0, left) : ms,
    );
  }
}

/**
 * Hands one connection's inbound events and requests to the application: each holds a
 * handler slot (HandlerLimit) until its handler is done, a request is answered through a
 * reply sink, and a failing handler is logged (an event) or answered with an error reply
 * (a request), without closing the connection. Its host (DeliveryHost) is the node's
 * handlers and the connection's response writer.
 */

import type { BroadcastMeta, LogEvent } from '../common/types.js';
import { FLAG_RESPONSE } from '../wire/constants.js';
import { escapeControlCharacters } from '../wire/control.js';
import type { Metadata } from '../wire/metadata.js';
import type { HandlerLimit } from './handler-limit.js';
import { ReplyStream, type ReplyChannel, type ReplySink } from './reply-sink.js';

/** What delivery needs from its connection. */
export interface DeliveryHost {
  /** The application's event handler; a promise holds the handler slot until it settles. */
  onEvent(topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown;
  /** What an event handler's promise resolved to, when not undefined (the Nest layer runs a returned stream). */
  eventResult(value: unknown): void;
  /** The application's request handler; it answers through `reply`, which frees the slot when done. */
  onRequest(topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void;
  /** Queues a data frame; throws a typed error when it cannot. */
  writeFrame(flags: number, nonce: number, topic: undefined, payload: Buffer): void;
  isOpen(): boolean;
  log(level: 'warn' | 'error', message: string, event: LogEvent): void;
}

export class Delivery implements ReplyChannel {
  readonly release: () => void;

  constructor(
    private readonly host: DeliveryHost,
    private readonly limit: Pick<HandlerLimit, 'acquire' | 'release'>,
  ) {
    this.release = limit.release;
  }

  /** An event (or a network broadcast relayed by this peer, with `broadcast` set), bounded like any handler. */
  event(topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): void {
    this.limit.acquire();
    let result: unknown;
    try {
      result = this.host.onEvent(topic, data, broadcast, metadata);
    } catch (err) {
      // A failing handler is the application's problem, not the peer's: log, keep the link.
      this.eventFailed(topic, err);
    }
    if (result instanceof Promise) this.whenSettled(result, topic);
    else this.release();
  }

  /**
   * The one reaction an async handler costs: its result goes to the host and the slot is freed in
   * the same step (the Nest layer used to chain a step of its own for the result first). A method
   * apart, so that a handler that returns a plain value makes no closure for the topic.
   */
  private whenSettled(result: Promise<unknown>, topic: string): void {
    result.then(this.settled, (err: unknown) => this.eventFailed(topic, err, true));
  }

  private readonly settled = (value: unknown): void => {
    if (value !== undefined) {
      try {
        this.host.eventResult(value);
      } catch (err) {
        this.host.log('error', `event handler's result failed: ${(err as Error)?.message ?? err}`, 'handler-failed');
      }
    }
    this.release();
  };

  /** A request with its nonce: the handler's slot is freed when its reply completes or errs. */
  request(nonce: number, topic: string, data: unknown, metadata?: Metadata): void {
    this.limit.acquire();
    const reply = new ReplyStream(this, nonce, topic);
    try {
      this.host.onRequest(topic, data, reply, metadata);
    } catch (err) {
      reply.error(err);
    }
  }

  writeResponse(flags: number, nonce: number, bytes: Buffer): void {
    this.host.writeFrame(FLAG_RESPONSE | flags, nonce, undefined, bytes);
  }

  isOpen(): boolean {
    return this.host.isOpen();
  }

  log(level: 'warn', message: string): void {
    this.host.log(level, message, 'reply-failed');
  }

  private eventFailed(topic: string, err: unknown, settled = false): void {
    this.host.log('error', `event handler for "${escapeControlCharacters(topic)}" failed: ${(err as Error)?.message ?? err}`, 'handler-failed');
    if (settled) this.release();
  }
}

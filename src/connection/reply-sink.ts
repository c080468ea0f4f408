import { encodePayload } from '../wire/codec.js';
import { Encoding, FLAG_END, FLAG_ERROR } from '../wire/constants.js';
import { P2PFrameTooLargeError } from '../common/errors.js';

/** How a request handler answers: any number of values, then complete or error. */
export interface ReplySink {
  /** Sends one reply value (a plain reply is one value, then `complete`). */
  next(value: unknown): void;
  /** Ends the reply with an error; the caller's request fails with P2PRemoteError. */
  error(err: unknown): void;
  /** Ends the reply: the caller's `request` resolves with the last value, its `requestStream` completes. */
  complete(): void;
}

/** What a reply needs from its connection. */
export interface ReplyChannel {
  /** Queues the response frame of request `nonce` (the channel adds the response bit); throws a typed error when it cannot. */
  writeResponse(flags: number, nonce: number, bytes: Buffer): void;
  isOpen(): boolean;
  log(level: 'warn', message: string): void;
  /** The handler is done: its slot in maxConcurrentHandlers is free. */
  release(): void;
}

/** The "no value" marker of an end-of-stream frame: binary encoding and an empty body. */
const END_ONLY = Buffer.alloc(0);

/**
 * The reply stream of one request: each value a response frame, the last with the end
 * bit; an error as an error reply. A reply too large for the caller becomes an error
 * reply at once, so the caller is told rather than left to time out. One object per
 * request, its methods on the prototype: a plain reply costs no closures.
 */
export class ReplyStream implements ReplySink {
  private done = false;
  private cut = false;
  /** Each value is held back one step so that the final value carries the end bit (one frame for a plain reply). */
  private last: { encoding: Encoding; bytes: Buffer } | undefined;

  constructor(
    private readonly channel: ReplyChannel,
    private readonly nonce: number,
    private readonly topic: string,
  ) {}

  next(value: unknown): void {
    if (this.done) return;
    this.flushLast(false);
    try {
      this.last = encodePayload(value);
    } catch (err) {
      this.channel.log('warn', `reply to "${this.topic}" is not serialisable: ${(err as Error).message}`);
    }
  }

  error(err: unknown): void {
    if (this.done) return;
    this.flushLast(false);
    let body: Buffer;
    try {
      body = Buffer.from(JSON.stringify(toWireError(err)) ?? 'null', 'utf8');
    } catch {
      body = Buffer.from('{"status":"error","message":"unserialisable error"}', 'utf8');
    }
    this.write(FLAG_ERROR | FLAG_END | Encoding.Json, body);
    this.finish();
  }

  complete(): void {
    if (this.done) return;
    if (this.last) this.flushLast(true);
    else this.write(FLAG_END | Encoding.Binary, END_ONLY);
    this.finish();
  }

  private finish(): void {
    this.done = true;
    this.channel.release();
  }

  private flushLast(end: boolean): void {
    const last = this.last;
    if (!last) return;
    this.last = undefined;
    if (end && last.encoding === Encoding.Binary && last.bytes.length === 0) {
      this.write(last.encoding, last.bytes); // an empty Buffer value must not look like the bare end marker
      this.write(FLAG_END | Encoding.Binary, END_ONLY);
    } else {
      this.write((end ? FLAG_END : 0) | last.encoding, last.bytes);
    }
  }

  private write(flags: number, bytes: Buffer): void {
    if (this.cut) return;
    try {
      this.channel.writeResponse(flags, this.nonce, bytes);
    } catch (err) {
      if (err instanceof P2PFrameTooLargeError) {
        this.cut = true;
        const message = `reply to "${this.topic}" not sent: ${err.message}`;
        try {
          this.channel.writeResponse(FLAG_ERROR | FLAG_END | Encoding.Json, this.nonce, Buffer.from(JSON.stringify({ status: 'error', message })));
        } catch {
          this.channel.log('warn', message); // not even the error fits in the queue: the caller's timeout will tell it
        }
        return;
      }
      // The caller's own timeout will tell it; here the reply can only be logged.
      if (this.channel.isOpen()) this.channel.log('warn', `reply to "${this.topic}" not sent: ${(err as Error).message}`);
    }
  }
}

/** What goes on the wire for a handler error (and what a local request to a pattern gets, as if it had): Nest's RpcException error object, or `{ status, message }`. */
export function toWireError(err: unknown): unknown {
  if (err instanceof Error) return { status: 'error', message: err.message };
  return err;
}

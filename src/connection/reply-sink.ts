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
  /** Queues a response frame (the response bit and nonce are the channel's); throws a typed error when it cannot. */
  write(flags: number, bytes: Buffer): void;
  isOpen(): boolean;
  warn(message: string): void;
  /** The handler is done: its slot in maxConcurrentHandlers is free. */
  release(): void;
}

/** The "no value" marker of an end-of-stream frame: binary encoding and an empty body. */
const END_ONLY = Buffer.alloc(0);

/**
 * The reply stream of one request: each value a response frame, the last with the end
 * bit; an error as an error reply. A reply too large for the caller becomes an error
 * reply at once, so the caller is told rather than left to time out.
 */
export function createReplySink(channel: ReplyChannel, topic: string): ReplySink {
  let done = false;
  const finish = () => {
    done = true;
    channel.release();
  };
  let cut = false;
  const write = (flags: number, bytes: Buffer): void => {
    if (cut) return;
    try {
      channel.write(flags, bytes);
    } catch (err) {
      if (err instanceof P2PFrameTooLargeError) {
        cut = true;
        const message = `reply to "${topic}" not sent: ${err.message}`;
        try {
          channel.write(FLAG_ERROR | FLAG_END | Encoding.Json, Buffer.from(JSON.stringify({ status: 'error', message })));
        } catch {
          channel.warn(message); // not even the error fits in the queue: the caller's timeout will tell it
        }
        return;
      }
      // The caller's own timeout will tell it; here the reply can only be logged.
      if (channel.isOpen()) channel.warn(`reply to "${topic}" not sent: ${(err as Error).message}`);
    }
  };
  let last: { encoding: Encoding; bytes: Buffer } | undefined;
  // Each value is held back one step so that the final value carries the end bit (one frame for a plain reply).
  const flushLast = (end: boolean) => {
    if (!last) return;
    const { encoding, bytes } = last;
    last = undefined;
    if (end && encoding === Encoding.Binary && bytes.length === 0) {
      write(encoding, bytes); // an empty Buffer value must not look like the bare end marker
      write(FLAG_END | Encoding.Binary, END_ONLY);
    } else {
      write((end ? FLAG_END : 0) | encoding, bytes);
    }
  };
  return {
    next: (value) => {
      if (done) return;
      flushLast(false);
      try {
        last = encodePayload(value);
      } catch (err) {
        channel.warn(`reply to "${topic}" is not serialisable: ${(err as Error).message}`);
      }
    },
    error: (err) => {
      if (done) return;
      flushLast(false);
      let body: Buffer;
      try {
        body = Buffer.from(JSON.stringify(toWireError(err)) ?? 'null', 'utf8');
      } catch {
        body = Buffer.from('{"status":"error","message":"unserialisable error"}', 'utf8');
      }
      write(FLAG_ERROR | FLAG_END | Encoding.Json, body);
      finish();
    },
    complete: () => {
      if (done) return;
      if (last) flushLast(true);
      else write(FLAG_END | Encoding.Binary, END_ONLY);
      finish();
    },
  };
}

/** What goes on the wire for a handler error (and what a local request to a pattern gets, as if it had): Nest's RpcException error object, or `{ status, message }`. */
export function toWireError(err: unknown): unknown {
  if (err instanceof Error) return { status: 'error', message: err.message };
  return err;
}

import { isUtf8 } from 'node:buffer';
import {
  Encoding,
  ENCODING_MASK,
  FLAG_CONTROL,
  FLAG_END,
  FLAG_ERROR,
  FLAG_REQUEST,
  FLAG_RESPONSE,
  FLAG_WRAPPED,
  HEADER_BYTES,
  MAX_TOPIC_BYTES,
  TOPIC_LENGTH_BYTES,
} from './constants.js';
import { P2PFrameTooLargeError, P2PProtocolError } from '../common/errors.js';
import { decodeMetadata, TOPIC_HAS_METADATA, type Metadata } from './metadata.js';

/**
 * The wire codec: `flags u8 | nonce u32 BE | body length u32 BE | body`.
 * See docs/wire-format.md. Pure functions and one streaming decoder; no I/O.
 */

export type FrameKind = 'event' | 'request' | 'response' | 'control';

/** A decoded frame with its body split into topic and payload. */
export interface Message {
  kind: FrameKind;
  flags: number;
  nonce: number;
  encoding: Encoding;
  /** Wrapped frames (events, requests) only. */
  topic?: string;
  /** Wrapped frames that carry metadata (src/wire/metadata.ts). */
  metadata?: Metadata;
  /** The payload bytes, a view into the received data where possible. */
  payload: Buffer;
  /** Response frames: an error reply. */
  error: boolean;
  /** Response frames: the last frame of a reply stream. */
  end: boolean;
}

const EMPTY = Buffer.alloc(0);

/** What kind of frame the flags describe; throws on combinations the protocol forbids. */
export function frameKind(flags: number): FrameKind {
  if (flags & FLAG_CONTROL) return 'control';
  if (flags & FLAG_RESPONSE) return 'response';
  if (flags & FLAG_REQUEST) return 'request';
  return 'event';
}

/**
 * Validates a header before anything is allocated for its body. Returns a reason
 * string for a bad header, or null. Kept allocation-free for the hot path.
 */
export function headerProblem(flags: number, nonce: number, bodyLength: number): string | null {
  const encoding = flags & ENCODING_MASK;
  if (flags & FLAG_CONTROL) {
    if (flags !== FLAG_CONTROL) return `control frame with other flags set (0x${hex2(flags)})`;
    if (nonce !== 0) return 'control frame with a nonce';
    if (bodyLength < 1) return 'control frame without a type';
    return null;
  }
  const isRequest = (flags & FLAG_REQUEST) !== 0;
  const isResponse = (flags & FLAG_RESPONSE) !== 0;
  if (isRequest && isResponse) return 'request and response bits both set';
  if (isResponse) {
    if (nonce === 0) return 'response without a nonce';
    if (flags & FLAG_WRAPPED) return 'response frame with a topic';
    if (flags & FLAG_ERROR && encoding !== Encoding.Json) return `error reply in encoding ${encoding}, expected json`;
    return null;
  }
  if (flags & (FLAG_ERROR | FLAG_END)) return 'error or end bit on a frame that is not a response';
  if (!(flags & FLAG_WRAPPED)) return `${isRequest ? 'request' : 'event'} without a topic`;
  if (isRequest && nonce === 0) return 'request without a nonce';
  if (!isRequest && nonce !== 0) return 'event with a nonce';
  if (bodyLength < TOPIC_LENGTH_BYTES) return 'wrapped body shorter than its topic length';
  return null;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** First buffer of a frame that spans reads: memory follows the bytes received, not the length announced. */
export const FIRST_PARTIAL_BYTES = 64 * 1024;

/** Receives one whole frame: its body is `bytes[start, end)` (for a frame that spans reads, the whole of `bytes`). */
export type FrameAt = (flags: number, nonce: number, bytes: Buffer, start: number, end: number) => void;

/**
 * Streaming decoder: accepts frames split across any chunk boundaries and many
 * frames per chunk, and decodes every frame of a chunk in one pass. A frame wholly
 * inside one chunk is passed on as its place in the chunk (no copy, no view made).
 * A frame that spans chunks is assembled in a buffer that starts at
 * FIRST_PARTIAL_BYTES (or what arrived) and doubles as bytes arrive, up to the
 * announced length, so that a header alone costs a peer nothing but its bytes.
 */
export class FrameScanner {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** The partial frame's buffer; its length is what is allocated, at most `bodyLength`. */
  private body: Buffer | null = null;
  private bodyLength = 0;
  private bodyFill = 0;
  private flags = 0;
  private nonce = 0;
  /** Set by pause(): no frame is passed on until resume(). */
  private stopped = false;
  /** Set by abort(): everything is dropped and nothing more is decoded. */
  private aborted = false;
  /** Bytes received while stopped (or left in a chunk when it stopped), in order. */
  private held: Buffer[] = [];

  /**
   * `onPartial` hears the bytes allocated for a partial frame each time that changes (0 when it is
   * complete or dropped), before a growth is allocated: it may abort() to refuse it.
   */
  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameAt,
    private readonly onPartial?: (allocated: number) => void,
  ) {}

  /** Bytes held for an incomplete frame, or received and not yet decoded while paused. */
  get buffered(): number {
    let held = 0;
    for (const chunk of this.held) held += chunk.length;
    return this.headerFill + this.bodyFill + held;
  }

  /** A frame has begun (part of its header or body was decoded) and is not complete. */
  get partial(): boolean {
    return this.headerFill > 0 || this.body !== null;
  }

  /** How much of the partial frame has arrived, for messages: `received of announced bytes`. */
  partialProgress(): { received: number; length: number } {
    if (this.body) return { received: HEADER_BYTES + this.bodyFill, length: HEADER_BYTES + this.bodyLength };
    return { received: this.headerFill, length: HEADER_BYTES };
  }

  /**
   * Stops after the frame being passed on (callable from onFrame): the rest of the chunk,
   * and anything pushed later, waits for resume(). This makes a consumer's limit exact,
   * where stopping the socket alone would still let the rest of a 64 KiB read through.
   */
  pause(): void {
    this.stopped = true;
  }

  /** Decodes what was held, until it is all passed on or pause() is called again. Throws as push() does. */
  resume(): void {
    this.stopped = false;
    while (this.held.length > 0 && !this.stopped && !this.aborted) this.decode(this.held.shift()!);
  }

  /**
   * Drops the partial frame and everything held, and ignores all later input. Safe from
   * onFrame and onPartial: the chunk being decoded is abandoned.
   */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.held = [];
    this.headerFill = 0;
    if (this.body) {
      this.body = null;
      this.bodyFill = 0;
      this.onPartial?.(0);
    }
  }

  /** Feeds one chunk. Throws P2PProtocolError on a bad header; the decoder is then unusable. */
  push(chunk: Buffer): void {
    if (this.aborted) return;
    if (this.stopped || this.held.length > 0) this.held.push(chunk);
    else this.decode(chunk);
  }

  private decode(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n && !this.aborted) {
      if (this.stopped) {
        this.held.unshift(chunk.subarray(off));
        return;
      }
      if (this.body) {
        const take = Math.min(this.bodyLength - this.bodyFill, n - off);
        if (this.bodyFill + take > this.body.length && !this.grow(this.bodyFill + take)) return;
        chunk.copy(this.body, this.bodyFill, off, off + take);
        this.bodyFill += take;
        off += take;
        if (this.bodyFill === this.bodyLength) {
          // The last growth was capped at bodyLength: the buffer is exactly the body, no join needed.
          const body = this.body;
          this.body = null;
          this.bodyFill = 0;
          this.onPartial?.(0);
          if (this.aborted) return;
          this.onFrame(this.flags, this.nonce, body, 0, body.length);
        }
        continue;
      }
      if (this.headerFill === 0 && n - off >= HEADER_BYTES) {
        // Fast path: the header is in this chunk.
        const flags = chunk[off]!;
        const nonce = chunk.readUInt32BE(off + 1);
        const length = chunk.readUInt32BE(off + 5);
        this.check(flags, nonce, length);
        off += HEADER_BYTES;
        if (n - off >= length) {
          const start = off;
          off += length;
          this.onFrame(flags, nonce, chunk, start, off);
        } else {
          this.startBody(flags, nonce, length, n - off);
        }
        continue;
      }
      // Slow path: a header split across chunks.
      const take = Math.min(HEADER_BYTES - this.headerFill, n - off);
      chunk.copy(this.header, this.headerFill, off, off + take);
      this.headerFill += take;
      off += take;
      if (this.headerFill < HEADER_BYTES) continue;
      this.headerFill = 0;
      const flags = this.header[0]!;
      const nonce = this.header.readUInt32BE(1);
      const length = this.header.readUInt32BE(5);
      this.check(flags, nonce, length);
      if (length === 0) this.onFrame(flags, nonce, EMPTY, 0, 0);
      else this.startBody(flags, nonce, length, n - off);
    }
  }

  private check(flags: number, nonce: number, length: number): void {
    if (HEADER_BYTES + length > this.maxFrameBytes) {
      throw new P2PFrameTooLargeError(HEADER_BYTES + length, this.maxFrameBytes);
    }
    const problem = headerProblem(flags, nonce, length);
    if (problem) throw new P2PProtocolError(`malformed frame: ${problem}`);
  }

  /** Begins a frame that spans chunks; `available` bytes of its body are in the current chunk. */
  private startBody(flags: number, nonce: number, length: number, available: number): void {
    this.flags = flags;
    this.nonce = nonce;
    this.bodyLength = length;
    this.bodyFill = 0;
    const size = Math.min(length, Math.max(FIRST_PARTIAL_BYTES, available));
    this.onPartial?.(size);
    if (!this.aborted) this.body = Buffer.allocUnsafe(size);
  }

  /** Doubles the partial frame's buffer (at least to `needed`, at most to the body's length). False if aborted. */
  private grow(needed: number): boolean {
    const size = Math.min(this.bodyLength, Math.max(needed, 2 * this.body!.length));
    this.onPartial?.(size);
    if (this.aborted) return false;
    const bigger = Buffer.allocUnsafe(size);
    this.body!.copy(bigger, 0, 0, this.bodyFill);
    this.body = bigger;
    return true;
  }
}

/** FrameScanner for callers that want each body as a Buffer of its own (a view into the chunk where possible). */
export class FrameDecoder extends FrameScanner {
  constructor(maxFrameBytes: number, onFrame: (flags: number, nonce: number, body: Buffer) => void, onPartial?: (allocated: number) => void) {
    super(maxFrameBytes, (flags, nonce, bytes, start, end) => onFrame(flags, nonce, start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)), onPartial);
  }
}

/**
 * The topics a connection has decoded lately. A peer sends a handful of patterns over
 * and over; a hit costs a byte compare instead of a UTF-8 check and a new string.
 */
export class TopicCache {
  private readonly bytes: Buffer[] = [];
  private readonly texts: string[] = [];
  private next = 0;

  constructor(private readonly size = 8) {}

  /** The topic in `body[start, end)`, validated; throws P2PProtocolError when it is not UTF-8. */
  decode(body: Buffer, start: number, end: number): string {
    const length = end - start;
    for (let i = 0; i < this.bytes.length; i++) {
      if (sameBytes(this.bytes[i]!, body, start, length)) return this.texts[i]!;
    }
    const text = decodeTopic(body.subarray(start, end));
    this.bytes[this.next] = Buffer.from(body.subarray(start, end)); // a copy: a view would pin the whole read chunk
    this.texts[this.next] = text;
    this.next = (this.next + 1) % this.size;
    return text;
  }
}

/**
 * `known` equals `body[start, start + length)`. A plain loop: topics are short, and
 * Buffer#compare with offsets spends more on validating its arguments than on comparing.
 */
function sameBytes(known: Buffer, body: Buffer, start: number, length: number): boolean {
  if (known.length !== length) return false;
  for (let i = 0; i < length; i++) if (known[i] !== body[start + i]) return false;
  return true;
}

function decodeTopic(bytes: Buffer): string {
  if (!isUtf8(bytes)) throw new P2PProtocolError('malformed frame: topic is not UTF-8');
  return bytes.toString();
}

/**
 * A wrapped body's topic, metadata and where its payload starts, filled in place by readWrapped:
 * one reusable object per connection, so that reading an event or a request allocates nothing
 * but the values handed on.
 */
export interface WrappedView {
  topic: string;
  metadata: Metadata | undefined;
  payloadStart: number;
}

/**
 * Reads the topic (through `topics`) and metadata of the wrapped body `bytes[start, end)` into `into`.
 * Throws P2PProtocolError as parseMessage does.
 */
export function readWrapped(bytes: Buffer, start: number, end: number, topics: TopicCache, into: WrappedView): WrappedView {
  // The frame's header checked that the body holds at least the topic length.
  const field = (bytes[start]! << 8) | bytes[start + 1]!;
  const topicLength = field & ~TOPIC_HAS_METADATA;
  let at = start + TOPIC_LENGTH_BYTES + topicLength;
  if (topicLength === 0) throw new P2PProtocolError('malformed frame: empty topic');
  if (at > end) throw new P2PProtocolError('malformed frame: topic runs past the body');
  into.topic = topics.decode(bytes, start + TOPIC_LENGTH_BYTES, at);
  into.metadata = undefined;
  if (field & TOPIC_HAS_METADATA) {
    const section = decodeMetadata(bytes.subarray(start, end), at - start);
    into.metadata = section.metadata;
    at = start + section.end;
  }
  into.payloadStart = at;
  return into;
}

/** Splits a frame's body into topic and payload. Throws P2PProtocolError on a malformed topic. */
export function parseMessage(flags: number, nonce: number, body: Buffer, topics?: TopicCache): Message {
  const kind = frameKind(flags);
  let topic: string | undefined;
  let metadata: Metadata | undefined;
  let payload = body;
  if (flags & FLAG_WRAPPED) {
    const field = body.readUInt16BE(0);
    const topicLength = field & ~TOPIC_HAS_METADATA;
    let end = TOPIC_LENGTH_BYTES + topicLength;
    if (topicLength === 0) throw new P2PProtocolError('malformed frame: empty topic');
    if (end > body.length) throw new P2PProtocolError('malformed frame: topic runs past the body');
    topic = topics ? topics.decode(body, TOPIC_LENGTH_BYTES, end) : decodeTopic(body.subarray(TOPIC_LENGTH_BYTES, end));
    if (field & TOPIC_HAS_METADATA) ({ metadata, end } = decodeMetadata(body, end));
    payload = body.subarray(end);
  }
  return {
    kind,
    flags,
    nonce,
    encoding: (flags & ENCODING_MASK) as Encoding,
    topic,
    metadata,
    payload,
    error: (flags & FLAG_ERROR) !== 0,
    end: (flags & FLAG_END) !== 0,
  };
}

/** Frames at or below this size are built in one buffer; larger payloads are sent as a second chunk, uncopied. */
export const INLINE_PAYLOAD_BYTES = 16 * 1024;

/** A frame's total length on the wire. */
/** `topic` is a wrapped body's prefix as encodeTopic (or withMetadata) makes it. */
export function frameSize(topic: Buffer | undefined, payloadLength: number): number {
  return HEADER_BYTES + (topic ? topic.length : 0) + payloadLength;
}

/**
 * Writes a frame's header and topic at `offset` of `target` (which must have room);
 * the payload goes right after. Returns the offset where the payload starts.
 */
export function writeFrameHead(target: Buffer, offset: number, flags: number, nonce: number, topic: Buffer | undefined, payloadLength: number): number {
  const prefix = topic ? topic.length : 0;
  target[offset] = flags;
  target.writeUInt32BE(nonce, offset + 1);
  target.writeUInt32BE(prefix + payloadLength, offset + 5);
  if (!topic) return offset + HEADER_BYTES;
  topic.copy(target, offset + HEADER_BYTES);
  return offset + HEADER_BYTES + prefix;
}

/**
 * Encodes one frame as one buffer, or two (header+topic, payload) for a large
 * payload so that it is never copied. `size` is the frame's total length.
 */
export function encodeFrame(
  flags: number,
  nonce: number,
  topic: Buffer | undefined,
  payload: Buffer,
): { chunks: Buffer[]; size: number } {
  const size = frameSize(topic, payload.length);
  const inline = payload.length <= INLINE_PAYLOAD_BYTES;
  const head = Buffer.allocUnsafe(inline ? size : size - payload.length);
  const at = writeFrameHead(head, 0, flags, nonce, topic, payload.length);
  if (inline) {
    payload.copy(head, at);
    return { chunks: [head], size };
  }
  return { chunks: [head, payload], size };
}

/** Encodes a topic (a normalised Nest pattern) once, checking its length: the wrapped-body prefix frames copy. */
export function encodeTopic(topic: string): Buffer {
  const length = Buffer.byteLength(topic, 'utf8');
  if (length === 0) throw new P2PProtocolError('empty pattern');
  if (length > MAX_TOPIC_BYTES) throw new P2PProtocolError(`pattern longer than ${MAX_TOPIC_BYTES} bytes`);
  // The whole prefix of a wrapped body (`u16 length | topic`), so a frame copies it in one go.
  const prefix = Buffer.allocUnsafe(TOPIC_LENGTH_BYTES + length);
  prefix.writeUInt16BE(length, 0);
  prefix.write(topic, TOPIC_LENGTH_BYTES, 'utf8');
  return prefix;
}

/** Marks bytes to be sent with the protobuf encoding (passed through opaque, received as a Buffer). */
export class ProtobufPayload {
  constructor(readonly bytes: Uint8Array) {}
}

/** Chooses the encoding from the value's type: bytes → binary, string → utf8, anything else → json. */
export function encodePayload(data: unknown): { encoding: Encoding; bytes: Buffer } {
  if (Buffer.isBuffer(data)) return { encoding: Encoding.Binary, bytes: data };
  if (data instanceof Uint8Array) return { encoding: Encoding.Binary, bytes: toBuffer(data) };
  if (typeof data === 'string') return { encoding: Encoding.Utf8, bytes: Buffer.from(data, 'utf8') };
  if (data instanceof ProtobufPayload) return { encoding: Encoding.Protobuf, bytes: toBuffer(data.bytes) };
  // JSON.stringify(undefined) is undefined: an empty json body stands for it.
  const json = data === undefined ? '' : JSON.stringify(data);
  return { encoding: Encoding.Json, bytes: json === undefined ? EMPTY : Buffer.from(json, 'utf8') };
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Turns payload bytes back into the value that was sent. Throws P2PProtocolError on bad UTF-8 or JSON. */
export function decodePayload(encoding: Encoding, bytes: Buffer): unknown {
  return decodePayloadAt(encoding, bytes, 0, bytes.length);
}

/**
 * decodePayload of `bytes[start, end)`: a string payload is read in place, with no view made
 * of it; a binary one is a view (no copy) into the received bytes.
 */
export function decodePayloadAt(encoding: Encoding, bytes: Buffer, start: number, end: number): unknown {
  switch (encoding) {
    case Encoding.Binary:
    case Encoding.Protobuf:
      return start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
    case Encoding.Utf8:
      return decodeUtf8(bytes, start, end);
    case Encoding.Json: {
      if (end === start) return undefined;
      try {
        return JSON.parse(bytes.toString('utf8', start, end)); // as before: not validated, bad bytes become U+FFFD
      } catch (err) {
        throw new P2PProtocolError('malformed frame: json payload does not parse', {}, { cause: err });
      }
    }
  }
}

/**
 * Buffer's own UTF-8 reader, which `toString('utf8', start, end)` reaches after checking its
 * arguments (a third of this path's time for a 64-byte payload); that call where it is missing.
 */
const utf8Slice: (this: Buffer, start: number, end: number) => string =
  (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, start: number, end: number) => string }).utf8Slice ??
  function (this: Buffer, start: number, end: number) {
    return this.toString('utf8', start, end);
  };

/**
 * `bytes[start, end)` as a string; throws P2PProtocolError when it is not UTF-8. Decoding turns
 * every malformed sequence into U+FFFD, so text without one was valid: the bytes are checked
 * apart only then (one pass over the bytes rather than two, and no view made of them).
 */
function decodeUtf8(bytes: Buffer, start: number, end: number): string {
  const text = utf8Slice.call(bytes, start, end);
  if (text.indexOf('\uFFFD') === -1) return text;
  if (!isUtf8(bytes.subarray(start, end))) throw new P2PProtocolError('malformed frame: utf8 payload is not UTF-8');
  return text; // a U+FFFD that was sent as such
}

import { isUtf8 } from 'node:buffer';
import { createPublicKey, sign, verify } from 'node:crypto';
import { P2PProtocolError } from '../common/errors.js';
import { peerIdFromPublicKey, type Identity } from '../common/identity.js';
import { isSmallOrderKey, SPKI_ED25519_PREFIX } from '../common/ed25519.js';
import { isReserved, RESERVED_PREFIX } from '../common/reserved.js';
import { isWildcard } from '../common/subject.js';

const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;

/**
 * A directory record: which patterns one node handles, signed by that node's own key
 * (docs/directory.md). Binary layout, big-endian, every field bounds-checked on decode:
 *
 * ```
 * version u8 (1) | public key 32 | seq u64 | issuedAt u64 (ms) | flags u8 (bit 0: leaving)
 * | address length u8 | address (printable ASCII) | requests u16 | events u16
 * | per pattern: length u16 | UTF-8 bytes | signature 64
 * ```
 *
 * The signature covers `DOMAIN` followed by every byte before it. Decoding is strict (one
 * encoding per record), so re-encoding the decoded fields gives the signed bytes back.
 */

/** Never a valid prefix of another message this library signs (broadcasts, certificates). */
const DOMAIN = Buffer.from('nestjs-p2p/directory/1\0', 'utf8');
const VERSION = 1;
const FLAG_LEAVING = 1;
/** Bytes of a record with no address and no pattern. */
export const RECORD_FIXED_BYTES = 1 + PUBLIC_KEY_BYTES + 8 + 8 + 1 + 1 + 2 + 2 + SIGNATURE_BYTES;
/**
 * Bytes of the largest record: one must fit an anti-entropy page (64 KiB: count u16, length u16, record), or
 * no neighbour could hand it to a joiner. 256 patterns of 256 bytes would make 66 KiB: `setHandledPatterns`
 * refuses a set of patterns that could pass it (P2PConfigError), and the decoder refuses a bigger record.
 */
export const MAX_RECORD_BYTES = 64 * 1024 - 4;
/** Bytes a record's address may take (its length is a u8). */
export const MAX_ADDRESS_BYTES = 255;
/** The internal topic records travel on. */
export const DIRECTORY_TOPIC = `${RESERVED_PREFIX}directory`;
const ADDRESS = /^[\x21-\x7e]{0,255}$/;

export { isReserved };

/** What a record says (everything but its signature). */
export interface RecordFields {
  /** The node's raw Ed25519 public key, 32 bytes; its peer id derives from it. */
  publicKey: Buffer;
  /** Strictly increasing per node (wall-clock ms based); a higher seq replaces a lower one. */
  seq: number;
  /** When the node issued it, ms since the epoch (its clock); it expires `directoryTtlMs` later. */
  issuedAt: number;
  /** A tombstone: the node left; keeps older versions out until it expires. */
  leaving: boolean;
  /** `host:port` the node listens on; '' when it does not listen. */
  address: string;
  /** Patterns of its request handlers, Nest-normalised. */
  requests: readonly string[];
  /** Patterns of its event handlers, Nest-normalised. */
  events: readonly string[];
}

/** A decoded record, with its peer id and signature. */
export interface DirectoryRecord extends RecordFields {
  id: string;
  signature: Buffer;
}

/** The bounds a decoder enforces. */
export interface RecordLimits {
  /** Patterns in one record, requests and events together. */
  maxPatterns: number;
  /** UTF-8 bytes of one pattern. */
  maxPatternBytes: number;
  /** `.`-separated tokens of one wildcard pattern (each is a node of the subject index); absent: no bound. */
  maxPatternTokens?: number;
}

/** The bytes the signature covers, after the domain prefix: the record without its signature. */
function encodeBody(f: RecordFields): Buffer {
  const address = Buffer.from(f.address, 'latin1');
  const patterns = [...f.requests, ...f.events].map((p) => Buffer.from(p, 'utf8'));
  const size = RECORD_FIXED_BYTES - SIGNATURE_BYTES + address.length + patterns.reduce((n, p) => n + 2 + p.length, 0);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  out[o++] = VERSION;
  o += f.publicKey.copy(out, o);
  o = writeU64(out, f.seq, o);
  o = writeU64(out, f.issuedAt, o);
  out[o++] = f.leaving ? FLAG_LEAVING : 0;
  out[o++] = address.length;
  o += address.copy(out, o);
  o = out.writeUInt16BE(f.requests.length, o);
  o = out.writeUInt16BE(f.events.length, o);
  for (const p of patterns) {
    o = out.writeUInt16BE(p.length, o);
    o += p.copy(out, o);
  }
  return out;
}

/** Signs `fields` with `identity` (whose key must be `fields.publicKey`): the record's wire bytes. */
export function signRecord(identity: Identity, fields: RecordFields): Buffer {
  const body = encodeBody(fields);
  return Buffer.concat([body, sign(null, Buffer.concat([DOMAIN, body]), identity.privateKey)]);
}

/** The wire bytes of a decoded (or stored) record: its fields and its signature, as signed. */
export function encodeRecord(record: RecordFields & { signature: Buffer }): Buffer {
  return Buffer.concat([encodeBody(record), record.signature]);
}

/** Whether the record's signature is its own key's over its bytes. Never throws. */
export function verifyRecord(bytes: Buffer, publicKey: Buffer): boolean {
  if (bytes.length < RECORD_FIXED_BYTES || isSmallOrderKey(publicKey)) return false;
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
    const body = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
    return verify(null, Buffer.concat([DOMAIN, body]), key, bytes.subarray(bytes.length - SIGNATURE_BYTES));
  } catch {
    return false;
  }
}

/**
 * Parses a record's bytes, checking structure and bounds only (the signature is verified
 * by `verifyRecord`). Throws P2PProtocolError on anything malformed or over `limits`.
 */
export function decodeRecord(bytes: Buffer, limits: RecordLimits): DirectoryRecord {
  const bad = (why: string): never => {
    throw new P2PProtocolError(`malformed directory record: ${why}`);
  };
  if (bytes.length < RECORD_FIXED_BYTES) bad('too short');
  if (bytes.length > MAX_RECORD_BYTES) bad(`${bytes.length} bytes, over ${MAX_RECORD_BYTES} (one anti-entropy page)`);
  let o = 0;
  if (bytes[o++] !== VERSION) bad(`unknown version ${bytes[0]}`);
  const publicKey = Buffer.from(bytes.subarray(o, (o += PUBLIC_KEY_BYTES)));
  const seq = readU64(bytes, o) ?? bad('seq beyond 2^53');
  o += 8;
  const issuedAt = readU64(bytes, o) ?? bad('issuedAt beyond 2^53');
  o += 8;
  // Stored as seq minus issuedAt in 32 bits (record-table.ts): an honest node's differ by far less than 24 days.
  if (Math.abs(seq - issuedAt) >= 2 ** 31) bad('issuedAt more than 24 days from seq');
  const flags = bytes[o++]!;
  if ((flags & ~FLAG_LEAVING) !== 0) bad(`unknown flags ${flags}`);
  const addressLength = bytes[o++]!;
  if (o + addressLength + 4 + SIGNATURE_BYTES > bytes.length) bad('address past the end');
  const address = bytes.toString('latin1', o, (o += addressLength));
  if (!ADDRESS.test(address)) bad('address is not printable ASCII');
  const requestCount = bytes.readUInt16BE(o);
  const eventCount = bytes.readUInt16BE(o + 2);
  o += 4;
  if (requestCount + eventCount > limits.maxPatterns) bad(`${requestCount + eventCount} patterns, over ${limits.maxPatterns}`);
  const end = bytes.length - SIGNATURE_BYTES;
  const patterns: string[] = [];
  for (let i = 0; i < requestCount + eventCount; i++) {
    if (o + 2 > end) bad('pattern past the end');
    const length = bytes.readUInt16BE(o);
    o += 2;
    if (length === 0 || length > limits.maxPatternBytes) bad(`a pattern of ${length} bytes (1 to ${limits.maxPatternBytes})`);
    if (o + length > end) bad('pattern past the end');
    const raw = bytes.subarray(o, (o += length));
    if (!isUtf8(raw)) bad('a pattern is not UTF-8');
    const pattern = raw.toString('utf8');
    if (limits.maxPatternTokens !== undefined && isWildcard(pattern)) {
      const tokens = pattern.split('.').length;
      if (tokens > limits.maxPatternTokens) bad(`a wildcard pattern of ${tokens} tokens (at most ${limits.maxPatternTokens})`);
    }
    patterns.push(pattern);
  }
  if (o !== end) bad('trailing bytes');
  return {
    id: peerIdFromPublicKey(publicKey),
    publicKey,
    seq,
    issuedAt,
    leaving: (flags & FLAG_LEAVING) !== 0,
    address,
    requests: patterns.slice(0, requestCount),
    events: patterns.slice(requestCount),
    signature: Buffer.from(bytes.subarray(end)),
  };
}

function writeU64(out: Buffer, value: number, o: number): number {
  o = out.writeUInt32BE(Math.floor(value / 2 ** 32), o);
  return out.writeUInt32BE(value >>> 0, o);
}

/** undefined above Number.MAX_SAFE_INTEGER: such a seq or time could not be compared exactly. */
function readU64(bytes: Buffer, o: number): number | undefined {
  const high = bytes.readUInt32BE(o);
  if (high >= 2 ** 21) return undefined;
  return high * 2 ** 32 + bytes.readUInt32BE(o + 4);
}

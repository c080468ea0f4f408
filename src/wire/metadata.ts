import { isUtf8 } from 'node:buffer';
import { P2PMetadataError, P2PProtocolError } from '../common/errors.js';

/**
 * Message metadata (Nest 12's `packet.metadata`: a trace id, a tenant…): string keys to
 * string values, sent beside the payload and read with `ctx.getMetadata()`. On the wire
 * it follows the topic when bit 15 of the topic length is set: `u16 length | UTF-8 JSON`.
 */
export type Metadata = Record<string, string>;

/** Bit 15 of a wrapped body's topic length: a metadata section follows the topic. */
export const TOPIC_HAS_METADATA = 0x8000;
/** Encoded metadata, at most. */
export const MAX_METADATA_BYTES = 4096;

/** `u16 length | JSON` for the wire. Throws P2PMetadataError when it is not a string map or too large. */
export function encodeMetadata(metadata: Metadata): Buffer {
  if (!isStringMap(metadata)) throw new P2PMetadataError('metadata must be an object of string values');
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  if (json.length > MAX_METADATA_BYTES) throw new P2PMetadataError(`metadata of ${json.length} bytes exceeds ${MAX_METADATA_BYTES}`);
  const section = Buffer.allocUnsafe(2 + json.length);
  section.writeUInt16BE(json.length, 0);
  json.copy(section, 2);
  return section;
}

/** Reads the section at `at`; returns the metadata and where the payload starts. Throws P2PProtocolError. */
export function decodeMetadata(body: Buffer, at: number): { metadata: Metadata; end: number } {
  if (at + 2 > body.length) throw new P2PProtocolError('malformed frame: metadata length runs past the body');
  const length = body.readUInt16BE(at);
  const end = at + 2 + length;
  if (length > MAX_METADATA_BYTES || end > body.length) throw new P2PProtocolError('malformed frame: bad metadata length');
  const bytes = body.subarray(at + 2, end);
  let value: unknown;
  try {
    if (!isUtf8(bytes)) throw new Error();
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new P2PProtocolError('malformed frame: metadata is not JSON');
  }
  if (!isStringMap(value)) throw new P2PProtocolError('malformed frame: metadata is not an object of strings');
  return { metadata: value, end };
}

/** A topic prefix (`u16 length | topic`, as encodeTopic makes) with a metadata section after it. */
export function withMetadata(topicPrefix: Buffer, metadata: Metadata | undefined): Buffer {
  if (!metadata) return topicPrefix;
  const section = encodeMetadata(metadata);
  const prefix = Buffer.concat([topicPrefix, section]);
  prefix.writeUInt16BE(topicPrefix.readUInt16BE(0) | TOPIC_HAS_METADATA, 0);
  return prefix;
}

function isStringMap(value: unknown): value is Metadata {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  for (const v of Object.values(value)) if (typeof v !== 'string') return false;
  return true;
}

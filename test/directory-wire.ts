import type { Identity } from '../src/common/identity.js';
import { signRecord, type RecordFields } from '../src/directory/record.js';
import { ControlType, encodeControl } from '../src/wire/control.js';
import type { RawPeer } from './raw-peer.js';

/**
 * Directory frames as a hand-driven peer sends them (test/net/directory-*.spec.ts): a record
 * signed by any key, a digest that opens a session for pages, and a page of records.
 */

/** A record about `identity`, signed by `key` (by default its own). */
export function record(identity: Identity, fields: Partial<RecordFields>, key = identity): Buffer {
  const now = Date.now();
  return signRecord(key, { publicKey: identity.publicKeyRaw, seq: now, issuedAt: now, leaving: false, address: '', requests: [], events: [], ...fields });
}

/** A digest that differs in every bucket and announces `perBucket` records in each: it opens a session for pages. */
export function digest(hostile: RawPeer, perBucket = 4): void {
  const body = Buffer.alloc(1 + 256 * 12);
  for (let b = 0; b < 256; b++) {
    body.writeUInt32BE(perBucket, 1 + b * 12);
    body.writeUInt32BE(0xdeadbeef, 5 + b * 12);
  }
  hostile.write(Buffer.concat(encodeControl({ type: ControlType.DirectoryDigest, body }).chunks));
}

/** A page of records, as anti-entropy sends them. */
export function page(hostile: RawPeer, records: Buffer[]): void {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeUInt16BE(records.length);
  for (const r of records) {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(r.length);
    parts.push(length, r);
  }
  hostile.write(Buffer.concat(encodeControl({ type: ControlType.DirectoryRecords, body: Buffer.concat(parts) }).chunks));
}

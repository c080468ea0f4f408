import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { peerIdFromPublicKey, type Identity } from '../common/identity.js';

/**
 * Origin signatures of network broadcasts. The origin signs, with its Ed25519
 * identity key, the SHA-256 of the signed part of the message (its public key,
 * timestamp, encoding, topic and payload: everything a receiver acts on), under a
 * domain-separation prefix. The same hash, cut to 16 bytes, is the broadcast id,
 * so an id is bound to its origin and content: nobody can choose an id that
 * suppresses an honest broadcast. Relays' fields (hops, arc, digest) are not signed.
 */

/** Never a valid prefix of another message this library signs (TLS certificates, future frames). */
const DOMAIN = Buffer.from('nestjs-p2p network broadcast v2\0', 'utf8');
export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** SHA-256 of the signed part: its first 16 bytes are the id, and all 32 are what the signature covers. */
export function broadcastHash(signed: Buffer): Buffer {
  return createHash('sha256').update(signed).digest();
}

export function broadcastId(hash: Buffer): string {
  return hash.toString('hex', 0, 16);
}

export function signBroadcastHash(identity: Identity, hash: Buffer): Buffer {
  return sign(null, Buffer.concat([DOMAIN, hash]), identity.privateKey);
}

/** A zero signature, for the benchmark's unsigned comparison only (PeerOptions.unsignedBroadcasts). */
export const NO_SIGNATURE = Buffer.alloc(SIGNATURE_BYTES);

/**
 * Encodings of the Ed25519 points of small order (libsodium's blocklist, compared
 * without the sign bit): with such a "public key" anyone can make signatures that
 * verify, so no origin may use one.
 */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

export function isSmallOrderKey(raw: Buffer): boolean {
  return SMALL_ORDER.some((point) => point.compare(raw, 0, 31, 0, 31) === 0 && (point[31]! & 0x7f) === (raw[31]! & 0x7f));
}

/**
 * Public keys seen as broadcast origins, as ready KeyObjects with their peer id:
 * building either costs more than the check itself. Bounded; oldest first out.
 */
export class OriginKeys {
  private readonly keys = new Map<string, { peerId: string; key?: KeyObject }>();

  constructor(private readonly max = 4096) {}

  private get(raw: Buffer): { peerId: string; key?: KeyObject } {
    const hex = raw.toString('hex');
    let known = this.keys.get(hex);
    if (!known) {
      if (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value!);
      known = { peerId: peerIdFromPublicKey(raw) };
      this.keys.set(hex, known);
    }
    return known;
  }

  /** The peer id the key derives to (the origin named by the message). */
  peerId(raw: Buffer): string {
    return this.get(raw).peerId;
  }

  /** Whether `signature` is the origin's signature over `hash`. Never throws: a key that is not a point is just invalid. */
  verify(raw: Buffer, hash: Buffer, signature: Buffer): boolean {
    if (isSmallOrderKey(raw)) return false;
    try {
      const known = this.get(raw);
      known.key ??= createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
      return verify(null, Buffer.concat([DOMAIN, hash]), known.key, signature);
    } catch {
      return false;
    }
  }
}

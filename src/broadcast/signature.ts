import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { peerIdFromPublicKey, type Identity } from '../common/identity.js';
import { isSmallOrderKey, SPKI_ED25519_PREFIX } from '../common/ed25519.js';

export { isSmallOrderKey };

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

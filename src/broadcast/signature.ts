import { createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';
import { peerIdFromPublicKey, type Identity } from '../common/identity.js';
import { isSmallOrderKey, SPKI_ED25519_PREFIX } from '../common/ed25519.js';
import { ownCopy, pathFromProof, type MerklePath } from './merkle.js';

export { isSmallOrderKey };

/**
 * Origin signatures of network broadcasts. Each message's hash is the SHA-256 of its signed part
 * (its origin's public key, timestamp, encoding, topic and payload: everything a receiver acts on);
 * cut to 16 bytes it is the broadcast id, so an id is bound to its origin and content: nobody can
 * choose an id that suppresses an honest broadcast. Relays' fields (hops, arc, digest) are not signed.
 *
 * The origin signs batches (protocol version 6): the broadcasts it starts in one synchronous run are
 * the leaves of a Merkle tree (src/broadcast/merkle.ts), and it signs, with its Ed25519 identity
 * key, the leaf count and the root, under a domain-separation prefix. Each message carries the
 * signature and its own path to the root; a receiver that verified a root for that key and
 * signature already (a batch-mate came first) checks the path and skips Ed25519.
 */

/**
 * Never a valid prefix of another message this library signs (TLS certificates, directory records),
 * and not the prefix of version 2–5's per-message signature ('nestjs-p2p network broadcast v2'), so a
 * signature of one kind is never one of the other.
 */
const DOMAIN = Buffer.from('nestjs-p2p network broadcast batch v6\0', 'utf8');
export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;

/** SHA-256 of the signed part: its first 16 bytes are the id, and all 32 are what the signature covers. */
export function broadcastHash(signed: Buffer): Buffer {
  // The one-shot hash: no Hash object per message (every copy received is hashed, duplicates included).
  return hash('sha256', signed, 'buffer');
}

export function broadcastId(hash: Buffer): string {
  return hash.toString('hex', 0, 16);
}

/** What the origin signs for a batch: the prefix, the leaf count (u16 BE) and the Merkle root. */
function batchStatement(count: number, root: Buffer): Buffer {
  const statement = Buffer.allocUnsafe(DOMAIN.length + 2 + root.length);
  DOMAIN.copy(statement, 0);
  statement.writeUInt16BE(count, DOMAIN.length);
  root.copy(statement, DOMAIN.length + 2);
  return statement;
}

export function signBatchRoot(identity: Identity, count: number, root: Buffer): Buffer {
  return sign(null, batchStatement(count, root), identity.privateKey);
}

/** A zero signature, for the benchmark's unsigned comparison only (PeerOptions.unsignedBroadcasts). */
export const NO_SIGNATURE = Buffer.alloc(SIGNATURE_BYTES);

/** How a signature check went: Ed25519 ran (`signature`), a batch-mate's check stood for it (`batch`), or it failed. */
export type VerifyOutcome = 'signature' | 'batch' | 'invalid';

/** A batch verified by its signature: whose, of how many, and the last path checked in it (its root last). */
interface VerifiedBatch {
  originKey: Buffer;
  count: number;
  path: MerklePath;
}

/**
 * Public keys seen as broadcast origins, as ready KeyObjects with their peer id:
 * building either costs more than the check itself. Bounded; oldest first out.
 * Beside them, the batches already verified, by signature (with the origin key, the leaf count and the
 * last path checked in it), oldest first out: a batch-mate's proof that reaches one is as good as the
 * signature check, and one whose path meets the last one's is checked with the hashes below the meeting
 * point only (src/broadcast/merkle.ts, pathFromProof).
 */
export class OriginKeys {
  private readonly keys = new Map<string, { peerId: string; key?: KeyObject }>();
  /** Keyed by the signature's bytes (latin1): no two batches share one. Insertion order is the eviction order. */
  private readonly verifiedBatches = new Map<string, VerifiedBatch>();

  constructor(
    private readonly max = 4096,
    private readonly maxVerifiedBatches = 1024,
  ) {}

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

  /**
   * Whether `signature` is the origin's signature over a batch of `count` whose root leaf `index`
   * (`leaf`, the message's leaf hash) reaches with `siblings`. Never throws: a key that is not a point
   * is just invalid. A batch verified before (same signature, key and count) stands for Ed25519 when
   * the path reaches its root (`batch`).
   */
  verifyPath(raw: Buffer, count: number, index: number, leaf: Buffer, siblings: readonly Buffer[], signature: Buffer): VerifyOutcome {
    if (isSmallOrderKey(raw)) return 'invalid';
    const id = signature.toString('latin1');
    const cached = this.verifiedBatches.get(id);
    const mate = cached !== undefined && cached.count === count && cached.originKey.equals(raw) ? cached : undefined;
    const path = pathFromProof(leaf, index, count, siblings, mate?.path);
    if (!path) return 'invalid';
    const root = path.nodes[path.nodes.length - 1]!;
    if (mate && mate.path.nodes[mate.path.nodes.length - 1]!.equals(root)) {
      mate.path = path; // the next batch-mate most likely meets this one low in the tree
      return 'batch';
    }
    try {
      const known = this.get(raw);
      known.key ??= createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
      if (!verify(null, batchStatement(count, root), known.key, signature)) return 'invalid';
    } catch {
      return 'invalid';
    }
    // A batch of one has no batch-mate to stand for: remembered, it would only push out batches that do.
    if (this.maxVerifiedBatches > 0 && count > 1) {
      if (!this.verifiedBatches.delete(id) && this.verifiedBatches.size >= this.maxVerifiedBatches) {
        this.verifiedBatches.delete(this.verifiedBatches.keys().next().value!);
      }
      // The key as a copy of its own: the message's is a view of its frame, which the cache must not keep.
      this.verifiedBatches.set(id, { originKey: ownCopy(raw), count, path });
    }
    return 'signature';
  }
}

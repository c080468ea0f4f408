import { hash } from 'node:crypto';

/**
 * The Merkle tree over a batch of network broadcasts (src/broadcast/signature.ts): the origin signs
 * its root once, and each message carries the path from its leaf to the root, so that it is checked,
 * relayed and repaired alone. SHA-256, with a prefix byte per kind of hash (as RFC 6962): a leaf can
 * never be read as an inner node, so no proof of a shorter tree passes for a longer one. An odd node
 * at the end of a level is carried up as it is (no duplicated leaf, so no two batches share a root,
 * the ambiguity of CVE-2012-2459). The leaf count is not in the tree: the signature covers it
 * beside the root (batchDigest), so a proof cannot lie about where its siblings stand.
 */

const LEAF = 0x00;
const NODE = 0x01;
export const HASH_BYTES = 32;
/** Leaves a batch may have on the wire (u16); the origin's cap is broadcastBatchMax. */
export const MAX_LEAVES = 0xffff;

/** The leaf of a message: its broadcast hash (SHA-256 of its signed part) under the leaf prefix. */
export function leafHash(messageHash: Buffer): Buffer {
  return prefixed(LEAF, messageHash);
}

function nodeHash(left: Buffer, right: Buffer): Buffer {
  return prefixed(NODE, left, right);
}

/**
 * SHA-256 of a prefix byte and one or two hashes, one-shot (crypto.hash): every node checks a path of them per
 * message, and a Hash object with an update per part cost half as much again (1.5 against 2.0 µs here).
 */
function prefixed(prefix: number, a: Buffer, b?: Buffer): Buffer {
  const input = Buffer.allocUnsafe(1 + a.length + (b?.length ?? 0));
  input[0] = prefix;
  a.copy(input, 1);
  b?.copy(input, 1 + a.length);
  return hash('sha256', input, 'buffer');
}

/** Every level of the tree over `leaves`, leaves first, root last (a batch of one: the leaf is the root). */
function levels(leaves: readonly Buffer[]): Buffer[][] {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs a leaf');
  const all: Buffer[][] = [leaves.slice()];
  for (let level = all[0]!; level.length > 1; ) {
    const up: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) up.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!);
    all.push(up);
    level = up;
  }
  return all;
}

/** The root of the tree over `leaves`, and each leaf's siblings from the bottom up. */
export function merkleTree(leaves: readonly Buffer[]): { root: Buffer; proofs: Buffer[][] } {
  const all = levels(leaves);
  const proofs = leaves.map((_, index) => {
    const siblings: Buffer[] = [];
    let i = index;
    for (let d = 0; d < all.length - 1; d++, i >>= 1) {
      const sibling = i ^ 1;
      if (sibling < all[d]!.length) siblings.push(all[d]![sibling]!);
    }
    return siblings;
  });
  return { root: all[all.length - 1]![0]!, proofs };
}

/** How many siblings the path of leaf `index` in a tree of `count` leaves has (an odd last node has none at its level). */
export function proofLength(index: number, count: number): number {
  let n = 0;
  for (let i = index, width = count; width > 1; i >>= 1, width = (width + 1) >> 1) if ((i ^ 1) < width) n++;
  return n;
}

/**
 * A copy with a memory of its own: a view of a frame would keep the frame, and a small Buffer.from copy
 * keeps its whole 8 KiB pool slab (with whatever else was copied there) for as long as a cache holds it.
 */
export function ownCopy(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}

/**
 * A leaf's path in its batch's tree once verified: every node on it and every node's sibling, by level
 * (leaf first, root last). Each is a node of the signed tree, so a batch-mate's path that meets one
 * needs no hashing above it (pathFromProof).
 */
export interface MerklePath {
  /** The leaf's index in its batch. */
  readonly index: number;
  /** The nodes on the path, the leaf first and the root last. */
  readonly nodes: readonly Buffer[];
  /** Each level's sibling of the path's node (undefined for an odd last node carried up), the leaf's level first; copies, not views of a frame. */
  readonly siblings: ReadonlyArray<Buffer | undefined>;
}

/**
 * The root that leaf `index` of `count` reaches with `siblings`; undefined when the index is not in
 * the tree or the number of siblings is not the one its place needs.
 */
export function rootFromProof(leaf: Buffer, index: number, count: number, siblings: readonly Buffer[]): Buffer | undefined {
  const path = pathFromProof(leaf, index, count, siblings);
  return path?.nodes[path.nodes.length - 1];
}

/**
 * Leaf `index`'s path to the root with `siblings` (rootFromProof, with every node on the way). With
 * `known`, a verified path of the same batch (same count), it hashes only up to the level where the two
 * paths meet (they are in one pair of nodes there) and takes the rest from `known`, when its node and
 * every sibling from there up are `known`'s: it then reaches `known`'s root, as hashing would. For
 * batch-mates that arrive in order that is about one hash instead of one per level. Otherwise it hashes
 * the whole path, so the result never depends on `known`'s being there.
 */
export function pathFromProof(leaf: Buffer, index: number, count: number, siblings: readonly Buffer[], known?: MerklePath): MerklePath | undefined {
  if (!Number.isInteger(count) || !Number.isInteger(index) || count < 1 || count > MAX_LEAVES || index < 0 || index >= count) return undefined;
  if (siblings.length !== proofLength(index, count)) return undefined;
  const nodes: Buffer[] = [leaf];
  const own: Array<Buffer | undefined> = [];
  let hash = leaf;
  let s = 0;
  for (let i = index, width = count, level = 0; width > 1; i >>= 1, width = (width + 1) >> 1, level++) {
    // An odd last node has no sibling at its level: it is carried up as it is.
    const sibling = (i ^ 1) < width ? siblings[s++]! : undefined;
    if (sibling !== undefined && sibling.length !== HASH_BYTES) return undefined;
    if (known !== undefined && i >> 1 === known.index >> (level + 1)) {
      const joined = join(known, index, level, i, hash, sibling, siblings, s, nodes, own);
      if (joined) return joined;
      known = undefined; // not the known tree's nodes: hash the rest, as without it
    }
    own.push(sibling === undefined ? undefined : ownCopy(sibling));
    if (sibling !== undefined) hash = i & 1 ? nodeHash(sibling, hash) : nodeHash(hash, sibling);
    nodes.push(hash);
  }
  return { index, nodes, siblings: own };
}

/**
 * Where a path meets `known` at `level` (position `i` there, in the pair of `known`'s own position):
 * the whole path, if its node and its sibling at that level are that pair's nodes and its siblings
 * above are `known`'s (above it, the two paths are one). Undefined if any differs.
 */
function join(
  known: MerklePath,
  index: number,
  level: number,
  i: number,
  hash: Buffer,
  sibling: Buffer | undefined,
  siblings: readonly Buffer[],
  next: number,
  nodes: Buffer[],
  own: Array<Buffer | undefined>,
): MerklePath | undefined {
  const same = i === known.index >> level;
  const mine = same ? known.nodes[level] : known.siblings[level];
  const other = same ? known.siblings[level] : known.nodes[level];
  if (mine === undefined || !mine.equals(hash)) return undefined;
  if (sibling === undefined ? other !== undefined : other === undefined || !other.equals(sibling)) return undefined;
  let s = next;
  for (let k = level + 1; k < known.siblings.length; k++) {
    const above = known.siblings[k];
    if (above === undefined) continue;
    const given = siblings[s++];
    if (given === undefined || !given.equals(above)) return undefined;
  }
  if (s !== siblings.length) return undefined;
  own.push(other);
  for (let k = level + 1; k < known.siblings.length; k++) own.push(known.siblings[k]);
  for (let k = level + 1; k < known.nodes.length; k++) nodes.push(known.nodes[k]!);
  return { index, nodes, siblings: own };
}

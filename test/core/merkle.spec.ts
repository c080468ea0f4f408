import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { leafHash, merkleTree, pathFromProof, proofLength, rootFromProof } from '../../src/broadcast/merkle.js';
import { draftNetworkMessage, signBatch, verifyNetworkMessage } from '../../src/broadcast/codec.js';
import { OriginKeys } from '../../src/broadcast/signature.js';
import { loadIdentity } from '../../src/common/identity.js';
import { Encoding } from '../../src/wire/constants.js';

const leaves = (n: number, salt = 'm'): Buffer[] => Array.from({ length: n }, (_, i) => leafHash(createHash('sha256').update(`${salt}${i}`).digest()));

describe('Merkle proofs of a batch of broadcasts (src/broadcast/merkle.ts)', () => {
  it('every leaf of every batch of 1 to 9 reaches the root with its proof, and only with its own', () => {
    for (let n = 1; n <= 9; n++) {
      const batch = leaves(n);
      const { root, proofs } = merkleTree(batch);
      if (n === 1) {
        expect(proofs[0]).toEqual([]);
        expect(root.equals(batch[0]!)).toBe(true); // a batch of one: the root is the leaf hash
      }
      for (let i = 0; i < n; i++) {
        expect(proofs[i]!.length).toBe(proofLength(i, n));
        expect(proofs[i]!.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
        expect(rootFromProof(batch[i]!, i, n, proofs[i]!)?.equals(root)).toBe(true);
        // Another leaf with this proof reaches another root.
        if (n > 1) expect(rootFromProof(batch[(i + 1) % n]!, i, n, proofs[i]!)?.equals(root)).toBe(false);
      }
    }
  });

  it('a wrong sibling, a missing or extra one, a wrong index or a leaf count lie does not reach the root', () => {
    for (let n = 2; n <= 9; n++) {
      const batch = leaves(n);
      const { root, proofs } = merkleTree(batch);
      for (let i = 0; i < n; i++) {
        const proof = proofs[i]!;
        for (let s = 0; s < proof.length; s++) {
          const wrong = proof.map((h, k) => (k === s ? Buffer.from(h).fill(h[0]! ^ 1, 0, 1) : h));
          expect(rootFromProof(batch[i]!, i, n, wrong)?.equals(root) ?? false).toBe(false);
        }
        expect(rootFromProof(batch[i]!, i, n, proof.slice(1))).toBeUndefined();
        expect(rootFromProof(batch[i]!, i, n, [...proof, proof[0]!])).toBeUndefined();
        expect(rootFromProof(batch[i]!, i, n, [...proof.slice(1), Buffer.alloc(31)].slice(0, proof.length))?.equals(root) ?? false).toBe(false);
        expect(rootFromProof(batch[i]!, n, n, proof)).toBeUndefined(); // an index past the batch
        // A leaf count lie reaches no root, or one that is not this one: the signature covers the count
        // beside the root (batchStatement), so a lie that keeps the same path still fails the signature.
        for (let lie = 1; lie <= 12; lie++) {
          if (lie === n) continue;
          const reached = rootFromProof(batch[i]!, i, lie, proof);
          if (reached && reached.equals(root)) expect(proofLength(i, lie)).toBe(proof.length); // same shape: only the signed count tells them apart
        }
      }
    }
  });

  it("a batch-mate's path that meets a verified one is hashed only below the meeting point, and reaches the same root; a wrong node or sibling there does not", () => {
    for (const n of [2, 3, 5, 8, 13, 33]) {
      const batch = leaves(n);
      const { root, proofs } = merkleTree(batch);
      const paths = batch.map((leaf, i) => pathFromProof(leaf, i, n, proofs[i]!)!);
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          const path = pathFromProof(batch[b]!, b, n, proofs[b]!, paths[a])!;
          expect(path.nodes[path.nodes.length - 1]!.equals(root)).toBe(true);
          expect(path.nodes.map((h) => h.toString('hex'))).toEqual(paths[b]!.nodes.map((h) => h.toString('hex')));
          expect(path.siblings.map((h) => h?.toString('hex'))).toEqual(paths[b]!.siblings.map((h) => h?.toString('hex')));
          // Above the level where the two paths are one pair, the nodes are the known path's own (not hashed again).
          const meet = a === b ? 0 : 32 - Math.clz32(a ^ b) - 1;
          for (let k = meet + 1; k < path.nodes.length; k++) expect(path.nodes[k]).toBe(paths[a]!.nodes[k]);
          // A wrong sibling anywhere: another root, whichever path is known.
          for (let s = 0; s < proofs[b]!.length; s++) {
            const wrong = proofs[b]!.map((h, k) => (k === s ? Buffer.from(h).fill(h[0]! ^ 1, 0, 1) : h));
            expect(pathFromProof(batch[b]!, b, n, wrong, paths[a])!.nodes.at(-1)!.equals(root)).toBe(false);
          }
          // Another leaf at b's place: another root.
          expect(pathFromProof(batch[(b + 1) % n]!, b, n, proofs[b]!, paths[a])!.nodes.at(-1)!.equals(root)).toBe(false);
        }
      }
    }
  });

  it('a path keeps copies with memory of their own, never a view of the frame or a slab of the buffer pool', () => {
    const n = 13;
    const batch = leaves(n);
    const { proofs } = merkleTree(batch);
    // The siblings as a receiver sees them: views of one frame.
    const frame = Buffer.concat(proofs[5]!);
    const views = proofs[5]!.map((_, k) => frame.subarray(32 * k, 32 * (k + 1)));
    const path = pathFromProof(batch[5]!, 5, n, views)!;
    for (const sibling of path.siblings) if (sibling) expect(sibling.buffer.byteLength).toBe(32);
    const mate = pathFromProof(batch[4]!, 4, n, proofs[4]!.map((h) => Buffer.from(h)), path)!;
    for (const sibling of mate.siblings) if (sibling) expect(sibling.buffer.byteLength).toBe(32);
  });

  it('the known path of another tree (same count) changes nothing: the proof is hashed all the way', () => {
    const n = 9;
    const mine = leaves(n);
    const theirs = leaves(n, 'x');
    const { root, proofs } = merkleTree(mine);
    const other = merkleTree(theirs);
    for (let b = 0; b < n; b++) {
      const known = pathFromProof(theirs[(b + 1) % n]!, (b + 1) % n, n, other.proofs[(b + 1) % n]!)!;
      expect(pathFromProof(mine[b]!, b, n, proofs[b]!, known)!.nodes.at(-1)!.equals(root)).toBe(true);
    }
  });

  it('a leaf never passes for an inner node: the two kinds of hash differ by their prefix', () => {
    const batch = leaves(2);
    const { root } = merkleTree(batch);
    // The root of two is an inner node; taken as a leaf of a batch of one it is not its own leaf hash.
    expect(leafHash(root).equals(root)).toBe(false);
    expect(() => merkleTree([])).toThrow(RangeError);
    expect(rootFromProof(batch[0]!, 0, 0, [])).toBeUndefined();
    expect(rootFromProof(batch[0]!, 0, 0x10000, [])).toBeUndefined();
  });

  it('signed: a leaf count lie that keeps the path fails the signature, which covers the count; an honest proof passes, its batch-mates from the cache', () => {
    const identity = loadIdentity('33'.repeat(32));
    const batch = Array.from({ length: 5 }, (_, i) =>
      draftNetworkMessage(identity, { timestampUs: 1_764_000_000_000_000 + i, encoding: Encoding.Utf8, topic: 't', payload: Buffer.from(`m${i}`), strategy: 'raintree' }),
    );
    signBatch(identity, batch);
    // Leaf 0 of 5 and of 6 take the same path (three siblings, each on the right): only the signed count tells them apart.
    expect(proofLength(0, 6)).toBe(proofLength(0, 5));
    const lie = Buffer.from(batch[0]!.proof);
    lie.writeUInt16BE(6, 0);
    expect(verifyNetworkMessage({ ...batch[0]!, proof: lie }, new OriginKeys())).toBe('invalid');
    const keys = new OriginKeys();
    expect(batch.map((m) => verifyNetworkMessage(m, keys))).toEqual(['signature', 'batch', 'batch', 'batch', 'batch']);
    // Out of order, and again: each a batch-mate of the verified batch.
    expect([3, 0, 4, 1, 1, 2].map((i) => verifyNetworkMessage(batch[i]!, keys))).toEqual(['batch', 'batch', 'batch', 'batch', 'batch', 'batch']);
    // The same signature with another origin key or another count is not that batch.
    expect(verifyNetworkMessage({ ...batch[1]!, originKey: loadIdentity('44'.repeat(32)).publicKeyRaw }, keys)).toBe('invalid');
    const recount = Buffer.from(batch[4]!.proof);
    recount.writeUInt16BE(6, 0);
    expect(verifyNetworkMessage({ ...batch[4]!, proof: recount }, keys)).toBe('invalid');
    expect(verifyNetworkMessage(batch[2]!, keys)).toBe('batch');
    // With no cache, every message costs its own check.
    // A batch of one is not remembered: it has no batch-mate to stand for.
    const lone = draftNetworkMessage(identity, { timestampUs: 1_764_000_000_000_100, encoding: Encoding.Utf8, topic: 't', payload: Buffer.from('alone'), strategy: 'raintree' });
    signBatch(identity, [lone]);
    expect([verifyNetworkMessage(lone, keys), verifyNetworkMessage(lone, keys)]).toEqual(['signature', 'signature']);
    const none = new OriginKeys(undefined, 0);
    expect(batch.map((m) => verifyNetworkMessage(m, none))).toEqual(['signature', 'signature', 'signature', 'signature', 'signature']);
    // A message of the batch with a wrong sibling: refused though its batch is cached as verified.
    const wrong = Buffer.from(batch[3]!.proof);
    wrong[4] ^= 1;
    expect(verifyNetworkMessage({ ...batch[3]!, proof: wrong }, keys)).toBe('invalid');
    // Tampered content: another hash, another root.
    expect(verifyNetworkMessage({ ...batch[2]!, hash: leafHash(batch[2]!.hash) }, keys)).toBe('invalid');
  });
});

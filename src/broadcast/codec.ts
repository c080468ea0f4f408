import { isUtf8 } from 'node:buffer';
import { encodeTopic } from '../wire/codec.js';
import { Encoding } from '../wire/constants.js';
import { decodeMetadata, TOPIC_HAS_METADATA, withMetadata, type Metadata } from '../wire/metadata.js';
import { P2PProtocolError } from '../common/errors.js';
import type { Arc } from '../ring/raintree.js';
import { broadcastHash, broadcastId, NO_SIGNATURE, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, signBatchRoot, type OriginKeys, type VerifyOutcome } from './signature.js';
import { HASH_BYTES, leafHash, merkleTree, proofLength } from './merkle.js';
import type { Identity } from '../common/identity.js';
import { RING_ROOT } from '../ring/raintree.js';

/**
 * The wire layout of a network broadcast (control type 6, protocol version 6):
 *
 *   relay part, set by each sender:  strategy u8 | hops u8 | arc.from 20 | arc.to 20 | digest count u32 | digest xor u32
 *   signature:                       64 bytes, Ed25519 by the origin over its batch's leaf count and Merkle root (src/broadcast/signature.ts)
 *   proof:                           leaf count u16 | leaf index u16 | the siblings on the path to the root, 32 bytes each
 *                                    (as many as the index and count call for: none for a batch of one; src/broadcast/merkle.ts)
 *   signed part, set by the origin:  origin public key 32 | timestamp u64 BE (µs) | encoding u8 (bit 7: gossip, bit 6: subscribers) | topic length u16
 *                                    | topic | [metadata length u16 | metadata JSON, when bit 15 of the topic length is set] | payload
 *
 * The strategy is the origin's choice and signed with the rest (bits 7 and 6 of the
 * encoding byte): a relay that could turn a RainTree broadcast into gossip
 * would make every node flood it, and one that could turn an event for subscribers into a
 * broadcast would make every node carry it. The relay part repeats it and must agree.
 *
 * The origin id and the broadcast id are not on the wire: the receiver derives
 * them from the key and from the signed part, so neither can be forged apart
 * from what they name.
 */

/**
 * How a network broadcast travels: RainTree over every node, gossip (flooding), or RainTree over
 * the nodes whose directory record has a matching event pattern (`subscribers`: events to
 * subscribers only, docs/events.md).
 */
export type BroadcastStrategy = 'raintree' | 'gossip' | 'subscribers';

/** An order-independent summary of a set of ids: how many, and the XOR of their first 4 bytes. */
export interface ArcDigest {
  count: number;
  xor: number;
}

/** What the origin signed: the same bytes at every hop. */
export interface SignedBroadcast {
  /** First 16 bytes of SHA-256 of `signed`, hex: the dedupe key. */
  id: string;
  /** SHA-256 of `signed`: what the signature covers. */
  hash: Buffer;
  /** The origin's peer id, derived from `originKey`. */
  origin: string;
  originKey: Buffer;
  /** Origin clock, µs since the epoch; strictly increasing per origin. */
  timestampUs: number;
  encoding: Encoding;
  topic: string;
  /** The origin's metadata (Nest's packet metadata), signed with the rest. */
  metadata?: Metadata;
  payload: Buffer;
  /** The origin's signature over its batch (the same for every message of the batch). */
  signature: Buffer;
  /** The path from this message to its batch's root, as on the wire: leaf count u16 | leaf index u16 | siblings. */
  proof: Buffer;
  /** The signed part as sent (forwarded as is). */
  signed: Buffer;
}

export interface NetworkMessage extends SignedBroadcast {
  strategy: BroadcastStrategy;
  hops: number;
  /** RainTree: the arc the receiver covers (ignored for gossip). */
  arc: Arc;
  /** The sender's view as a digest: informational (no receiver acts on it). */
  digest: ArcDigest;
}

/** Digests of the member lists already seen: a topic's subscribers are one array until they change (src/node/subscribers.ts). */
const digests = new WeakMap<readonly string[], ArcDigest>();

/**
 * The sender's view as a digest: the count and the XOR of the first 32 bits of each id. Computed on
 * every forward, over every member, so remembered per array: a topic of 50 000 subscribers (half of
 * `directoryMaxRecords`, which one link's throwaway keys may fill) cost 40 ms a forward with
 * `parseInt(id.slice(0, 8))`, on every relay of every event.
 */
export function digestOf(ids: readonly string[]): ArcDigest {
  const known = digests.get(ids);
  if (known) return known;
  let xor = 0;
  for (const id of ids) xor = (xor ^ hex32(id)) >>> 0;
  const digest = { count: ids.length, xor };
  digests.set(ids, digest);
  return digest;
}

/** The first 8 hex digits of an id as a 32-bit number (lower or upper case, as parseInt took them). */
function hex32(id: string): number {
  let n = 0;
  for (let i = 0; i < 8; i++) {
    const c = id.charCodeAt(i) | 0x20;
    n = (n << 4) | (c <= 0x39 ? c - 0x30 : c - 0x57);
  }
  return n >>> 0;
}

const RELAY_BYTES = 1 + 1 + 20 + 20 + 4 + 4;
const PROOF_FIXED_BYTES = 2 + 2;
const SIGNED_FIXED_BYTES = PUBLIC_KEY_BYTES + 8 + 1 + 2;
/** The bytes of a message of a batch of one beyond its topic, metadata and payload; each sibling of a larger batch adds 32. */
export const NETWORK_MESSAGE_OVERHEAD = RELAY_BYTES + SIGNATURE_BYTES + PROOF_FIXED_BYTES + SIGNED_FIXED_BYTES;
/** Bytes of a frame's buffer beyond its body (the control type byte, or a little more) with which its body is kept as a view. */
const OWN_FRAME_SLACK = 64;
/** The proof of a batch of one: one leaf, index 0, no sibling. */
const SINGLE_PROOF = Buffer.from([0, 1, 0, 0]);
export const MAX_HOPS = 64;
const STRATEGIES: BroadcastStrategy[] = ['raintree', 'gossip', 'subscribers'];
/** Bit 7 of the signed encoding byte: the origin chose gossip. */
const SIGNED_GOSSIP = 0x80;
/** Bit 6 of the signed encoding byte: the origin chose its topic's subscribers only. */
const SIGNED_SUBSCRIBERS = 0x40;
const SIGNED_STRATEGY = SIGNED_GOSSIP | SIGNED_SUBSCRIBERS;

/** Strategies that route by arcs of the id ring (RainTree), over every node or over a topic's subscribers. */
export function isTree(strategy: BroadcastStrategy): boolean {
  return strategy !== 'gossip';
}

function signedStrategyBits(strategy: BroadcastStrategy): number {
  return strategy === 'gossip' ? SIGNED_GOSSIP : strategy === 'subscribers' ? SIGNED_SUBSCRIBERS : 0;
}

/** The signed part of a new broadcast, and its hash. */
export function encodeSignedPart(
  originKey: Buffer,
  timestampUs: number,
  encoding: Encoding,
  topic: string,
  payload: Buffer,
  metadata?: Metadata,
  strategy: BroadcastStrategy = 'raintree',
): { signed: Buffer; hash: Buffer } {
  // The topic's prefix, with the metadata section when there is one: both are covered by the signature.
  const topicPrefix = withMetadata(encodeTopic(topic), metadata);
  const signed = Buffer.allocUnsafe(SIGNED_FIXED_BYTES - 2 + topicPrefix.length + payload.length);
  let o = originKey.copy(signed, 0);
  o = signed.writeUInt32BE(Math.floor(timestampUs / 2 ** 32), o);
  o = signed.writeUInt32BE(timestampUs % 2 ** 32, o);
  signed[o++] = encoding | signedStrategyBits(strategy);
  o += topicPrefix.copy(signed, o);
  payload.copy(signed, o);
  return { signed, hash: broadcastHash(signed) };
}

/** What the origin says of a new broadcast. */
export interface NewBroadcast {
  timestampUs: number;
  encoding: Encoding;
  topic: string;
  payload: Buffer;
  strategy: BroadcastStrategy;
  metadata?: Metadata;
}

/** A new broadcast by `identity`, signed alone (a batch of one; or, for the benchmark's comparison, not signed), as its origin sends it. */
export function createNetworkMessage(identity: Identity, fields: NewBroadcast & { unsigned?: boolean }): NetworkMessage {
  const message = draftNetworkMessage(identity, fields);
  if (!fields.unsigned) signBatch(identity, [message]);
  return message;
}

/**
 * Signs `messages` (drafts by `identity`) as one batch: one Ed25519 signature over the Merkle root of
 * their hashes, and each message's own proof. Sets `signature` and `proof` of each.
 */
export function signBatch(identity: Identity, messages: readonly NetworkMessage[]): void {
  const { root, proofs } = merkleTree(messages.map((m) => leafHash(m.hash)));
  const signature = signBatchRoot(identity, messages.length, root);
  messages.forEach((m, index) => {
    m.signature = signature;
    m.proof = index === 0 && messages.length === 1 ? SINGLE_PROOF : encodeProof(messages.length, index, proofs[index]!);
  });
}

function encodeProof(count: number, index: number, siblings: readonly Buffer[]): Buffer {
  const proof = Buffer.allocUnsafe(PROOF_FIXED_BYTES + HASH_BYTES * siblings.length);
  proof.writeUInt16BE(count, 0);
  proof.writeUInt16BE(index, 2);
  siblings.forEach((sibling, i) => sibling.copy(proof, PROOF_FIXED_BYTES + HASH_BYTES * i));
  return proof;
}

/** A message's signature and proof as one latin1 string: what the seen-cache keeps of the copy it verified (SeenEntry.signature). */
export function authOf(message: SignedBroadcast): string {
  return message.signature.toString('latin1') + message.proof.toString('latin1');
}

/** The body bytes of `message` as sent in a batch of up to `batchMax`: its proof at the longest such a batch gives. */
export function batchedBodyBytes(message: SignedBroadcast, batchMax: number): number {
  return RELAY_BYTES + SIGNATURE_BYTES + proofBytes(0, Math.max(1, batchMax)) + message.signed.length;
}

/** The bytes of a proof of leaf `index` of `count`. */
export function proofBytes(index: number, count: number): number {
  return PROOF_FIXED_BYTES + HASH_BYTES * proofLength(index, count);
}

/**
 * Whether `message` is its origin's: its proof leads from its hash to a root the origin signed.
 * `batch`: a batch-mate's check stood for Ed25519 (OriginKeys' cache of verified batches).
 */
export function verifyNetworkMessage(message: SignedBroadcast, keys: OriginKeys): VerifyOutcome {
  const { proof } = message;
  const count = proof.readUInt16BE(0);
  const siblings: Buffer[] = [];
  for (let o = PROOF_FIXED_BYTES; o < proof.length; o += HASH_BYTES) siblings.push(proof.subarray(o, o + HASH_BYTES));
  return keys.verifyPath(message.originKey, count, proof.readUInt16BE(2), leafHash(message.hash), siblings, message.signature);
}

/** A new broadcast by `identity`, not signed yet: its signature and proof are zero until signBatch. */
export function draftNetworkMessage(identity: Identity, fields: NewBroadcast): NetworkMessage {
  const { signed, hash } = encodeSignedPart(
    identity.publicKeyRaw,
    fields.timestampUs,
    fields.encoding,
    fields.topic,
    fields.payload,
    fields.metadata,
    fields.strategy,
  );
  return {
    id: broadcastId(hash),
    hash,
    origin: identity.peerId,
    originKey: identity.publicKeyRaw,
    timestampUs: fields.timestampUs,
    encoding: fields.encoding,
    topic: fields.topic,
    metadata: fields.metadata,
    payload: fields.payload,
    signature: NO_SIGNATURE,
    proof: SINGLE_PROOF,
    signed,
    strategy: fields.strategy,
    hops: 0,
    arc: RING_ROOT,
    digest: { count: 0, xor: 0 },
  };
}

/** The control body (after the type byte) of a network broadcast. */
export function encodeNetworkMessage(m: NetworkMessage): Buffer {
  const body = Buffer.allocUnsafe(RELAY_BYTES + SIGNATURE_BYTES + m.proof.length + m.signed.length);
  let o = 0;
  body[o++] = STRATEGIES.indexOf(m.strategy);
  body[o++] = m.hops;
  o += body.write(m.arc.from, o, 20, 'hex');
  o += body.write(m.arc.to, o, 20, 'hex');
  o = body.writeUInt32BE(m.digest.count, o);
  o = body.writeUInt32BE(m.digest.xor, o);
  o += m.signature.copy(body, o);
  o += m.proof.copy(body, o);
  m.signed.copy(body, o);
  return body;
}

/**
 * Parses the body after the control type byte and derives the id and origin.
 * Checks structure only: the signature, the window and the payload are checked
 * by the receiver's pipeline (src/broadcast/pipeline.ts). Throws P2PProtocolError.
 */
export function decodeNetworkMessage(rest: Buffer, keys: OriginKeys): NetworkMessage {
  if (rest.length < NETWORK_MESSAGE_OVERHEAD) throw new P2PProtocolError('malformed network broadcast: too short');
  let o = 0;
  const strategy = STRATEGIES[rest[o++]!];
  const hops = rest[o++]!;
  if (!strategy) throw new P2PProtocolError('malformed network broadcast: unknown strategy');
  if (hops > MAX_HOPS) throw new P2PProtocolError(`malformed network broadcast: ${hops} hops`);
  const hex = (n: number) => rest.toString('hex', o, (o += n));
  const arc = { from: hex(20), to: hex(20) };
  const digest = { count: rest.readUInt32BE(o), xor: rest.readUInt32BE(o + 4) };
  o += 8;
  // The message may be kept and forwarded later: its parts are copied out of a read chunk (a view would keep the whole
  // chunk) or a pool slab, but taken as views of a frame that has memory of its own, one assembled from several reads
  // (every large frame over TLS, whose records carry 16 KiB): copying its signed part again cost a 16 KiB allocation.
  const own = rest.buffer.byteLength - rest.length <= OWN_FRAME_SLACK;
  const signature = kept(rest, own, o, (o += SIGNATURE_BYTES));
  const count = rest.readUInt16BE(o);
  const index = rest.readUInt16BE(o + 2);
  if (count === 0 || index >= count) throw new P2PProtocolError(`malformed network broadcast: leaf ${index} of a batch of ${count}`);
  const proofEnd = o + proofBytes(index, count);
  if (proofEnd + SIGNED_FIXED_BYTES > rest.length) throw new P2PProtocolError('malformed network broadcast: too short for its proof');
  const proof = count === 1 ? SINGLE_PROOF : kept(rest, own, o, proofEnd);
  o = proofEnd;
  const signed = kept(rest, own, o, rest.length);
  const originKey = signed.subarray(0, PUBLIC_KEY_BYTES);
  const timestampUs = signed.readUInt32BE(PUBLIC_KEY_BYTES) * 2 ** 32 + signed.readUInt32BE(PUBLIC_KEY_BYTES + 4);
  const encodingByte = signed[PUBLIC_KEY_BYTES + 8]!;
  const encoding = (encodingByte & ~SIGNED_STRATEGY) as Encoding;
  if (encoding > Encoding.Protobuf) throw new P2PProtocolError('malformed network broadcast: unknown encoding');
  if ((encodingByte & SIGNED_STRATEGY) !== signedStrategyBits(strategy)) {
    throw new P2PProtocolError(`malformed network broadcast: strategy ${strategy} is not the one its origin signed`);
  }
  const topicField = signed.readUInt16BE(PUBLIC_KEY_BYTES + 9);
  const topicLength = topicField & ~TOPIC_HAS_METADATA;
  const topicStart = SIGNED_FIXED_BYTES;
  if (topicLength === 0 || topicStart + topicLength > signed.length) {
    throw new P2PProtocolError('malformed network broadcast: bad topic length');
  }
  const topicBytes = signed.subarray(topicStart, topicStart + topicLength);
  if (!isUtf8(topicBytes)) throw new P2PProtocolError('malformed network broadcast: topic is not UTF-8');
  const hash = broadcastHash(signed);
  return {
    id: broadcastId(hash),
    hash,
    origin: keys.peerId(originKey),
    originKey,
    timestampUs,
    encoding,
    topic: topicBytes.toString('utf8'),
    ...(topicField & TOPIC_HAS_METADATA ? metadataAndPayload(signed, topicStart + topicLength) : { payload: signed.subarray(topicStart + topicLength) }),
    signature,
    proof,
    signed,
    strategy,
    hops,
    arc,
    digest,
  };
}

/** Bytes `start` to `end` of a received body: a view when the body's frame has memory of its own (`own`), else a copy. */
function kept(body: Buffer, own: boolean, start: number, end: number): Buffer {
  const part = body.subarray(start, end);
  return own ? part : Buffer.from(part);
}

function metadataAndPayload(signed: Buffer, at: number): { metadata: Metadata; payload: Buffer } {
  const { metadata, end } = decodeMetadata(signed, at);
  return { metadata, payload: signed.subarray(end) };
}

import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { decodePayload } from './codec.js';
import { Encoding, MAX_TOPIC_BYTES } from './constants.js';
import { P2PProtocolError } from './errors.js';
import { headOf, membersOf, planForward, wholeRing, type Arc } from './raintree.js';

/**
 * Network-wide broadcast over live connections: RainTree routing (raintree.ts)
 * with a fallback to gossip, and a bounded seen-cache so each node delivers a
 * broadcast to its handler at most once.
 */

export type BroadcastStrategy = 'raintree' | 'gossip';

export interface NetworkMessage {
  /** 16 random bytes, hex: the dedupe key. */
  id: string;
  origin: string;
  strategy: BroadcastStrategy;
  hops: number;
  /** RainTree: the arc the receiver covers (ignored for gossip). */
  arc: Arc;
  /** RainTree: the sender's view of the arc's members, as a digest; a receiver whose view differs also gossips. */
  digest: ArcDigest;
  encoding: Encoding;
  topic: string;
  payload: Buffer;
}

// After the control type byte: strategy u8 | hops u8 | id 16 | origin 20 | arc.from 20 | arc.to 20 |
// digest count u32 | digest xor u32 | encoding u8 | topic length u16 | topic | payload
const FIXED_BYTES = 1 + 1 + 16 + 20 + 20 + 20 + 4 + 4 + 1 + 2;

/** An order-independent summary of a set of ids: how many, and the XOR of their first 4 bytes. */
export interface ArcDigest {
  count: number;
  xor: number;
}

export function digestOf(ids: readonly string[]): ArcDigest {
  let xor = 0;
  for (const id of ids) xor = (xor ^ Number.parseInt(id.slice(0, 8), 16)) >>> 0;
  return { count: ids.length, xor };
}
const MAX_HOPS = 64;
const STRATEGIES: BroadcastStrategy[] = ['raintree', 'gossip'];
/** Distinct arcs one node forwards for one broadcast; more would mean a bug or a hostile sender. */
const MAX_ARCS_PER_ID = 8;

/** The control body (after the type byte) of a network broadcast. */
export function encodeNetworkMessage(m: NetworkMessage): Buffer {
  const topic = Buffer.from(m.topic, 'utf8');
  const head = Buffer.allocUnsafe(FIXED_BYTES);
  let o = 0;
  head[o++] = STRATEGIES.indexOf(m.strategy);
  head[o++] = m.hops;
  o += head.write(m.id, o, 16, 'hex');
  o += head.write(m.origin, o, 20, 'hex');
  o += head.write(m.arc.from, o, 20, 'hex');
  o += head.write(m.arc.to, o, 20, 'hex');
  o = head.writeUInt32BE(m.digest.count, o);
  o = head.writeUInt32BE(m.digest.xor, o);
  head[o++] = m.encoding;
  head.writeUInt16BE(topic.length, o);
  return Buffer.concat([head, topic, m.payload]);
}

/** Parses the body after the control type byte. Throws P2PProtocolError on anything malformed. */
export function decodeNetworkMessage(rest: Buffer): NetworkMessage {
  if (rest.length < FIXED_BYTES) throw new P2PProtocolError('malformed network broadcast: too short');
  let o = 0;
  const strategy = STRATEGIES[rest[o++]!];
  const hops = rest[o++]!;
  if (!strategy) throw new P2PProtocolError('malformed network broadcast: unknown strategy');
  if (hops > MAX_HOPS) throw new P2PProtocolError(`malformed network broadcast: ${hops} hops`);
  const hex = (n: number) => rest.toString('hex', o, (o += n));
  const id = hex(16);
  const origin = hex(20);
  const arc = { from: hex(20), to: hex(20) };
  const digest = { count: rest.readUInt32BE(o), xor: rest.readUInt32BE(o + 4) };
  o += 8;
  const encoding = rest[o++]! as Encoding;
  if (encoding > Encoding.Protobuf) throw new P2PProtocolError('malformed network broadcast: unknown encoding');
  const topicLength = rest.readUInt16BE(o);
  o += 2;
  if (topicLength === 0 || topicLength > MAX_TOPIC_BYTES || o + topicLength > rest.length) {
    throw new P2PProtocolError('malformed network broadcast: bad topic length');
  }
  const topicBytes = rest.subarray(o, o + topicLength);
  if (!isUtf8(topicBytes)) throw new P2PProtocolError('malformed network broadcast: topic is not UTF-8');
  // Copied: the body is a view into the read buffer, and the payload may be forwarded later.
  const payload = Buffer.from(rest.subarray(o + topicLength));
  decodePayload(encoding, payload); // validates utf8 / json now, so a bad payload is the sender's protocol error
  return { id, origin, strategy, hops, arc, digest, encoding, topic: topicBytes.toString('utf8'), payload };
}

export function newBroadcastId(): string {
  return randomBytes(16).toString('hex');
}

interface SeenEntry {
  expiresAt: number;
  delivered: boolean;
  /** RainTree arcs already forwarded for this id: a node may be handed a second, different arc to cover. */
  arcs: Set<string>;
  /** Forwarded as gossip already (a RainTree copy may be followed by a gossip fallback copy). */
  gossiped: boolean;
}

/**
 * Broadcast ids seen recently: at most `max` entries, each kept `ttlMs`. Old
 * entries go first when full. An id evicted early can be delivered twice; the
 * size and TTL in config bound that window.
 */
export class SeenCache {
  private readonly entries = new Map<string, SeenEntry>();

  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry for `id`, created when new (then `created` is true). */
  touch(id: string): { entry: SeenEntry; created: boolean } {
    const now = this.now();
    const existing = this.entries.get(id);
    if (existing && existing.expiresAt > now) return { entry: existing, created: false };
    if (existing) this.entries.delete(id);
    this.evict(now);
    const entry: SeenEntry = { expiresAt: now + this.ttlMs, delivered: false, arcs: new Set(), gossiped: false };
    this.entries.set(id, entry);
    return { entry, created: true };
  }

  private evict(now: number): void {
    // Map order is insertion order, so the oldest entries are first.
    for (const [id, e] of this.entries) {
      if (this.entries.size < this.max && e.expiresAt > now) break;
      this.entries.delete(id);
    }
  }
}

/** What the router needs from the node. */
export interface RouterHost {
  readonly selfId: string;
  /** Every peer id this node knows, sorted ascending (its RainTree view), including itself. */
  view(): string[];
  /** Connected peer ids. */
  neighbours(): string[];
  isConnected(id: string): boolean;
  /** Queues the encoded message to a peer; throws a typed error when it cannot. */
  send(id: string, body: Buffer): void;
  /** Hands a broadcast to this node's handler; `from` is the relaying neighbour, or this node for its own. */
  deliver(from: string, message: NetworkMessage, data: unknown): void;
}

export interface NetworkBroadcastStats {
  originated: number;
  delivered: number;
  duplicates: number;
  sent: number;
  gossipFallbacks: number;
  /** RainTree messages whose arc this node saw differently from its sender (views still converging). */
  viewMismatches: number;
}

export interface OriginateResult {
  id: string;
  /** Peers this node handed the message to. */
  sent: string[];
  failed: Array<{ peerId: string; error: Error }>;
}

export class BroadcastRouter {
  readonly stats: NetworkBroadcastStats = { originated: 0, delivered: 0, duplicates: 0, sent: 0, gossipFallbacks: 0, viewMismatches: 0 };

  constructor(
    private readonly host: RouterHost,
    private readonly seen: SeenCache,
  ) {}

  originate(topic: string, encoding: Encoding, payload: Buffer, strategy: BroadcastStrategy): OriginateResult {
    const self = this.host.selfId;
    const arc = wholeRing(self);
    const message: NetworkMessage = { id: newBroadcastId(), origin: self, strategy, hops: 0, arc, digest: { count: 0, xor: 0 }, encoding, topic, payload };
    const { entry } = this.seen.touch(message.id);
    // The network includes the originator: its own handler gets the broadcast too, once, after this returns.
    entry.delivered = true;
    this.stats.originated++;
    setImmediate(() => this.host.deliver(self, message, decodePayload(encoding, payload)));
    const result: OriginateResult = { id: message.id, sent: [], failed: [] };
    this.forward(message, undefined, entry, result);
    return result;
  }

  /** A broadcast arrived from `from`. Delivers it once, and forwards each arc (or the gossip) once. */
  onMessage(from: string, message: NetworkMessage): void {
    const { entry, created } = this.seen.touch(message.id);
    const arcKey = `${message.arc.from}${message.arc.to}`;
    const forwarded = message.strategy === 'raintree' ? entry.arcs.has(arcKey) || entry.arcs.size >= MAX_ARCS_PER_ID : entry.gossiped;
    if (!created && forwarded) {
      this.stats.duplicates++;
      return;
    }
    if (message.strategy === 'raintree') entry.arcs.add(arcKey);
    if (!entry.delivered) {
      entry.delivered = true;
      this.stats.delivered++;
      this.host.deliver(from, message, decodePayload(message.encoding, message.payload));
    } else {
      this.stats.duplicates++;
    }
    this.forward(message, from, entry, { id: message.id, sent: [], failed: [] });
  }

  private forward(message: NetworkMessage, from: string | undefined, entry: SeenEntry, result: OriginateResult): void {
    if (message.strategy === 'gossip') return this.gossip(message, from, entry, result);
    const self = this.host.selfId;
    const view = this.host.view();
    let fallback = false;
    if (from !== undefined) {
      // The sender saw this arc's members differently (one of us has not learned of a peer yet):
      // cover what we know by RainTree, and flood as well so that nobody is missed.
      const mine = digestOf(membersOf(view, message.arc));
      if (mine.count !== message.digest.count || mine.xor !== message.digest.xor) {
        this.stats.viewMismatches++;
        fallback = true;
      }
    }
    for (const branch of planForward(view, self, message.arc)) {
      // The first connected member that accepts the message heads the branch; the rest of the arc is its job.
      let handed = false;
      const candidates = branch.members.filter((id) => this.host.isConnected(id));
      for (const candidate of candidates) {
        // Members before the candidate are not connected here, not known dead: the head keeps them in its arc.
        const next = headOf(branch, (id) => id === candidate, false)!;
        const digest = digestOf(membersOf(view, next.arc));
        if (this.trySend(next.head, { ...message, hops: message.hops + 1, arc: next.arc, digest }, result)) {
          handed = true;
          break;
        }
      }
      if (!handed) fallback = true;
    }
    if (fallback) {
      // Part of the arc has no connected member here: flood it instead, so coverage stays whole.
      this.stats.gossipFallbacks++;
      this.gossip({ ...message, strategy: 'gossip' }, from, entry, result);
    }
  }

  private gossip(message: NetworkMessage, from: string | undefined, entry: SeenEntry, result: OriginateResult): void {
    if (entry.gossiped) return;
    entry.gossiped = true;
    const copy = { ...message, strategy: 'gossip' as const, hops: message.hops + 1 };
    for (const id of this.host.neighbours()) {
      if (id !== from && id !== message.origin) this.trySend(id, copy, result);
    }
  }

  private trySend(id: string, message: NetworkMessage, result: OriginateResult): boolean {
    if (message.hops > MAX_HOPS) return false;
    try {
      this.host.send(id, encodeNetworkMessage(message));
      this.stats.sent++;
      result.sent.push(id);
      return true;
    } catch (err) {
      result.failed.push({ peerId: id, error: err as Error });
      return false;
    }
  }
}

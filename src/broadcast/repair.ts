import { createHash } from 'node:crypto';
import { MAX_HOPS, encodeNetworkMessage, type NetworkMessage } from './codec.js';
import { P2PFrameTooLargeError, P2PProtocolError } from '../common/errors.js';
import { pointArc, type Arc } from '../ring/raintree.js';

/**
 * Repair of network broadcasts by lazy pull, as gossipsub's IHAVE/IWANT: every
 * `intervalMs` a node tells some neighbours the ids of broadcasts it got since
 * the last time (once each, to at most `fanout` neighbours drawn at random among
 * those not known to have them, as gossipsub's D_lazy); a neighbour missing one
 * asks for it, and gets the signed message addressed to it alone. A relay that froze, crashed or dropped a broadcast then costs its arc
 * one interval of delay, not the message: every member of the arc has neighbours
 * that got it (src/discovery/ring-topology.ts gives each node one in every sibling third).
 *
 * Ids wait half an interval before they are announced, so that a neighbour still
 * receiving the RainTree copy is not sent a second one, and are announced at the
 * next half-interval tick after that: a left-out node hears of an id at most one
 * interval after its neighbour got it. An idle network sends nothing. Answers are bounded per neighbour and interval, and the messages kept
 * to answer them by bytes and age.
 */

export interface RepairOptions {
  /** How often ids are announced; 0 turns repair off. */
  intervalMs: number;
  /** Bytes of messages kept to answer requests. */
  cacheBytes: number;
  /**
   * Neighbours each id is announced to, at random among those not known to have
   * it. All of them would be about one IHAVE per connection per broadcast; a left-out
   * node has a neighbour per sibling third, and every one that gets the message
   * announces it, so a few each reach it.
   */
  fanout: number;
}

/** Counters of lazy-pull repair (IHAVE announcements, IWANT requests): `networkBroadcastStats().repair`. */
export interface RepairStats {
  /** Ids announced to neighbours (IHAVE entries). */
  announced: number;
  /** Ids asked for (IWANT entries). */
  requested: number;
  /** Messages sent in answer: data frames. */
  sent: number;
  /** Bytes of IHAVE and IWANT frames sent. */
  controlBytes: number;
}

export interface RepairHost {
  readonly selfId: string;
  neighbours(): string[];
  /** Whether `neighbour` told us (by peer exchange) that it is connected to a member of `arc`. */
  reaches?(neighbour: string, arc: Arc): boolean;
  /** Whether this node has seen the id (delivered, or refused: asking again would not change that). */
  has(id: string): boolean;
  sendIHave(peer: string, body: Buffer): void;
  sendIWant(peer: string, body: Buffer): void;
  /** Sends a network broadcast body to a neighbour; throws when it cannot. */
  sendBroadcast(peer: string, body: Buffer): void;
  /**
   * `count` ids `peer` announced were asked for and not sent within an interval, in an
   * interval in which it sent none of what it was asked for (an honest neighbour at its
   * answer bound still sends some): gossipsub's broken promises.
   */
  brokePromises?(peer: string, count: number): void;
}

/** Ids per IHAVE or IWANT frame. */
export const MAX_REPAIR_IDS = 1024;
const ID_BYTES = 16;
/** Messages one neighbour may ask for per interval: an IWANT costs 16 bytes to send, its answer up to a frame. */
const MAX_SERVED_PER_INTERVAL = 256;
/** Other neighbours remembered per missing id, asked in turn when one does not answer. */
const MAX_ALTERNATES = 4;
/** Ids one neighbour may have us wait for at once: made-up ids from one cannot crowd out the others'. */
const MAX_WANTED_PER_PEER = MAX_REPAIR_IDS;
/**
 * Designated announcers change with the broadcasts' signed time, once per epoch: within one, all
 * ids a node announces in a tick go to the same neighbours (frames shared under load), and a
 * silent designated announcer is replaced at the next.
 */
const DESIGNATION_EPOCH_US = 10_000_000;
/** Intervals a message is kept to answer requests (and an id announced at the latest). */
const KEEP_INTERVALS = 6;

interface Recent {
  message: NetworkMessage;
  at: number;
  bytes: number;
  announced: boolean;
  /** It came after this node asked for it: the node sits where a relay failed, and so may its neighbours. */
  repaired: boolean;
  /** Neighbours known to have it: it came from them, went to them, or they announced it. */
  holders: Set<string>;
}

interface Wanted {
  askedAt: number;
  asked: string;
  alternates: string[];
}

export class BroadcastRepair {
  readonly stats: RepairStats = { announced: 0, requested: 0, sent: 0, controlBytes: 0 };
  /** Test only: announce and answer nothing (a node that drops on purpose). */
  silent = false;
  private readonly recent = new Map<string, Recent>();
  private readonly wanted = new Map<string, Wanted>();
  private readonly served = new Map<string, number>();
  /** Ids awaited from each neighbour now (wanted entries by `asked`). */
  private readonly asking = new Map<string, number>();
  /** Neighbours that sent an id they were asked for since the last retry. */
  private readonly answered = new Set<string>();
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: RepairHost,
    private readonly options: RepairOptions,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  get enabled(): boolean {
    return this.options.intervalMs > 0;
  }

  start(): void {
    if (!this.enabled) return;
    // Announcements every half interval (the grace plus at most half an interval: one interval at
    // most); asking again and the answer bound, every interval.
    let half = false;
    this.timer = setInterval(() => ((half = !half) ? this.announce(this.now()) : this.tick()), this.options.intervalMs / 2);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A broadcast this node delivered (or originated); `holders` already have it. */
  got(message: NetworkMessage, holders: readonly string[]): void {
    const wanted = this.wanted.get(message.id);
    this.unwant(message.id);
    if (!this.enabled || this.recent.has(message.id)) return;
    const bytes = message.signed.length + 128;
    // Those that announced it have it too.
    const known = new Set(wanted ? [...holders, wanted.asked, ...wanted.alternates] : holders);
    const entry: Recent = { message, at: this.now(), bytes, announced: false, repaired: wanted !== undefined, holders: known };
    this.recent.set(message.id, entry);
    this.bytes += bytes;
    // It came after this node asked for it: the tree failed here, and the neighbours that do not have it probably
    // miss it too. They are told at once, all of them: no copy of the tree is on its way that a grace would wait for.
    if (wanted && !this.silent) {
      entry.announced = true;
      const raw = [Buffer.from(message.id, 'hex')];
      for (const peer of this.host.neighbours()) if (!known.has(peer)) this.send(peer, raw, 'have');
    }
    // Oldest first out, past the byte bound: those were announced already, or the network is flooding.
    for (const [id, entry] of this.recent) {
      if (this.bytes <= this.options.cacheBytes) break;
      this.forget(id, entry);
    }
  }

  /** A neighbour has this id (it sent us a copy, or we sent it one): it is not told of it. */
  heldBy(id: string, peer: string): void {
    this.recent.get(id)?.holders.add(peer);
  }

  /** Announces ids older than the grace, asks again for ids a neighbour did not send, forgets old messages. */
  tick(): void {
    const now = this.now();
    this.served.clear();
    const neighbours = this.announce(now);
    this.retry(now, neighbours);
  }

  /** Announces ids older than the grace (half an interval) and forgets old messages; returns the neighbours. */
  private announce(now: number): string[] {
    const grace = this.options.intervalMs / 2;
    const keep = this.options.intervalMs * KEEP_INTERVALS;
    const lists = new Map<string, Buffer[]>();
    const neighbours = this.host.neighbours();
    // One order per tick for all ids: under load the ids share the same few frames, as gossipsub's D_lazy peers per heartbeat.
    const order = shuffle([...neighbours], this.random);
    for (const [id, entry] of this.recent) {
      if (now - entry.at > keep) {
        this.forget(id, entry);
        continue;
      }
      if (entry.announced || now - entry.at < grace) continue;
      entry.announced = true;
      if (this.silent) continue;
      const raw = Buffer.from(id, 'hex');
      const peers = entry.repaired ? pick(order, entry.holders, order.length) : this.chooseFor(entry.message.timestampUs, order, entry.holders);
      for (const peer of peers) {
        let list = lists.get(peer);
        if (!list) lists.set(peer, (list = []));
        if (list.length < MAX_REPAIR_IDS) list.push(raw);
      }
    }
    for (const [peer, ids] of lists) this.send(peer, ids, 'have');
    return neighbours;
  }

  /**
   * A broadcast frame from `from` naming `id` arrived, whatever the pipeline does with it
   * next; `id` undefined: a frame its budget dropped unread. Either may be what it was
   * asked for, so it kept its promises this interval.
   */
  arrived(from: string, id?: string): void {
    if (id === undefined || this.wanted.get(id)?.asked === from) this.answered.add(from);
  }

  /** An IHAVE: ask its sender for the ids we miss (one neighbour at a time per id). */
  onIHave(from: string, body: Buffer): void {
    if (!this.enabled) return;
    const asks: Buffer[] = [];
    const now = this.now();
    for (const raw of parseIds(body, 'IHAVE')) {
      const id = raw.toString('hex');
      const recent = this.recent.get(id);
      if (recent) {
        recent.holders.add(from);
        continue;
      }
      if (this.host.has(id)) continue;
      const wanted = this.wanted.get(id);
      if (wanted) {
        if (wanted.asked !== from && wanted.alternates.length < MAX_ALTERNATES && !wanted.alternates.includes(from)) wanted.alternates.push(from);
        continue;
      }
      // Bounded in all, and per announcer: one neighbour's made-up ids leave room for the others'.
      if (this.wanted.size >= MAX_REPAIR_IDS * 4 || (this.asking.get(from) ?? 0) >= MAX_WANTED_PER_PEER) break;
      this.wanted.set(id, { askedAt: now, asked: from, alternates: [] });
      this.asking.set(from, (this.asking.get(from) ?? 0) + 1);
      asks.push(raw);
    }
    if (asks.length > 0) this.send(from, asks, 'want');
  }

  /** An IWANT: send each message we still hold, addressed to the asker alone, up to the per-interval bound. */
  onIWant(from: string, body: Buffer): void {
    if (!this.enabled || this.silent) return;
    for (const raw of parseIds(body, 'IWANT')) {
      const served = this.served.get(from) ?? 0;
      if (served >= MAX_SERVED_PER_INTERVAL) return;
      const entry = this.recent.get(raw.toString('hex'));
      // Known to hold it (it sent it, announced it, or was just sent it: an id named twice is answered once).
      if (!entry || entry.holders.has(from)) continue;
      this.served.set(from, served + 1);
      const m = entry.message;
      // The origin's signature covers what matters (its strategy too); a RainTree copy's point arc says: deliver, hand nothing on.
      const copy = encodeNetworkMessage({ ...m, hops: Math.min(m.hops + 1, MAX_HOPS), arc: pointArc(from) });
      try {
        this.host.sendBroadcast(from, copy);
        this.stats.sent++;
        entry.holders.add(from);
      } catch (err) {
        // Larger than the asker takes: the others it asked for may not be.
        if (err instanceof P2PFrameTooLargeError) continue;
        return; // the connection is closing or its queue full: the asker will ask another neighbour
      }
    }
  }

  /** Ids still missing an interval after they were asked for: ask the next neighbour that announced them. */
  private retry(now: number, neighbours: readonly string[]): void {
    if (this.wanted.size === 0) return this.answered.clear();
    const live = new Set(neighbours);
    const asks = new Map<string, Buffer[]>();
    const broken = new Map<string, number>();
    for (const [id, wanted] of this.wanted) {
      if (now - wanted.askedAt < this.options.intervalMs) continue;
      if (live.has(wanted.asked) && !this.host.has(id)) broken.set(wanted.asked, (broken.get(wanted.asked) ?? 0) + 1);
      const next = wanted.alternates.find((peer) => live.has(peer));
      if (this.host.has(id) || next === undefined) {
        this.unwant(id);
        continue;
      }
      wanted.alternates = wanted.alternates.filter((peer) => peer !== next);
      this.unask(wanted.asked);
      this.asking.set(next, (this.asking.get(next) ?? 0) + 1);
      wanted.asked = next;
      wanted.askedAt = now;
      let list = asks.get(next);
      if (!list) asks.set(next, (list = []));
      if (list.length < MAX_REPAIR_IDS) list.push(Buffer.from(id, 'hex'));
    }
    for (const [peer, ids] of asks) this.send(peer, ids, 'want');
    for (const [peer, count] of broken) if (!this.answered.has(peer)) this.host.brokePromises?.(peer, count);
    this.answered.clear();
  }

  /**
   * `fanout` neighbours at random among those not known to have it, and each
   * neighbour for which this node is the designated announcer: its first
   * neighbour clockwise from a point drawn from its own id and the broadcast's
   * epoch. A node the tree left out among neighbours that all got it is then told
   * for sure, not with odds that shrink as the degree grows; the random ones cover
   * a designated announcer that is silent or left out too.
   */
  private chooseFor(timestampUs: number, order: readonly string[], holders: ReadonlySet<string>): string[] {
    const out = pick(order, holders, this.options.fanout);
    const reaches = this.host.reaches?.bind(this.host);
    if (!reaches || out.length === order.length) return out;
    const self = this.host.selfId;
    const mask = epochMask(Math.floor(timestampUs / DESIGNATION_EPOCH_US));
    for (const peer of order) {
      if (holders.has(peer) || out.includes(peer)) continue;
      // Nobody of the peer's connections lies between the point and this node: this node comes first.
      if (!reaches(peer, { from: xorHex(peer, mask), to: self })) out.push(peer);
    }
    return out;
  }

  private send(peer: string, ids: Buffer[], kind: 'have' | 'want'): void {
    const body = encodeIds(ids);
    try {
      if (kind === 'have') this.host.sendIHave(peer, body);
      else this.host.sendIWant(peer, body);
    } catch {
      return; // closing: that neighbour is gone, the others still announce
    }
    this.stats.controlBytes += body.length + 10; // frame header and type byte
    if (kind === 'have') this.stats.announced += ids.length;
    else this.stats.requested += ids.length;
  }

  private unwant(id: string): void {
    const wanted = this.wanted.get(id);
    if (!wanted) return;
    this.wanted.delete(id);
    this.unask(wanted.asked);
  }

  private unask(peer: string): void {
    const n = (this.asking.get(peer) ?? 1) - 1;
    if (n > 0) this.asking.set(peer, n);
    else this.asking.delete(peer);
  }

  private forget(id: string, entry: Recent): void {
    this.recent.delete(id);
    this.bytes -= entry.bytes;
  }
}

/** The first `limit` of `order` not in `holders`. */
function pick(order: readonly string[], holders: ReadonlySet<string>, limit: number): string[] {
  const out: string[] = [];
  for (const peer of order) {
    if (out.length >= limit) break;
    if (!holders.has(peer)) out.push(peer);
  }
  return out;
}

let lastMask: { epoch: number; mask: Buffer } | undefined;

/** 20 bytes every node derives alike from an epoch number (one hash per epoch). */
function epochMask(epoch: number): Buffer {
  if (lastMask?.epoch !== epoch) lastMask = { epoch, mask: createHash('sha1').update(`repair-epoch:${epoch}`).digest() };
  return lastMask.mask;
}

/** A 40-digit hex id XOR a 20-byte mask, as 40 hex digits. */
function xorHex(hex: string, mask: Buffer): string {
  const out = Buffer.from(hex, 'hex');
  for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ mask[i]!;
  return out.toString('hex');
}

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** IHAVE / IWANT body after the type byte: count u16 | count × 16-byte broadcast id. */
export function encodeIds(ids: readonly Buffer[]): Buffer {
  const body = Buffer.allocUnsafe(2 + ids.length * ID_BYTES);
  body.writeUInt16BE(ids.length, 0);
  ids.forEach((id, i) => id.copy(body, 2 + i * ID_BYTES));
  return body;
}

/** Throws P2PProtocolError for a body that is not a count and that many ids. */
export function parseIds(body: Buffer, what: string): Buffer[] {
  if (body.length < 2) throw new P2PProtocolError(`${what} of ${body.length} bytes: no count`);
  const count = body.readUInt16BE(0);
  if (count > MAX_REPAIR_IDS || body.length !== 2 + count * ID_BYTES) {
    throw new P2PProtocolError(`${what} says ${count} ids in ${body.length} bytes (at most ${MAX_REPAIR_IDS} of ${ID_BYTES} bytes)`);
  }
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(body.subarray(2 + i * ID_BYTES, 2 + (i + 1) * ID_BYTES));
  return out;
}

import { createHash } from 'node:crypto';
import { MAX_HOPS, encodeNetworkMessage, type NetworkMessage } from './codec.js';
import { P2PFrameTooLargeError, P2PProtocolError } from '../common/errors.js';
import { pointArc, type Arc } from '../ring/raintree.js';
import { isReserved } from '../common/reserved.js';
import { PromiseRecords, type PromiseRecordStats } from './promise-records.js';

export { BROKEN_SHARE_LIMIT, FOLLOW_UP_INTERVALS, type PromiseRecordStats } from './promise-records.js';

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
 *
 * Promises (an announced id is a promise to send it when asked), charged only for what the
 * announcer could have avoided: a node announces to a neighbour, and asks of a neighbour, at most
 * MAX_PROMISED_PER_INTERVAL ids an interval (half of what it serves one, so an honest announcer is
 * never asked for more than it may serve, whichever way the two nodes' intervals fall); the records
 * of kept and broken promises are src/broadcast/promise-records.ts.
 *
 * Withholding: every announcer of a missing id is remembered (up to MAX_ANNOUNCERS). The first is
 * asked at once; when it has not sent the id within an interval, the two with the best records
 * are asked together, and once the id has been announced for ESCALATE_INTERVALS, every announcer
 * not asked yet. So Sybils that announce first and never send delay an id by about an interval,
 * not for good.
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
  neighbours(): readonly string[];
  /** Whether `neighbour` told us (by peer exchange) that it is connected to a member of `arc` (one `only` accepts, when given). */
  reaches?(neighbour: string, arc: Arc, only?: (id: string) => boolean): boolean;
  /** Whether this node has seen the id (delivered, or refused: asking again would not change that). */
  has(id: string): boolean;
  sendIHave(peer: string, body: Buffer): void;
  sendIWant(peer: string, body: Buffer): void;
  /** Sends a network broadcast body to a neighbour; throws when it cannot. */
  sendBroadcast(peer: string, body: Buffer): void;
  /**
   * Whether `peer` is to be told of `message`: for an event for subscribers, only a neighbour with a
   * matching event pattern (the others would ask for what they do not deliver). A host without it tells any.
   */
  wants?(peer: string, message: NetworkMessage): boolean;
  /**
   * `count` ids `peer` announced were asked for, within what it may serve, and not sent within
   * the follow-up time, while more than BROKEN_SHARE_LIMIT of its recent promises are broken
   * (`record`: its kept and broken promises, decayed): gossipsub's broken promises.
   */
  brokePromises?(peer: string, count: number, record: PromiseRecordStats): void;
}

/** Ids per IHAVE or IWANT frame. */
export const MAX_REPAIR_IDS = 1024;
const ID_BYTES = 16;
/** Messages one neighbour may ask for per interval: an IWANT costs 16 bytes to send, its answer up to a frame. */
const MAX_SERVED_PER_INTERVAL = 256;
/**
 * Ids announced to one neighbour, and asked of one neighbour, per interval: half what a node
 * serves one, so that the announcer's serving interval, which is not aligned with the asker's,
 * overlaps at most two of the asker's and an honest announcer is never asked for more than it
 * serves. gossipsub likewise asks one peer for at most GossipsubMaxIHaveLength ids a heartbeat.
 */
export const MAX_PROMISED_PER_INTERVAL = MAX_SERVED_PER_INTERVAL / 2;
/** Announcers remembered per missing id: well above the Sybils an attacker can place among one node's neighbours. */
export const MAX_ANNOUNCERS = 16;
/** Missing ids awaited at once. */
const MAX_WANTED = 4 * MAX_REPAIR_IDS;
/** Intervals after an id's first announcement when every announcer not asked yet is asked at once. */
const ESCALATE_INTERVALS = 2;
/** Intervals an id is wanted at most: announcers keep messages KEEP_INTERVALS after they got them. */
const WANT_INTERVALS = 4;
/**
 * Designated announcers change with the broadcasts' signed time, once per epoch: within one, all
 * ids a node announces in a tick go to the same neighbours (frames shared under load), and a
 * silent designated announcer is replaced at the next.
 */
const DESIGNATION_EPOCH_US = 10_000_000;
/** Intervals a message is kept to answer requests (and an id announced at the latest). */
const KEEP_INTERVALS = 6;
/** Intervals an announcement left over by the per-neighbour bound may still go out. */
const OWED_INTERVALS = 3;

interface Recent {
  id: string;
  message: NetworkMessage;
  at: number;
  bytes: number;
  announced: boolean;
  /** It came after this node asked for it: the node sits where a relay failed, and so may its neighbours. */
  repaired: boolean;
  /** Neighbours known to have it: it came from them, went to them, or they announced it. */
  holders: Set<string>;
  /** Neighbours it is to be announced to that the per-neighbour bound left out so far. */
  owed?: string[];
  /** Forgotten: no longer in `recent` (the queues drop it when they reach it). */
  gone?: boolean;
  /** The id's 16 bytes, made when it is first placed in an IHAVE. */
  raw?: Buffer;
}

interface Wanted {
  /** When it was first announced. */
  since: number;
  /** Every neighbour that announced it, in order, at most MAX_ANNOUNCERS. */
  announcers: string[];
  /** The announcers asked for it, and when. */
  asked: Map<string, number>;
}

export class BroadcastRepair {
  readonly stats: RepairStats = { announced: 0, requested: 0, sent: 0, controlBytes: 0 };
  /** Repair copies of the library's own broadcasts (`$p2p.` topics), kept out of `stats`. */
  internalSent = 0;
  /** Test only: announce and answer nothing (a node that drops on purpose). */
  silent = false;
  private readonly recent = new Map<string, Recent>();
  /**
   * `recent` in the order it came (`at` never decreases), from `head`: the oldest are forgotten from the front, and
   * ids are announced from `toAnnounce` on, so that a tick reads only what it forgets or announces, not every id kept
   * (under load, thousands, every half interval). A Map iterated from its start also steps over every entry deleted
   * since it was last compacted.
   */
  private queue: Array<Recent | undefined> = [];
  private head = 0;
  private toAnnounce = 0;
  /** Entries with announcements the per-neighbour bound held back, oldest first. */
  private owing: Recent[] = [];
  private readonly wanted = new Map<string, Wanted>();
  /** Per neighbour, this interval: messages sent it in answer, ids announced to it, ids asked of it. */
  private readonly served = new Map<string, number>();
  private readonly announcedTo = new Map<string, number>();
  private readonly askedOf = new Map<string, number>();
  private readonly promises: PromiseRecords;
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** start() was called (and not stop()): the timer runs whenever there is work. */
  private started = false;
  /** When the per-interval bounds last started over. */
  private windowAt = -Infinity;
  /** Designated announcers' points of the last two epochs (pointsFor). */
  private points: Array<Map<string, string> & { epoch: number }> = [];

  constructor(
    private readonly host: RepairHost,
    private readonly options: RepairOptions,
    // Monotonic: the queue below takes `at` as never decreasing, and a wall clock stepped back would hold every id
    // that came after the step until the clock caught up.
    private readonly now: () => number = () => performance.now(),
    private readonly random: () => number = Math.random,
  ) {
    this.promises = new PromiseRecords(options.intervalMs, now, (peer, count, record) => this.host.brokePromises?.(peer, count, record));
  }

  get enabled(): boolean {
    return this.options.intervalMs > 0;
  }

  start(): void {
    if (!this.enabled) return;
    this.started = true;
    this.arm();
  }

  stop(): void {
    this.started = false;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Runs the timer while there is work: an id to announce (or owed), an id wanted, an ask not yet answered or judged.
   * Announcements and asking again every half interval (the grace plus at most half an interval: one interval at
   * most); the per-interval bounds and the promises' follow-up, every interval. Without work the timer stops: a
   * network that broadcasts once an interval or less then wakes each node once per broadcast (the tick that announces
   * it), not every half interval, and an idle one not at all.
   */
  private arm(): void {
    if (!this.started || this.timer) return;
    this.bounds(this.now());
    this.timer = setInterval(() => this.step(), this.options.intervalMs / 2);
    this.timer.unref();
  }

  private step(): void {
    // A full tick once an interval: a quarter interval's slack, as a timer reads Date.now a little early or late.
    const busy = this.now() - this.windowAt >= this.options.intervalMs * 0.75 ? this.fullTick() : this.halfTick();
    if (busy) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** With the timer stopped, the per-interval bounds start over when an interval has passed since they last did. */
  private bounds(now: number): void {
    if (this.started && !this.timer && now - this.windowAt >= this.options.intervalMs) this.newWindow(now);
  }

  private newWindow(now: number): void {
    this.served.clear();
    this.announcedTo.clear();
    this.askedOf.clear();
    this.windowAt = now;
  }

  /** A broadcast this node delivered (or originated); `holders` already have it. */
  got(message: NetworkMessage, holders: readonly string[]): void {
    const wanted = this.wanted.get(message.id);
    this.unwant(message.id);
    if (!this.enabled || this.recent.has(message.id)) return;
    this.bounds(this.now());
    const bytes = message.signed.length + 128;
    // Those that announced it have it too.
    const known = new Set(wanted ? [...holders, ...wanted.announcers] : holders);
    const entry: Recent = { id: message.id, message, at: this.now(), bytes, announced: false, repaired: wanted !== undefined, holders: known };
    this.recent.set(message.id, entry);
    this.queue.push(entry);
    this.bytes += bytes;
    // It came after this node asked for it: the tree failed here, and the neighbours that do not have it probably
    // miss it too. They are told at once, all of them: no copy of the tree is on its way that a grace would wait for.
    if (wanted && !this.silent) {
      entry.announced = true;
      const raw = Buffer.from(message.id, 'hex');
      const owed: string[] = [];
      for (const peer of this.audience(message, this.host.neighbours())) {
        if (known.has(peer)) continue;
        if (!this.mayAnnounce(peer)) {
          owed.push(peer);
          continue;
        }
        this.announcedTo.set(peer, (this.announcedTo.get(peer) ?? 0) + 1);
        this.send(peer, [raw], 'have');
      }
      if (owed.length > 0) {
        entry.owed = owed;
        this.owing.push(entry);
      }
    }
    // Oldest first out, past the byte bound: those were announced already, or the network is flooding. Only then: an
    // iteration starts by stepping over every entry forgotten since the map was last compacted (thousands under load).
    while (this.bytes > this.options.cacheBytes && this.head < this.queue.length) this.dropFront();
    this.compact();
    this.arm();
  }

  /** A neighbour has this id (it sent us a copy, or we sent it one): it is not told of it. */
  heldBy(id: string, peer: string): void {
    this.recent.get(id)?.holders.add(peer);
  }

  /** Every interval: the per-interval bounds start over; announces, asks again, and judges the promises due. */
  tick(): void {
    this.fullTick();
  }

  /** tick(); whether work is left (the timer keeps running). */
  private fullTick(): boolean {
    const now = this.now();
    this.newWindow(now);
    const { live, unannounced } = this.announce(now);
    this.retry(now, live);
    this.judge(now, live);
    return unannounced || this.waiting();
  }

  /** Between ticks: announces and asks again; whether work is left. */
  private halfTick(): boolean {
    const now = this.now();
    const { live, unannounced } = this.announce(now);
    this.retry(now, live);
    return unannounced || this.waiting();
  }

  /** Ids wanted, or asks not yet answered (judged after the follow-up time). */
  private waiting(): boolean {
    return this.wanted.size > 0 || this.promises.owed();
  }

  /**
   * Announces ids older than the grace (half an interval) and forgets old messages; returns the connected neighbours,
   * read once a tick and only when asked: most ticks announce nothing (at 2/s, one in two), and the list is built
   * from every connection.
   */
  private announce(now: number): { live: () => ReadonlySet<string>; unannounced: boolean } {
    const grace = this.options.intervalMs / 2;
    const keep = this.options.intervalMs * KEEP_INTERVALS;
    const owedFor = this.options.intervalMs * OWED_INTERVALS;
    const lists = new Map<string, Buffer[]>();
    let neighbours: readonly string[] | undefined;
    const list = () => (neighbours ??= this.host.neighbours());
    let live: Set<string> | undefined;
    // Neighbours at their bound for this tick: under load most owed ids wait on them, and are passed over at once.
    const full = new Set<string>();
    // Within the per-neighbour bound: a node announces only what it can serve when asked.
    const place = (peer: string, entry: Recent): boolean => {
      if (entry.holders.has(peer)) return true;
      if (full.has(peer)) return false;
      let list = lists.get(peer);
      if (!this.mayAnnounce(peer) || list?.length === MAX_REPAIR_IDS) {
        full.add(peer);
        return false;
      }
      if (!list) lists.set(peer, (list = []));
      list.push((entry.raw ??= Buffer.from(entry.id, 'hex')));
      this.announcedTo.set(peer, (this.announcedTo.get(peer) ?? 0) + 1);
      return true;
    };
    // One order per tick for all ids: under load the ids share the same few frames, as gossipsub's D_lazy peers per heartbeat.
    let order: string[] | undefined;
    let unannounced = false;
    // Past the keeping time: forgotten, oldest first.
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!;
      if (!entry.gone && now - entry.at <= keep) break;
      this.dropFront();
    }
    // What the bound held back goes before ids not announced yet, in the order it was held back.
    if (this.owing.length > 0) {
      const still: Recent[] = [];
      for (const entry of this.owing) {
        if (entry.gone || !entry.owed) continue;
        const owed = now - entry.at > owedFor || this.silent ? [] : entry.owed.filter((peer) => !place(peer, entry));
        entry.owed = owed.length > 0 ? owed : undefined;
        if (entry.owed) still.push(entry);
      }
      this.owing = still;
      unannounced ||= still.length > 0;
    }
    // Ids past the grace, in the order they came: the first one within it ends the walk.
    if (this.toAnnounce < this.head) this.toAnnounce = this.head;
    while (this.toAnnounce < this.queue.length) {
      const entry = this.queue[this.toAnnounce]!;
      if (!entry.gone && !entry.announced) {
        if (now - entry.at < grace) {
          unannounced = true;
          break;
        }
        entry.announced = true;
        if (!this.silent) {
          const audience = this.audience(entry.message, (order ??= shuffle([...list()], this.random)));
          const peers = entry.repaired ? pick(audience, entry.holders, audience.length) : this.chooseFor(entry.message, audience, entry.holders);
          const owed = peers.filter((peer) => !place(peer, entry));
          if (owed.length > 0) {
            entry.owed = owed;
            this.owing.push(entry);
            unannounced = true;
          }
        }
      }
      this.toAnnounce++;
    }
    this.compact();
    for (const [peer, ids] of lists) this.send(peer, ids, 'have');
    return { live: () => (live ??= new Set(list())), unannounced };
  }

  /**
   * A broadcast frame from `from` naming `id` arrived, whatever the pipeline does with it
   * next: a promise of `from` kept. `id` undefined: a frame its budget dropped unread, which
   * may have been the answer to one of the asks it owes.
   */
  arrived(from: string, id?: string): void {
    this.promises.arrived(from, id);
  }

  /** An IHAVE: ask its sender for the ids we miss, unless another announcer is being asked for them. */
  onIHave(from: string, body: Buffer): void {
    if (!this.enabled) return;
    const asks: Buffer[] = [];
    const now = this.now();
    this.bounds(now);
    const escalate = this.options.intervalMs * ESCALATE_INTERVALS;
    const count = idCount(body, 'IHAVE');
    for (let k = 0, at = 2; k < count; k++, at += ID_BYTES) {
      // Each id as hex straight from the frame: in a healthy network nearly every one is known, and needs no view of its own.
      const id = body.toString('hex', at, at + ID_BYTES);
      const recent = this.recent.get(id);
      if (recent) {
        recent.holders.add(from);
        continue;
      }
      if (this.host.has(id)) continue;
      const wanted = this.wanted.get(id);
      if (wanted) {
        if (wanted.announcers.length < MAX_ANNOUNCERS && !wanted.announcers.includes(from)) wanted.announcers.push(from);
        // Never wait on one announcer: when no ask is in flight (they timed out), or the id is overdue, ask this one now.
        if (!wanted.asked.has(from) && this.mayAsk(from) && (now - wanted.since >= escalate || this.inFlight(wanted, now) === 0)) {
          this.ask(id, wanted, from, now);
          asks.push(body.subarray(at, at + ID_BYTES));
        }
        continue;
      }
      // Bounded in all, and per announcer by what it may be asked an interval (as gossipsub ignores IHAVE ids past
      // GossipsubMaxIHaveLength a heartbeat): one neighbour's made-up ids leave room for the others'.
      if (this.wanted.size >= MAX_WANTED || !this.mayAsk(from)) continue;
      const entry: Wanted = { since: now, announcers: [from], asked: new Map() };
      this.wanted.set(id, entry);
      this.ask(id, entry, from, now);
      asks.push(body.subarray(at, at + ID_BYTES));
    }
    if (asks.length > 0) {
      this.send(from, asks, 'want');
      this.arm();
    }
  }

  /** An IWANT: send each message we still hold, addressed to the asker alone, up to the per-interval bound. */
  onIWant(from: string, body: Buffer): void {
    if (!this.enabled || this.silent) return;
    const now = this.now();
    this.bounds(now);
    const keep = this.options.intervalMs * KEEP_INTERVALS;
    for (const raw of parseIds(body, 'IWANT')) {
      const served = this.served.get(from) ?? 0;
      if (served >= MAX_SERVED_PER_INTERVAL) return;
      const entry = this.recent.get(raw.toString('hex'));
      // Known to hold it (it sent it, announced it, or was just sent it: an id named twice is answered once). Past the
      // keeping time it is as forgotten (the timer, which forgets it, may be stopped).
      if (!entry || entry.holders.has(from) || now - entry.at > keep) continue;
      this.served.set(from, served + 1);
      const m = entry.message;
      // The origin's signature covers what matters (its strategy too); a RainTree copy's point arc says: deliver, hand nothing on.
      const copy = encodeNetworkMessage({ ...m, hops: Math.min(m.hops + 1, MAX_HOPS), arc: pointArc(from) });
      try {
        this.host.sendBroadcast(from, copy);
        // The library's own broadcasts (directory records) are not the application's cost: counted apart, as the router does.
        if (isReserved(m.topic)) this.internalSent++;
        else this.stats.sent++;
        entry.holders.add(from);
      } catch (err) {
        // Larger than the asker takes: the others it asked for may not be.
        if (err instanceof P2PFrameTooLargeError) continue;
        return; // the connection is closing or its queue full: the asker will ask another neighbour
      }
    }
  }

  /** A neighbour's record of kept and broken promises (decayed), for diagnostics and tests. */
  promiseRecord(peer: string): PromiseRecordStats | undefined {
    return this.promises.stats(peer);
  }

  /**
   * Ids still missing: once the asks in flight for one are an interval old, the two untried announcers with
   * the best records are asked together; once it has been announced for
   * ESCALATE_INTERVALS, every announcer not asked yet. Given up when nobody is left to ask, or after WANT_INTERVALS.
   */
  private retry(now: number, neighbours: () => ReadonlySet<string>): void {
    if (this.wanted.size === 0) return;
    const interval = this.options.intervalMs;
    const live = neighbours();
    this.promises.countLate(now);
    const asks = new Map<string, Buffer[]>();
    for (const [id, wanted] of this.wanted) {
      if (this.host.has(id) || now - wanted.since >= WANT_INTERVALS * interval) {
        this.unwant(id);
        continue;
      }
      const inFlight = this.inFlight(wanted, now, live);
      const untried = wanted.announcers.filter((peer) => live.has(peer) && !wanted.asked.has(peer));
      if (untried.length === 0) {
        if (inFlight === 0) this.unwant(id);
        continue;
      }
      // An entry is made with an ask to its first announcer: here every ask has had an interval, or the id is overdue.
      let count = now - wanted.since >= ESCALATE_INTERVALS * interval ? untried.length : inFlight > 0 ? 0 : 2;
      if (count === 0) continue;
      // Best record first; among equals, the order they announced it in (the sort is stable).
      if (untried.length > 1) untried.sort((a, b) => this.promises.quality(b) - this.promises.quality(a));
      for (const peer of untried) {
        if (count === 0) break;
        if (!this.mayAsk(peer)) continue;
        this.ask(id, wanted, peer, now);
        count--;
        let list = asks.get(peer);
        if (!list) asks.set(peer, (list = []));
        list.push(Buffer.from(id, 'hex'));
      }
    }
    for (const [peer, ids] of asks) for (let i = 0; i < ids.length; i += MAX_REPAIR_IDS) this.send(peer, ids.slice(i, i + MAX_REPAIR_IDS), 'want');
  }

  /** The promises past their follow-up time: broken unless kept or excused (src/broadcast/promise-records.ts). */
  private judge(now: number, neighbours: () => ReadonlySet<string>): void {
    if (this.promises.size > 0) this.promises.judge(now, neighbours());
  }

  private ask(id: string, wanted: Wanted, peer: string, now: number): void {
    wanted.asked.set(peer, now);
    this.askedOf.set(peer, (this.askedOf.get(peer) ?? 0) + 1);
    this.promises.asked(peer, id, now);
  }

  /** Asks for `wanted` sent within the last interval (to a neighbour still connected, when `live` is given): the answer may still come. */
  private inFlight(wanted: Wanted, now: number, live?: ReadonlySet<string>): number {
    let n = 0;
    for (const [peer, at] of wanted.asked) if (now - at < this.options.intervalMs && (!live || live.has(peer))) n++;
    return n;
  }

  private mayAsk(peer: string): boolean {
    return (this.askedOf.get(peer) ?? 0) < MAX_PROMISED_PER_INTERVAL;
  }

  private mayAnnounce(peer: string): boolean {
    return (this.announcedTo.get(peer) ?? 0) < MAX_PROMISED_PER_INTERVAL;
  }

  /**
   * `fanout` neighbours at random among those not known to have it, and each
   * neighbour for which this node is the designated announcer: its first
   * neighbour clockwise from a point drawn from its own id and the broadcast's
   * epoch. A node the tree left out among neighbours that all got it is then told
   * for sure, not with odds that shrink as the degree grows; the random ones cover
   * a designated announcer that is silent or left out too.
   */
  private chooseFor(message: NetworkMessage, order: readonly string[], holders: ReadonlySet<string>): string[] {
    const out = pick(order, holders, this.options.fanout);
    const reaches = this.host.reaches?.bind(this.host);
    if (!reaches || out.length === order.length) return out;
    // An event for subscribers: only subscribers have it to announce, so a peer's designated announcer is its first
    // subscribing neighbour (a carrier or a bystander there would leave it untold: simulator, 100 000 nodes).
    const wants = this.host.wants;
    const only = wants && message.strategy === 'subscribers' ? (id: string) => wants.call(this.host, id, message) : undefined;
    const self = this.host.selfId;
    const points = this.pointsFor(Math.floor(message.timestampUs / DESIGNATION_EPOCH_US));
    for (const peer of order) {
      if (holders.has(peer) || out.includes(peer)) continue;
      let from = points.get(peer);
      if (from === undefined) points.set(peer, (from = xorHex(peer, epochMask(points.epoch))));
      // Nobody of the peer's connections lies between the point and this node: this node comes first.
      if (!reaches(peer, { from, to: self }, only)) out.push(peer);
    }
    return out;
  }

  /**
   * Each neighbour's point in an epoch (its id XOR the epoch's mask), kept for the epoch: every id of the epoch
   * asks for the same points, a Buffer and a hex string each. Two epochs at most (broadcasts signed either side of a change).
   */
  private pointsFor(epoch: number): Map<string, string> & { epoch: number } {
    let points = this.points.find((p) => p.epoch === epoch);
    if (!points) {
      points = Object.assign(new Map<string, string>(), { epoch });
      this.points = [points, ...this.points.slice(0, 1)];
    }
    return points;
  }

  /** The neighbours that may be told of `message`, in the order given. */
  private audience(message: NetworkMessage, neighbours: readonly string[]): readonly string[] {
    const wants = this.host.wants;
    return wants && message.strategy === 'subscribers' ? neighbours.filter((peer) => wants.call(this.host, peer, message)) : neighbours;
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
    this.wanted.delete(id);
  }

  private forget(entry: Recent): void {
    if (entry.gone) return;
    entry.gone = true;
    this.recent.delete(entry.id);
    this.bytes -= entry.bytes;
  }

  /** Forgets the oldest entry and lets go of it: a forgotten message must not stay on the heap until compact(). */
  private dropFront(): void {
    const entry = this.queue[this.head];
    if (entry) this.forget(entry);
    this.queue[this.head++] = undefined;
  }

  /** Drops the queue's emptied front once it is most of the array. */
  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.queue.length) return;
    this.queue = this.queue.slice(this.head);
    this.toAnnounce = Math.max(0, this.toAnnounce - this.head);
    this.head = 0;
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

/** The ids an IHAVE / IWANT body holds; throws P2PProtocolError for a body that is not a count and that many ids. */
function idCount(body: Buffer, what: string): number {
  if (body.length < 2) throw new P2PProtocolError(`${what} of ${body.length} bytes: no count`);
  const count = body.readUInt16BE(0);
  if (count > MAX_REPAIR_IDS || body.length !== 2 + count * ID_BYTES) {
    throw new P2PProtocolError(`${what} says ${count} ids in ${body.length} bytes (at most ${MAX_REPAIR_IDS} of ${ID_BYTES} bytes)`);
  }
  return count;
}

/** Throws P2PProtocolError for a body that is not a count and that many ids. */
export function parseIds(body: Buffer, what: string): Buffer[] {
  const count = idCount(body, what);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(body.subarray(2 + i * ID_BYTES, 2 + (i + 1) * ID_BYTES));
  return out;
}

import { createHash } from 'node:crypto';
import { MAX_HOPS, encodeNetworkMessage, type NetworkMessage } from './codec.js';
import { P2PFrameTooLargeError, P2PProtocolError } from '../common/errors.js';
import { pointArc, type Arc } from '../ring/raintree.js';
import { REPAIR_RANDOM, REPAIR_WATCHERS, isWatcherOf, type WatchView } from './repair-watchers.js';
import { isReserved } from '../common/reserved.js';

/**
 * Repair of network broadcasts by lazy pull, as gossipsub's IHAVE/IWANT: a node tells its
 * neighbours the ids of broadcasts it got (once each); a neighbour missing one asks for it, and
 * gets the signed message addressed to it alone. A relay that froze, crashed or dropped a
 * broadcast then costs its arc one interval of delay, not the message.
 *
 * Who is told, for a network broadcast: each node has `watchers` (REPAIR_WATCHERS, 2) among its
 * neighbours, one in each third of the ring other than its own (src/broadcast/repair-watchers.ts).
 * A failed relay loses an arc inside one third, so two failed relays cannot cut off both of a
 * node's watchers; a node tells the neighbours it watches and REPAIR_RANDOM (6) others at random not
 * known to have it (so that hostile watchers cannot keep an id from a node), so a healthy broadcast
 * costs at most 8 IHAVE entries per node, where telling every neighbour cost one per connection. A node
 * that had to ask for an id (or got a copy for itself alone that it did not ask for) sits where
 * the tree failed: it tells every neighbour at once.
 *
 * Events for subscribers (strategy 'subscribers') keep the selection they had before watchers:
 * `fanout` neighbours at random and each neighbour this node is the designated announcer of, among
 * subscribers (chooseFor). A neighbour's watchers would have to be subscribers, which its peer
 * exchange does not say; the simulator's figure for them (docs/events.md) rests on this selection.
 *
 * When: ids of network broadcasts wait 0.3 of an interval (the grace; events for subscribers half
 * an interval, as before), so that a neighbour still receiving the RainTree copy is not sent a
 * second one, and go out in runs half an interval apart on a clock grid every node shares, so that
 * ids of a run share one frame per neighbour told: a left-out node hears of an id at most 0.8 of an
 * interval after its watcher got it. One timer, armed only while something is
 * due: an idle node never wakes for repair, and a run due within a tenth of an interval goes when a
 * broadcast wakes the node anyway. Answers are bounded per neighbour and interval, and the messages kept to answer them by
 * bytes and age.
 *
 * Promises (an announced id is a promise to send it when asked), as gossipsub's P₇ with its
 * IWANT follow-up time, but charged only for what the announcer could have avoided:
 * - a node announces to a neighbour, and asks of a neighbour, at most MAX_PROMISED_PER_INTERVAL
 *   ids an interval: half of what it serves one, so an honest announcer is never asked for more
 *   than it may serve, whichever way the two nodes' intervals fall;
 * - an ask is a broken promise only once FOLLOW_UP_INTERVALS have passed without the announcer
 *   sending that id, and each frame of the announcer that this node's own budget dropped unread
 *   excuses one (it may have been the answer);
 * - each neighbour has a record of kept and broken promises (decaying, half-life
 *   RECORD_HALF_LIFE_INTERVALS); broken ones are reported only while more than BROKEN_SHARE_LIMIT
 *   of its record is broken, so a rare miss of an honest node under load costs nothing, and
 *   keeping one promise an interval no longer buys immunity.
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
   * Events for subscribers: neighbours each id is announced to at random among the subscribers not
   * known to have it, beside the designated announcers (chooseFor). Network broadcasts go to watchers and REPAIR_RANDOM at random.
   */
  fanout: number;
  /**
   * Network broadcasts: watchers per node, the neighbours that tell it of each id (repair-watchers.ts),
   * alternately in the two thirds of the ring other than its own. REPAIR_WATCHERS when omitted.
   */
  watchers?: number;
  /** Network broadcasts: neighbours told of each id at random beside the watchers (repair-watchers.ts). REPAIR_RANDOM when omitted. */
  randomAnnouncers?: number;
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

/** A neighbour's recent promises (decayed counts). */
export interface PromiseRecordStats {
  kept: number;
  broken: number;
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
/** Records of promises kept for neighbours that are gone (so that reconnecting does not wash a record), at most. */
const MAX_RECORDS = 1024;
/** Intervals after an id's first announcement when every announcer not asked yet is asked at once. */
const ESCALATE_INTERVALS = 2;
/** Intervals an id is wanted at most: announcers keep messages KEEP_INTERVALS after they got them. */
const WANT_INTERVALS = 4;
/** Intervals an announcer has to send what it was asked for, as gossipsub's IWANT follow-up time (3 heartbeats). */
export const FOLLOW_UP_INTERVALS = 3;
/** Half-life of a neighbour's record of kept and broken promises, in intervals. */
const RECORD_HALF_LIFE_INTERVALS = 20;
/** Broken promises cost a neighbour score only while more than this share of its record is broken. */
export const BROKEN_SHARE_LIMIT = 0.1;
/**
 * Designated announcers change with the broadcasts' signed time, once per epoch: within one, all
 * ids a node announces in a tick go to the same neighbours (frames shared under load), and a
 * silent designated announcer is replaced at the next.
 */
const DESIGNATION_EPOCH_US = 10_000_000;
/**
 * Grace before an id is announced, in intervals: the RainTree copy reaches a neighbour well within it. With runs
 * half an interval apart an id goes out 0.3 to 0.8 of an interval after it came: a left-out node waits on its two
 * watchers alone, not on the first of many announcers, so the latest announcement is its latency (0.5 + 0.5 gave
 * p99 just past one interval on a loaded machine).
 */
const GRACE_SHARE = 0.3;
/** Least time between two runs that announce, in intervals: ids of a run share one frame per neighbour told. */
const RUN_SHARE = 0.5;
/** How early a run may go, in intervals, when a broadcast wakes the node anyway (its timer then never fires). */
const RIDE_SHARE = 0.1;
/**
 * Grace for events for subscribers, in intervals: as before watchers (they keep `fanout` random announcers and the
 * designated ones, whose first announcement reaches a left-out subscriber; the simulator's figures rest on it).
 */
const SUBSCRIBER_GRACE_SHARE = 0.5;
/** Intervals a message is kept to answer requests (and an id announced at the latest). */
const KEEP_INTERVALS = 6;
/** Intervals an announcement left over by the per-neighbour bound may still go out. */
const OWED_INTERVALS = 3;

interface Recent {
  message: NetworkMessage;
  at: number;
  bytes: number;
  announced: boolean;
  /** It came after this node asked for it: the node sits where a relay failed, and so may its neighbours. */
  repaired: boolean;
  /** Neighbours known to have it by their own word: it came from them, they announced it, or asked and were answered. */
  holders: Set<string>;
  /**
   * Neighbours this node sent a RainTree copy: they most likely have it, but a copy can still be dropped at the
   * receiver (a saturated validator, its neighbour budget), which the sender never learns. Spared by every
   * announcement but a watcher's: the node's watchers are its one sure repair (validator-busy.spec).
   */
  sentTo?: Set<string>;
  /** Neighbours it is to be announced to that the per-neighbour bound left out so far. */
  owed?: string[];
  /** Announced to every neighbour not known to have it (the tree failed nearby). */
  toldAll?: boolean;
}

interface Wanted {
  /** When it was first announced. */
  since: number;
  /** Every neighbour that announced it, in order, at most MAX_ANNOUNCERS. */
  announcers: string[];
  /** The announcers asked for it, and when. */
  asked: Map<string, number>;
}

/** One neighbour's promises: the asks it has yet to answer, and its record. */
interface PromiseRecord extends PromiseRecordStats {
  /** Ids asked of it and not sent yet, oldest first, and when they were asked. */
  pending: Map<string, number>;
  /** When `kept` and `broken` were last decayed. */
  at: number;
  /** Its frames this node's budget dropped unread while it owed answers: each may have been one. */
  excuses: number;
  /** Pending asks past the retry time (an interval), as of the last step: broken unless they come late. */
  late: number;
}

export class BroadcastRepair {
  readonly stats: RepairStats = { announced: 0, requested: 0, sent: 0, controlBytes: 0 };
  /** Repair copies of the library's own broadcasts (`$p2p.` topics), kept out of `stats`. */
  internalSent = 0;
  /** Test only: announce and answer nothing (a node that drops on purpose). */
  silent = false;
  private readonly recent = new Map<string, Recent>();
  private readonly wanted = new Map<string, Wanted>();
  /** Per neighbour, this interval: messages sent it in answer, ids announced to it, ids asked of it. */
  private readonly served = new Map<string, number>();
  private readonly announcedTo = new Map<string, number>();
  private readonly askedOf = new Map<string, number>();
  private readonly records = new Map<string, PromiseRecord>();
  private bytes = 0;
  /** Started (the node runs): runs are scheduled. Tests and the simulator call tick() themselves. */
  private started = false;
  /** The one timer, armed only while there is work due (none in an idle network), and when it fires. */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** When announcements last went out, and when the per-interval bounds last started over. */
  private lastRun = -Infinity;
  private windowAt = -Infinity;
  /** The neighbours this node watches, by epoch, for the neighbour list `key` (announce()). */
  private watchCache: Array<{ epoch: number; key: string; list: string[] }> = [];

  /** Watchers per node (RepairOptions.watchers). */
  private readonly watchers: number;
  /** Random announcers beside the watchers (RepairOptions.randomAnnouncers). */
  private readonly randomAnnouncers: number;

  constructor(
    private readonly host: RepairHost,
    private readonly options: RepairOptions,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.watchers = options.watchers ?? REPAIR_WATCHERS;
    this.randomAnnouncers = options.randomAnnouncers ?? REPAIR_RANDOM;
  }

  get enabled(): boolean {
    return this.options.intervalMs > 0;
  }

  start(): void {
    if (!this.enabled) return;
    this.started = true;
    this.schedule(this.now());
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** A broadcast this node delivered (or originated); `holders` sent it to this node, `sentTo` were sent a copy by it. */
  got(message: NetworkMessage, holders: readonly string[], sentTo: readonly string[] = []): void {
    const wanted = this.wanted.get(message.id);
    this.unwant(message.id);
    if (!this.enabled || this.recent.has(message.id)) return;
    const bytes = message.signed.length + 128;
    // Those that announced it have it too.
    const known = new Set(wanted ? [...holders, ...wanted.announcers] : holders);
    // A network broadcast's copy for this node alone that it did not ask for: a relay handed it nothing to pass on, so
    // the tree failed here too (honest relays hand thirds; a point arc is a repair answer), and its watchers may not
    // have it. Not an event for subscribers: its origin hands each fanout subscriber a copy of its own (router.ts).
    const alone =
      !wanted && message.strategy !== 'subscribers' && message.arc.from === this.host.selfId && message.arc.to === pointArc(this.host.selfId).to;
    const entry: Recent = { message, at: this.now(), bytes, announced: false, repaired: wanted !== undefined || alone, holders: known };
    if (sentTo.length > 0) entry.sentTo = new Set(sentTo);
    this.recent.set(message.id, entry);
    this.bytes += bytes;
    // It came after this node asked for it: the tree failed here, and the neighbours that do not have it probably
    // miss it too. They are told at once, all of them: no copy of the tree is on its way that a grace would wait for.
    if (entry.repaired) this.tellAll(entry);
    // Oldest first out, past the byte bound: those were announced already, or the network is flooding.
    for (const [id, entry] of this.recent) {
      if (this.bytes <= this.options.cacheBytes) break;
      this.forget(id, entry);
    }
    if (!this.started) return;
    // This node is awake for a broadcast anyway: a run due soon goes now, and its timer never wakes the process.
    const now = entry.at;
    if (now >= this.timerAt - this.options.intervalMs * RIDE_SHARE) this.run(now);
    else this.schedule(now);
  }

  /**
   * Tells every neighbour not known to have it, at once, without the grace: the tree failed near this node (it had to
   * ask for the id), so they may miss it too, and their watchers with them. (Doing the same when a neighbour asks
   * this node cost 15 % more IHAVE frames with 10 % droppers in the simulator, and reached no node more.)
   */
  private tellAll(entry: Recent): void {
    if (entry.toldAll || this.silent) return;
    this.roll(this.now(), false);
    entry.announced = true;
    entry.toldAll = true;
    const raw = Buffer.from(entry.message.id, 'hex');
    const owed: string[] = entry.owed ? [...entry.owed] : [];
    for (const peer of this.audience(entry.message, this.host.neighbours())) {
      if (entry.holders.has(peer) || entry.sentTo?.has(peer) || owed.includes(peer)) continue;
      if (!this.mayAnnounce(peer)) {
        owed.push(peer);
        continue;
      }
      this.announcedTo.set(peer, (this.announcedTo.get(peer) ?? 0) + 1);
      this.send(peer, [raw], 'have');
    }
    entry.owed = owed.length > 0 ? owed : undefined;
  }

  /** A neighbour has this id (it sent us a copy): it is not told of it. */
  heldBy(id: string, peer: string): void {
    this.recent.get(id)?.holders.add(peer);
  }

  /** This node sent a neighbour a RainTree copy of this id: only its watchers still tell it (Recent.sentTo). */
  sentCopy(id: string, peer: string): void {
    const entry = this.recent.get(id);
    if (entry) (entry.sentTo ??= new Set()).add(peer);
  }

  /**
   * Announces what is due, asks again, and (once an interval) starts the per-interval bounds over and judges the
   * promises due: what the node's own timer runs, and what tests and the simulator call once an interval.
   */
  tick(): void {
    const now = this.now();
    this.roll(now, true);
    this.retry(now, this.announce(now, 0));
  }

  /** The timer's run, or one riding a broadcast's arrival (up to RIDE_SHARE of an interval early). */
  private run(now: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    // Early by at most what a ride allows: the bounds and the judging stay once an interval.
    if (now - this.windowAt >= this.options.intervalMs * (1 - RIDE_SHARE)) this.roll(now, true);
    this.retry(now, this.announce(now, this.options.intervalMs * RIDE_SHARE));
    this.schedule(now);
  }

  /**
   * How long an id waits before it is announced: GRACE_SHARE of an interval (SUBSCRIBER_GRACE_SHARE for an event for
   * subscribers), so that a neighbour still receiving the tree's copy is not told (and would not ask for a second one).
   */
  private graceMs(message: NetworkMessage): number {
    return this.options.intervalMs * (message.strategy === 'subscribers' ? SUBSCRIBER_GRACE_SHARE : GRACE_SHARE);
  }

  /** Once an interval (or at once, `force`): the per-interval bounds start over and the promises due are judged. */
  private roll(now: number, force: boolean): void {
    if (!force && now - this.windowAt < this.options.intervalMs) return;
    this.windowAt = now;
    this.served.clear();
    this.announcedTo.clear();
    this.askedOf.clear();
    this.judge(now, this.host.neighbours());
  }

  /**
   * Arms the timer for the next work due, if any: the oldest id not announced yet (its grace, and at least
   * RUN_SHARE of an interval after the last run, so that ids share frames), asks to retry (every half interval),
   * promises to judge (once an interval). An idle node arms nothing: no wakeup at all.
   */
  private schedule(now: number): void {
    if (!this.started) return;
    const interval = this.options.intervalMs;
    // The first id due: entries come in the order they arrived, and an event for subscribers waits longer than a
    // network broadcast, so the search ends at the first entry that could not come due before the best found.
    let first = Infinity;
    for (const entry of this.recent.values()) {
      if (entry.at + interval * GRACE_SHARE >= first) break;
      if (entry.announced && !entry.owed) continue;
      first = Math.min(first, entry.at + this.graceMs(entry.message));
    }
    let due = first === Infinity ? Infinity : Math.max(first, this.lastRun + interval * RUN_SHARE);
    if (this.wanted.size > 0) due = Math.min(due, Math.max(now, this.lastRun + interval / 2));
    for (const record of this.records.values()) {
      if (record.pending.size === 0) continue;
      due = Math.min(due, this.windowAt + interval);
      break;
    }
    if (due === Infinity) return;
    // On a grid of the clock shared by every node (runs RUN_SHARE of an interval apart): neighbours run together, so
    // the IHAVE frames a node gets arrive while it is awake for its own run, not each in a wakeup of its own.
    const step = interval * RUN_SHARE;
    due = Math.ceil(due / step) * step;
    if (due >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = due;
    this.timer = setTimeout(() => this.run(this.now()), Math.max(0, due - now));
    this.timer.unref();
  }

  /** Announces ids past their grace (less `early`, ms) and forgets old messages; returns the neighbours. */
  private announce(now: number, early: number): string[] {
    this.lastRun = now;
    const keep = this.options.intervalMs * KEEP_INTERVALS;
    const owedFor = this.options.intervalMs * OWED_INTERVALS;
    const lists = new Map<string, Buffer[]>();
    const neighbours = this.host.neighbours();
    // Within the per-neighbour bound: a node announces only what it can serve when asked.
    const place = (peer: string, raw: Buffer, holders: ReadonlySet<string>): boolean => {
      if (holders.has(peer)) return true;
      let list = lists.get(peer);
      if (!this.mayAnnounce(peer) || list?.length === MAX_REPAIR_IDS) return false;
      if (!list) lists.set(peer, (list = []));
      list.push(raw);
      this.announcedTo.set(peer, (this.announcedTo.get(peer) ?? 0) + 1);
      return true;
    };
    // The neighbours this node watches, per epoch of the broadcasts' signed time, kept while the neighbours and the
    // epoch stay: reading the views (each neighbour's peer exchange, checked id by id) cost about 3.7 ms a run per node
    // in the 16-node bench, 5× the CPU of a broadcast at 2/s. A view that changes within an epoch counts from the next.
    const key = neighbours.join();
    const watchedIn = (epoch: number): string[] => {
      const cached = this.watchCache.find((c) => c.epoch === epoch && c.key === key);
      if (cached) return cached.list;
      const view = this.view();
      const list = neighbours.filter((peer) => isWatcherOf(view, peer, epoch, this.watchers));
      // Two epochs at most: the current one and the one before (broadcasts signed just before the turn).
      this.watchCache = [{ epoch, key, list }, ...this.watchCache.filter((c) => c.key === key && c.epoch !== epoch)].slice(0, 2);
      return list;
    };
    // One order per run for events for subscribers (random announcers): their ids share the same few frames, as
    // gossipsub's D_lazy peers per heartbeat. Drawn every run, as before watchers, so that the simulator's random
    // stream (and its figures for events for subscribers, docs/events.md) stays what it was.
    const order = shuffle([...neighbours], this.random);
    for (const [id, entry] of this.recent) {
      if (now - entry.at > keep) {
        this.forget(id, entry);
        continue;
      }
      if (entry.owed) {
        // Oldest first: what the bound held back goes before newer ids.
        const raw = Buffer.from(id, 'hex');
        const owed = now - entry.at > owedFor || this.silent ? [] : entry.owed.filter((peer) => !place(peer, raw, spared(entry)));
        entry.owed = owed.length > 0 ? owed : undefined;
        continue;
      }
      if (entry.announced || now - entry.at < this.graceMs(entry.message) - early) continue;
      entry.announced = true;
      if (this.silent) continue;
      const raw = Buffer.from(id, 'hex');
      const m = entry.message;
      let peers: readonly string[];
      // Watchers tell the nodes they watch even of a copy they sent them (it may have been dropped there); the others spare them.
      if (entry.repaired) peers = pick(this.audience(m, neighbours), known(entry), neighbours.length);
      else if (m.strategy === 'subscribers') peers = this.chooseFor(m, this.audience(m, order), known(entry));
      else {
        // Beside the watchers, REPAIR_RANDOM neighbours not known to have it: hostile watchers alone cannot keep it from a node.
        const watched = watchedIn(epochOf(m.timestampUs));
        peers = [...watched, ...pick(order, new Set([...known(entry), ...watched]), this.randomAnnouncers)];
      }
      const owed = peers.filter((peer) => !place(peer, raw, spared(entry)));
      if (owed.length > 0) entry.owed = owed;
    }
    for (const [peer, ids] of lists) this.send(peer, ids, 'have');
    return neighbours;
  }

  /**
   * A broadcast frame from `from` naming `id` arrived, whatever the pipeline does with it
   * next: a promise of `from` kept. `id` undefined: a frame its budget dropped unread, which
   * may have been the answer to one of the asks it owes.
   */
  arrived(from: string, id?: string): void {
    const record = this.records.get(from);
    if (!record || record.pending.size === 0) return;
    if (id === undefined) {
      record.excuses = Math.min(record.excuses + 1, record.pending.size);
      return;
    }
    if (!record.pending.delete(id)) return;
    this.decay(record, this.now());
    record.kept++;
  }

  /** An IHAVE: ask its sender for the ids we miss, unless another announcer is being asked for them. */
  onIHave(from: string, body: Buffer): void {
    if (!this.enabled) return;
    const asks: Buffer[] = [];
    const now = this.now();
    this.roll(now, false);
    const escalate = this.options.intervalMs * ESCALATE_INTERVALS;
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
        if (wanted.announcers.length < MAX_ANNOUNCERS && !wanted.announcers.includes(from)) wanted.announcers.push(from);
        // Never wait on one announcer: when no ask is in flight (they timed out), or the id is overdue, ask this one now.
        if (!wanted.asked.has(from) && this.mayAsk(from) && (now - wanted.since >= escalate || this.inFlight(wanted, now) === 0)) {
          this.ask(id, wanted, from, now);
          asks.push(raw);
        }
        continue;
      }
      // Bounded in all, and per announcer by what it may be asked an interval (as gossipsub ignores IHAVE ids past
      // GossipsubMaxIHaveLength a heartbeat): one neighbour's made-up ids leave room for the others'.
      if (this.wanted.size >= MAX_WANTED || !this.mayAsk(from)) continue;
      const entry: Wanted = { since: now, announcers: [from], asked: new Map() };
      this.wanted.set(id, entry);
      this.ask(id, entry, from, now);
      asks.push(raw);
    }
    if (asks.length > 0) {
      this.send(from, asks, 'want');
      this.schedule(now);
    }
  }

  /** An IWANT: send each message we still hold, addressed to the asker alone, up to the per-interval bound. */
  onIWant(from: string, body: Buffer): void {
    if (!this.enabled || this.silent) return;
    this.roll(this.now(), false);
    for (const raw of parseIds(body, 'IWANT')) {
      const served = this.served.get(from) ?? 0;
      if (served >= MAX_SERVED_PER_INTERVAL) return;
      const entry = this.recent.get(raw.toString('hex'));
      // Known to hold it (it sent it, announced it, or was just sent it: an id named twice is answered once). A RainTree
      // copy this node sent it does not count: asking says it was dropped there (its validator was busy, say).
      if (!entry || entry.holders.has(from)) continue;
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
    const record = this.records.get(peer);
    if (!record) return undefined;
    this.decay(record, this.now());
    return { kept: record.kept, broken: record.broken };
  }

  /**
   * Ids still missing: once the asks in flight for one are an interval old, the two untried announcers with
   * the best records are asked together; once it has been announced for
   * ESCALATE_INTERVALS, every announcer not asked yet. Given up when nobody is left to ask, or after WANT_INTERVALS.
   */
  private retry(now: number, neighbours: readonly string[]): void {
    if (this.wanted.size === 0) return;
    const interval = this.options.intervalMs;
    const live = new Set(neighbours);
    for (const record of this.records.values()) {
      record.late = 0;
      for (const at of record.pending.values()) {
        if (now - at < interval) break;
        record.late++;
      }
    }
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
      if (untried.length > 1) untried.sort((a, b) => this.quality(b) - this.quality(a));
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

  /**
   * Asks past the follow-up time that were not answered are broken promises, less those a dropped frame excuses;
   * a neighbour is reported while more than BROKEN_SHARE_LIMIT of its record is broken.
   */
  private judge(now: number, neighbours: readonly string[]): void {
    const followUp = this.options.intervalMs * FOLLOW_UP_INTERVALS;
    const live = new Set(neighbours);
    for (const [peer, record] of this.records) {
      this.decay(record, now);
      if (!live.has(peer)) {
        // Gone: what it owed can no longer come. Forgotten once its record has decayed, or when too many are kept.
        record.pending.clear();
        record.excuses = 0;
        if (record.kept + record.broken < 0.5 || this.records.size > MAX_RECORDS) this.records.delete(peer);
        continue;
      }
      let broken = 0;
      for (const [id, at] of record.pending) {
        if (now - at < followUp) break;
        record.pending.delete(id);
        broken++;
      }
      const excused = Math.min(broken, record.excuses);
      record.excuses = Math.min(record.excuses - excused, record.pending.size);
      broken -= excused;
      if (broken === 0) continue;
      record.broken += broken;
      if (record.broken > BROKEN_SHARE_LIMIT * (record.kept + record.broken)) this.host.brokePromises?.(peer, broken, { kept: record.kept, broken: record.broken });
    }
  }

  private ask(id: string, wanted: Wanted, peer: string, now: number): void {
    wanted.asked.set(peer, now);
    this.askedOf.set(peer, (this.askedOf.get(peer) ?? 0) + 1);
    let record = this.records.get(peer);
    if (!record) this.records.set(peer, (record = { pending: new Map(), kept: 0, broken: 0, at: now, excuses: 0, late: 0 }));
    // Re-inserted: the map stays in the order of asking.
    record.pending.delete(id);
    record.pending.set(id, now);
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

  /** How likely `peer` is to send what it announced: its kept share, with its late asks counted as broken. */
  private quality(peer: string): number {
    const r = this.records.get(peer);
    return r ? (r.kept + 1) / (r.kept + r.broken + r.late + 2) : 0.5;
  }

  private decay(record: PromiseRecord, now: number): void {
    if (now <= record.at) return;
    const factor = 0.5 ** ((now - record.at) / (this.options.intervalMs * RECORD_HALF_LIFE_INTERVALS));
    record.kept *= factor;
    record.broken *= factor;
    record.at = now;
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
    const mask = epochMask(epochOf(message.timestampUs));
    for (const peer of order) {
      if (holders.has(peer) || out.includes(peer)) continue;
      // Nobody of the peer's connections lies between the point and this node: this node comes first.
      if (!reaches(peer, { from: xorHex(peer, mask), to: self }, only)) out.push(peer);
    }
    return out;
  }

  /** What this node knows of its neighbours' connections, for isWatcherOf. */
  private view(): WatchView {
    const reaches = this.host.reaches?.bind(this.host);
    return { self: this.host.selfId, reaches: reaches && ((peer, arc) => reaches(peer, arc)) };
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

  private forget(id: string, entry: Recent): void {
    this.recent.delete(id);
    this.bytes -= entry.bytes;
  }
}

/** The designation epoch of a broadcast's signed time (µs). */
function epochOf(timestampUs: number): number {
  return Math.floor(timestampUs / DESIGNATION_EPOCH_US);
}

/** The neighbours known to have it: by their word, or sent a copy by this node. */
function known(entry: Recent): ReadonlySet<string> {
  return entry.sentTo ? new Set([...entry.holders, ...entry.sentTo]) : entry.holders;
}

/**
 * The neighbours an announcement of this id skips: those known to have it by their own word; for an event for
 * subscribers, also those this node sent a copy (as before watchers: its random and designated announcers spare them).
 */
function spared(entry: Recent): ReadonlySet<string> {
  return entry.message.strategy === 'subscribers' ? known(entry) : entry.holders;
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

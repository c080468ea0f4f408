import { decodePayload } from '../wire/codec.js';
import type { Encoding } from '../wire/constants.js';
import {
  authOf,
  decodeNetworkMessage,
  draftNetworkMessage,
  isTree,
  verifyNetworkMessage,
  type BroadcastStrategy,
  type NetworkMessage,
} from './codec.js';
import { BroadcastBudget, EXCUSED_ORIGINS, type BudgetLimits } from './budget.js';
import { BroadcastRepair, type RepairHost, type RepairStats } from './repair.js';
import { BroadcastRouter, type OriginateResult, type RelayStats, type RouterHost } from './router.js';
import { OriginKeys } from './signature.js';
import { sortedHas } from '../ring/raintree.js';
import { isReserved } from '../common/reserved.js';
import { P2PRateLimitError } from '../common/errors.js';
import type { Identity } from '../common/identity.js';
import type { Misbehaviour } from '../trust/peer-score.js';
import type { Metadata } from '../wire/metadata.js';
import { ReplayWindow, type SeenEntry } from './replay-window.js';
import { OriginBatch } from './origin-batch.js';
import type { P2PLogger } from '../common/types.js';

/**
 * The receive pipeline of network broadcasts, cheapest check first, as
 * gossipsub's validation: neighbour budget → decode → seen-cache → replay window
 * → unknown-origin budget → origin signature → origin budget → the application's validator → relay
 * (src/broadcast/router.ts). Each drop is counted by reason; drops that only a
 * misbehaving neighbour causes cost it score (src/trust/peer-score.ts).
 *
 * The origin side signs its own broadcasts in batches (src/broadcast/origin-batch.ts); every message
 * still travels, and is judged at every step above, alone.
 */

/** What the application's validator says of a network broadcast (gossipsub's Accept / Ignore / Reject). */
export type BroadcastVerdict = 'accept' | 'ignore' | 'reject';

/** What a validator sees: the broadcast, its proven origin, and the neighbour that relayed it. */
export interface BroadcastToValidate {
  /** The broadcast's id, the same on every node (BroadcastMeta.id). */
  id: string;
  /** The peer id that started the broadcast, proven by its signature. */
  origin: string;
  /** The neighbour that relayed it. */
  from: string;
  /** The normalised pattern it was broadcast to. */
  topic: string;
  /** The payload, decoded as a handler would receive it. */
  data: unknown;
  /** The origin's timestamp (its clock), ms since the epoch. */
  sentAt: number;
  /**
   * When this node received it (its own clock), ms since the epoch. Judge age by `receivedAt - sentAt`,
   * not by reading the clock, and answer 'ignore' for anything that depends on time: a relay can
   * delay an honest broadcast, and a 'reject' must not be something a relay can make happen.
   */
  receivedAt: number;
  /** Relays it passed through before this node (0: its origin sent it to this node itself). */
  hops: number;
}

/** A topic's validator: says whether a network broadcast from another node is delivered and relayed; may be async. */
export type BroadcastValidatorFn = (broadcast: BroadcastToValidate) => BroadcastVerdict | Promise<BroadcastVerdict>;

/**
 * Why a network broadcast (or a copy) was dropped before delivery: over a neighbour's or its origin's
 * budget, over the budget of broadcasts a neighbour may hand over from origins this node has no evidence
 * are network members (`unknownOrigin`, checked before the signature), a bad signature, dated before the replay window (`stale`) or ahead of the clock skew (`future`),
 * `ignored` or `rejected` by the application's validator (the directory's own refusals are in `directoryStats().refused`), 1 024 validations already pending (`validatorBusy`), the seen
 * cache full of recent ids (`cacheFull`), or a RainTree arc this node cannot route (`misrouted`).
 * Final, the id stays seen and later copies are duplicates: `ignored`, `rejected`, `originBudget`; `stale`
 * is final by its timestamp (every copy is as old). Not final, a later copy (repair, another relay) is judged
 * afresh: `neighbourBudget`, `unknownOrigin`, `cacheFull`, `validatorBusy` (local limits), `invalidSignature`
 * and `misrouted` (one bad copy: the genuine one still passes), `future` (passes once within the clock skew).
 * docs/security.md tabulates them (Dropped broadcasts: final or not).
 */
export type DropReason =
  | 'neighbourBudget'
  | 'originBudget'
  | 'unknownOrigin'
  | 'invalidSignature'
  | 'stale'
  | 'future'
  | 'ignored'
  | 'rejected'
  | 'validatorBusy'
  | 'cacheFull'
  | 'misrouted';

/** Counters of network-wide broadcasts since the node started (`networkBroadcastStats()`; docs/api.md lists them). */
export interface NetworkBroadcastStats extends RelayStats {
  /**
   * Origin signatures this node checked, valid or not: the costly step of receiving (one Ed25519
   * verification, about 60–120 µs), so every cheaper check and budget comes before it.
   */
  verified: number;
  /**
   * New broadcasts (or copies with a signature of their own) whose Merkle proof reached a batch this
   * node had verified already: no Ed25519 verification was needed.
   */
  verifiedByBatch: number;
  /**
   * Broadcasts delivered here but not relayed: taken without evidence of their origin that this node's neighbours
   * share (of origins this node knows nothing of, or a neighbour's own that no other neighbour names), past the
   * node-wide budget of such relays (80% of `broadcastUnknownOriginRate`, docs/security.md, Throwaway keys).
   */
  kept: number;
  /** Broadcasts (or copies) dropped before delivery, by reason. */
  dropped: Record<DropReason, number>;
  /** Lazy-pull repair (src/broadcast/repair.ts). */
  repair: RepairStats;
}

export interface PipelineOptions extends BudgetLimits {
  /** How old a broadcast may be, and how long its id is remembered. */
  windowMs: number;
  /** How far in the future a broadcast may be dated (clock skew between origins and receivers). */
  skewMs: number;
  /** Ids remembered at most; when full, the oldest goes and the window's floor rises to it. */
  cacheSize: number;
  /** Benchmark only: no signatures are made or checked. */
  unsigned?: boolean;
  /** Most broadcasts of this node signed as one batch (broadcastBatchMax); 1: each alone. */
  batchMax: number;
  /** Batches remembered as verified (by signature, with the origin key, count and last path checked), so that batch-mates skip Ed25519 (broadcastVerifiedBatches). */
  verifiedBatches: number;
  /** How often repair announces recent ids to neighbours; 0: no repair. */
  repairIntervalMs: number;
  /** Bytes of recent broadcasts kept to answer repair requests. */
  repairCacheBytes: number;
  /** Neighbours each id is announced to, at random among those not known to have it. */
  repairFanout: number;
}

export interface PipelineHost extends RouterHost, Pick<RepairHost, 'sendIHave' | 'sendIWant'> {
  /**
   * Throws what `send` would for a body of `bodyBytes` queued after `alsoQueued` more bytes, and sends
   * nothing: the origin routes its batch before it signs it. A host without it is never refused then.
   */
  check?(peer: string, bodyBytes: number, alsoQueued: number): void;
  /**
   * Whether this node has evidence that `id` is a network member, whatever neighbour `via` says: it is or
   * was a neighbour (connected, or in the address book that the routing view is drawn from), or a
   * peer-exchange candidate named by another neighbour (docs/security.md, Throwaway keys).
   * A host without it has no unknown-origin budget (unit tests' fake hosts).
   */
  isMember?(id: string, via: string): boolean;
  /**
   * Whether this node has evidence that neighbour `id` is a network member other than its own connection: another
   * neighbour names it in its peer exchange, or it is a candidate another neighbour named. Without it, `id`'s own
   * broadcasts are relayed within the budget of broadcasts of unknown origins (BroadcastBudget.takeUnvouchedRelay).
   * True with peer exchange off (no word of others to go by).
   */
  namedByOthers?(id: string): boolean;
  penalize(peerId: string, what: Misbehaviour, detail: string, weight?: number): void;
  readonly logger: P2PLogger;
}

/** Validations awaiting an async validator at once; past it, new broadcasts of validated topics are ignored. */
const MAX_PENDING_VALIDATIONS = 1024;

export class BroadcastPipeline {
  readonly stats: NetworkBroadcastStats = {
    originated: 0,
    delivered: 0,
    duplicates: 0,
    sent: 0,
    tooManyArcs: 0,
    proxied: 0,
    unrouted: 0,
    tooLargeForNeighbour: 0,
    carried: 0,
    verified: 0,
    verifiedByBatch: 0,
    kept: 0,
    dropped: {
      neighbourBudget: 0,
      originBudget: 0,
      unknownOrigin: 0,
      invalidSignature: 0,
      stale: 0,
      future: 0,
      cacheFull: 0,
      misrouted: 0,
      ignored: 0,
      rejected: 0,
      validatorBusy: 0,
    },
    repair: { announced: 0, requested: 0, sent: 0, controlBytes: 0 },
  };
  readonly router: BroadcastRouter;
  readonly repair: BroadcastRepair;
  private readonly seen: ReplayWindow;
  private readonly budget: BroadcastBudget;
  private readonly keys: OriginKeys;
  private readonly validators = new Map<string, BroadcastValidatorFn>();
  /** Copies that arrived while their first copy awaited an async validator, replayed once it is accepted. */
  private readonly waiting = new Map<string, Array<{ from: string; message: NetworkMessage }>>();
  private lastTimestampUs = 0;
  /** This node's own broadcasts routed in the current synchronous run and not signed yet. */
  private readonly batch: OriginBatch;

  constructor(
    private readonly host: PipelineHost,
    private readonly identity: Identity,
    private readonly options: PipelineOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new OriginKeys(undefined, options.verifiedBatches);
    this.batch = new OriginBatch(host, identity, options.batchMax, (message, sent) => this.repair.got(message, sent));
    this.router = new BroadcastRouter(host, this.stats);
    this.seen = new ReplayWindow(options.cacheSize, options.windowMs, options.skewMs, now);
    this.budget = new BroadcastBudget(options, now);
    this.repair = new BroadcastRepair(
      {
        selfId: host.selfId,
        neighbours: () => host.neighbours(),
        reaches: (neighbour, arc, only) => host.reaches?.(neighbour, arc, only) ?? false,
        has: (id) => this.seen.get(id) !== undefined,
        sendIHave: (peer, body) => host.sendIHave(peer, body),
        sendIWant: (peer, body) => host.sendIWant(peer, body),
        sendBroadcast: (peer, body) => host.send(peer, body),
        wants: (peer, message) => sortedHas(host.subscribersOf?.(message.topic) ?? [], peer),
        // At most 20 points an interval (judged once an interval), and only while its broken share is high (repair.ts).
        brokePromises: (peer, count, record) =>
          host.penalize(
            peer,
            'broken-promise',
            `${count} announced broadcast${count === 1 ? '' : 's'} not sent when asked (${Math.round((100 * record.broken) / (record.kept + record.broken))} % of its recent promises broken)`,
            Math.min(count, 20),
          ),
      },
      { intervalMs: options.repairIntervalMs, cacheBytes: options.repairCacheBytes, fanout: options.repairFanout },
      now,
    );
    this.stats.repair = this.repair.stats;
  }

  start(): void {
    this.repair.start();
  }

  stop(): void {
    this.repair.stop();
  }

  /**
   * Signs and sends the batch of this node's own broadcasts still waiting for its tick: a node that
   * closes flushes it while its connections are open, so that what it started just before (its directory
   * tombstone, an application's last broadcasts) leaves before the goodbyes.
   */
  flush(): void {
    this.batch.flush();
  }

  /** An IHAVE from a neighbour. Throws P2PProtocolError when malformed. */
  onIHave(from: string, body: Buffer): void {
    // Charged like broadcasts: parsing and looking up 1 024 ids is not free.
    if (!this.budget.takeNeighbour(from, body.length)) return void this.stats.dropped.neighbourBudget++;
    this.repair.onIHave(from, body);
  }

  /** An IWANT from a neighbour. Throws P2PProtocolError when malformed. */
  onIWant(from: string, body: Buffer): void {
    if (!this.budget.takeNeighbour(from, body.length)) return void this.stats.dropped.neighbourBudget++;
    this.repair.onIWant(from, body);
  }

  /** Sets (or, with undefined, removes) the validator of one topic. */
  setValidator(topic: string, validator: BroadcastValidatorFn | undefined): void {
    if (validator) this.validators.set(topic, validator);
    else this.validators.delete(topic);
  }

  /**
   * Starts this node's own broadcast: routed now (the result says where it goes), signed and sent
   * with the rest of its batch before the event loop turns (process.nextTick), or at once when the
   * batch is full. Throws P2PRateLimitError past its own origin budget.
   */
  originate(topic: string, encoding: Encoding, payload: Buffer, strategy: BroadcastStrategy, metadata?: Metadata): OriginateResult {
    if (!this.budget.takeOwn(payload.length)) {
      throw new P2PRateLimitError(
        `network broadcast refused: over this node's budget of ${this.options.originRate}/s (burst ${this.options.originBurst}) or ${this.options.originBytesPerSec} bytes/s`,
      );
    }
    // Strictly increasing per origin, so that two identical broadcasts never share an id.
    const timestampUs = (this.lastTimestampUs = Math.max(Date.now() * 1000, this.lastTimestampUs + 1));
    const message = draftNetworkMessage(this.identity, { timestampUs, encoding, topic, payload, strategy, metadata });
    const entry = this.seen.add(message.id, message.origin, timestampUs / 1000, authOf(message));
    if (!entry) throw new P2PRateLimitError('network broadcast refused: the replay window is full of recent broadcasts (broadcastCacheSize)');
    // Its own handler gets what every other node gets: the payload as decoded from the wire.
    const data = decodePayload(encoding, payload);
    if (this.options.unsigned) {
      const result = this.router.originate(message, entry, data);
      this.repair.got(message, result.sent);
      return result;
    }
    return this.batch.add(message, entry, (stage) => this.router.originate(message, entry, data, stage));
  }

  /** A broadcast frame body from neighbour `from`. Throws P2PProtocolError when malformed (the connection then closes). */
  receive(from: string, body: Buffer): void {
    // Dropped, never penalised: an honest neighbour relays everyone's traffic and may be the one over it.
    if (!this.budget.takeNeighbour(from, body.length)) {
      this.repair.arrived(from);
      return void this.stats.dropped.neighbourBudget++;
    }
    const receivedAt = this.now();
    const message = decodeNetworkMessage(body, this.keys);
    this.repair.arrived(from, message.id);
    if (isTree(message.strategy) && !this.router.canRoute(message.arc)) {
      // Honest senders hand an arc to a node in it, or to a proxy with a neighbour in it; any other arc only serves to use up the per-id arc slots.
      return void this.stats.dropped.misrouted++;
    }
    const known = this.seen.get(message.id);
    if (known) return this.again(from, message, known);
    const when = this.seen.check(message.timestampUs / 1000, message.origin);
    if (when !== 'ok') return void this.stats.dropped[when]++;
    const introduced = this.introduced(from, message);
    if (!introduced) return;
    if (!this.verified(from, message)) return;
    // Decoded once, after the cheap checks: bad utf8 / json is the relaying neighbour's protocol error.
    const data = decodePayload(message.encoding, message.payload);
    const entry = this.seen.add(message.id, message.origin, message.timestampUs / 1000, authOf(message));
    if (!entry) return void this.stats.dropped.cacheFull++;
    if (!this.budget.takeOrigin(message.origin, message.signed.length)) {
      entry.accepted = false;
      this.stats.dropped.originBudget++;
      // Relays of an over-budget origin are not at fault; an origin that floods us itself is.
      if (from === message.origin) this.floodedByOrigin(from);
      return;
    }
    // Its neighbours may have no evidence of this origin either: relayed within what they hold this node to, else kept
    // here. Taken after the origin budget, so that an over-budget origin spends none of it.
    if (introduced === 'unvouched' && !this.budget.takeUnvouchedRelay(message.strategy === 'gossip')) {
      entry.kept = true;
      this.stats.kept++;
    }
    this.validate(from, message, entry, data, receivedAt);
  }

  /**
   * The unknown-origin budget, before the signature check: a new broadcast whose origin is neither this
   * node, nor the neighbour handing it over (a joining node's first hop), nor a member by the host's
   * evidence is taken from that neighbour's budget of unknown origins. Past it, the broadcast is dropped
   * unverified, not relayed and not remembered (an honest copy may come again, by repair or another
   * relay); a neighbour over it for half a second without pause, with more drops than the budget holds (burst and rate) from
   * other origins than the EXCUSED_ORIGINS it had most dropped (one that keeps introducing new origins), is throttled and
   * loses a point a second: an honest relay over it with a few origins this node does not know (peer exchange off: its
   * neighbours' own broadcasts) is dropped past it, not charged. A
   * broadcast this node accepted is no evidence of membership: one token would then buy an origin's
   * whole budget, relayed to every node (docs/security.md).
   * 'unvouched': taken without evidence its origin is a member that this node's neighbours share (from the
   * unknown-origin budget, or a first hop that no other neighbour names): its neighbours take it from this node's
   * unknown-origin budget, so it is relayed only within the node-wide budget of such relays, and past it kept
   * here (delivered, not relayed): an honest relay never goes over what its neighbours hold it to (review 22).
   */
  private introduced(from: string, message: NetworkMessage): false | 'known' | 'unvouched' {
    const origin = message.origin;
    const isMember = this.host.isMember;
    if (!isMember || origin === this.host.selfId) return 'known';
    // A joining node's first hop: taken, but only another neighbour's word tells this node's other neighbours it exists.
    if (origin === from) return this.host.namedByOthers?.(origin) === false ? 'unvouched' : 'known';
    if (isMember(origin, from)) return 'known';
    const taken = this.budget.takeUnknownOrigin(from, origin, message.strategy === 'gossip');
    if (taken.ok) return 'unvouched';
    this.stats.dropped.unknownOrigin++;
    if (taken.sustained) {
      this.host.penalize(
        from,
        'over-budget',
        `network broadcasts from unknown origins over its budget of ${this.options.unknownOriginRate}/s for half a second or more, and more than the budget of them from others than its ${EXCUSED_ORIGINS} main origins (throttled)`,
      );
    }
    return false;
  }

  /**
   * The signature check: the message's proof leads to a root its origin signed. False: dropped,
   * counted, and the neighbour penalised (no honest relay forwards a forgery). A tampered message of
   * a batch fails here alone: its batch-mates are frames of their own and pass on their own proofs.
   */
  private verified(from: string, message: NetworkMessage): boolean {
    if (this.options.unsigned) return true;
    const outcome = verifyNetworkMessage(message, this.keys);
    if (outcome === 'batch') {
      this.stats.verifiedByBatch++;
      return true;
    }
    this.stats.verified++;
    if (outcome === 'signature') return true;
    this.invalidSignature(from, message);
    return false;
  }

  /** About 100 points, a ban, for sending twice what its origin budget allows. */
  private floodedByOrigin(origin: string): void {
    this.host.penalize(origin, 'over-budget', 'its own network broadcasts over its budget', 100 / this.budget.originAllowance);
  }

  private again(from: string, message: NetworkMessage, entry: SeenEntry): void {
    // Same id means same signed bytes (the id is their hash). Other signature or proof bytes need a check of their
    // own: an origin can sign one message twice (Ed25519 lets the signer pick its nonce, and a message may be in two
    // batches), and a relay that got the other signature is honest; a forged proof must not be relayed on as checked.
    if (entry.signature !== authOf(message) && !this.verified(from, message)) return;
    const waiting = this.waiting.get(message.id);
    if (waiting) {
      if (waiting.length < 8) waiting.push({ from, message });
      return;
    }
    if (!entry.accepted) {
      this.router.countDuplicate(message);
      return;
    }
    if (entry.kept) return void this.router.countDuplicate(message);
    this.repair.heldBy(message.id, from);
    for (const peer of this.router.again(from, message, entry)) this.repair.heldBy(message.id, peer);
  }

  /** Delivers and relays an accepted broadcast, and keeps it for repair (its sender and the relays' receivers have it). */
  private accept(from: string, message: NetworkMessage, entry: SeenEntry, data: unknown): void {
    const sent = this.router.accept(from, message, entry, data);
    // A kept one is not announced nor served by repair either: an IWANT's answer costs the asker's budget as a relay does.
    if (!entry.kept) this.repair.got(message, [from, ...sent]);
  }

  private invalidSignature(from: string, message: NetworkMessage): void {
    this.stats.dropped.invalidSignature++;
    this.host.penalize(from, 'invalid-signature', `network broadcast ${message.id} on "${message.topic}" with a signature that is not origin ${message.origin}'s`);
  }

  private validate(from: string, message: NetworkMessage, entry: SeenEntry, data: unknown, receivedAt: number): void {
    const validator = this.validators.get(message.topic);
    if (!validator) return this.accept(from, message, entry, data);
    const sentAt = Math.floor(message.timestampUs / 1000);
    const verdict = this.ask(validator, { id: message.id, origin: message.origin, from, topic: message.topic, data, sentAt, receivedAt, hops: message.hops }, message);
    if (!(verdict instanceof Promise)) return this.settle(from, message, entry, data, verdict);
    if (this.waiting.size >= MAX_PENDING_VALIDATIONS) {
      // A local limit, not the broadcast's fault: forgotten, so that repair or another relay brings it again.
      // It used to stay seen and refused, and an honest broadcast that came meanwhile was lost for good.
      this.seen.remove(message.id);
      this.stats.dropped.validatorBusy++;
      return;
    }
    this.waiting.set(message.id, []);
    verdict.then(
      (v) => this.settle(from, message, entry, data, v),
      (err: unknown) => this.settle(from, message, entry, data, this.validatorFailed(message, err)),
    );
  }

  /** The validator's verdict; one that throws says 'ignore' (and is logged). */
  private ask(validator: BroadcastValidatorFn, broadcast: BroadcastToValidate, message: NetworkMessage): BroadcastVerdict | Promise<BroadcastVerdict> {
    try {
      return validator(broadcast);
    } catch (err) {
      return this.validatorFailed(message, err);
    }
  }

  /**
   * Who pays for a rejected broadcast. Relayed, it is asked of the validator again as its origin sent it
   * (received at once, no hop): still 'reject', the origin wrote it so; otherwise it became invalid on
   * the way (held back, or passed through too many relays), and the neighbour that handed it over pays,
   * not the origin a delaying relay aimed it at. Sent by the origin itself, the origin pays.
   */
  private blame(from: string, message: NetworkMessage, data: unknown): void {
    const origin = (): void =>
      this.host.penalize(message.origin, 'rejected', `network broadcast ${message.id} on "${message.topic}" rejected by this node's validator`);
    const validator = this.validators.get(message.topic);
    if (from === message.origin || !validator) return origin();
    const sentAt = Math.floor(message.timestampUs / 1000);
    const asSent = this.ask(validator, { id: message.id, origin: message.origin, from: message.origin, topic: message.topic, data, sentAt, receivedAt: sentAt, hops: 0 }, message);
    const judge = (verdict: BroadcastVerdict): void => {
      if (verdict === 'reject') return origin();
      this.host.penalize(from, 'rejected', `relayed network broadcast ${message.id} on "${message.topic}" that its origin sent valid (late or too many hops by then)`);
    };
    if (!(asSent instanceof Promise)) return judge(asSent);
    asSent.then(judge, (err: unknown) => judge(this.validatorFailed(message, err)));
  }

  private validatorFailed(message: NetworkMessage, err: unknown): BroadcastVerdict {
    this.host.logger.error(`broadcast validator for "${message.topic}" failed (broadcast ${message.id} ignored): ${(err as Error)?.message ?? err}`, { event: 'handler-failed' });
    return 'ignore';
  }

  private settle(from: string, message: NetworkMessage, entry: SeenEntry, data: unknown, verdict: BroadcastVerdict): void {
    const waiting = this.waiting.get(message.id) ?? [];
    this.waiting.delete(message.id);
    if (verdict !== 'accept' && verdict !== 'reject' && verdict !== 'ignore') {
      verdict = this.validatorFailed(message, new Error(`returned ${String(verdict)}, not 'accept', 'ignore' or 'reject'`));
    }
    if (verdict === 'accept') {
      this.accept(from, message, entry, data);
      for (const copy of waiting) this.again(copy.from, copy.message, entry);
      return;
    }
    entry.accepted = false;
    // The library's own topics ($p2p.directory) count their refusals in directoryStats().refused, as their
    // duplicates in the router's internal stats: `ignored` and `rejected` are the application's validators' verdicts.
    const counted = !isReserved(message.topic);
    if (verdict === 'reject') {
      if (counted) this.stats.dropped.rejected++;
      // An honest relay may not run this validator at all (another version, another topic set): the origin pays,
      // unless the broadcast was valid as the origin sent it.
      this.blame(from, message, data);
    } else if (counted) {
      this.stats.dropped.ignored++;
    }
  }
}

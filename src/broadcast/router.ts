import { digestOf, type NetworkMessage } from './codec.js';
import { MAX_HOPS, encodeNetworkMessage, isTree } from './codec.js';
import { isReserved } from '../common/reserved.js';
import { P2PFrameTooLargeError } from '../common/errors.js';
import { branchOf, firstMember, inArc, narrowest, thirdsOf, occupiedBy, pointArc, sortedHas, planForward, ringDistance, type Arc } from '../ring/raintree.js';
import type { SeenEntry } from './replay-window.js';

/**
 * Relaying of network-wide broadcasts that passed the pipeline
 * (src/broadcast/pipeline.ts): RainTree over the id space (src/ring/raintree.ts), or gossip
 * when the caller asks for it. Events for subscribers only (strategy `subscribers`) take the
 * same tree with its arcs split over the topic's subscribers instead of every known node: an arc
 * with no subscriber is not handed on, a subscriber neighbour inside an arc is handed it first,
 * and a node that relays one without a matching handler delivers nothing. Each node delivers a broadcast to its handler
 * once, and forwards each arc it is handed (or the gossip copy) once. What a
 * frozen or dropping relay leaves out, repair (src/broadcast/repair.ts) fills in.
 */

/** What the router needs from the node. */
export interface RouterHost {
  readonly selfId: string;
  /** Every peer id this node knows of (connected, proven, learned from peer exchange), sorted, itself included. */
  knownIds(): readonly string[];
  /** Connected peer ids. */
  neighbours(): readonly string[];
  /** Whether `neighbour` told us (by peer exchange) that it is connected to a member of `arc` (one `only` accepts, when given). */
  reaches?(neighbour: string, arc: Arc, only?: (id: string) => boolean): boolean;
  /** Queues the encoded message to a peer; throws a typed error when it cannot. */
  send(id: string, body: Buffer): void;
  /** Hands a broadcast to this node's handler; `from` is the relaying neighbour, or this node for its own. */
  deliver(from: string, message: NetworkMessage, data: unknown): void;
  /**
   * The nodes with an event pattern matching `topic` in this node's directory, sorted, this node
   * included when it has one: the members a `subscribers` event's arcs are split over.
   * A host without it knows no subscribers (such events reach only their origin).
   */
  subscribersOf?(topic: string): readonly string[];
  /**
   * Arcs an event for subscribers leaves this node in when it originates one without subscribing itself
   * (eventOriginPaths): its ring cut at subscribers, each arc carried to a subscriber on its own. 1 when left out.
   */
  readonly eventOriginPaths?: number;
  /** Whether this node has an event handler matching `topic` (it delivers a `subscribers` event). */
  subscribes?(topic: string): boolean;
  /**
   * The subscribers of `topic` this node dialed for the events it sends without subscribing (src/node/event-fanout.ts):
   * its own events leave to each in a copy whose arc holds it alone, and their paths are routed around them.
   */
  fanoutOf?(topic: string): readonly string[];
  /** An event for subscribers this node originated (`sent`), delivered, or carried without a handler: for metrics by pattern. */
  counted?(topic: string, outcome: 'sent' | 'delivered' | 'carried'): void;
}

/** How this node routed network broadcasts: the relay counters of NetworkBroadcastStats. */
export interface RelayStats {
  /** Network broadcasts this node started. */
  originated: number;
  /** Network broadcasts delivered to this node's handler, its own included; each once. */
  delivered: number;
  /** Copies of a broadcast already seen (delivered or dropped), not delivered again. */
  duplicates: number;
  /** Data frames sent by RainTree or gossip (repair copies are `repair.sent`). */
  sent: number;
  /** Copies not forwarded because one broadcast handed this node more arcs than an honest network does (repair covers them). */
  tooManyArcs: number;
  /** Arcs handed to a neighbour outside them that is connected inside, because no neighbour was inside (the degree bound). */
  proxied: number;
  /** Arcs that held a known node but that no neighbour is in or connected into: left to repair. */
  unrouted: number;
  /** Copies not sent to a neighbour because they exceed the maxFrameBytes it announced. */
  tooLargeForNeighbour: number;
  /** Events for subscribers this node accepted and relayed with no matching handler of its own (so delivered to nobody here). */
  carried: number;
}

export interface OriginateResult {
  id: string;
  /** Peers this node handed the message to. */
  sent: string[];
  failed: Array<{ peerId: string; error: Error }>;
}

/** Distinct arcs one node forwards for one broadcast; more would mean a bug or a hostile sender. */
export const MAX_ARCS_PER_ID = 8;

/** Where forward() hands one arc: any neighbour inside it, else a proxy outside it. */
export interface ArcRoute {
  arc: Arc;
  /** Neighbours inside the arc, in the order given: the first that takes the copy covers it. */
  inside: string[];
  /** Neighbours connected inside it, to hand it to as a proxy when none inside takes it, nearest first (at most 2; none for an arc this node holds as a proxy itself). */
  proxies(): string[];
  /** How many of `inside` are handed it (the first that take it): 1 when left out. */
  copies?: number;
}

/**
 * The routing decision of a node handed a RainTree copy for `arc`, as a pure
 * function, so that the simulator (src/sim/network-sim.ts) runs this and not a copy of
 * it. `neighbours` leaves out the sender; `known` (sorted, this node included)
 * is read only when the node is inside the arc; `reaches` says whether a
 * neighbour said it is connected inside an arc.
 */
export function routeArcs(
  self: string,
  arc: Arc,
  neighbours: readonly string[],
  known: () => readonly string[],
  reaches: (neighbour: string, arc: Arc) => boolean,
  prefer?: (id: string) => boolean,
  paths = 1,
): ArcRoute[] {
  // Events for subscribers (`prefer` given): a subscriber inside the arc first, wherever it lies; else a neighbour
  // nearest the subscribers, in the narrowest arc that still holds them all, whose splits start where they are.
  const inside = (arc: Arc): string[] => {
    const candidates = neighbours.filter((id) => inArc(id, arc));
    if (!prefer || candidates.length < 2) return candidates;
    const members = occupiedBy(known(), self);
    const near = narrowest(arc, members);
    return preferred(preferred(candidates, (id) => inArc(id, near)), prefer);
  };
  // A proxy: the sender had no neighbour in this arc. Hand it to ours; never to another proxy.
  if (!inArc(self, arc)) return [{ arc, inside: inside(arc), proxies: () => [] }];
  // A carrier (no subscriber itself: a relay, or the origin) hands the whole arc on, not its thirds: any member of an
  // arc may cover all of it. To a subscriber neighbour inside it when it has one, whose splits then start from a node
  // that delivers (and whose neighbours share its patterns, src/discovery/ring-topology.ts); else one hop on toward the
  // arc's first subscriber, a level deeper each hop (the neighbour in the third where that subscriber leaves this
  // node's own). Split here, each third would cost a carrier chain of its own down to its subscribers.
  if (prefer && !prefer(self)) {
    const members = occupiedBy(known(), self);
    // A subscriber neighbour inside the arc, else a neighbour a level nearer the arc's first subscriber.
    const carry = (piece: Arc) => {
      const subscribers = neighbours.filter((id) => inArc(id, piece) && prefer(id));
      return subscribers.length > 0 ? subscribers : towardFirstMember(self, piece, neighbours, known(), reaches);
    };
    // An origin (`paths` > 1) hands on the thirds where the subscribers part, each on its own: one dropping carrier or
    // subscriber then loses one of them, and repair among the subscribers, who are each other's neighbours, brings the
    // rest. Thirds of the ring's own split, so that the topology's covers serve them (a cut at subscribers would not).
    if (paths > 1) {
      const pieces = thirdsOf(narrowest(arc, members)).filter(members);
      if (pieces.length > 1) {
        const routes = pieces.map((piece) => {
          const carriers = carry(piece);
          return { arc: piece, inside: carriers.length > 0 ? carriers : inside(piece), proxies: () => proxiesFor(neighbours, piece, reaches) };
        });
        if (routes.every((route) => route.inside.length > 0 || route.proxies().length > 0)) return routes;
      }
    }
    const next = carry(arc);
    // The whole arc along one path; from an origin, along two first hops (their copies meet at the same subscriber).
    if (next.length > 0) return [{ arc, inside: next, proxies: () => [], ...(paths > 1 ? { copies: 2 } : {}) }];
  }
  return split();

  function split(): ArcRoute[] {
    // Which thirds hold a node: what we know, hearsay included (a missed id costs a third). A made-up id attracts no
    // frame: `reaches` counts only ids with evidence beyond the neighbour that names them (src/discovery/discovery.ts).
    return planOf(self, arc, known()).map((third) => ({
      arc: third,
      inside: inside(third),
      // No neighbour inside (at the degree bound): a neighbour that is connected inside takes it on. None: the arc is
      // left to repair. The nearest neighbour instead almost never could route it (in the simulator, with churn,
      // 107 of 107 such frames a broadcast at 10 000 nodes were dropped as misrouted): a frame for nothing.
      proxies: () => proxiesFor(neighbours, third, reaches),
    }));
  }
}

/** Plans kept per members array, at most: a bound on what one callback's frames of many origins and arcs can add. */
const MAX_PLANS = 1024;
const plans = new WeakMap<readonly string[], Map<string, readonly Arc[]>>();

/**
 * planForward over `members`, computed once per arc while the array lives when it is frozen (the node's known ids,
 * built once per callback, src/common/per-turn.ts): a read of many frames of one origin hands this node the same arcs,
 * and each plan is a few dozen 160-bit splits. An array that is not frozen may change, so its plans are not kept.
 */
function planOf(self: string, arc: Arc, members: readonly string[]): readonly Arc[] {
  if (!Object.isFrozen(members)) return planForward(self, arc, occupiedBy(members, self));
  let byArc = plans.get(members);
  if (!byArc) plans.set(members, (byArc = new Map()));
  const key = `${self} ${arc.from} ${arc.to}`;
  let plan = byArc.get(key);
  if (!plan) {
    if (byArc.size >= MAX_PLANS) byArc.clear();
    byArc.set(key, (plan = Object.freeze(planForward(self, arc, occupiedBy(members, self)))));
  }
  return plan;
}

/**
 * `ids` with those `prefer` says yes to first, each group in its order: an event for subscribers
 * handed to a subscriber inside an arc is delivered where it lands, to a non-subscriber it is one
 * frame more (stable, so a broadcast to every node keeps its order).
 */
function preferred(ids: string[], prefer: ((id: string) => boolean) | undefined): string[] {
  if (!prefer || ids.length < 2) return ids;
  const first = ids.filter(prefer);
  return first.length === 0 || first.length === ids.length ? ids : [...first, ...ids.filter((id) => !prefer(id))];
}

/** Neighbours outside `arc` that said they are connected inside it, nearest first, at most 2. */
function proxiesFor(neighbours: readonly string[], arc: Arc, reaches: (neighbour: string, arc: Arc) => boolean): string[] {
  return neighbours
    .filter((id) => !inArc(id, arc) && reaches(id, arc))
    .sort((a, b) => distanceTo(a, arc) - distanceTo(b, arc))
    .slice(0, 2);
}

/**
 * The neighbours inside `arc` one level nearer its first member (clockwise from `arc.from`, not `self`): those in the
 * third where that member leaves `self`'s own third, nearest it first. Each hop goes a level deeper toward the same
 * member (every relay computes it alike from the arc and the members), so a walk ends within about log3 N hops.
 */
function towardFirstMember(self: string, arc: Arc, neighbours: readonly string[], members: readonly string[], reaches: (neighbour: string, arc: Arc) => boolean): string[] {
  const first = firstMember(members, arc, self);
  if (first === undefined) return [];
  const branch = branchOf(self, first);
  if (!branch) return [];
  const byGap = (a: string, b: string) => gap(a, first) - gap(b, first);
  const closer = neighbours.filter((id) => inArc(id, arc) && inArc(id, branch.arc));
  if (closer.length > 0) return closer.sort(byGap);
  // None in that third (at the degree bound some thirds have no cover): a neighbour inside the arc that said it is
  // connected there, which hands it on to that one (a node it names without evidence attracts no frame, as for proxies).
  return neighbours.filter((id) => inArc(id, arc) && reaches(id, branch.arc)).sort(byGap);
}

/** How far apart two ids are on the ring, either way round, as a fraction of it. */
function gap(a: string, b: string): number {
  const there = ringDistance(a, b);
  const back = ringDistance(b, a);
  return Number(there < back ? there : back) / 2 ** 160;
}

/** Whether a node can take a copy for `arc` any further: it is in the arc, or a neighbour is (it is a proxy). */
export function canRouteArc(self: string, neighbours: readonly string[], arc: Arc): boolean {
  return inArc(self, arc) || neighbours.some((id) => inArc(id, arc));
}

export class BroadcastRouter {
  /** Test only: a relay that accepts broadcasts and never forwards them (a frozen or hostile node). */
  dropRelays = false;
  /**
   * The library's own broadcasts (`$p2p.` topics: directory records), counted apart from the
   * application's `stats`, so that `networkBroadcastStats()` says what the application's cost.
   */
  readonly internalStats: RelayStats = { originated: 0, delivered: 0, duplicates: 0, sent: 0, tooManyArcs: 0, proxied: 0, unrouted: 0, tooLargeForNeighbour: 0, carried: 0 };
  /** The counters of the message being routed (each call below routes one, synchronously). */
  private counting: RelayStats;
  /** While the origin routes a message of a batch not signed yet: where its copies go instead of the socket. */
  private staging: ((id: string, message: NetworkMessage) => void) | undefined;

  constructor(
    private readonly host: RouterHost,
    readonly stats: RelayStats,
  ) {
    this.counting = stats;
  }

  private count(message: NetworkMessage): RelayStats {
    return (this.counting = isReserved(message.topic) ? this.internalStats : this.stats);
  }

  /**
   * This node's own broadcast: its handler gets it too, once, after this returns. With `stage`, each
   * copy is handed to it instead of being encoded and sent (the origin's batch, signed later); it
   * throws what sending would, so that the result and the fallbacks are the same.
   */
  originate(message: NetworkMessage, entry: SeenEntry, data: unknown, stage?: (id: string, message: NetworkMessage) => void): OriginateResult {
    entry.delivered = true;
    this.count(message).originated++;
    if (message.strategy === 'subscribers') this.host.counted?.(message.topic, 'sent');
    // An event for subscribers reaches this node's own handler only when it has one, as NATS delivers to the sender's own subscriptions.
    if (this.deliversHere(message)) {
      this.counting.delivered++;
      if (message.strategy === 'subscribers') this.host.counted?.(message.topic, 'delivered');
      setImmediate(() => this.host.deliver(this.host.selfId, message, data));
    }
    const result: OriginateResult = { id: message.id, sent: [], failed: [] };
    this.staging = stage;
    try {
      this.forward(message, undefined, entry, result);
    } finally {
      this.staging = undefined;
    }
    return result;
  }

  /** A broadcast accepted for the first time: deliver it, then forward it. Returns the peers it went to. */
  accept(from: string, message: NetworkMessage, entry: SeenEntry, data: unknown): string[] {
    entry.delivered = true;
    this.count(message);
    const here = this.deliversHere(message);
    if (here) {
      this.counting.delivered++;
      this.host.deliver(from, message, data);
    } else {
      this.counting.carried++;
    }
    if (message.strategy === 'subscribers') this.host.counted?.(message.topic, here ? 'delivered' : 'carried');
    return this.relay(from, message, entry);
  }

  private deliversHere(message: NetworkMessage): boolean {
    return message.strategy !== 'subscribers' || (this.host.subscribes?.(message.topic) ?? false);
  }

  /** A copy of a broadcast this node did not accept: counted where its topic's copies count (the library's own apart). */
  countDuplicate(message: NetworkMessage): void {
    this.count(message).duplicates++;
  }

  /** Another copy of an accepted broadcast: forward it if it hands this node an arc (or gossip) it has not covered yet. */
  again(from: string, message: NetworkMessage, entry: SeenEntry): string[] {
    const forwarded = isTree(message.strategy) ? (entry.arcs?.has(arcKey(message)) ?? false) : entry.gossiped;
    this.count(message).duplicates++;
    return forwarded ? [] : this.relay(from, message, entry);
  }

  /** Whether this node can take a copy for `arc` any further: it is in the arc, or a neighbour is (it is a proxy). */
  canRoute(arc: Arc): boolean {
    return canRouteArc(this.host.selfId, this.host.neighbours(), arc);
  }

  private relay(from: string, message: NetworkMessage, entry: SeenEntry): string[] {
    // A copy with no hops left is delivered but cannot go on; recording it would stop the copies that can.
    // Kept: taken without evidence its neighbours share, over the budget of such relays (BroadcastPipeline.introduced).
    if (this.dropRelays || entry.kept || message.hops >= MAX_HOPS) return [];
    const result: OriginateResult = { id: message.id, sent: [], failed: [] };
    if (isTree(message.strategy)) {
      const arcs = (entry.arcs ??= new Set());
      // More distinct arcs than an honest network hands one node: a hostile sender's, or a bug's. Not
      // forwarded (flooding instead let one sender make the network work for it): repair covers the rest.
      if (arcs.size >= MAX_ARCS_PER_ID) {
        this.counting.tooManyArcs++;
        return [];
      }
      arcs.add(arcKey(message));
    }
    this.forward(message, from, entry, result);
    return result.sent;
  }

  private forward(message: NetworkMessage, from: string | undefined, entry: SeenEntry, result: OriginateResult): void {
    if (message.strategy === 'gossip') return this.gossip(message, from, entry, result);
    const self = this.host.selfId;
    let neighbours = this.host.neighbours().filter((id) => id !== from);
    const next = { ...message, hops: message.hops + 1 };
    // The members the arcs are split over: every node this node knows of, or the topic's subscribers.
    let known: readonly string[] | undefined;
    const members =
      message.strategy === 'subscribers' ? () => (known ??= this.host.subscribersOf?.(message.topic) ?? []) : () => (known ??= this.host.knownIds());
    const prefer = message.strategy === 'subscribers' ? (id: string) => sortedHas(members(), id) : undefined;
    const paths = prefer && from === undefined ? (this.host.eventOriginPaths ?? 1) : 1;
    // The origin's fanout (subscribers drawn from records anyone may sign): a copy each, beside paths that do not
    // go through them, so that hostile ones drawn there take nothing from what the paths reach (review-fanout-capture).
    const direct = prefer && from === undefined && !prefer(self) ? (this.host.fanoutOf?.(message.topic) ?? []) : [];
    if (direct.length > 0) neighbours = neighbours.filter((id) => !direct.includes(id));
    const routes = routeArcs(self, message.arc, neighbours, members, (id, arc) => this.host.reaches?.(id, arc) ?? false, prefer, paths);
    if (!inArc(self, message.arc)) {
      if (!this.handTo(routes[0]!.inside, next, result)) this.counting.unrouted++;
      return;
    }
    const digest = digestOf(members());
    for (const id of direct) this.trySend(id, { ...next, arc: pointArc(id), digest }, result);
    for (const route of routes) {
      const copy = { ...next, arc: route.arc, digest };
      if (this.handTo(route.inside, copy, result, route.copies)) continue;
      if (this.handTo(route.proxies(), copy, result)) this.counting.proxied++;
      else this.counting.unrouted++;
    }
  }

  /** Sends to the first `copies` of `candidates` that take the message; whether one did. */
  private handTo(candidates: readonly string[], message: NetworkMessage, result: OriginateResult, copies = 1): boolean {
    let sent = 0;
    for (const id of candidates) if (this.trySend(id, message, result) && ++sent >= copies) break;
    return sent > 0;
  }

  private gossip(message: NetworkMessage, from: string | undefined, entry: SeenEntry, result: OriginateResult): void {
    // A copy that has used up its hops cannot be sent on: it must not mark the gossip done for the copies that can.
    if (entry.gossiped || message.hops >= MAX_HOPS) return;
    entry.gossiped = true;
    const copy = { ...message, strategy: 'gossip' as const, hops: message.hops + 1 };
    for (const id of this.host.neighbours()) {
      // The origin is skipped: it has its own message (the origin is proven by its signature, so naming another node cannot censor it).
      if (id !== from && id !== message.origin) this.trySend(id, copy, result);
    }
  }

  private trySend(id: string, message: NetworkMessage, result: OriginateResult): boolean {
    if (message.hops > MAX_HOPS) return false;
    try {
      if (this.staging) this.staging(id, message);
      else this.host.send(id, encodeNetworkMessage(message));
      this.counting.sent++;
      result.sent.push(id);
      return true;
    } catch (err) {
      if (err instanceof P2PFrameTooLargeError) this.counting.tooLargeForNeighbour++;
      result.failed.push({ peerId: id, error: err as Error });
      return false;
    }
  }
}

/** How far an id lies from an arc, as a fraction of the ring: the nearest proxy first (ids near an arc share its parent thirds). */
function distanceTo(id: string, arc: Arc): number {
  const before = ringDistance(id, arc.from);
  const after = ringDistance(arc.to, id);
  return Number(before < after ? before : after) / 2 ** 160;
}

function arcKey(message: NetworkMessage): string {
  return `${message.arc.from}${message.arc.to}`;
}

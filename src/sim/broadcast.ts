import { MAX_HOPS, createNetworkMessage, isTree, type BroadcastStrategy, type NetworkMessage } from '../broadcast/codec.js';
import { BroadcastRepair, encodeIds } from '../broadcast/repair.js';
import { MAX_ARCS_PER_ID, canRouteArc, routeArcs } from '../broadcast/router.js';
import { Encoding } from '../wire/constants.js';
import { DEFAULTS } from '../common/defaults.js';
import { loadIdentity, type Identity } from '../common/identity.js';
import { RING_ROOT, inArc, pointArc, type Arc } from '../ring/raintree.js';
import type { SimNet } from './topology.js';
import { fanoutTargets } from '../broadcast/fanout-choice.js';

/**
 * One network broadcast through a simulated network (src/sim/topology.ts), in
 * rounds: a round is one hop, every frame sent in a round arrives in the next.
 * Each node routes as BroadcastRouter does, through the same routeArcs and
 * canRouteArc (proxies, unrouted arcs, arcs forwarded once each, the flood past
 * MAX_ARCS_PER_ID), and repairs with a real BroadcastRepair per node on a
 * simulated clock, its timer at a random phase. Sends never fail: a frame to a
 * crashed neighbour is lost, as a socket's buffer takes it before the node
 * notices (a ping timeout, seconds later). The pipeline's checks before the
 * router (signatures, budgets, the replay window) pass for honest frames and
 * are not run.
 */

export interface SimFaults {
  /** Accept and deliver, never forward, announce or answer (BroadcastRouter.dropRelays, BroadcastRepair.silent). */
  droppers?: ReadonlySet<number>;
  /** Crash on their first receipt: they deliver, then vanish without forwarding; neighbours go on sending to them. */
  crashed?: ReadonlySet<number>;
  /** Frozen from the start until round `frozenUntil`: what reaches them waits in their buffers, then they go on. */
  frozen?: ReadonlySet<number>;
  /** The round at which frozen nodes wake (default 0: none is frozen). */
  frozenUntil?: number;
  /**
   * Droppers that also withhold (an eclipse attacker, src/sim/eclipse.ts): each announces the broadcast to all its
   * neighbours at once, before any honest copy arrives, and never serves it.
   */
  withholders?: ReadonlySet<number>;
}

/** What simulateBroadcast takes. */
export interface SimBroadcastOptions {
  /** The node number that sends the broadcast. */
  origin: number;
  /** How it is relayed: RainTree, gossip, or RainTree over `subscribers` only (an event for subscribers). */
  strategy: BroadcastStrategy;
  /**
   * Strategy `subscribers`: the nodes with a matching event handler, as every node's directory
   * holds them. Only they deliver (and count as honest); the others may carry it.
   */
  subscribers?: ReadonlySet<number>;
  /** Strategy `subscribers`: eventOriginPaths of the origin (its default when omitted). */
  originPaths?: number;
  /**
   * Strategy `subscribers`: eventFanout of an origin that does not subscribe (its default when omitted): it dials that
   * many subscribers when it sends, as the node does (src/node/event-fanout.ts). They connect after its first
   * frames have left (its first event to the topic: they take part through repair), and are closed again at the end.
   */
  fanout?: number;
  /** The nodes that misbehave during this broadcast; none when omitted. */
  faults?: SimFaults;
  /** Repair interval in rounds; 0: no repair. 20 models the default 500 ms interval with 25 ms hops. */
  repairRounds?: number;
  /** Neighbours each id is announced to (broadcastRepairFanout; its default when omitted). */
  repairFanout?: number;
  /** Milliseconds a round stands for (the repair's clock). */
  hopMs?: number;
  /** Rounds at most, whatever is still in flight. */
  maxRounds?: number;
  /** Draws the repair timers' phases. */
  random: () => number;
  /** Nodes whose delivery the result reports one by one (`watched`): an eclipse's victims. */
  watch?: readonly number[];
}

/** What one simulated broadcast did: who got it, by which route, at what cost in frames and rounds. */
export interface SimBroadcastResult {
  /** How it was relayed. */
  strategy: BroadcastStrategy;
  /** Live nodes that are neither droppers nor crashed (frozen ones count: they come back); for strategy `subscribers`, such subscribers. */
  honest: number;
  /** Strategy `subscribers`: nodes without a matching handler that were sent it (carried it, delivered nothing). */
  carriers: number;
  /** Honest nodes that delivered it, by any route. */
  delivered: number;
  /** Honest nodes that delivered it by RainTree or gossip alone, before repair. */
  deliveredByTree: number;
  /** Most times one node delivered it (once, always, or a bug). */
  maxDeliveries: number;
  /** Data frames sent: RainTree (proxy hand-offs included) or gossip, and repair answers. */
  dataFrames: number;
  /** Repair answers: data frames sent for an IWANT. */
  repairFrames: number;
  /** IHAVE frames sent (repair announcements). */
  ihaveFrames: number;
  /** IWANT frames sent (repair requests). */
  iwantFrames: number;
  /** Ids announced in IHAVE frames (BroadcastRepair's count). */
  announced: number;
  /** Ids asked for in IWANT frames (BroadcastRepair's count). */
  requested: number;
  /** Bytes of the IHAVE and IWANT frames sent (BroadcastRepair's count). */
  controlBytes: number;
  /** Data frames that reached a node that had it already. */
  duplicates: number;
  /** Data frames to a node that had crashed or left. */
  lost: number;
  /** Arcs handed to a proxy: a neighbour outside them connected inside, because no neighbour was inside. */
  proxied: number;
  /** Arcs no neighbour was in or connected into: left to repair. */
  unrouted: number;
  /** RainTree copies a node dropped because neither it nor a neighbour lies in the arc. */
  misrouted: number;
  /** Copies not forwarded because a node was handed more than MAX_ARCS_PER_ID arcs for the broadcast. */
  tooManyArcs: number;
  /** Hop count of the copy each honest node delivered (a repair copy says its server's count + 1). */
  maxHops: number;
  /** Median rounds from the origin's send to an honest node's delivery. */
  latencyP50: number;
  /** Rounds from the origin's send to the last honest node's delivery. */
  latencyMax: number;
  /** Rounds run: until no frame was in flight for two repair intervals, or `maxRounds`. */
  rounds: number;
  /** Each `watch` node, in order: the round it delivered the broadcast in (-1: never), and whether by RainTree or gossip alone. */
  watched?: Array<{
    /** The round it delivered the broadcast in, from the origin's send; -1: never. */
    round: number;
    /** Whether RainTree or gossip brought it, not repair. */
    byTree: boolean;
  }>;
}

const DATA = 0;
const IHAVE = 1;
const IWANT = 2;

interface Frame {
  kind: typeof DATA | typeof IHAVE | typeof IWANT;
  from: number;
  to: number;
  strategy: BroadcastStrategy;
  arc: Arc;
  hops: number;
  repair: boolean;
  body?: Buffer;
}

/** A fixed origin key and timestamps drawn from the seed: the broadcast id picks designated announcers (src/broadcast/repair.ts), so a seed must give the same id. */
const SIM_KEY = '5a'.repeat(32);
let identity: Identity | undefined;

/** Runs one broadcast from `origin` to quiescence: no frame in flight for two repair intervals. */
export function simulateBroadcast(net: SimNet, options: SimBroadcastOptions): SimBroadcastResult {
  const { origin, strategy } = options;
  const originPaths = options.originPaths ?? DEFAULTS.eventOriginPaths;
  const faults = options.faults ?? {};
  const R = options.repairRounds ?? 20;
  const hopMs = options.hopMs ?? 25;
  const maxRounds = options.maxRounds ?? 40 * Math.max(R, 10) + (faults.frozenUntil ?? 0);
  const n = net.size;
  const ids = net.ids;
  const originId = ids[origin]!;
  identity ??= loadIdentity(SIM_KEY);
  const message: NetworkMessage = createNetworkMessage(identity, {
    timestampUs: 1 + Math.floor(options.random() * 2 ** 48),
    encoding: Encoding.Binary,
    topic: 'sim',
    payload: Buffer.alloc(100),
    strategy,
    unsigned: true,
  });

  const subscribers = strategy === 'subscribers' ? (options.subscribers ?? new Set<number>()) : undefined;
  const subscriberIds = subscribers ? [...subscribers].map((i) => ids[i]!).sort() : undefined;
  const isSubscriberId = subscribers ? (id: string) => subscribers.has(at(id)) : undefined;
  const delivers = (node: number) => !subscribers || subscribers.has(node);
  const seen = new Uint8Array(n);
  const deliveries = new Uint8Array(n);
  const deliveredAt = new Int32Array(n).fill(-1);
  const hopsAt = new Int32Array(n);
  const byTree = new Uint8Array(n);
  const vanished = new Uint8Array(n);
  const gossiped = new Uint8Array(n);
  const arcsOf: Array<Set<string> | undefined> = new Array(n);
  const repairs: Array<BroadcastRepair | undefined> = new Array(n);
  const phase = new Int32Array(n);
  const buckets: number[][] = Array.from({ length: Math.max(1, R) }, () => []);
  const r: Omit<SimBroadcastResult, 'strategy' | 'honest' | 'delivered' | 'deliveredByTree' | 'maxDeliveries' | 'maxHops' | 'latencyP50' | 'latencyMax' | 'rounds'> = {
    carriers: 0,
    dataFrames: 0,
    repairFrames: 0,
    ihaveFrames: 0,
    iwantFrames: 0,
    announced: 0,
    requested: 0,
    controlBytes: 0,
    duplicates: 0,
    lost: 0,
    proxied: 0,
    unrouted: 0,
    misrouted: 0,
    tooManyArcs: 0,
  };
  let round = 0;
  let queue: Frame[] = [];
  const held: Frame[] = [];
  const frozenUntil = faults.frozenUntil ?? 0;
  const isFrozen = (node: number) => round < frozenUntil && (faults.frozen?.has(node) ?? false);
  const at = (id: string) => net.index.get(id)!;
  const drops = (node: number) => (faults.droppers?.has(node) ?? false) || (faults.withholders?.has(node) ?? false);

  const send = (from: number, to: string | number, kind: Frame['kind'], strategy: BroadcastStrategy, arc: Arc, hops: number, repair = false, body?: Buffer) => {
    if (kind === DATA) r.dataFrames++;
    queue.push({ kind, from, to: typeof to === 'number' ? to : at(to), strategy, arc, hops, repair, body });
  };

  const repairOf = (node: number): BroadcastRepair | undefined => {
    if (R <= 0) return undefined;
    let repair = repairs[node];
    if (repair) return repair;
    repair = new BroadcastRepair(
      {
        selfId: ids[node]!,
        neighbours: () => net.links[node]!,
        reaches: (neighbour, arc, only) => reaches(ids[node]!)(neighbour, arc, only),
        has: () => seen[node] === 1,
        sendIHave: (peer, body) => (r.ihaveFrames++, send(node, peer, IHAVE, strategy, RING_ROOT, 0, false, body)),
        sendIWant: (peer, body) => (r.iwantFrames++, send(node, peer, IWANT, strategy, RING_ROOT, 0, false, body)),
        // The repair copy's arc holds its receiver alone (BroadcastRepair.onIWant): delivered, handed on to nobody.
        sendBroadcast: (peer) => (r.repairFrames++, send(node, peer, DATA, 'raintree', pointArc(peer), Math.min(hopsAt[node]! + 1, MAX_HOPS), true)),
        // As the node's pipeline: an event for subscribers is announced to subscribers only.
        wants: (peer) => isSubscriberId?.(peer) ?? true,
      },
      { intervalMs: R * hopMs, cacheBytes: DEFAULTS.broadcastRepairCacheBytes, fanout: options.repairFanout ?? DEFAULTS.broadcastRepairFanout },
      () => round * hopMs,
      options.random,
    );
    repair.silent = drops(node);
    repairs[node] = repair;
    phase[node] = Math.floor(options.random() * R);
    buckets[phase[node]!]!.push(node);
    return repair;
  };

  /** What a neighbour's peer exchange said: it is connected to someone in the arc (other than the asker). */
  const reaches = (self: string) => (neighbour: string, arc: Arc, only?: (id: string) => boolean) =>
    net.links[at(neighbour)]!.some((id) => id !== self && inArc(id, arc) && (only?.(id) ?? true));

  /** BroadcastRouter.forward: RainTree by routeArcs, or the gossip flood. Returns the neighbours sent to. */
  const forward = (node: number, from: string | undefined, f: Pick<Frame, 'strategy' | 'arc' | 'hops'>): string[] => {
    if (f.strategy === 'gossip') return gossip(node, from, f.hops);
    const self = ids[node]!;
    const neighbours = net.links[node]!.filter((id) => id !== from);
    const routes = subscriberIds
      ? routeArcs(self, f.arc, neighbours, () => subscriberIds, reaches(self), isSubscriberId, from === undefined ? originPaths : 1)
      : routeArcs(self, f.arc, neighbours, () => net.known(node), reaches(self));
    const sent: string[] = [];
    const to = (id: string, arc: Arc) => (send(node, id, DATA, f.strategy, arc, f.hops + 1), sent.push(id));
    if (!inArc(self, f.arc)) {
      const inside = routes[0]!.inside[0];
      if (inside === undefined) r.unrouted++;
      else to(inside, f.arc);
      return sent;
    }
    for (const route of routes) {
      const inside = route.inside[0];
      if (inside !== undefined) {
        // BroadcastRouter.handTo: sends never fail here, so the first `copies` take it.
        for (const id of route.inside.slice(0, route.copies ?? 1)) to(id, route.arc);
        continue;
      }
      const proxy = route.proxies()[0];
      if (proxy === undefined) r.unrouted++;
      else {
        r.proxied++;
        to(proxy, route.arc);
      }
    }
    return sent;
  };

  const gossip = (node: number, from: string | undefined, hops: number): string[] => {
    if (gossiped[node] || hops >= MAX_HOPS) return [];
    gossiped[node] = 1;
    const sent: string[] = [];
    const links = net.links[node]!;
    const nodes = net.linkNodes[node]!;
    for (let i = 0; i < links.length; i++) {
      const id = links[i]!;
      if (id === from || id === originId) continue;
      send(node, nodes[i]!, DATA, 'gossip', RING_ROOT, hops + 1);
      sent.push(id);
    }
    return sent;
  };

  /** BroadcastRouter.relay: droppers stop here; each arc once; past MAX_ARCS_PER_ID arcs, nothing (repair covers them). */
  const relay = (node: number, from: string, f: Frame): string[] => {
    if (drops(node) || f.hops >= MAX_HOPS) return [];
    if (isTree(f.strategy)) {
      const arcs = (arcsOf[node] ??= new Set());
      if (arcs.size >= MAX_ARCS_PER_ID) {
        r.tooManyArcs++;
        return [];
      }
      arcs.add(f.arc.from + f.arc.to);
    }
    return forward(node, from, f);
  };

  const receive = (f: Frame) => {
    const node = f.to;
    if (!net.alive[node] || vanished[node]) {
      if (f.kind === DATA) r.lost++;
      return;
    }
    if (isFrozen(node)) return void held.push(f);
    const from = ids[f.from]!;
    if (f.kind === IHAVE) return repairOf(node)?.onIHave(from, f.body!);
    if (f.kind === IWANT) return repairOf(node)?.onIWant(from, f.body!);
    // The pipeline drops a RainTree copy no honest sender would send this node.
    if (isTree(f.strategy) && !canRouteArc(ids[node]!, net.links[node]!, f.arc)) return void r.misrouted++;
    if (seen[node]) {
      r.duplicates++;
      const repair = repairOf(node);
      repair?.heldBy(message.id, from);
      // BroadcastRouter.again: a copy is relayed only for an arc (or a gossip flood) this node has not covered yet.
      const forwarded = isTree(f.strategy) ? (arcsOf[node]?.has(f.arc.from + f.arc.to) ?? false) : gossiped[node] === 1;
      if (!forwarded) for (const peer of relay(node, from, f)) repair?.sentCopy(message.id, peer);
      return;
    }
    seen[node] = 1;
    if (delivers(node)) deliveries[node]!++;
    else r.carriers++;
    deliveredAt[node] = round;
    hopsAt[node] = f.hops;
    byTree[node] = f.repair ? 0 : 1;
    if (faults.crashed?.has(node)) return void (vanished[node] = 1);
    const sent = relay(node, from, f);
    repairOf(node)?.got(message, [from], sent);
  };

  // Withholders announce it first: their IHAVE frames are the first in flight, so each arrives before any honest copy.
  const ihave = encodeIds([Buffer.from(message.id, 'hex')]);
  for (const node of faults.withholders ?? []) {
    if (!net.alive[node]) continue;
    for (const peer of net.linkNodes[node]!) (r.ihaveFrames++, send(node, peer, IHAVE, strategy, RING_ROOT, 0, false, ihave));
  }
  // The origin: delivers its own, forwards the whole ring (BroadcastRouter.originate), keeps it for repair.
  seen[origin] = 1;
  deliveries[origin] = delivers(origin) ? 1 : 0;
  deliveredAt[origin] = 0;
  byTree[origin] = 1;
  const first = forward(origin, undefined, { strategy, arc: RING_ROOT, hops: 0 });
  repairOf(origin)?.got(message, [], first);
  // Its fanout dials, connected once the frames above have left.
  const fanout: number[] = [];
  if (subscriberIds && !delivers(origin)) {
    for (const id of fanoutTargets(subscriberIds, net.links[origin]!, options.fanout ?? DEFAULTS.eventFanout, options.random)) {
      if (net.link(origin, at(id))) fanout.push(at(id));
    }
  }

  let quiet = 0;
  for (round = 1; round <= maxRounds; round++) {
    const arriving = queue;
    queue = [];
    // Frozen nodes wake up to what waited in their buffers, in the order it came.
    if (round === frozenUntil) for (const f of held.splice(0)) receive(f);
    for (const f of arriving) receive(f);
    for (const node of R > 0 ? buckets[round % R]! : []) {
      if (!vanished[node] && !isFrozen(node) && net.alive[node]) repairs[node]!.tick();
    }
    quiet = arriving.length === 0 && queue.length === 0 ? quiet + 1 : 0;
    if (quiet >= 2 * Math.max(R, 1) && round >= frozenUntil) break;
  }

  for (const node of fanout) net.unlink(origin, node);

  let honest = 0;
  let delivered = 0;
  let deliveredByTree = 0;
  let maxDeliveries = 0;
  let maxHops = 0;
  const latencies: number[] = [];
  for (let node = 0; node < n; node++) {
    if (!net.alive[node] || drops(node) || faults.crashed?.has(node) || !delivers(node)) continue;
    honest++;
    maxDeliveries = Math.max(maxDeliveries, deliveries[node]!);
    if (!seen[node]) continue;
    delivered++;
    deliveredByTree += byTree[node]!;
    maxHops = Math.max(maxHops, hopsAt[node]!);
    if (node !== origin) latencies.push(deliveredAt[node]!);
  }
  for (const repair of repairs) {
    if (!repair) continue;
    r.announced += repair.stats.announced;
    r.requested += repair.stats.requested;
    r.controlBytes += repair.stats.controlBytes;
  }
  latencies.sort((a, b) => a - b);
  const watch = options.watch;
  return {
    strategy,
    honest,
    delivered,
    deliveredByTree,
    maxDeliveries,
    ...r,
    maxHops,
    latencyP50: latencies[Math.floor(latencies.length / 2)] ?? 0,
    latencyMax: latencies[latencies.length - 1] ?? 0,
    rounds: Math.min(round, maxRounds),
    ...(watch === undefined ? {} : { watched: watch.map((node) => ({ round: seen[node] ? deliveredAt[node]! : -1, byTree: byTree[node] === 1 })) }),
  };
}

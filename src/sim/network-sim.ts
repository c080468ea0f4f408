import type { BroadcastStrategy } from '../broadcast/codec.js';
import { simulateBroadcast, type SimBroadcastResult, type SimFaults } from './broadcast.js';
import type { SimNet } from './topology.js';

/**
 * A network-wide broadcast simulated with the node's own code and no sockets:
 * the topology from planTopology (src/sim/topology.ts), routing by routeArcs and
 * repair by BroadcastRepair (src/sim/broadcast.ts). Fault mixes, and a summary of
 * several broadcasts, for `npm run simulate` and the property tests.
 */

export * from './ids.js';
export * from './views.js';
export * from './topology.js';
export * from './broadcast.js';
export * from './eclipse.js';

/** A fault scenario of `npm run simulate`: which nodes misbehave, and how much of the network each node knows. */
export interface FaultMix {
  /** What `npm run simulate -- --mixes` calls it. */
  key: string;
  /** Its label in the printed tables. */
  name: string;
  /** Fraction of the others each node knows. */
  viewFraction: number;
  /** Fraction of the live nodes (never the origin), drawn afresh per broadcast, that deliver but never relay. */
  droppers: number;
  /** Fraction of the live nodes, drawn afresh per broadcast, that crash once they receive it. */
  crashed: number;
  /** Fraction of the live nodes, drawn afresh per broadcast, frozen for two repair intervals. */
  frozen: number;
  /** Fraction of the nodes that leave, and as many that join, before each broadcast (one peer-exchange interval to adapt). */
  churn: number;
}

const mix = (key: string, name: string, fields: Partial<FaultMix>): FaultMix => ({ key, name, viewFraction: 1, droppers: 0, crashed: 0, frozen: 0, churn: 0, ...fields });

/** The mixes `npm run simulate` prints: issue 15's four, then frozen relays and churn. */
export const FAULT_MIXES: readonly FaultMix[] = [
  mix('none', 'none', {}),
  mix('droppers', '10 % droppers', { droppers: 0.1 }),
  mix('crashed', '10 % crashed after receipt', { crashed: 0.1 }),
  mix('views', '90 % views', { viewFraction: 0.9 }),
  mix('frozen', '10 % frozen for 2 intervals', { frozen: 0.1 }),
  mix('churn', 'churn 1 % per broadcast', { churn: 0.01 }),
];

/** What runMix takes. */
export interface MixOptions {
  /** Broadcasts to run. */
  broadcasts: number;
  /** The strategies each broadcast is run with, from the same origin and with the same faults. */
  strategies: readonly BroadcastStrategy[];
  /** The random source: `rng(seed)` for a run that a seed reproduces. */
  random: () => number;
  /** Repair interval in rounds (default 20: 500 ms at 25 ms a hop). */
  repairRounds?: number;
  /** Milliseconds a round stands for (default 25). */
  hopMs?: number;
  /** broadcastRepairFanout (its default when omitted). */
  repairFanout?: number;
}

/**
 * Runs `broadcasts` broadcasts on `net` (whose views must match the mix), each
 * from a random live node with faults drawn afresh, every strategy from the
 * same origin with the same faults. Churn changes `net`.
 */
export function runMix(net: SimNet, fault: FaultMix, options: MixOptions): Map<BroadcastStrategy, SimBroadcastResult[]> {
  const { random } = options;
  const repairRounds = options.repairRounds ?? 20;
  const out = new Map<BroadcastStrategy, SimBroadcastResult[]>(options.strategies.map((s) => [s, []]));
  for (let b = 0; b < options.broadcasts; b++) {
    if (fault.churn > 0) {
      const k = Math.max(1, Math.round(fault.churn * net.liveNodes().length));
      net.churn(k, k, 1);
    }
    const live = net.liveNodes();
    const origin = live[Math.floor(random() * live.length)]!;
    const others = live.filter((node) => node !== origin);
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [others[i], others[j]] = [others[j]!, others[i]!];
    }
    const take = (fraction: number) => new Set(others.splice(0, Math.floor(fraction * live.length)));
    const faults: SimFaults = { droppers: take(fault.droppers), crashed: take(fault.crashed), frozen: take(fault.frozen), frozenUntil: fault.frozen > 0 ? 2 * repairRounds : 0 };
    for (const strategy of options.strategies) {
      // Gossip without repair: every neighbour holds what gossip floods, so a node would announce it to none of them.
      const repair = strategy === 'gossip' ? 0 : repairRounds;
      out.get(strategy)!.push(simulateBroadcast(net, { origin, strategy, faults, repairRounds: repair, hopMs: options.hopMs, repairFanout: options.repairFanout, random }));
    }
  }
  return out;
}

/** Several broadcasts of one strategy summed up (summarise): the worst case, or the mean per broadcast. */
export interface SimSummary {
  /** Broadcasts summed up. */
  broadcasts: number;
  /** Worst broadcast: the fraction of honest live nodes that delivered it in the end. */
  coverage: number;
  /** Worst broadcast: the fraction of honest live nodes it reached by RainTree or gossip alone, before repair. */
  treeCoverage: number;
  /** Most times one node delivered one broadcast (1, unless there is a bug). */
  maxDeliveries: number;
  /** Mean per broadcast: data frames sent (RainTree or gossip copies, and repair answers). */
  dataFrames: number;
  /** Mean per broadcast: repair answers, data frames sent for an IWANT. */
  repairFrames: number;
  /** Mean per broadcast: IHAVE frames (repair announcements). */
  ihaveFrames: number;
  /** Mean per broadcast: IWANT frames (repair requests). */
  iwantFrames: number;
  /** Mean per broadcast: bytes of IHAVE and IWANT frames. */
  controlBytes: number;
  /** Mean per broadcast: data frames that reached a node that had it already. */
  duplicates: number;
  /** Mean per broadcast: arcs handed to a proxy, a neighbour outside them connected inside. */
  proxied: number;
  /** Mean per broadcast: arcs no neighbour could take, left to repair. */
  unrouted: number;
  /** Mean per broadcast: RainTree copies dropped by a node that could not route their arc. */
  misrouted: number;
  /** Mean per broadcast: copies not forwarded because a node was handed more than MAX_ARCS_PER_ID arcs. */
  tooManyArcs: number;
  /** Mean per broadcast: data frames sent to a node that had crashed or left. */
  lost: number;
  /** Worst broadcast: the largest hop count at delivery. */
  maxHops: number;
  /** Median over broadcasts of each one's median delivery time, rounds. */
  latencyP50: number;
  /** The slowest delivery of any broadcast, rounds. */
  latencyMax: number;
}

/** Sums up the results of one strategy from runMix: worst coverage and hops, mean frame counts, latencies in rounds. */
export function summarise(results: readonly SimBroadcastResult[]): SimSummary {
  const mean = (f: (r: SimBroadcastResult) => number) => results.reduce((a, r) => a + f(r), 0) / Math.max(1, results.length);
  const max = (f: (r: SimBroadcastResult) => number) => Math.max(0, ...results.map(f));
  const p50s = results.map((r) => r.latencyP50).sort((a, b) => a - b);
  return {
    broadcasts: results.length,
    coverage: Math.min(1, ...results.map((r) => r.delivered / Math.max(1, r.honest))),
    treeCoverage: Math.min(1, ...results.map((r) => r.deliveredByTree / Math.max(1, r.honest))),
    maxDeliveries: max((r) => r.maxDeliveries),
    dataFrames: mean((r) => r.dataFrames),
    repairFrames: mean((r) => r.repairFrames),
    ihaveFrames: mean((r) => r.ihaveFrames),
    iwantFrames: mean((r) => r.iwantFrames),
    controlBytes: mean((r) => r.controlBytes),
    duplicates: mean((r) => r.duplicates),
    proxied: mean((r) => r.proxied),
    unrouted: mean((r) => r.unrouted),
    misrouted: mean((r) => r.misrouted),
    tooManyArcs: mean((r) => r.tooManyArcs),
    lost: mean((r) => r.lost),
    maxHops: max((r) => r.maxHops),
    latencyP50: p50s[Math.floor(p50s.length / 2)] ?? 0,
    latencyMax: max((r) => r.latencyMax),
  };
}

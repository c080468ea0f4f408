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

export interface FaultMix {
  /** What `npm run simulate -- --mixes` calls it. */
  key: string;
  name: string;
  /** Fraction of the others each node knows. */
  viewFraction: number;
  /** Fractions of the live nodes (never the origin) drawn afresh for each broadcast. */
  droppers: number;
  crashed: number;
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

export interface MixOptions {
  broadcasts: number;
  strategies: readonly BroadcastStrategy[];
  random: () => number;
  /** Repair interval in rounds (default 20: 500 ms at 25 ms a hop). */
  repairRounds?: number;
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

export interface SimSummary {
  broadcasts: number;
  /** Worst broadcast: honest live nodes reached in the end, and by RainTree or gossip alone. */
  coverage: number;
  treeCoverage: number;
  maxDeliveries: number;
  /** Means per broadcast. */
  dataFrames: number;
  repairFrames: number;
  ihaveFrames: number;
  iwantFrames: number;
  controlBytes: number;
  duplicates: number;
  proxied: number;
  unrouted: number;
  misrouted: number;
  tooManyArcs: number;
  lost: number;
  /** Worst broadcast. */
  maxHops: number;
  /** Median over broadcasts of each one's median, and the worst delivery. */
  latencyP50: number;
  latencyMax: number;
}

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

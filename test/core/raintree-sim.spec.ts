import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/common/defaults.js';
import { MIN_DEGREE } from '../../src/discovery/discovery.js';
import { simulateBroadcast, type SimBroadcastOptions, type SimFaults } from '../../src/sim/broadcast.js';
import { degreeBound, rng } from '../../src/sim/ids.js';
import { FAULT_MIXES, runMix } from '../../src/sim/network-sim.js';
import { SimNet } from '../../src/sim/topology.js';

/**
 * Property tests of network-wide broadcast in the simulator (network-sim.ts),
 * which runs the node's own topology, routing and repair code over the
 * connections the nodes would hold.
 */

/** A settled network of `n` nodes, a random origin, and `droppers` and `crashed` fractions of the others. */
function scenario(n: number, seed: number, droppers: number, crashed: number, viewFraction = 1) {
  const random = rng(seed);
  const net = new SimNet(n, random, { viewFraction });
  net.settle();
  const origin = Math.floor(random() * n);
  const others = net.liveNodes().filter((node) => node !== origin);
  for (let i = others.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [others[i], others[j]] = [others[j]!, others[i]!];
  }
  const faults: SimFaults = {
    droppers: new Set(others.splice(0, Math.floor(droppers * n))),
    crashed: new Set(others.splice(0, Math.floor(crashed * n))),
  };
  const run = (options: Partial<SimBroadcastOptions> = {}) => simulateBroadcast(net, { origin, strategy: 'raintree', faults, random, ...options });
  return { net, run };
}

describe('RainTree with repair in simulation (property tests)', () => {
  it('reaches every honest live node exactly once, N from 1 to 2000, up to 10 % droppers and 10 % crashed after receipt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer(), fc.double({ min: 0, max: 0.1, noNaN: true }), fc.double({ min: 0, max: 0.1, noNaN: true }), (n, seed, droppers, crashed) => {
        const r = scenario(n, seed, droppers, crashed).run();
        expect(r.delivered).toBe(r.honest);
        expect(r.maxDeliveries).toBe(1);
      }),
      { numRuns: 80, seed: 1 },
    );
    // CPU-bound: about 15 s alone on these 2 cores, past the default 20 s when other suites share them.
  }, 60_000);

  it('in a healthy network: every node once, at most 1.3 N data frames, no node above the degree bound', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer(), (n, seed) => {
        const { net, run } = scenario(n, seed, 0, 0);
        const r = run();
        expect(r.delivered).toBe(n);
        expect(r.maxDeliveries).toBe(1);
        // From 10 to 27 nodes the degree bound is the floor of 8, and connections made to reach the floor fill every
        // slot for good (none is closed at the floor), so more thirds go through proxies: about 3 networks in 10 000
        // took more than 1.3 N there, at most 1.36 N (docs/broadcast.md, Simulation).
        const floorBound = n >= 10 && degreeBound(n) === MIN_DEGREE;
        expect(r.dataFrames).toBeLessThanOrEqual((floorBound ? 1.4 : 1.3) * n);
        const bound = degreeBound(n);
        for (const node of net.liveNodes()) expect(net.links[node]!.length).toBeLessThanOrEqual(bound);
        // Repair announces each id to broadcastRepairFanout neighbours and to those it is the designated announcer of
        // (one per node); a node that had to ask for it tells all its neighbours.
        expect(r.ihaveFrames).toBeLessThanOrEqual((DEFAULTS.broadcastRepairFanout + 1) * n + r.repairFrames * bound);
      }),
      { numRuns: 60, seed: 2 },
    );
    // CPU-bound as the one above: 20.2 s once alone here, past the default 20 s.
  }, 60_000);

  it('with 90 % views: every node once, at most 1.4 N data frames', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer(), (n, seed) => {
        const r = scenario(n, seed, 0, 0, 0.9).run();
        expect(r.delivered).toBe(n);
        expect(r.maxDeliveries).toBe(1);
        // Measured: at most 1.28 N in 6 800 networks (most near 1.05 N above 30 nodes); proxies and repair make the rest.
        expect(r.dataFrames).toBeLessThanOrEqual(1.4 * n);
      }),
      { numRuns: 40, seed: 3 },
    );
  });

  it('owes the faulty cases to repair: without it, droppers and crashed relays cut off whole arcs', () => {
    const { run } = scenario(1000, 7, 0.1, 0.1);
    const without = run({ repairRounds: 0 });
    const withRepair = run();
    expect(without.delivered).toBeLessThan(without.honest * 0.9);
    expect(withRepair.delivered).toBe(withRepair.honest);
    // One answer per node the tree missed (droppers ask too).
    expect(withRepair.repairFrames).toBeGreaterThanOrEqual(withRepair.honest - withRepair.deliveredByTree);
  });

  it('reaches every honest node with frozen relays and with churn', () => {
    for (const key of ['frozen', 'churn']) {
      const random = rng(11);
      const net = new SimNet(600, random);
      net.settle();
      const results = runMix(net, FAULT_MIXES.find((m) => m.key === key)!, { broadcasts: 3, strategies: ['raintree', 'gossip'], random });
      for (const r of [...results.values()].flat()) {
        expect(r.delivered).toBe(r.honest);
        expect(r.maxDeliveries).toBe(1);
      }
    }
  });

  it('is deterministic for a seed', () => {
    const a = scenario(500, 3, 0.1, 0.1).run();
    const b = scenario(500, 3, 0.1, 0.1).run();
    expect(b).toEqual(a);
  });
});

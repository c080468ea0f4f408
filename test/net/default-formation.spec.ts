import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressOf, broadcastFrom, connected, report, sleep, spawnNodes, startNode, statsOf, stopNodes, summary, until, type NodeProcess, type NodeStats } from '../net-processes.js';

/**
 * Issue 23: a network started with default settings, each node knowing one earlier node (chosen
 * at random), on 127.0.0.1 as a developer's first try runs it. It must form (every node at the
 * topology's least degree, all connected) and deliver every network broadcast to every node.
 * Before the fix, a node the only seed it knew refused for maxInboundPerIp learned no peers
 * (unlike a maxPeers refusal), and a pair of nodes stayed connected only to each other: degree 1,
 * 29 of 30 broadcasts missed. The time to reach the least degree is reported (P2P_TEST_STATS=1)
 * and asserted loosely (20 s from the last start; docs/operations.md gives the figures). P2P_FORMATION_NODES sets N (default 40).
 */
const N = Number(process.env.P2P_FORMATION_NODES ?? 40);
const FLOOR = Math.min(8, N - 1);
const BROADCASTS = 10;
/** Nothing but the listen address: LOOPBACK_LIMITS' raised per-IP limits are taken away again. */
const DEFAULTS_ONLY = { listen: '127.0.0.1:0', maxInboundPerIp: undefined, inboundRatePerIp: undefined };

/** A fixed pseudo-random sequence (a 32-bit LCG), so that a failure can be run again as it was. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32);
}

describe(`real sockets: ${N} node processes with default settings, each started knowing one earlier node`, () => {
  let nodes: NodeProcess[] = [];
  let startedAt = 0;
  let allStartedAt = 0;
  const degrees = (stats: readonly NodeStats[]) => stats.map((s) => s.peers.length);

  beforeAll(async () => {
    nodes = await spawnNodes(N);
    const next = random(23);
    startedAt = Date.now();
    for (let i = 0; i < N; i++) {
      const seed = i > 0 ? nodes[Math.floor(next() * i)]! : undefined;
      await startNode(nodes[i]!, { ...DEFAULTS_ONLY, peers: seed ? [addressOf(seed)] : [] });
    }
    allStartedAt = Date.now();
  }, 120_000);

  afterAll(() => stopNodes(nodes), 30_000);

  it(`forms: every node reaches the least degree (${FLOOR}) and all are connected`, async () => {
    let stats: NodeStats[] = [];
    const formed = await until(
      async () => {
        stats = await Promise.all(nodes.map(statsOf));
        return degrees(stats).every((d) => d >= FLOOR) && connected(nodes, stats);
      },
      90_000,
      250,
    );
    const d = summary(degrees(stats));
    report(`default settings, ${N} nodes: least degree ${FLOOR} reached ${formed ? `after ${Date.now() - startedAt} ms from the first start, ${Date.now() - allStartedAt} ms from the last` : 'NOT within 90 s'}; degree min ${d.min} max ${d.max} mean ${d.mean.toFixed(2)}`);
    expect(formed, `degrees ${degrees(stats).join(' ')}`).toBe(true);
    // Issue 23's target is 10 s for 20 nodes (1–4 s here for 20 and 40); asserted loosely, at twice that
    // from the last start, for CI's loaded cores: a return to the 30 s peer-exchange pace would fail it.
    expect(Date.now() - allStartedAt).toBeLessThanOrEqual(20_000);
  }, 100_000);

  it(`${BROADCASTS} network broadcasts from various nodes: each reaches all ${N} exactly once`, async () => {
    for (let b = 0; b < BROADCASTS; b++) {
      const from = nodes[(b * 17 + 5) % N]!;
      const id = await broadcastFrom(from, { b });
      const covered = await until(() => nodes.every((n) => (n.heard.get(id) ?? 0) >= 1), 10_000);
      await sleep(700); // a late copy (a duplicate) or a repair shows meanwhile
      const missed = nodes.filter((n) => !n.heard.has(id)).map((n) => n.index);
      expect(covered, `broadcast ${b} from node ${from.index} missed nodes ${missed.join(', ')}`).toBe(true);
      expect(nodes.map((n) => n.heard.get(id))).toEqual(Array(N).fill(1));
    }
  }, 180_000);
});

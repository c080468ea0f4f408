import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addressOf,
  connected,
  dataFrames,
  report,
  settle,
  sleep,
  spawnNodes,
  startNode,
  statsOf,
  stopNodes,
  total,
  until,
  type NodeProcess,
  type NodeStats,
} from '../net-processes.js';

/**
 * Issue 15: a node that joins with a partial view. A settled network of node
 * processes with a bounded degree (node i started knowing node i − 1); a new node
 * joins knowing one of them and broadcasts at once, before peer exchange has
 * told it (or, with peer exchange off, ever tells it) who else there is. Its
 * broadcasts must reach every node exactly once, without flooding (no copy cut as tooManyArcs),
 * within the bound on data frames; repair may carry what its view misses.
 */
const N = 20;
const D = 10;
const REPAIR_MS = 500;
const OPTIONS = { maxPeers: D, pexIntervalMs: 250, reconnectBaseMs: 100, reconnectMaxMs: 2000, broadcastRepairIntervalMs: REPAIR_MS };
/** Broadcasts per joiner: the first as soon as it is connected to the one peer it knows, each next one once the last has reached everyone. */
const PER_JOINER = 3;

describe(`real sockets: a node joins a settled network of ${N} processes (degree bound ${D}) knowing one peer`, () => {
  let nodes: NodeProcess[] = [];
  let spare: NodeProcess[] = [];

  beforeAll(async () => {
    // Both joiners load with the others; they start later.
    nodes = await spawnNodes(N + 2);
    spare = nodes.splice(N, 2);
    for (let i = 0; i < N; i++) await startNode(nodes[i]!, { ...OPTIONS, peers: i > 0 ? [addressOf(nodes[i - 1]!)] : [] });
    const { settled, stats } = await settle(nodes, 60_000);
    if (!settled || !connected(nodes, stats)) throw new Error(`the ${N} nodes did not settle into one network in 60 s: degrees ${stats.map((s) => s.peers.length).join(' ')}`);
  }, 120_000);

  afterAll(() => stopNodes([...nodes, ...spare]), 30_000);

  /**
   * Starts the joiner and sends its broadcasts, the first at once, each next one
   * once the last has reached everyone. Returns the data frames each cost the
   * network, and to how many peers (in how many copies) the joiner handed its first one.
   */
  async function join(joiner: NodeProcess, options: Record<string, unknown>, label: string) {
    const everyone = () => [...nodes, joiner];
    // The network is idle: its counters now are its counters when the joiner broadcasts.
    let before: NodeStats[] = await Promise.all(nodes.map(statsOf));
    before.push({ stats: zeroStats(), peers: [], handled: 0 }); // the joiner's counters start at zero
    const first = before;
    const frames: number[] = [];
    let handedTo = { copies: 0, peers: 0 };
    await startNode(joiner, options);
    for (let k = 0; k < PER_JOINER; k++) {
      const answer = await joiner.ask<{ id: string; sent: string[] }>({ op: 'broadcast', data: { label, k } });
      if (k === 0) handedTo = { copies: answer.sent.length, peers: new Set(answer.sent).size };
      const id = answer.id;
      const covered = await until(() => everyone().every((n) => n.heard.has(id)), 15_000, 20);
      await sleep(REPAIR_MS + 300); // a late copy or a repair would show by now
      const after = await Promise.all(everyone().map(statsOf));
      frames.push(total(after, dataFrames) - total(before, dataFrames));
      const missed = everyone().filter((n) => !n.heard.has(id));
      expect(covered, `${label} broadcast ${k}: nodes ${missed.map((n) => n.index).join(', ')} never got it`).toBe(true);
      expect(everyone().map((n) => n.heard.get(id))).toEqual(Array(everyone().length).fill(1));
      before = after;
    }
    return { frames, first, last: before, handedTo };
  }

  function check(label: string, size: number, result: Awaited<ReturnType<typeof join>>): void {
    const d = (pick: Parameters<typeof total>[1]) => total(result.last, pick) - total(result.first, pick);
    report(
      `${label}: ${size} nodes, it handed its first broadcast to ${result.handedTo.peers} peer(s) in ${result.handedTo.copies} copies; data frames per broadcast ${result.frames.join(', ')} (bound ${1.3 * size}); ` +
        `proxied ${d((s) => s.proxied)}, unrouted ${d((s) => s.unrouted)}, duplicates ${d((s) => s.duplicates)}, too many arcs ${d((s) => s.tooManyArcs)}; ` +
        `repair: announced ${d((s) => s.repair.announced)}, requested ${d((s) => s.repair.requested)}, sent ${d((s) => s.repair.sent)}`,
    );
    for (const f of result.frames) expect(f).toBeLessThanOrEqual(1.3 * size);
    expect(result.last.map((s) => s.handled)).toEqual(result.last.map((s) => s.stats.delivered));
    expect(d((s) => s.tooManyArcs)).toBe(0);
  }

  /**
   * A settled node with room for the joiner, so that it is not refused: below the degree bound, and with
   * room in its share of inbound connections not of its choosing (at most a third of its connections,
   * src/node/connections.ts), which it holds by refusing such dialers rather than by dialing more. A joiner
   * without peer exchange never learns another node to try, so it gets one whose outbound connections
   * alone leave room for one more inbound (2 × (inbound + 1) ≤ outbound), when there is one; else the
   * node with the most outbound connections for its inbound ones.
   */
  async function roomiest(): Promise<NodeProcess> {
    const stats = await Promise.all(nodes.map(statsOf));
    const count = (s: NodeStats, direction: 'inbound' | 'outbound') => s.peers.filter((p) => p.direction === direction).length;
    const room = stats.map((s) => (s.peers.length < D ? count(s, 'outbound') - 2 * (count(s, 'inbound') + 1) : -Infinity));
    const i = room.indexOf(Math.max(...room));
    expect(stats[i]!.peers.length).toBeLessThan(D);
    report(`joiner's peer: node ${nodes[i]!.index}, ${count(stats[i]!, 'outbound')} outbound and ${count(stats[i]!, 'inbound')} inbound connections`);
    return nodes[i]!;
  }

  it('with peer exchange: its first broadcasts, sent before it has learned the network, reach every node exactly once within the bound', async () => {
    const joiner = spare.shift()!;
    const result = await join(joiner, { ...OPTIONS, peers: [addressOf(await roomiest())] }, 'joiner with peer exchange');
    nodes.push(joiner);
    check('joiner with peer exchange', N + 1, result);
  }, 60_000);

  it('with peer exchange off (its view stays the one peer it knows): the same', async () => {
    const joiner = spare.shift()!;
    const result = await join(joiner, { ...OPTIONS, peerExchange: false, peers: [addressOf(await roomiest())] }, 'joiner without peer exchange');
    nodes.push(joiner);
    check('joiner without peer exchange', N + 2, result);
  }, 60_000);
});

/** Counters of a node that has done nothing yet. */
function zeroStats(): NodeStats['stats'] {
  return {
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
    dropped: {} as NodeStats['stats']['dropped'],
    repair: { announced: 0, requested: 0, sent: 0, controlBytes: 0 },
  };
}

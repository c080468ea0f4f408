import { afterEach, describe, expect, it } from 'vitest';
import { freeze, sleep, spawnNodes, startNode, stopNodes, thaw, until, type NodeProcess } from '../net-processes.js';

/**
 * Review of issue 22 after issues 23/24: the ping budget (200 a second, burst 400, keepalive.ts)
 * against an honest keepalive under load. A node that stalls (a long GC, a loaded host; here
 * SIGSTOP) finds every ping its neighbour sent meanwhile in one read. With the fastest ping
 * interval the configuration allows (10 ms: 100 a second), a stall of more than 4 s passed the
 * burst: after a 6 s stall V cut its honest neighbour off ("more than 200 pings a second", goodbye 1,
 * −50). Now a node keeps one ping in flight (keepalive.ts), so V reads one ping after its stall.
 */

const nodes: NodeProcess[] = [];
afterEach(async () => {
  for (const n of nodes) thaw(n);
  await stopNodes(nodes.splice(0));
});

describe('review 22: an honest keepalive at 10 ms against a neighbour that stalled for 6 s', () => {
  it('the stalled node keeps its honest neighbour: pings queued by its stall are not a flood', async () => {
    nodes.push(...(await spawnNodes(2)));
    const [v, h] = nodes as [NodeProcess, NodeProcess];
    await startNode(v, { pingIntervalMs: 10, pongTimeoutMs: 20_000 }, { trace: true });
    await startNode(h, { pingIntervalMs: 10, pongTimeoutMs: 20_000, peers: [`${v.id}@${v.address}`] }, { trace: true });
    expect(await until(async () => (await v.ask<{ peers: Array<{ id: string }> }>({ op: 'stats' })).peers.some((p) => p.id === h.id), 10_000)).toBe(true);
    freeze(v);
    await sleep(6_000);
    thaw(v);
    await sleep(1_500);
    const peers = (await v.ask<{ peers: Array<{ id: string }> }>({ op: 'stats' })).peers.map((p) => p.id);
    const cut = v.log.filter((l) => l.message.includes('pings a second'));
    console.log(`[ping stall] V's peers after a 6 s stall: ${peers.length}; lines about pings: ${cut.map((l) => l.message).join(' | ') || 'none'}`);
    expect(cut).toEqual([]);
    expect(peers).toContain(h.id);
  }, 40_000);
});

import { describe, expect, it } from 'vitest';
import type { Peer } from '../../src/node/peer.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { Registry } from 'prom-client';
import { P2PMetrics } from '../../src/nest/p2p.metrics.js';
import { waitFor } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Issue 24, item 3: events for subscribers only (`broadcast(…, { scope: 'subscribers' })`,
 * `P2PClient.emit` with no peer, `P2PService.emitPattern`), over real TCP between real nodes.
 * A node subscribes by the event patterns of its directory record (its `@EventPattern`
 * handlers, or `setHandledPatterns` for a core node).
 */
const { node, mesh, heardOf } = broadcastMeshes();

/** Until every node knows `count` subscribers of `topic`. */
const known = (nodes: Peer[], topic: string, count: number) =>
  waitFor(() => nodes.every((n) => n.handlers(topic, 'event').length === count), 5000, `every node to know ${count} subscribers of ${topic}`);

describe('events for subscribers only, over real sockets', () => {
  it('reach every node with a matching event pattern (wildcards too), the sender included, each once; no other node delivers', async () => {
    const nodes = await mesh(false, 8);
    const subscribe = (i: number, events: string[]) => nodes[i]!.setHandledPatterns({ requests: [], events });
    subscribe(1, ['orders.*']);
    subscribe(3, ['orders.>']);
    subscribe(5, ['orders.created']);
    subscribe(6, ['orders.created', 'payments.*']);
    subscribe(2, ['orders.created.late']); // one token too many for orders.created
    subscribe(4, ['orders.*']);
    // Node 4 only requests the pattern, its events are elsewhere: a request handler is no subscription.
    nodes[7]!.setHandledPatterns({ requests: ['orders.created'], events: [] });
    await known(nodes, 'orders.created', 5);

    const fromOutside = nodes[0]!.broadcast('orders.created', { n: 1 }, { scope: 'subscribers' });
    expect(fromOutside.subscribers).toBe(5);
    const fromInside = nodes[4]!.broadcast('orders.created', { n: 2 }, { scope: 'subscribers' });
    const subscribers = [1, 3, 4, 5, 6].map((i) => nodes[i]!.id).sort();
    await waitFor(() => heardOf(fromOutside.id!).length === 5 && heardOf(fromInside.id!).length === 5, 5000, 'both events at their subscribers');
    await sleep(600); // three repair intervals: any late or extra copy would show
    expect(heardOf(fromOutside.id!)).toEqual(subscribers);
    expect(heardOf(fromInside.id!)).toEqual(subscribers);
    // Non-subscribers delivered nothing of it; the sender with no handler neither.
    for (const i of [0, 2, 7]) expect(nodes[i]!.networkBroadcastStats().delivered).toBe(0);
  });

  it('with no subscriber known the sender is told so (subscribers: 0) and no frame goes out', async () => {
    const nodes = await mesh(false, 4);
    const sentBefore = nodes.reduce((a, n) => a + n.networkBroadcastStats().sent, 0);
    const result = nodes[0]!.broadcast('nobody.listens', { n: 1 }, { scope: 'subscribers' });
    expect(result).toMatchObject({ subscribers: 0, sent: [], failed: [] });
    await sleep(500);
    expect(nodes.reduce((a, n) => a + n.networkBroadcastStats().sent, 0)).toBe(sentBefore);
    expect(heardOf(result.id!)).toEqual([]);
  });

  it('a node that subscribes to everything (`>`) and drops what it should relay loses no honest subscriber an event: repair fills in, every honest subscriber gets each once', async () => {
    // 10 nodes; the greedy node G is the origin's only neighbour in the third of the ring that holds it, so the
    // origin hands G every event for that third (a subscriber inside an arc is preferred, as any subscriber is).
    const nodes: Peer[] = [];
    for (let i = 0; i < 10; i++) nodes.push(await node(false, { maxInboundPerIp: 20 }));
    const third = (p: Peer) => Math.floor((parseInt(p.id.slice(0, 8), 16) * 3) / 2 ** 32);
    const byThird = [0, 1, 2].map((t) => nodes.filter((p) => third(p) === t));
    const crowded = byThird.reduce((a, b) => (b.length > a.length ? b : a));
    const greedy = crowded[0]!;
    const origin = nodes.find((p) => third(p) !== third(greedy))!;
    const cutOff = new Set(crowded.slice(1).map((p) => p.id));
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const [a, b] = [nodes[i]!, nodes[j]!];
        if ((a === origin && cutOff.has(b.id)) || (b === origin && cutOff.has(a.id))) continue;
        await a.connect(`${b.id}@${b.address()}`);
      }
    }
    const honest = nodes.filter((p) => p !== origin && p !== greedy);
    greedy.setHandledPatterns({ requests: [], events: ['>'] });
    for (const p of honest) p.setHandledPatterns({ requests: [], events: ['metrics.cpu'] });
    await known(nodes, 'metrics.cpu', honest.length + 1);
    // From here on it accepts and delivers, and relays and repairs nothing (test flags, as PeerOptions.dropRelays).
    const pipeline = (greedy as unknown as { broadcasts: { pipeline: { router: { dropRelays: boolean }; repair: { silent: boolean } } } }).broadcasts.pipeline;
    pipeline.router.dropRelays = true;
    pipeline.repair.silent = true;
    const ids: string[] = [];
    for (let e = 0; e < 10; e++) ids.push(origin.broadcast('metrics.cpu', { e }, { scope: 'subscribers' }).id!);
    const want = [...honest.map((p) => p.id), greedy.id].sort();
    await waitFor(() => ids.every((id) => heardOf(id).length === want.length), 8000, 'every subscriber to get every event');
    await sleep(600);
    for (const id of ids) expect(heardOf(id)).toEqual(want);
    // It was handed arcs holding other subscribers and dropped them: repair sent what it held back.
    expect(cutOff.size).toBeGreaterThan(0);
    expect(nodes.reduce((a, n) => a + n.networkBroadcastStats().repair.sent, 0)).toBeGreaterThanOrEqual(10);
  });

  it('metrics: events sent and delivered by subject, and handlers known per pattern', async () => {
    const nodes = await mesh(false, 3);
    nodes[1]!.setHandledPatterns({ requests: ['orders.get'], events: ['orders.*'] });
    nodes[2]!.setHandledPatterns({ requests: [], events: ['orders.*'] });
    await known(nodes, 'orders.created', 2);
    const registries = nodes.map(() => new Registry());
    const metrics = nodes.map((n, i) => new P2PMetrics(n, registries[i]));
    try {
      const ids = [0, 1, 2].map(() => nodes[0]!.broadcast('orders.created', {}, { scope: 'subscribers' }).id!);
      await waitFor(() => ids.every((id) => heardOf(id).length === 2), 5000, 'the events at both subscribers');
      const values = async (i: number, name: string) =>
        ((await registries[i]!.getMetricsAsJSON()) as Array<{ name: string; values: Array<{ value: number; labels: Record<string, string> }> }>).find((m) => m.name === name)!.values;
      expect(await values(0, 'p2p_events_total')).toEqual([expect.objectContaining({ value: 3, labels: { pattern: 'orders.created', outcome: 'sent' } })]);
      expect(await values(1, 'p2p_events_total')).toEqual([expect.objectContaining({ value: 3, labels: { pattern: 'orders.created', outcome: 'delivered' } })]);
      expect(await values(0, 'p2p_handlers_known')).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ value: 2, labels: { pattern: 'orders.*', kind: 'event' } }),
          expect.objectContaining({ value: 1, labels: { pattern: 'orders.get', kind: 'request' } }),
        ]),
      );
    } finally {
      metrics.forEach((m) => m.onModuleDestroy());
    }
  });
});

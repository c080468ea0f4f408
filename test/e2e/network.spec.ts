import { Controller, type INestApplication } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P2P_NODE, P2PModule, P2PServer, P2PService, type P2PContext, type Peer } from '../../src/index.js';
import { MIN_DEGREE } from '../../src/discovery/discovery.js';
import { waitFor } from '../helpers.js';

interface Heard {
  id: string;
  origin: string;
  data: unknown;
}

@Controller()
class NewsController {
  readonly heard: Heard[] = [];

  @EventPattern<string>('net.news')
  news(@Payload() data: unknown, @Ctx() ctx: P2PContext): void {
    const b = ctx.getBroadcast();
    if (b) this.heard.push({ id: b.id, origin: b.origin, data });
  }
}

interface NetNode {
  app: INestApplication;
  service: P2PService;
  news: NewsController;
}

async function startNetNode(peers: string[]): Promise<NetNode> {
  const moduleRef = await Test.createTestingModule({
    // Twenty nodes on one host: every dial comes from 127.0.0.1, so the per-IP limits are raised as for any loopback network.
    imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peers, pexIntervalMs: 100, reconnectBaseMs: 50, maxInboundPerIp: 40, inboundRatePerIp: 100 })],
    controllers: [NewsController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  return { app, service: app.get(P2PService), news: app.get(NewsController) };
}

const N = 20;

describe(`a network of ${N} Nest apps, each started knowing one other`, () => {
  const nodes: NetNode[] = [];
  const stopped = new Set<NetNode>();

  beforeAll(async () => {
    for (let i = 0; i < N; i++) {
      const prev = nodes[i - 1];
      nodes.push(await startNetNode(prev ? [`${prev.service.id}@${prev.service.address()}`] : []));
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.filter((n) => !stopped.has(n)).map((n) => n.app.close()));
  });

  const live = () => nodes.filter((n) => !stopped.has(n));

  /** Broadcasts from `from` and waits until every live node's handler has it; returns per-node counts. */
  async function networkBroadcast(from: NetNode, data: unknown, strategy?: 'raintree' | 'gossip'): Promise<number[]> {
    const result = await from.service.broadcast('net.news', data, { scope: 'network', strategy });
    expect(result.id).toMatch(/^[0-9a-f]{32}$/);
    const count = (n: NetNode) => n.news.heard.filter((h) => h.id === result.id).length;
    // 10 s: views that differ make this a gossip flood of about 300 TLS sends, and the suite runs files in parallel on 2 cores.
    await waitFor(() => live().every((n) => count(n) >= 1), 10_000, 'every live node to hear the broadcast').catch((err: Error) => {
      // Say which nodes missed it, and what they saw: a miss is a coverage bug, a slow run is not.
      const missed = live().filter((n) => count(n) === 0);
      const detail = missed.map((n) => `${n.service.id.slice(0, 6)} (peers ${n.service.peers().length}, known ${(n.app.get(P2P_NODE) as Peer).knownPeers().length}, stats ${JSON.stringify(n.service.networkBroadcastStats())})`);
      throw new Error(`${err.message}: ${missed.length} missed it: ${detail.join('; ')}`);
    });
    await new Promise((r) => setTimeout(r, 300)); // time for any duplicate to show up
    for (const n of live()) expect(n.news.heard.find((h) => h.id === result.id)).toEqual({ id: result.id, origin: from.service.id, data });
    return live().map(count);
  }

  it('reaches at least min(8, N − 1) connections everywhere through peer exchange', async () => {
    const target = Math.min(MIN_DEGREE, N - 1);
    await waitFor(() => nodes.every((n) => n.service.peers().length >= target), 20_000, 'every node to reach its target degree');
    for (const n of nodes) expect(n.service.peers().length).toBeGreaterThanOrEqual(target);
  }, 30_000);

  it('delivers a RainTree network broadcast to all 20 handlers exactly once, in about N − 1 sends', async () => {
    const total = (key: 'sent' | 'duplicates' | 'tooManyArcs' | 'repair') =>
      nodes.reduce((a, n) => {
        const stats = n.service.networkBroadcastStats();
        return a + (key === 'repair' ? stats.repair.sent : stats[key]);
      }, 0);
    const before = { sent: total('sent') + total('repair'), duplicates: total('duplicates'), fallbacks: total('tooManyArcs') };
    const counts = await networkBroadcast(nodes[7]!, { headline: 'to everyone' });
    expect(counts).toEqual(Array(N).fill(1));
    const sentNow = () => total('sent') + total('repair') - before.sent;
    const duplicatesNow = () => total('duplicates') - before.duplicates;
    // Every data frame (RainTree, proxy or repair) is either a first delivery (N − 1 of them) or a duplicate the
    // seen-cache dropped, once the copies in flight have arrived (a loaded machine can take longer than the 300 ms above).
    await waitFor(() => sentNow() === N - 1 + duplicatesNow(), 3000, 'every copy sent to be counted where it arrived').catch(() => undefined);
    const sent = sentNow();
    const duplicates = duplicatesNow();
    const fallbacks = total('tooManyArcs') - before.fallbacks;
    if (process.env.P2P_TEST_STATS) process.stdout.write(`raintree: ${sent} sends, ${duplicates} duplicates, ${fallbacks} refused for too many arcs\n`);
    expect(sent).toBe(N - 1 + duplicates);
    expect(fallbacks).toBe(0);
    expect(sent).toBeLessThanOrEqual(Math.ceil(1.3 * N));
  });

  it('delivers a gossip network broadcast exactly once too', async () => {
    expect(await networkBroadcast(nodes[3]!, 'gossip news', 'gossip')).toEqual(Array(N).fill(1));
  });

  it('with 3 nodes stopped, the remaining 17 all receive it exactly once', async () => {
    for (const i of [2, 9, 15]) {
      stopped.add(nodes[i]!);
      await nodes[i]!.app.close();
    }
    await waitFor(() => live().every((n) => n.service.peers().every((p) => !nodes.some((s) => stopped.has(s) && s.service.id === p.id))), 5000, 'the stops to be noticed');
    expect(await networkBroadcast(nodes[0]!, 'after the stops')).toEqual(Array(N - 3).fill(1));
    expect(await networkBroadcast(nodes[19]!, 'gossip after the stops', 'gossip')).toEqual(Array(N - 3).fill(1));
  });
});

// `npm run soak -- [--minutes 10] [--nodes 10]`: mixed traffic among Nest apps with random
// disconnects. Reports requests sent, replies received, errors by type and RSS over time, and
// fails if any accepted request ends with neither a reply nor an error. Not part of CI.
import 'reflect-metadata';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { parseArgs } from 'node:util';
import { P2PModule, P2PServer, P2PService } from 'nestjs-p2p';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '10' },
    'report-every': { type: 'string', default: '30' },
  },
});
const durationMs = Number(args.minutes) * 60_000;
const nodeCount = Number(args.nodes);
const reportEveryMs = Number(args['report-every']) * 1000;

@Controller()
class SoakController {
  events = 0;
  @EventPattern<string>('soak.event')
  event(): void {
    this.events++;
  }
  @MessagePattern('soak.echo')
  async echo(@Payload() data: unknown): Promise<unknown> {
    if (Math.random() < 0.05) await new Promise((r) => setTimeout(r, 50)); // some slow handlers
    return data;
  }
}

@Module({ controllers: [SoakController] })
class HandlersModule {}

async function startNode(peers: string[]): Promise<INestApplication> {
  @Module({ imports: [HandlersModule, P2PModule.forRoot({ listen: '127.0.0.1:0', peers, pexIntervalMs: 1000, reconnectBaseMs: 100, reconnectMaxMs: 2000, timeoutMs: 2000 })] })
  class SoakNodeModule {}
  const app = await NestFactory.create(SoakNodeModule, { logger: ['error'] });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  return app;
}

const stats = { sent: 0, replies: 0, wrong: 0, pending: 0, events: 0, broadcasts: 0, disconnects: 0, errors: new Map<string, number>() };
const countError = (err: unknown) => {
  const name = (err as Error)?.constructor?.name ?? 'unknown';
  stats.errors.set(name, (stats.errors.get(name) ?? 0) + 1);
};
const say = (s: string) => process.stdout.write(s + '\n');
const mib = (n: number) => (n / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  const apps: INestApplication[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const prev = apps[i - 1]?.get(P2PService);
    apps.push(await startNode(prev ? [`${prev.id}@${prev.address()}`] : []));
  }
  const services = apps.map((a) => a.get(P2PService));
  say(`soak: ${nodeCount} nodes, ${args.minutes} min of mixed traffic with random disconnects`);
  const started = Date.now();
  const rss: number[] = [];
  const heap: number[] = [];
  const report = () => {
    global.gc?.(); // with --expose-gc the heap figure is live data, not garbage not yet collected
    const { rss: m, heapUsed } = process.memoryUsage();
    rss.push(m);
    heap.push(heapUsed);
    const errors = [...stats.errors].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    say(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  requests ${stats.sent}  replies ${stats.replies}  pending ${stats.pending}  events ${stats.events}  broadcasts ${stats.broadcasts}  disconnects ${stats.disconnects}  errors: ${errors}  rss ${mib(m)} MiB  heap ${mib(heapUsed)} MiB`);
  };
  const timer = setInterval(report, reportEveryMs);
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

  while (Date.now() - started < durationMs) {
    const from = pick(services);
    const peers = from.peers();
    const roll = Math.random();
    if (peers.length > 0) {
      const to = pick(peers).id;
      if (roll < 0.6) {
        const n = stats.sent++;
        stats.pending++;
        from.request(to, 'soak.echo', { n, pad: 'x'.repeat(Math.floor(Math.random() * 2048)) }).then(
          (reply) => {
            stats.replies++;
            if ((reply as { n: number }).n !== n) stats.wrong++;
          },
          countError,
        ).finally(() => stats.pending--);
      } else if (roll < 0.9) {
        from.send(to, 'soak.event', Buffer.alloc(256)).then(() => stats.events++, countError);
      } else if (roll < 0.995) {
        from.broadcast('soak.event', 'to all', { scope: 'network' }).then(() => stats.broadcasts++, countError);
      } else {
        stats.disconnects++;
        from.disconnect(to).catch(countError); // peer exchange and persistent peers bring it back
      }
    }
    // Bounded rate: a burst, then let I/O run.
    if (stats.sent % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    else await new Promise((r) => setImmediate(r));
  }

  // Drain: every accepted request must end in a reply or an error within its timeout.
  const drainUntil = Date.now() + 5000;
  while (stats.pending > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  clearInterval(timer);
  report();
  await Promise.all(apps.map((a) => a.close()));
  const settled = stats.replies + [...stats.errors.values()].reduce((a, b) => a + b, 0);
  say(`\nrequests sent ${stats.sent}, replies ${stats.replies}, wrong replies ${stats.wrong}, still pending ${stats.pending}`);
  say(`errors by type (requests, sends, broadcasts, disconnects): ${[...stats.errors].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  say(`rss: first ${mib(rss[0] ?? 0)} MiB, last ${mib(rss[rss.length - 1] ?? 0)} MiB, max ${mib(Math.max(...rss))} MiB`);
  say(`heap used: first ${mib(heap[0] ?? 0)} MiB, last ${mib(heap[heap.length - 1] ?? 0)} MiB, max ${mib(Math.max(...heap))} MiB`);
  if (stats.pending > 0 || stats.wrong > 0 || settled < stats.sent) {
    say('FAIL: some accepted requests ended with neither a reply nor an error, or got a wrong reply');
    process.exit(1);
  }
  say('OK: every request ended in a reply or a typed error');
}

main().catch((err: Error) => {
  process.stderr.write(`soak failed: ${err.stack}\n`);
  process.exit(1);
});

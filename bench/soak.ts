// `npm run soak -- --help`: mixed traffic among Nest apps in one process, with random disconnects.
// Fails when an accepted request ends with neither a reply nor an error, or when the heap after a
// forced GC keeps growing once every cache is full (bench/README.md, Soak).
import 'reflect-metadata';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { P2P_NODE, P2PModule, P2PServer, P2PService } from 'nestjs-p2p';
import { describeHoldings, retainedBy, sumRetained, type Retained } from './lib/retained.js';
import { fitGrowth, fitGrowthBeside, interpolate, sampleAt } from './lib/stats.js';

const HELP = `npm run soak -- [options]

  --minutes M        traffic for M minutes (default 10; --ci: 1.5)
  --nodes N          Nest apps in this process (default 10)
  --rate R           operations a second, all nodes together, paced (default 1500; --ci: 1000):
                     60 % requests, 30 % events, 9.5 % network broadcasts, 0.5 % disconnects
  --report-every S   a line, and a heap sample after a forced GC, every S seconds (default 30; --ci: 5)
  --window S         the nodes' replay window, broadcastCacheTtlMs, in seconds (default 120; --ci: 20)
  --warmup S         samples before S seconds are not fitted: the caches fill first
                     (default: the window + 30 s; --ci: the window + 20 s)
  --max-growth MiB   fail when the heap after GC grows faster than this many MiB a minute at the
                     --rate asked for, once warmed up (default 1; --ci: 5)
  --without LIST     leave out traffic kinds: broadcasts, disconnects, events, requests (comma-separated)
  --probe            also print, every report, the node state that holds the most entries
                     (bench/lib/retained.ts) and what grew
  --json FILE        write the result (samples, fit, verdict) to FILE
  --ci               CI's short run: --minutes 1.5 --rate 1000 --window 20 --report-every 5 --max-growth 5

Fails (exit 1) when an accepted request ended with neither a reply nor a typed error, or got a
wrong reply, or when the heap after GC grew faster than --max-growth once warmed up. The growth is
the least-squares slope of the heap after GC over the operations served, after the warm-up, with
what the replay windows hold (the broadcasts of the last window, at a cost per broadcast fitted over
the whole run) taken off: when the machine cannot keep the pace, the windows hold fewer broadcasts,
and a plain slope over time takes that for shrinkage or growth. Why these thresholds: bench/README.md.
Run with node --expose-gc (npm run soak does).`;

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string' },
    nodes: { type: 'string', default: '10' },
    rate: { type: 'string' },
    'report-every': { type: 'string' },
    window: { type: 'string' },
    warmup: { type: 'string' },
    'max-growth': { type: 'string' },
    without: { type: 'string', default: '' },
    probe: { type: 'boolean', default: false },
    json: { type: 'string' },
    ci: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}
const ci = args.ci;
const num = (name: string, value: string | undefined, fallback: number): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${name} ${value}: not a number\n\n${HELP}\n`);
    process.exit(2);
  }
  return n;
};
const durationMs = num('minutes', args.minutes, ci ? 1.5 : 10) * 60_000;
const nodeCount = num('nodes', args.nodes, 10);
const rate = num('rate', args.rate, ci ? 1000 : 1500);
const reportEveryMs = num('report-every', args['report-every'], ci ? 5 : 30) * 1000;
const windowMs = num('window', args.window, ci ? 20 : 120) * 1000;
const warmupMs = num('warmup', args.warmup, windowMs / 1000 + (ci ? 20 : 30)) * 1000;
const maxGrowth = num('max-growth', args['max-growth'], ci ? 5 : 1);
const without = new Set(args.without.split(',').filter(Boolean));
for (const kind of without) {
  if (!['broadcasts', 'disconnects', 'events', 'requests'].includes(kind)) {
    process.stderr.write(`--without ${kind}: not a traffic kind\n\n${HELP}\n`);
    process.exit(2);
  }
}
/** The fit needs a few points past the warm-up to say anything. */
const MIN_FITTED_SAMPLES = 5;
if ((durationMs - warmupMs) / reportEveryMs < MIN_FITTED_SAMPLES) {
  process.stderr.write(
    `${durationMs / 60_000} min leaves fewer than ${MIN_FITTED_SAMPLES} reports of every ${reportEveryMs / 1000} s after a warm-up of ${warmupMs / 1000} s: nothing to fit. Run longer or report more often.\n`,
  );
  process.exit(2);
}
if (typeof global.gc !== 'function') {
  process.stderr.write('run with node --expose-gc (npm run soak does): heap figures without a forced GC hold garbage\n');
  process.exit(2);
}

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
  @Module({
    imports: [
      HandlersModule,
      P2PModule.forRoot({ listen: '127.0.0.1:0', peers, pexIntervalMs: 1000, reconnectBaseMs: 100, reconnectMaxMs: 2000, timeoutMs: 2000, broadcastCacheTtlMs: windowMs }),
    ],
  })
  class SoakNodeModule {}
  const app = await NestFactory.create(SoakNodeModule, { logger: ['error'] });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  return app;
}

const stats = { ops: 0, sent: 0, replies: 0, wrong: 0, pending: 0, events: 0, broadcasts: 0, disconnects: 0, errors: new Map<string, number>() };
const countError = (err: unknown) => {
  const name = (err as Error)?.constructor?.name ?? 'unknown';
  stats.errors.set(name, (stats.errors.get(name) ?? 0) + 1);
};
const say = (s: string) => process.stdout.write(s + '\n');
const mib = (n: number) => (n / 2 ** 20).toFixed(1);

interface Sample {
  /** Seconds since traffic started. */
  t: number;
  heapMiB: number;
  rssMiB: number;
  /** ArrayBuffer backing stores (Buffers), outside the V8 heap. */
  arrayBuffersMiB: number;
  broadcasts: number;
  requests: number;
  ops: number;
}

async function main(): Promise<void> {
  const apps: INestApplication[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const prev = apps[i - 1]?.get(P2PService);
    apps.push(await startNode(prev ? [`${prev.id}@${prev.address()}`] : []));
  }
  const services = apps.map((a) => a.get(P2PService));
  // The core node, and the Nest side of it (server, service): what the probe walks.
  const roots = apps.map((a) => ({ node: a.get<symbol, object>(P2P_NODE), server: a.get(P2PServer), service: a.get(P2PService) }));
  const left = without.size ? ` without ${[...without].join(', ')}` : '';
  say(
    `soak: ${nodeCount} nodes, ${durationMs / 60_000} min of mixed traffic${left}; replay window ${windowMs / 1000} s; ` +
      `heap growth fitted after ${warmupMs / 1000} s, at most ${maxGrowth} MiB/min`,
  );
  const started = Date.now();
  const samples: Sample[] = [];
  let probed: Retained | undefined;
  const report = (): Sample => {
    global.gc!(); // the heap figure is then live data, not garbage not yet collected
    const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
    const sample = { t: (Date.now() - started) / 1000, heapMiB: heapUsed / 2 ** 20, rssMiB: rss / 2 ** 20, arrayBuffersMiB: arrayBuffers / 2 ** 20, broadcasts: stats.broadcasts, requests: stats.sent, ops: stats.ops };
    const errors = [...stats.errors].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    const prev = samples.at(-1) ?? { t: 0, ops: 0 };
    say(
      `${sample.t.toFixed(0).padStart(5)} s  ${((sample.ops - prev.ops) / (sample.t - prev.t)).toFixed(0)} ops/s  requests ${stats.sent}  replies ${stats.replies}  pending ${stats.pending}  events ${stats.events}  broadcasts ${stats.broadcasts}  ` +
        `disconnects ${stats.disconnects}  errors: ${errors}  rss ${mib(rss)} MiB  heap ${mib(heapUsed)} MiB  buffers ${mib(arrayBuffers)} MiB`,
    );
    if (args.probe) {
      const now = sumRetained(roots.map((root) => retainedBy(root)));
      say(`  held by the ${nodeCount} nodes: ${now.objects} objects, ${mib(now.bufferBytes)} MiB of buffers; most entries:`);
      for (const line of describeHoldings(now, probed)) say(line);
      probed = now;
    }
    return sample;
  };
  const timer = setInterval(() => samples.push(report()), reportEveryMs);
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

  let paceFrom = started;
  while (Date.now() - started < durationMs) {
    const from = pick(services);
    const peers = from.peers();
    const roll = Math.random();
    if (peers.length > 0) {
      const to = pick(peers).id;
      if (roll < 0.6) {
        if (!without.has('requests')) {
          const n = stats.sent++;
          stats.pending++;
          from.request(to, 'soak.echo', { n, pad: 'x'.repeat(Math.floor(Math.random() * 2048)) }).then(
            (reply) => {
              stats.replies++;
              if ((reply as { n: number }).n !== n) stats.wrong++;
            },
            countError,
          ).finally(() => stats.pending--);
        }
      } else if (roll < 0.9) {
        if (!without.has('events')) from.send(to, 'soak.event', Buffer.alloc(256)).then(() => stats.events++, countError);
      } else if (roll < 0.995) {
        if (!without.has('broadcasts')) from.broadcast('soak.event', 'to all', { scope: 'network' }).then(() => stats.broadcasts++, countError);
      } else if (!without.has('disconnects')) {
        stats.disconnects++;
        from.disconnect(to).catch(countError); // peer exchange and persistent peers bring it back
      }
    }
    // Paced: what is held per broadcast depends on how many arrived in the last window, so a rate that
    // followed the machine's load made the heap swing by 10 MiB and more. Ahead of time: sleep; behind:
    // only let I/O run, and drop a debt of more than a second (the machine cannot keep up: reported).
    const ahead = paceFrom + (++stats.ops / rate) * 1000 - Date.now();
    if (ahead >= 5) await new Promise((r) => setTimeout(r, ahead));
    else {
      if (ahead < -1000) paceFrom -= ahead + 1000;
      await new Promise((r) => setImmediate(r));
    }
  }

  // Drain: every accepted request must end in a reply or an error within its timeout.
  const drainUntil = Date.now() + 5000;
  while (stats.pending > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  clearInterval(timer);
  const drained = report();
  await Promise.all(apps.map((a) => a.close()));
  const settled = stats.replies + [...stats.errors.values()].reduce((a, b) => a + b, 0);
  const requestsOk = !(stats.pending > 0 || stats.wrong > 0 || settled < stats.sent);

  const fitted = samples.filter((s) => s.t >= warmupMs / 1000);
  const plain = fitGrowth(fitted.map((s) => [s.t / 60, s.heapMiB]));
  // Fitted on the operations served, with what the replay windows hold taken off (bench/README.md, Soak).
  const sent = (t: number) => interpolate([{ t: 0, broadcasts: 0 }, ...samples], t);
  const perOp = fitGrowthBeside(
    samples.map((s) => ({ x: s.ops, y: s.heapMiB, held: sent(s.t) - sent(s.t - windowMs / 1000) })),
    (p) => p.x >= (fitted[0]?.ops ?? Infinity),
  );
  const growth = { slope: perOp.slope * rate * 60, se: perOp.slopeSe * rate * 60, residualSd: perOp.residualSd, perItem: perOp.perItem };
  // What the windows hold at a sample, in MiB: taken off to compare two samples taken at different paces.
  const heldAt = (s: Sample) => growth.perItem * (sent(s.t) - sent(s.t - windowMs / 1000));
  const perSec = (pick: (s: Sample) => number) => (fitted.length > 1 ? (pick(fitted.at(-1)!) - pick(fitted[0]!)) / (fitted.at(-1)!.t - fitted[0]!.t) : 0);
  const broadcastRate = perSec((s) => s.broadcasts);
  const opsRate = perSec((s) => s.ops);
  const growthOk = growth.slope <= maxGrowth;
  const at5 = durationMs >= 6 * 60_000 ? sampleAt(samples, 300) : undefined;
  const last = samples.at(-1);

  say(`\nrequests sent ${stats.sent}, replies ${stats.replies}, wrong replies ${stats.wrong}, still pending ${stats.pending}`);
  say(`errors by type (requests, sends, broadcasts, disconnects): ${[...stats.errors].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  const range = (pick: (s: Sample) => number) => `first ${pick(samples[0]!).toFixed(1)} MiB, last ${pick(last!).toFixed(1)} MiB, max ${Math.max(...samples.map(pick)).toFixed(1)} MiB`;
  say(`rss: ${range((s) => s.rssMiB)}`);
  say(`heap used after GC: ${range((s) => s.heapMiB)}; after the drain ${drained.heapMiB.toFixed(1)} MiB`);
  say(`buffers (outside the heap) after GC: ${range((s) => s.arrayBuffersMiB)}`);
  if (at5 && last) {
    const change = (a: number, b: number) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)} %`;
    const [a, b] = [at5.heapMiB - heldAt(at5), last.heapMiB - heldAt(last)];
    say(
      `heap after GC at ${at5.t.toFixed(0)} s ${at5.heapMiB.toFixed(1)} MiB, at ${last.t.toFixed(0)} s ${last.heapMiB.toFixed(1)} MiB: ${change(at5.heapMiB, last.heapMiB)}; ` +
        `less what the windows held then (${heldAt(at5).toFixed(1)} and ${heldAt(last).toFixed(1)} MiB): ${a.toFixed(1)} and ${b.toFixed(1)} MiB, ${change(a, b)}`,
    );
  }
  say(
    `heap growth after ${warmupMs / 1000} s: ${growth.slope.toFixed(2)} ± ${growth.se.toFixed(2)} MiB/min at ${rate} operations/s (${((perOp.slope * 2 ** 20) || 0).toFixed(1)} B an operation, ` +
      `least squares over ${fitted.length} samples, less ${((growth.perItem * 2 ** 20) / nodeCount).toFixed(0)} B per node for each broadcast of the last window; ` +
      `residual sd ${growth.residualSd.toFixed(2)} MiB), at most ${maxGrowth} MiB/min; plain slope over time ${plain.slope.toFixed(2)} MiB/min`,
  );
  say(`after the warm-up: ${opsRate.toFixed(0)} operations/s, ${broadcastRate.toFixed(0)} network broadcasts/s`);
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          ok: requestsOk && growthOk,
          requestsOk,
          growthOk,
          minutes: durationMs / 60_000,
          nodes: nodeCount,
          windowS: windowMs / 1000,
          warmupS: warmupMs / 1000,
          maxGrowthMiBPerMin: maxGrowth,
          growthMiBPerMin: growth.slope,
          growthSeMiBPerMin: growth.se,
          growthBytesPerOp: perOp.slope * 2 ** 20,
          residualSdMiB: growth.residualSd,
          heldBytesPerBroadcastPerNode: (growth.perItem * 2 ** 20) / nodeCount,
          plainSlopeMiBPerMin: plain.slope,
          fittedSamples: fitted.length,
          rate,
          opsPerSec: opsRate,
          broadcastsPerSec: broadcastRate,
          requests: { sent: stats.sent, replies: stats.replies, wrong: stats.wrong, pending: stats.pending, settled },
          errors: Object.fromEntries(stats.errors),
          samples,
        },
        null,
        2,
      ) + '\n',
    );
  }
  if (opsRate < 0.9 * rate) say(`note: ${opsRate.toFixed(0)} operations a second after the warm-up, below the ${rate} asked for: the machine is busy, and the heap noisier`);
  if (!requestsOk) say('FAIL: some accepted requests ended with neither a reply nor an error, or got a wrong reply');
  else say('OK: every request ended in a reply or a typed error');
  if (!growthOk) say(`FAIL: the heap after GC grew ${growth.slope.toFixed(2)} MiB/min after the warm-up, more than ${maxGrowth} MiB/min: something is retained without bound (rerun with --probe)`);
  else say(`OK: the heap after GC stayed flat after the warm-up (${growth.slope.toFixed(2)} MiB/min)`);
  if (!requestsOk || !growthOk) process.exit(1);
}

main().catch((err: Error) => {
  process.stderr.write(`soak failed: ${err.stack}\n`);
  process.exit(1);
});

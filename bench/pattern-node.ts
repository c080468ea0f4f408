// One node of the `pattern-requests` scenario (lib/pattern-requests.ts): a Nest app with P2PModule in
// its own process. A handler node answers `@MessagePattern('bench.echo')` and counts what it answered;
// the client node has no handler (so every request to the pattern goes over a socket) and, on the
// orchestrator's word, runs a window of requests one way: `request(peerId)` through P2PService (the
// reference), `requestPattern` through P2PService, or `send` on a P2PClient with `peer` (reference) and
// on one without (`options: {}`), with a given number in flight. It reports the window's time, p50/p99
// of each round trip and its CPU time.
import 'reflect-metadata';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { P2P_NODE, P2PClient, P2PModule, P2PServer, P2PService, type Peer } from 'nestjs-p2p';
import type { PatternNodeSpec, PatternMode, PatternWindow } from './lib/pattern-requests.js';
import { percentile } from './lib/stats.js';

const spec = JSON.parse(process.argv[2]!) as PatternNodeSpec;
const PATTERN = 'bench.echo';

let handled = 0;

@Controller()
class EchoController {
  @MessagePattern(PATTERN)
  echo(@Payload() data: unknown): unknown {
    handled++;
    return data;
  }
}

function appModule(handler: boolean) {
  @Module({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', tls: spec.tls, peerExchange: false })], controllers: handler ? [EchoController] : [] })
  class PatternBenchModule {}
  return PatternBenchModule;
}

const app: INestApplication = await NestFactory.create(appModule(spec.role === 'handler'), { logger: false });
app.connectMicroservice({ strategy: app.get(P2PServer) });
await app.startAllMicroservices();
await app.init();
const service = app.get(P2PService);

const payload = 'x'.repeat(64);
let targets: string[] = [];
const clients = new Map<string, P2PClient>();

/** The call one request of `mode` makes, to target 0 for the references. */
function caller(mode: PatternMode): () => Promise<unknown> {
  switch (mode) {
    case 'service-peer':
      return () => service.request(targets[0]!, PATTERN, payload);
    case 'service-pattern':
      return () => service.requestPattern(PATTERN, payload);
    case 'client-peer':
    case 'client-pattern': {
      const client = clients.get(mode)!;
      return () => lastValueFrom(client.send(PATTERN, payload));
    }
  }
}

async function window(mode: PatternMode, count: number, concurrency: number): Promise<PatternWindow> {
  const call = caller(mode);
  const latencies: number[] = [];
  let left = count;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (left > 0) {
      left--;
      const s = process.hrtime.bigint();
      await call();
      latencies.push(Number(process.hrtime.bigint() - s) / 1e3);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return { mode, concurrency, count, ms, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN, cpuUsPerRequest: (cpu.user + cpu.system) / count };
}

/**
 * What routing costs, apart from I/O: requests through the core (`request(peerId)` and `requestPattern`) with the
 * connection's `request` stubbed (it keeps the observer, and every 64 requests all are answered at once), in a
 * tight loop, ns per request, median of 10 rounds each, alternated. Deterministic where the windows are not: no
 * socket, no other process, no timer; the difference is what a request to a pattern costs beyond one to a peer id.
 */
function routingCost(): { peerNs: number; patternNs: number } {
  const node = app.get<Peer>(P2P_NODE);
  // connection() is internal (stripped from the published types).
  const socket = (node as unknown as { connection(id: string): { request: (...args: unknown[]) => () => void } }).connection(targets[0]!);
  const original = socket.request;
  const held: Array<{ next(v: unknown): void; complete(): void }> = [];
  const noop = () => undefined;
  socket.request = (...args: unknown[]) => {
    held.push(args[4] as { next(v: unknown): void; complete(): void });
    return noop;
  };
  const observer = { next: noop, error: (err: Error) => { throw err; }, complete: noop };
  const options = { timeoutMs: 10_000, deadlineMs: 10_000 };
  const run = (pattern: boolean, n: number) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if (pattern) node.requestPattern(PATTERN, payload, observer, options);
      else node.request(targets[0]!, PATTERN, payload, observer, options);
      if (held.length === 64) {
        for (const o of held) (o.next(payload), o.complete());
        held.length = 0;
      }
    }
    return Number(process.hrtime.bigint() - t0) / n;
  };
  try {
    for (let i = 0; i < 3; i++) (run(false, 50_000), run(true, 50_000));
    const peer: number[] = [];
    const pattern: number[] = [];
    for (let i = 0; i < 10; i++) {
      if (i % 2) (pattern.push(run(true, 100_000)), peer.push(run(false, 100_000)));
      else (peer.push(run(false, 100_000)), pattern.push(run(true, 100_000)));
    }
    const median = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1]!;
    return { peerNs: median(peer), patternNs: median(pattern) };
  } finally {
    socket.request = original;
  }
}

type Command =
  | { type: 'connect'; seq: number; targets: Array<{ id: string; address: string }> }
  | { type: 'window'; seq: number; mode: PatternMode; count: number; concurrency: number }
  | { type: 'count'; seq: number }
  | { type: 'routing'; seq: number };

process.on('message', (m: Command) => {
  const answer = (body: object) => process.send!({ ...body, type: 'answer', seq: m.seq });
  const run = async () => {
    switch (m.type) {
      case 'connect': {
        targets = m.targets.map((t) => t.id);
        for (const t of m.targets) await service.connect(`${t.id}@${t.address}`);
        // Requests to the pattern need the handlers' directory records: neighbours' come at once.
        const deadline = Date.now() + 20_000;
        while (service.handlers(PATTERN).length < targets.length) {
          if (Date.now() > deadline) throw new Error(`only ${service.handlers(PATTERN).length} of ${targets.length} handlers known after 20 s`);
          await new Promise((r) => setTimeout(r, 10));
        }
        const peerClient = new P2PClient({ peer: `${m.targets[0]!.id}@${m.targets[0]!.address}` });
        const networkClient = new P2PClient({});
        await peerClient.connect();
        await networkClient.connect();
        clients.set('client-peer', peerClient);
        clients.set('client-pattern', networkClient);
        return answer({});
      }
      case 'window':
        return answer({ window: await window(m.mode, m.count, m.concurrency) });
      case 'routing':
        return answer(routingCost());
      case 'count': {
        const cpu = process.cpuUsage();
        return answer({ handled, id: service.id, cpuUs: cpu.user + cpu.system });
      }
    }
  };
  run().catch((err: Error) => {
    process.stderr.write(`pattern node (${spec.role}) failed: ${err.stack}\n`);
    process.exit(1);
  });
});

// process.exit (not a signal death) lets --cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready', id: service.id, address: service.address() });

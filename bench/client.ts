// Benchmark client process: drives one scenario against the server's targets and reports
// request latencies (request scenarios) or that it has sent everything (event scenarios).
import 'reflect-metadata';
import { setImmediate as tick } from 'node:timers/promises';
import { payloadFor, type Scenario } from './lib/scenarios.js';
import { percentile } from './lib/stats.js';
import { TRANSPORTS } from './transports/index.js';
import type { BenchClient, Target, TransportName } from './transports/types.js';

const [name, scenarioJson, targetsJson] = process.argv.slice(2) as [TransportName, string, string];
const scenario = JSON.parse(scenarioJson) as Scenario;
const targets = JSON.parse(targetsJson) as Target[];
const payload = payloadFor(scenario);

// Let I/O run every so often; otherwise a sender that never awaits a macrotask starves its own socket.
const YIELD_EVERY = 256;

async function flood(send: () => void | Promise<void>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const wait = send();
    if (wait) await wait;
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await tick();
  }
}

async function requests(client: BenchClient, count: number, concurrency: number, record: boolean): Promise<{ ms: number; latencies: number[] }> {
  const latencies: number[] = [];
  let left = count;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (left > 0) {
      left--;
      const t0 = process.hrtime.bigint();
      await client.request(payload);
      if (record) latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, latencies };
}

async function main(): Promise<void> {
  const client = await TRANSPORTS[name].startClient(targets);
  const total = scenario.warmup + scenario.measured;
  switch (scenario.name) {
    case 'events':
    case 'bulk':
      await flood(() => client.emit(0, payload), total);
      process.send!({ type: 'sent', rss: process.memoryUsage().rss });
      return;
    case 'broadcast':
      await flood(() => client.broadcast(payload), total);
      process.send!({ type: 'sent', rss: process.memoryUsage().rss });
      return;
    case 'memory': {
      // Let start-up garbage settle, then flood for `measured` ms; refused sends wait a millisecond.
      await new Promise((r) => setTimeout(r, scenario.warmup));
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      let accepted = 0;
      let refused = 0;
      const until = Date.now() + scenario.measured;
      while (Date.now() < until) {
        if (await client.offer!(0, payload)) accepted++;
        else {
          refused++;
          await new Promise((r) => setTimeout(r, 1));
        }
        if ((accepted + refused) % 64 === 0) {
          peak = Math.max(peak, process.memoryUsage().rss);
          await tick();
        }
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      process.send!({ type: 'result', growthMiB: (peak - before) / 2 ** 20, accepted, refused });
      return;
    }
    case 'req1':
    case 'req64': {
      const concurrency = scenario.concurrency ?? 1;
      const cpu0 = process.cpuUsage();
      await requests(client, scenario.warmup, concurrency, false);
      const cpu1 = process.cpuUsage();
      const { ms, latencies } = await requests(client, scenario.measured, concurrency, true);
      const cpu = process.cpuUsage(cpu1);
      const cpuAll = process.cpuUsage(cpu0);
      latencies.sort((a, b) => a - b);
      process.send!({
        type: 'result',
        ms,
        count: scenario.measured,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        // CPU µs per request: measured window only, and with the warm-up (to set beside the server's, which has it).
        cpuUs: (cpu.user + cpu.system) / scenario.measured,
        cpuAllUs: (cpuAll.user + cpuAll.system) / (scenario.warmup + scenario.measured),
        rss: process.memoryUsage().rss,
      });
    }
  }
}

process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
main().catch((err: Error) => {
  process.stderr.write(`bench client (${name}) failed: ${err.stack}\n`);
  process.exit(1);
});

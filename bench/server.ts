// Benchmark server process: runs the receiving side of one transport for one scenario,
// counts events and reports the measured window to the orchestrator over IPC.
import 'reflect-metadata';
import type { Scenario } from './lib/scenarios.js';
import { TRANSPORTS } from './transports/index.js';
import type { TransportName } from './transports/types.js';

const [name, scenarioJson] = process.argv.slice(2) as [TransportName, string];
const scenario = JSON.parse(scenarioJson) as Scenario;
const receivers = scenario.fanout ?? 1;
const warm = scenario.warmup * receivers;
const total = (scenario.warmup + scenario.measured) * receivers;

let count = 0;
let startedAt = 0n;
const onEvent = (): void => {
  count++;
  if (count === warm) startedAt = process.hrtime.bigint();
  if (count === total) {
    const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
    process.send!({ type: 'measured', ms, count: scenario.measured * receivers, rss: process.memoryUsage().rss });
  }
};

// process.exit (not a signal death) lets --cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
TRANSPORTS[name].startServer(receivers, onEvent).then(
  (server) => {
    if (scenario.name === 'memory') server.stall?.();
    process.send!({ type: 'ready', targets: server.targets });
  },
  (err: Error) => {
    process.stderr.write(`bench server (${name}) failed: ${err.stack}\n`);
    process.exit(1);
  },
);

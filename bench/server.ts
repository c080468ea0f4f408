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
let cpuAtWarm: NodeJS.CpuUsage | undefined;
/** CPU time (user + system), µs, since `from`. */
const cpuSince = (from?: NodeJS.CpuUsage): number => {
  const { user, system } = process.cpuUsage(from);
  return user + system;
};
const onEvent = (): void => {
  count++;
  if (count === warm) {
    startedAt = process.hrtime.bigint();
    cpuAtWarm = process.cpuUsage();
  }
  if (count === total) {
    const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
    // CPU per event, as well as events a second: the first does not depend on what else the machine runs.
    const cpuUs = cpuSince(cpuAtWarm) / (scenario.measured * receivers);
    process.send!({ type: 'measured', ms, count: scenario.measured * receivers, cpuUs, rss: process.memoryUsage().rss });
  }
};
// The request scenarios: the client asks, once it is done, for this process's CPU time since it was ready.
let cpuAtReady: NodeJS.CpuUsage | undefined;
process.on('message', (m: { type: string }) => {
  if (m.type === 'cpu') process.send!({ type: 'cpu', us: cpuSince(cpuAtReady) });
});

// process.exit (not a signal death) lets --cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
TRANSPORTS[name].startServer(receivers, onEvent).then(
  (server) => {
    if (scenario.name === 'memory') server.stall?.();
    cpuAtReady = process.cpuUsage();
    process.send!({ type: 'ready', targets: server.targets });
  },
  (err: Error) => {
    process.stderr.write(`bench server (${name}) failed: ${err.stack}\n`);
    process.exit(1);
  },
);

// `npm run bench`: every transport in the same run, server and client in fresh processes on
// 127.0.0.1, warm-up then a measured window, median of N runs with min and max, and ratios.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { message, stop } from './lib/ipc.js';
import { floodTable, runFlood, type FloodRow } from './lib/flood.js';
import { netcastTable, runNetcast, type NetcastRow } from './lib/netcast.js';
import { patternTable, runPatternRequests, type FairnessRow, type PatternRow, type RoutingRow } from './lib/pattern-requests.js';
import { propagationTable, runPropagation, type PropagationRow } from './lib/propagation.js';
import { appliesTo, OPT_IN, scaled, SCENARIOS, type Scenario, type ScenarioName } from './lib/scenarios.js';
import { spread, type Spread } from './lib/stats.js';
import { TRANSPORT_LABELS } from './transports/index.js';
import type { Target, TransportName } from './transports/types.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    scenarios: { type: 'string', default: (Object.keys(SCENARIOS) as ScenarioName[]).filter((s) => !OPT_IN.includes(s)).join(',') },
    transports: { type: 'string', default: Object.keys(TRANSPORT_LABELS).join(',') },
    quick: { type: 'boolean', default: false },
    scale: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'repair-fanout': { type: 'string' },
    'healthy-only': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'npm run bench -- [--runs 3] [--scenarios events,bulk,req1,req64,broadcast,memory,netcast] (or propagation)\n' +
      '                 [--transports raw,raw-tls,nest-tcp,p2p-core,p2p-plain,p2p-tls] [--quick] [--scale F] [--profile]\n' +
      '--quick: a tenth of every count (--scale 0.1); --scale 10: ten times as many, for a profile of the steady state\n' +
      '--profile: write V8 CPU profiles of every server and client process to bench/results/profiles/\n' +
      'netcast (network broadcast in an 8-node mesh, signed vs unsigned) ignores --transports: it has its own two rows\n' +
      'throwaway-flood (issue 22: broadcasts from throwaway keys through one link into an 8-node TLS mesh; honest request\n' +
      '  round trips idle vs during the flood) ignores --transports and runs only when named: --scenarios throwaway-flood\n' +
      'pattern-requests (issue 24: requestPattern to a neighbour handler ÷ request(peerId), P2PService and P2PClient; shares of\n' +
      '  three handlers) runs only when named; TLS, or plaintext with --transports p2p-plain (both: p2p-plain,p2p-tls)\n' +
      'propagation (network broadcast in a 16-node TLS mesh: time to reach every node, repair on and off, healthy and with\n' +
      '  2 frozen or 2 dropping relays; repair traffic) ignores --transports and runs only when named: --scenarios propagation\n' +
      '  --repair-fanout 0,6: the healthy mesh with repair once per broadcastRepairFanout (0: designated announcers only);\n' +
      '  --healthy-only: the healthy mesh alone (no frozen or dropping relays)\n',
  );
  process.exit(0);
}
const runs = Math.max(1, Number(args.runs));
const factor = args.scale ? Number(args.scale) : args.quick ? 0.1 : 1;
if (!(factor > 0)) throw new Error(`--scale must be a positive number, got ${args.scale}`);
const scenarios = args.scenarios!.split(',').map((s) => {
  const scenario = SCENARIOS[s as ScenarioName];
  if (!scenario) throw new Error(`unknown scenario ${s}`);
  return factor === 1 ? scenario : scaled(scenario, factor);
});
const repairFanouts = args['repair-fanout']?.split(',').map((f) => {
  const n = Number(f);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--repair-fanout takes whole numbers ≥ 0, got ${f}`);
  return n;
});
const transports = args.transports!.split(',').map((t) => {
  if (!(t in TRANSPORT_LABELS)) throw new Error(`unknown transport ${t}`);
  return t as TransportName;
});

interface Sample {
  /** The scenario's headline figure (see Scenario.unit). */
  value: number;
  p99?: number;
  /** Memory scenario: sends accepted and refused with P2PQueueFullError. */
  accepted?: number;
  refused?: number;
  /** CPU µs per message: the receiver's (events); the client's and the server's (requests, warm-up included). */
  cpu?: { server?: number; client?: number };
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

const profileDir = here('../results/profiles/');
const execArgv = args.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];

async function runOnce(transport: TransportName, scenario: Scenario): Promise<Sample> {
  const spec = JSON.stringify(scenario);
  const server = fork(here('./server.js'), [transport, spec], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  let client: ChildProcess | undefined;
  try {
    const { targets } = await message<{ targets: Target[] }>(server, 'ready', 30_000);
    client = fork(here('./client.js'), [transport, spec, JSON.stringify(targets)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    const limit = 180_000;
    if (scenario.name === 'memory') {
      const r = await message<{ growthMiB: number; accepted: number; refused: number }>(client, 'result', limit);
      return { value: r.growthMiB, accepted: r.accepted, refused: r.refused };
    }
    if (scenario.name === 'req1' || scenario.name === 'req64') {
      const r = await message<{ ms: number; count: number; p50: number; p99: number; cpuAllUs: number }>(client, 'result', limit);
      const served = message<{ us: number }>(server, 'cpu', 10_000);
      server.send({ type: 'cpu' });
      const cpu = { client: r.cpuAllUs, server: (await served).us / (scenario.warmup + scenario.measured) };
      return scenario.name === 'req1' ? { value: r.p50, p99: r.p99, cpu } : { value: r.count / (r.ms / 1000), p99: r.p99, cpu };
    }
    const r = await message<{ ms: number; count: number; cpuUs: number }>(server, 'measured', limit);
    const perSecond = r.count / (r.ms / 1000);
    return { value: scenario.name === 'bulk' ? (perSecond * scenario.payloadBytes) / 1e6 : perSecond, cpu: { server: r.cpuUs } };
  } finally {
    await Promise.all([stop(server), client && stop(client)]);
  }
}

const fmt = (n: number, unit: string) =>
  unit === 'MB/s' || unit === 'MiB' ? n.toFixed(1) : unit === 'µs' ? n.toFixed(0) : Math.round(n).toLocaleString('en-US');
const lowerIsBetter = (s: Scenario) => s.unit === 'µs' || s.unit === 'MiB';
/** How many times better `a` is than `b` for this scenario (> 1: `a` is faster). */
const times = (s: Scenario, a: number, b: number) => (lowerIsBetter(s) ? b / a : a / b);

/** Median CPU µs per message (receiver; client and server), and ÷ raw's: figures the machine's other load moves far less than rates. */
function cpuLine(samples: Sample[], raw?: Sample[]): string | undefined {
  const median = (list: Sample[], side: 'server' | 'client') => {
    const values = list.map((s) => s.cpu?.[side]).filter((v): v is number => v !== undefined);
    return values.length ? spread(values).median : undefined;
  };
  const parts: string[] = [];
  for (const side of ['server', 'client'] as const) {
    const v = median(samples, side);
    if (v === undefined) continue;
    const r = raw && median(raw, side);
    parts.push(`${side === 'server' ? 'receiver' : 'client'} ${v.toFixed(2)}${r ? ` (${(v / r).toFixed(2)}× raw's)` : ''}`);
  }
  return parts.length ? `CPU µs per message: ${parts.join(', ')}` : undefined;
}

interface Row {
  transport: TransportName;
  spread: Spread;
  p99?: number;
  samples: Sample[];
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}`;
  const say = (s = '') => process.stdout.write(s + '\n');
  say(`nestjs-p2p benchmark: ${machine}`);
  say(`${runs} run(s) per figure, median [min–max]; server and client in separate processes on 127.0.0.1${factor === 1 ? '' : `; counts scaled by ${factor}`}`);
  const resultsDir = here('../results/');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const lines: string[] = [];
  const summary: Array<{ scenario: Scenario; rows: Row[] }> = [];

  let netcast: { rows: NetcastRow[]; nodes: number } | undefined;
  let propagation: { rows: PropagationRow[]; nodes: number } | undefined;
  let flood: FloodRow[] | undefined;
  let patterns: { rows: PatternRow[]; fairness: FairnessRow[]; routing: RoutingRow[] } | undefined;
  for (const scenario of scenarios) {
    if (scenario.name === 'pattern-requests') {
      // TLS (the default) unless --transports names only p2p-plain; both when it names both.
      const tls = [transports.includes('p2p-tls') || !transports.includes('p2p-plain') ? [true] : [], transports.includes('p2p-plain') ? [false] : []].flat();
      const r = await runPatternRequests(scenario, { runs, script: here('./pattern-node.js'), execArgv, tls, say });
      lines.push(...r.lines);
      patterns = r;
      continue;
    }
    if (scenario.name === 'throwaway-flood') {
      const r = await runFlood(scenario, { runs, nodeScript: here('./flood-node.js'), attackerScript: here('./flood-attacker.js'), execArgv, machine, say });
      lines.push(...r.lines);
      flood = r.rows;
      continue;
    }
    if (scenario.name === 'propagation') {
      const { rows, lines: propagationLines } = await runPropagation(scenario, {
        runs,
        script: here('./propagation-node.js'),
        execArgv,
        machine,
        say,
        repairFanouts,
        healthyOnly: args['healthy-only'],
      });
      lines.push(...propagationLines);
      propagation = { rows, nodes: scenario.fanout ?? 16 };
      continue;
    }
    if (scenario.name === 'netcast') {
      const { rows, lines: netcastLines } = await runNetcast(scenario, { runs, script: here('./netcast-node.js'), execArgv, machine, say });
      lines.push(...netcastLines);
      netcast = { rows, nodes: scenario.fanout ?? 8 };
      continue;
    }
    const samples = new Map<TransportName, Sample[]>(transports.map((t) => [t, []]));
    // Interleave transports within each round so that machine drift hits them alike.
    for (let run = 0; run < runs; run++) {
      for (const transport of transports) {
        if (!appliesTo(scenario, transport)) continue;
        try {
          samples.get(transport)!.push(await runOnce(transport, scenario));
        } catch (err) {
          say(`  ${scenario.name} / ${transport} run ${run + 1} failed: ${(err as Error).message}`);
        }
      }
    }
    const rows: Row[] = transports
      .filter((t) => samples.get(t)!.length > 0)
      .map((t) => {
        const s = samples.get(t)!;
        const p99s = s.map((x) => x.p99).filter((x): x is number => x !== undefined);
        return { transport: t, spread: spread(s.map((x) => x.value)), p99: p99s.length ? spread(p99s).median : undefined, samples: s };
      });
    summary.push({ scenario, rows });
    say(`\n${scenario.title} (${scenario.unit === 'µs' ? 'p50 latency, µs, lower is better' : scenario.unit})`);
    const by = (t: TransportName) => rows.find((r) => r.transport === t)?.spread.median;
    for (const row of rows) {
      const { median, min, max } = row.spread;
      let line = `  ${TRANSPORT_LABELS[row.transport].padEnd(16)} ${fmt(median, scenario.unit).padStart(11)}  [${fmt(min, scenario.unit)}–${fmt(max, scenario.unit)}]`;
      if (row.p99 !== undefined) line += `  p99 ${fmt(row.p99, 'µs')} µs`;
      const last = row.samples[row.samples.length - 1];
      if (last?.refused !== undefined) line += `  (last run: ${last.accepted} sends accepted, ${last.refused} refused with P2PQueueFullError)`;
      const ratios: string[] = [];
      if (row.transport.startsWith('p2p') && scenario.name !== 'memory') {
        const rawV = by('raw');
        const nestV = by('nest-tcp');
        if (rawV) ratios.push(`${times(scenario, median, rawV).toFixed(2)}× raw`);
        if (nestV) ratios.push(`${times(scenario, median, nestV).toFixed(2)}× Nest TCP`);
      }
      // The share of the speed left after Nest's handler pipeline: p2p through Nest ÷ the same core without it.
      if (row.transport === 'p2p-plain' && by('p2p-core')) ratios.push(`${times(scenario, median, by('p2p-core')!).toFixed(2)}× core`);
      if (row.transport === 'p2p-tls' && by('p2p-plain')) ratios.push(`${times(scenario, median, by('p2p-plain')!).toFixed(2)}× plaintext`);
      if (row.transport === 'p2p-tls' && by('raw-tls')) ratios.push(`${times(scenario, median, by('raw-tls')!).toFixed(2)}× raw TLS`);
      // What TLS costs Node itself, with no framing layer on top: the ceiling for "TLS ÷ plaintext".
      if (row.transport === 'raw-tls' && by('raw')) ratios.push(`${times(scenario, median, by('raw')!).toFixed(2)}× raw plaintext`);
      say(ratios.length ? `${line}   ${ratios.join(', ')}` : line);
      const cpu = cpuLine(row.samples, by('raw') !== undefined && row.transport !== 'raw' ? rows.find((r) => r.transport === 'raw')!.samples : undefined);
      if (cpu) say(`  ${''.padEnd(16)} ${cpu}`);
      lines.push(JSON.stringify({ date: new Date().toISOString(), machine, scenario: scenario.name, unit: scenario.unit, warmup: scenario.warmup, measured: scenario.measured, transport: row.transport, ...row.spread, p99: row.p99, runs: row.samples }));
    }
  }

  // The ceiling for events through Nest handlers: the pipeline alone, in-process, with no transport.
  let ceiling: Spread | undefined;
  if (scenarios.some((s) => s.name === 'events') && transports.some((t) => t === 'p2p-plain' || t === 'nest-tcp')) {
    const values: number[] = [];
    const cpus: number[] = [];
    for (let run = 0; run < runs; run++) {
      const child = fork(here('./nest-ceiling.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
      try {
        const r = await message<{ perSecond: number; cpuUs: number }>(child, 'result', 120_000);
        values.push(r.perSecond);
        cpus.push(r.cpuUs);
      } finally {
        await stop(child);
      }
    }
    ceiling = spread(values);
    const ceilingCpu = spread(cpus).median;
    const events = summary.find((s) => s.scenario.name === 'events')!;
    const v = (t: TransportName) => events.rows.find((r) => r.transport === t)?.spread.median;
    const ratios = [v('nest-tcp') && `${(ceiling.median / v('nest-tcp')!).toFixed(2)}× Nest TCP`, v('p2p-plain') && `p2p (plaintext) reaches ${(v('p2p-plain')! / ceiling.median).toFixed(2)}× of it`];
    say(`\nNest's handler pipeline alone, no I/O (the ceiling for events through Nest handlers, msg/s)`);
    say(`  ${fmt(ceiling.median, 'msg/s').padStart(28)}  [${fmt(ceiling.min, 'msg/s')}–${fmt(ceiling.max, 'msg/s')}]   ${ratios.filter(Boolean).join(', ')}`);
    // The same comparison in CPU per event, which the machine's other load moves far less.
    const receiverCpu = events.rows.find((r) => r.transport === 'p2p-plain')?.samples.map((s) => s.cpu?.server).filter((x): x is number => x !== undefined);
    const p2pCpu = receiverCpu?.length ? spread(receiverCpu).median : undefined;
    say(`  CPU µs per event: ${ceilingCpu.toFixed(2)}${p2pCpu ? `; p2p (plaintext) receiver ${p2pCpu.toFixed(2)}, so the pipeline is ${(ceilingCpu / p2pCpu).toFixed(2)}× of its CPU` : ''}`);
    lines.push(JSON.stringify({ date: new Date().toISOString(), machine, scenario: 'nest-pipeline', unit: 'msg/s', transport: 'none', ...ceiling }));
  }

  const file = `${resultsDir}${stamp}.jsonl`;
  writeFileSync(file, lines.join('\n') + '\n');
  say(`\nresults: ${file}`);
  // The same figures as a Markdown table, for the README.
  if (summary.length > 0) {
    say('\n| scenario | ' + transports.map((t) => TRANSPORT_LABELS[t]).join(' | ') + ' | p2p ÷ raw | p2p ÷ Nest TCP | TLS ÷ plaintext | raw TLS ÷ raw | p2p TLS ÷ raw TLS |');
    say('|---|' + transports.map(() => '---:|').join('') + '---:|---:|---:|---:|---:|');
  }
  for (const { scenario, rows } of summary) {
    const v = (t: TransportName) => rows.find((r) => r.transport === t)?.spread.median;
    const cell = (t: TransportName) => (v(t) === undefined ? '–' : fmt(v(t)!, scenario.unit));
    const ratio = (a?: number, b?: number) => (a && b ? `${times(scenario, a, b).toFixed(2)}×` : '–');
    const unit = scenario.unit === 'µs' ? 'p50 µs' : scenario.unit;
    say(
      `| ${scenario.title} (${unit}) | ${transports.map(cell).join(' | ')} | ${ratio(v('p2p-plain'), v('raw'))} | ${ratio(v('p2p-plain'), v('nest-tcp'))} | ` +
        `${ratio(v('p2p-tls'), v('p2p-plain'))} | ${ratio(v('raw-tls'), v('raw'))} | ${ratio(v('p2p-tls'), v('raw-tls'))} |`,
    );
  }
  if (netcast?.rows.length) say('\n' + netcastTable(netcast.rows, netcast.nodes).join('\n'));
  if (propagation?.rows.length) say('\n' + propagationTable(propagation.rows, propagation.nodes).join('\n'));
  if (flood?.length) say('\n' + floodTable(flood).join('\n'));
  if (patterns) say(patternTable(patterns.rows, patterns.fairness, patterns.routing).join('\n'));
  if (ceiling) say(`\nNest's handler pipeline alone, no I/O: ${fmt(ceiling.median, 'msg/s')} events/s (median of ${runs}).`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack}\n`);
  process.exit(1);
});

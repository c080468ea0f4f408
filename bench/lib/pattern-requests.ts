// The `pattern-requests` scenario (issue 24, "Requests"): requests to a pattern whose handler is a
// neighbour, against `request(peerId, …)` to the same node, in the same processes, back to back.
// Each node is a Nest app with P2PModule in its own process (pattern-node.ts). The client has no
// handler of its own, so every request goes over the socket to the handler.
//
// - One handler: `measured` requests with 64 in flight, and a tenth as many with 1 in flight, through
//   P2PService (`request(peerId)` vs `requestPattern`) and through P2PClient (`send` on a client with
//   `peer` vs one without), in 21 pairs of windows each, each pair in the other order than the last (AB,
//   BA, …), so that drift hits both alike. A run's figure is the median over its pairs of pattern ÷ peer
//   (throughput at 64 in flight, p50 at 1 and at 64); the table gives the median over runs, with min and max.
// - The control, in the same processes: 21 pairs of `request(peerId)` against itself (the same API). What
//   its ratio strays from 1 is what the machine alone does to a ratio of two windows; the pooled line gives
//   the median and quartiles of every pair's ratio over all runs, for pattern ÷ peer and for the control.
// - Three handlers, all neighbours: one window of `requestPattern` with 64 in flight; each handler's
//   share of the requests it answered, ÷ the mean share (the bound is 1.5).
import { fork, type ChildProcess } from 'node:child_process';
import { message, stop } from './ipc.js';
import type { Scenario } from './scenarios.js';
import { percentile, spread, type Spread } from './stats.js';

export type PatternMode = 'service-peer' | 'service-pattern' | 'client-peer' | 'client-pattern';

/** What a node process is told (argv). */
export interface PatternNodeSpec {
  role: 'handler' | 'client';
  tls: boolean;
}

/** One window of requests, as the client measured it. */
export interface PatternWindow {
  mode: PatternMode;
  concurrency: number;
  count: number;
  ms: number;
  /** Round trip, µs. */
  p50: number;
  p99: number;
  /** The client process's CPU time per request, µs. */
  cpuUsPerRequest: number;
  /** The longest round trip, µs. */
  max: number;
  /** The handler's CPU time per request, µs (one handler: asked before and after the window). */
  handlerCpuUs?: number;
}

/** One run's figures for one API (P2PService or P2PClient): ratios are medians over the run's pairs of windows. */
interface ApiSample {
  peerRps: number;
  patternRps: number;
  /** pattern ÷ peer: requests a second at 64 in flight, p50 at 1 in flight and at 64. */
  rpsRatio: number;
  p50OneRatio: number;
  p50ManyRatio: number;
  peerCpuUs: number;
  patternCpuUs: number;
  /**
   * Capacity: the CPU per request of client and handler together, peer ÷ pattern (what the two processes could do on
   * cores of their own; unlike req/s it does not move with what else runs on the machine, which stalls windows by
   * tens of ms).
   */
  cpuRatio: number;
  /** Every pair of windows at 64 in flight, peer then pattern: [req/s, p50 µs, p99 µs, max µs, client and handler CPU µs/request] each (in the JSON lines). */
  pairs: Array<[number[], number[]]>;
  /** The control: peer ÷ peer, req/s at 64 in flight, median over its pairs, and each pair's ratio. */
  controlRatio: number;
  controlRatios: number[];
  /** Each pair's pattern ÷ peer req/s at 64 in flight. */
  rpsRatios: number[];
}

export interface PatternRow {
  tls: boolean;
  api: 'P2PService' | 'P2PClient';
  samples: ApiSample[];
}

export interface RoutingRow {
  tls: boolean;
  /** Per run: ns per request through the core with the connection stubbed, request(peerId) and requestPattern. */
  samples: Array<{ peerNs: number; patternNs: number }>;
}

export interface FairnessRow {
  tls: boolean;
  /** Per run: each handler's share ÷ the mean share, sorted. */
  shares: number[][];
}

interface Node {
  child: ChildProcess;
  id: string;
  address: string;
  ask<T>(command: object, timeoutMs?: number): Promise<T>;
}

async function startNode(script: string, spec: PatternNodeSpec, execArgv: string[]): Promise<Node> {
  const child = fork(script, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const ready = await message<{ id: string; address: string }>(child, 'ready', 30_000);
  let seq = 0;
  return {
    child,
    id: ready.id,
    address: ready.address,
    ask<T>(command: object, timeoutMs = 120_000): Promise<T> {
      const n = ++seq;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(command)} within ${timeoutMs} ms`)), timeoutMs);
        const onMessage = (m: { type: string; seq?: number }) => {
          if (m.type !== 'answer' || m.seq !== n) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(m as T);
        };
        child.on('message', onMessage);
        child.send({ ...command, seq: n });
      });
    },
  };
}

async function network(script: string, tls: boolean, handlers: number, execArgv: string[]): Promise<{ client: Node; servers: Node[] }> {
  const servers: Node[] = [];
  for (let i = 0; i < handlers; i++) servers.push(await startNode(script, { role: 'handler', tls }, execArgv));
  const client = await startNode(script, { role: 'client', tls }, execArgv);
  await client.ask({ type: 'connect', targets: servers.map((s) => ({ id: s.id, address: s.address })) }, 60_000);
  return { client, servers };
}

const cpuOf = async (server: Node) => (await server.ask<{ cpuUs: number }>({ type: 'count' })).cpuUs;

/** One window; with `server`, its CPU time over the window too (the IPC round trips around it cost a few µs). */
async function windowOf(client: Node, mode: PatternMode, count: number, concurrency: number, server?: Node): Promise<PatternWindow> {
  const before = server && (await cpuOf(server));
  const w = (await client.ask<{ window: PatternWindow }>({ type: 'window', mode, count, concurrency })).window;
  if (server) w.handlerCpuUs = ((await cpuOf(server)) - before!) / count;
  return w;
}

/** Windows of `a` and `b` in pairs, each pair in the other order than the last (AB, BA, …), so that drift hits both alike. */
async function pairs(client: Node, a: PatternMode, b: PatternMode, count: number, concurrency: number, rounds: number, server?: Node): Promise<Array<[PatternWindow, PatternWindow]>> {
  const out: Array<[PatternWindow, PatternWindow]> = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      const wa = await windowOf(client, a, count, concurrency, server);
      out.push([wa, await windowOf(client, b, count, concurrency, server)]);
    } else {
      const wb = await windowOf(client, b, count, concurrency, server);
      out.push([await windowOf(client, a, count, concurrency, server), wb]);
    }
  }
  return out;
}

/** Pairs of windows per measurement: the machine's drift (other processes) moves single windows by tens of percent. */
const ROUNDS = 21;
const rps = (w: PatternWindow) => w.count / (w.ms / 1000);
const median = (values: number[]) => spread(values).median;

async function apiSample(client: Node, server: Node, peer: PatternMode, pattern: PatternMode, scenario: Scenario): Promise<ApiSample> {
  const many = Math.max(10, Math.round(scenario.measured / ROUNDS));
  const one = Math.max(10, Math.round(scenario.measured / 10 / ROUNDS));
  await pairs(client, peer, pattern, scenario.warmup, 64, 1);
  const manyPairs = await pairs(client, peer, pattern, many, 64, ROUNDS, server);
  const onePairs = await pairs(client, peer, pattern, one, 1, ROUNDS);
  const controlPairs = await pairs(client, peer, peer, many, 64, ROUNDS);
  const controlRatios = controlPairs.map(([p, q]) => rps(q) / rps(p));
  return {
    peerRps: median(manyPairs.map(([p]) => rps(p))),
    patternRps: median(manyPairs.map(([, q]) => rps(q))),
    rpsRatio: median(manyPairs.map(([p, q]) => rps(q) / rps(p))),
    p50OneRatio: median(onePairs.map(([p, q]) => q.p50 / p.p50)),
    p50ManyRatio: median(manyPairs.map(([p, q]) => q.p50 / p.p50)),
    peerCpuUs: median(manyPairs.map(([p]) => p.cpuUsPerRequest)),
    patternCpuUs: median(manyPairs.map(([, q]) => q.cpuUsPerRequest)),
    cpuRatio: median(manyPairs.map(([p, q]) => (p.cpuUsPerRequest + p.handlerCpuUs!) / (q.cpuUsPerRequest + q.handlerCpuUs!))),
    controlRatio: median(controlRatios),
    controlRatios: controlRatios.map((r) => +r.toFixed(3)),
    rpsRatios: manyPairs.map(([p, q]) => +(rps(q) / rps(p)).toFixed(3)),
    pairs: manyPairs.map(([p, q]) => [p, q].map((w) => [Math.round(rps(w)), Math.round(w.p50), Math.round(w.p99), Math.round(w.max), +w.cpuUsPerRequest.toFixed(2), +w.handlerCpuUs!.toFixed(2)]) as [number[], number[]]),
  };
}

export async function runPatternRequests(
  scenario: Scenario,
  opts: { runs: number; script: string; execArgv: string[]; tls: boolean[]; say: (s?: string) => void },
): Promise<{ rows: PatternRow[]; fairness: FairnessRow[]; routing: RoutingRow[]; lines: string[] }> {
  const rows: PatternRow[] = [];
  const fairness: FairnessRow[] = [];
  const routing: RoutingRow[] = [];
  for (const tls of opts.tls) {
    rows.push({ tls, api: 'P2PService', samples: [] }, { tls, api: 'P2PClient', samples: [] });
    fairness.push({ tls, shares: [] });
    routing.push({ tls, samples: [] });
  }
  for (let run = 0; run < opts.runs; run++) {
    for (const tls of opts.tls) {
      const one = await network(opts.script, tls, 1, opts.execArgv);
      try {
        rows.find((r) => r.tls === tls && r.api === 'P2PService')!.samples.push(await apiSample(one.client, one.servers[0]!, 'service-peer', 'service-pattern', scenario));
        rows.find((r) => r.tls === tls && r.api === 'P2PClient')!.samples.push(await apiSample(one.client, one.servers[0]!, 'client-peer', 'client-pattern', scenario));
        routing.find((r) => r.tls === tls)!.samples.push(await one.client.ask<{ peerNs: number; patternNs: number }>({ type: 'routing' }));
      } finally {
        await Promise.all([one.client, ...one.servers].map((n) => stop(n.child)));
      }
      const three = await network(opts.script, tls, 3, opts.execArgv);
      try {
        await windowOf(three.client, 'service-pattern', scenario.warmup, 64);
        const count = () => Promise.all(three.servers.map((s) => s.ask<{ handled: number }>({ type: 'count' }).then((a) => a.handled)));
        const before = await count();
        await windowOf(three.client, 'service-pattern', scenario.measured, 64);
        const after = await count();
        const got = after.map((n, i) => n - before[i]!);
        const mean = got.reduce((a, b) => a + b, 0) / got.length;
        fairness.find((f) => f.tls === tls)!.shares.push(got.map((n) => n / mean).sort((a, b) => a - b));
      } finally {
        await Promise.all([three.client, ...three.servers].map((n) => stop(n.child)));
      }
    }
    opts.say(`  pattern-requests: run ${run + 1} of ${opts.runs} done`);
  }
  const lines = [
    ...rows.map((r) => JSON.stringify({ date: new Date().toISOString(), scenario: 'pattern-requests', tls: r.tls, api: r.api, runs: r.samples })),
    ...fairness.map((f) => JSON.stringify({ date: new Date().toISOString(), scenario: 'pattern-requests-fairness', tls: f.tls, shares: f.shares })),
    ...routing.map((r) => JSON.stringify({ date: new Date().toISOString(), scenario: 'pattern-requests-routing', tls: r.tls, runs: r.samples })),
  ];
  return { rows, fairness, routing, lines };
}

const fmtSpread = (s: Spread, digits = 2) => `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

/** The figures as a Markdown table: pattern ÷ peer per run, median [min–max] over runs. */
export function patternTable(rows: PatternRow[], fairness: FairnessRow[], routing: RoutingRow[] = []): string[] {
  const out = [
    '',
    'Requests to a pattern whose handler is a neighbour ÷ request(peerId) to the same node, same processes (targets: throughput ≥ 0.9×, p50 ≤ 1.1×)',
    '',
    '| transport | API | req/s, 64 in flight: peer → pattern | throughput ratio | control: peer ÷ peer | capacity ratio (CPU) | p50 ratio, 1 in flight | p50 ratio, 64 in flight | client CPU µs/request: peer → pattern |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.samples.length === 0) continue;
    const m = (f: (s: ApiSample) => number) => spread(r.samples.map(f));
    out.push(
      `| ${r.tls ? 'TLS' : 'plaintext'} | ${r.api} | ${fmtInt(m((s) => s.peerRps).median)} → ${fmtInt(m((s) => s.patternRps).median)} | ` +
        `${fmtSpread(m((s) => s.rpsRatio))}× | ${fmtSpread(m((s) => s.controlRatio))}× | ${fmtSpread(m((s) => s.cpuRatio))}× | ${fmtSpread(m((s) => s.p50OneRatio))}× | ${fmtSpread(m((s) => s.p50ManyRatio))}× | ${m((s) => s.peerCpuUs).median.toFixed(1)} → ${m((s) => s.patternCpuUs).median.toFixed(1)} |`,
    );
  }
  out.push('', 'Every pair of windows at 64 in flight, pooled over runs: req/s ratio, median (quartiles); the control is peer ÷ peer', '');
  for (const r of rows) {
    if (r.samples.length === 0) continue;
    const q = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return `${percentile(sorted, 50).toFixed(2)} (${percentile(sorted, 25).toFixed(2)}–${percentile(sorted, 75).toFixed(2)})`;
    };
    const ab = r.samples.flatMap((s) => s.rpsRatios);
    const aa = r.samples.flatMap((s) => s.controlRatios);
    out.push(`  ${r.tls ? 'TLS' : 'plaintext'} ${r.api}: pattern ÷ peer ${q(ab)}, peer ÷ peer ${q(aa)} (${ab.length} pairs each)`);
  }
  out.push('', 'Routing alone (the connection stubbed, no I/O; client process): ns per request, request(peerId) → requestPattern', '');
  for (const r of routing) {
    if (r.samples.length === 0) continue;
    const peer = spread(r.samples.map((s) => s.peerNs));
    const pattern = spread(r.samples.map((s) => s.patternNs));
    out.push(`  ${r.tls ? 'TLS' : 'plaintext'}: ${peer.median.toFixed(0)} → ${pattern.median.toFixed(0)} ns (runs: ${r.samples.map((s) => `${s.peerNs.toFixed(0)} → ${s.patternNs.toFixed(0)}`).join(', ')})`);
  }
  out.push('', 'Three handlers, 64 in flight: each handler\'s share ÷ the mean share (bound: none above 1.5)', '');
  for (const f of fairness) {
    if (f.shares.length === 0) continue;
    const worst = spread(f.shares.map((s) => Math.max(...s)));
    out.push(`  ${f.tls ? 'TLS' : 'plaintext'}: highest share ${fmtSpread(worst)}× the mean; per run ${f.shares.map((s) => s.map((x) => x.toFixed(2)).join('/')).join(', ')}`);
  }
  return out;
}

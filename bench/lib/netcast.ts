// The `netcast` scenario: network-wide broadcasts (RainTree, relayed by every node) in a full mesh of
// 8 plaintext nodes, each in its own process (netcast-node.ts), with origin signatures (the default)
// against without (`unsignedBroadcasts`, internal, for this comparison only). Node 0 originates; the
// figure is deliveries per second summed over all 8 handlers (each broadcast is 8 deliveries, the
// origin's own included), over a measured window after a warm-up.
import { fork, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { message, stop } from './ipc.js';
import type { Scenario } from './scenarios.js';
import { spread, type Spread } from './stats.js';

export type NetcastVariant = 'signed' | 'unsigned';
const VARIANTS: NetcastVariant[] = ['signed', 'unsigned'];

/** What one node process is told (argv). */
export interface NetcastNodeSpec {
  index: number;
  origin: boolean;
  signed: boolean;
  payloadBytes: number;
  binary: boolean;
  /** Broadcasts the origin keeps in flight (see netcast-node.ts). */
  window: number;
}

export interface NetcastSample {
  /** Deliveries per second over the measured window, summed over every node. */
  value: number;
  /** Broadcasts per second the origin started over its window. */
  broadcastsPerSec: number;
  /** CPU time of all nodes per broadcast (8 deliveries), µs: what the figure costs, whatever else runs on the machine. */
  cpuUsPerBroadcast: number;
  /** Cores the 8 nodes kept busy over the window (at most the machine's). */
  meshCores: number;
  /** Cores busy with anything else over the window (other processes on the machine). */
  otherCores: number;
  /** Deliveries missing once the origin stopped and the mesh drained (0 when every node got every broadcast). */
  missing: number;
  /** Broadcasts relayed by flooding because a RainTree send failed or views differed (0 in a healthy run). */
  tooManyArcs: number;
  /** Copies dropped by the receive pipeline, by reason (only reasons that occurred). */
  dropped: Record<string, number>;
  /** Sends the origin's queues or budgets refused (they wait and are retried). */
  refusedSends: number;
}

interface Mark {
  delivered: number;
  originated: number;
  /** The node's monotonic clock, ms. */
  t: number;
  /** The node's CPU time so far, ms. */
  cpuMs: number;
}

interface NodeStats {
  delivered: number;
  originated: number;
  refusedSends: number;
  stats: { tooManyArcs: number; dropped: Record<string, number> };
}

/**
 * Broadcasts in flight at the origin: enough to keep every node busy, few enough that a node's backlog
 * stays short. libuv reads a socket up to 32 × 64 KiB in one go while it stays full, so a deep backlog
 * keeps a node from its timers and IPC (the marks) for seconds; 1024 small ones did, 512 do not.
 */
export const windowFor = (bytes: number) => Math.max(64, Math.min(512, Math.floor((4 * 2 ** 20) / bytes)));

export const payloadLabel = (p: { bytes: number; binary: boolean }) =>
  `${p.bytes >= 1024 ? `${p.bytes / 1024} KiB` : `${p.bytes} B`} ${p.binary ? 'Buffer' : 'string'}`;

/** Busy and total CPU time of the whole machine so far, ms (all cores). */
export function machineCpu(): { busy: number; wall: number } {
  let busy = 0;
  let idle = 0;
  for (const { times } of cpus()) {
    busy += times.user + times.nice + times.sys + times.irq;
    idle += times.idle;
  }
  return { busy, wall: (busy + idle) / cpus().length };
}

async function all<T>(nodes: ChildProcess[], type: string, timeoutMs: number, send?: object): Promise<T[]> {
  const replies = nodes.map((n) => message<T>(n, type, timeoutMs));
  if (send) for (const n of nodes) n.send(send);
  return Promise.all(replies);
}

async function runOnce(
  script: string,
  execArgv: string[],
  nodes: number,
  variant: NetcastVariant,
  payload: { bytes: number; binary: boolean },
  warmupMs: number,
  measuredMs: number,
): Promise<NetcastSample> {
  const children: ChildProcess[] = [];
  try {
    for (let index = 0; index < nodes; index++) {
      const spec: NetcastNodeSpec = { index, origin: index === 0, signed: variant === 'signed', payloadBytes: payload.bytes, binary: payload.binary, window: windowFor(payload.bytes) };
      children.push(fork(script, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }));
    }
    const ready = await all<{ id: string; address: string }>(children, 'ready', 30_000);
    // A full mesh, each pair once: every node dials the nodes after it.
    const meshed = all(children, 'meshed', 30_000);
    children.forEach((child, i) => child.send({ type: 'connect', targets: ready.slice(i + 1), expect: nodes - 1 }));
    await meshed;
    children[0]!.send({ type: 'go' });
    await sleep(warmupMs);
    // A node answers a mark between two reads, so marks land a little apart: each node's count is taken over its own clock.
    const cpu0 = machineCpu();
    const before = await all<Mark>(children, 'mark', 30_000, { type: 'mark' });
    await sleep(measuredMs);
    const after = await all<Mark>(children, 'mark', 30_000, { type: 'mark' });
    const cpu1 = machineCpu();
    let value = 0;
    let meshCpuMs = 0;
    let meshWallMs = 0;
    after.forEach((a, i) => {
      const b = before[i]!;
      value += (a.delivered - b.delivered) / ((a.t - b.t) / 1000);
      meshCpuMs += a.cpuMs - b.cpuMs;
      meshWallMs += (a.t - b.t) / nodes;
    });
    const meshCores = meshCpuMs / meshWallMs;
    const origin = [before[0]!, after[0]!] as const;
    const broadcastsPerSec = (origin[1].originated - origin[0].originated) / ((origin[1].t - origin[0].t) / 1000);

    // Stop the origin, let the mesh drain what is in flight, then check that every node got every broadcast.
    const halted = message<{ originated: number }>(children[0]!, 'halted', 30_000);
    children[0]!.send({ type: 'halt' });
    const { originated } = await halted;
    let stats: NodeStats[] = [];
    for (let waited = 0; waited <= 3_000; waited += 50) {
      stats = await all<NodeStats>(children, 'stats', 30_000, { type: 'stats' });
      if (stats.every((s) => s.delivered >= originated)) break;
      await sleep(50);
    }
    const dropped: Record<string, number> = {};
    for (const s of stats) for (const [reason, n] of Object.entries(s.stats.dropped)) if (n > 0) dropped[reason] = (dropped[reason] ?? 0) + n;
    return {
      value,
      broadcastsPerSec,
      cpuUsPerBroadcast: (meshCores * 1e6) / (value / nodes),
      meshCores,
      otherCores: Math.max(0, (cpu1.busy - cpu0.busy) / (cpu1.wall - cpu0.wall) - meshCores),
      missing: stats.reduce((sum, s) => sum + Math.max(0, originated - s.delivered), 0),
      tooManyArcs: stats.reduce((sum, s) => sum + s.stats.tooManyArcs, 0),
      dropped,
      refusedSends: stats[0]!.refusedSends,
    };
  } finally {
    await Promise.all(children.map(stop));
  }
}

export interface NetcastRow {
  payload: { bytes: number; binary: boolean };
  signed: Spread;
  unsigned: Spread;
  /** signed ÷ unsigned within each round (the two ran back to back). */
  perRound: Spread;
  /** Median CPU µs per broadcast, all nodes. */
  cpu: Record<NetcastVariant, number>;
  samples: Record<NetcastVariant, NetcastSample[]>;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const times = (n: number) => `${n.toFixed(2)}×`;
const range = (s: Spread, f: (n: number) => string) => `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;

/**
 * Runs the scenario: in every round, for every payload, both variants back to back (their order
 * alternates by round), each in a fresh mesh of fresh processes. Prints the figures; returns the
 * rows and their JSON lines.
 */
export async function runNetcast(
  scenario: Scenario,
  opts: { runs: number; script: string; execArgv: string[]; machine: string; say: (s?: string) => void },
): Promise<{ rows: NetcastRow[]; lines: string[] }> {
  const { runs, script, execArgv, machine, say } = opts;
  const nodes = scenario.fanout ?? 8;
  const payloads = scenario.payloads ?? [{ bytes: scenario.payloadBytes, binary: scenario.binary }];
  const samples = payloads.map(() => ({ signed: [] as NetcastSample[], unsigned: [] as NetcastSample[] }));
  const warmupMs = Math.max(100, scenario.warmup);
  const measuredMs = Math.max(200, scenario.measured);
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const [p, payload] of payloads.entries()) {
      for (const variant of order) {
        try {
          samples[p]![variant].push(await runOnce(script, execArgv, nodes, variant, payload, warmupMs, measuredMs));
        } catch (err) {
          say(`  netcast / ${payloadLabel(payload)} / ${variant} run ${run + 1} failed: ${(err as Error).message}`);
        }
      }
    }
  }

  say(`\n${scenario.title} (deliveries/s over all ${nodes} handlers; one origin, ${nodes} plaintext nodes in separate processes)`);
  say(`  ${warmupMs} ms warm-up, ${measuredMs} ms measured; a broadcast is ${nodes} deliveries. CPU: all nodes' CPU time per broadcast,`);
  say(`  and the cores the mesh and everything else on the machine kept busy (medians)`);
  const rows: NetcastRow[] = [];
  const lines: string[] = [];
  for (const [p, payload] of payloads.entries()) {
    const s = samples[p]!;
    if (s.signed.length === 0 || s.unsigned.length === 0) continue;
    const rounds = Math.min(s.signed.length, s.unsigned.length);
    const median = (v: NetcastVariant, k: 'cpuUsPerBroadcast' | 'meshCores' | 'otherCores') => spread(s[v].map((x) => x[k])).median;
    const row: NetcastRow = {
      payload,
      signed: spread(s.signed.map((x) => x.value)),
      unsigned: spread(s.unsigned.map((x) => x.value)),
      perRound: spread(Array.from({ length: rounds }, (_, i) => s.signed[i]!.value / s.unsigned[i]!.value)),
      cpu: { signed: median('signed', 'cpuUsPerBroadcast'), unsigned: median('unsigned', 'cpuUsPerBroadcast') },
      samples: s,
    };
    rows.push(row);
    const label = payloadLabel(payload).padEnd(14);
    const blank = ''.padEnd(14);
    say(`  ${label} signed ${range(row.signed, count).padStart(26)}   unsigned ${range(row.unsigned, count).padStart(28)}   signed ÷ unsigned ${times(row.signed.median / row.unsigned.median)} (per round ${range(row.perRound, times)})`);
    say(
      `  ${blank} CPU per broadcast: signed ${count(row.cpu.signed)} µs, unsigned ${count(row.cpu.unsigned)} µs (unsigned ÷ signed ${times(row.cpu.unsigned / row.cpu.signed)}); ` +
        `cores busy, mesh / other: signed ${median('signed', 'meshCores').toFixed(2)} / ${median('signed', 'otherCores').toFixed(2)}, unsigned ${median('unsigned', 'meshCores').toFixed(2)} / ${median('unsigned', 'otherCores').toFixed(2)}`,
    );
    for (const variant of VARIANTS) {
      const v = s[variant];
      const sum = (k: 'missing' | 'tooManyArcs' | 'refusedSends') => v.reduce((a, x) => a + x[k], 0);
      const dropped: Record<string, number> = {};
      for (const x of v) for (const [reason, n] of Object.entries(x.dropped)) dropped[reason] = (dropped[reason] ?? 0) + n;
      const drops = Object.entries(dropped).map(([reason, n]) => `${n} ${reason}`);
      if (sum('missing') + sum('tooManyArcs') + sum('refusedSends') > 0 || drops.length > 0) {
        say(
          `  ${blank} ${variant}, all runs: ${sum('missing')} deliveries missing after the drain, ${sum('tooManyArcs')} copies refused for too many arcs, ` +
            `dropped: ${drops.join(', ') || 'none'}, ${sum('refusedSends')} sends refused at the origin`,
        );
      }
      lines.push(
        JSON.stringify({
          date: new Date().toISOString(),
          machine,
          scenario: 'netcast',
          unit: scenario.unit,
          nodes,
          payloadBytes: payload.bytes,
          binary: payload.binary,
          variant,
          warmupMs,
          measuredMs,
          window: windowFor(payload.bytes),
          ...spread(v.map((x) => x.value)),
          cpuUsPerBroadcast: row.cpu[variant],
          signedOverUnsigned: row.signed.median / row.unsigned.median,
          runs: v,
        }),
      );
    }
  }
  return { rows, lines };
}

/** The Markdown table of the scenario, for the README. */
export function netcastTable(rows: NetcastRow[], nodes: number): string[] {
  const out = [
    `| network broadcast, ${nodes}-node mesh | signed (deliveries/s) | unsigned (deliveries/s) | signed ÷ unsigned | CPU per broadcast, signed | CPU per broadcast, unsigned |`,
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${payloadLabel(r.payload)} | ${count(r.signed.median)} | ${count(r.unsigned.median)} | ${times(r.signed.median / r.unsigned.median)} | ` +
        `${count(r.cpu.signed)} µs | ${count(r.cpu.unsigned)} µs |`,
    );
  }
  return out;
}

// The `netcast` scenario: network-wide broadcasts (RainTree, relayed by every node) in a full mesh of
// 8 plaintext nodes, each in its own process (netcast-node.ts), with origin signatures (the default)
// against without (`unsignedBroadcasts`, internal, for this comparison only). Node 0 originates; the
// figure is deliveries per second summed over all 8 handlers (each broadcast is 8 deliveries,
// the origin's own included), over a measured window after a warm-up.
import { fork, type ChildProcess } from 'node:child_process';
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
  /** Deliveries missing once the origin stopped and the mesh drained (0 when every node got every broadcast). */
  missing: number;
  /** Copies relayed by flooding because a RainTree send failed or views differed (0 in a healthy run). */
  gossipFallbacks: number;
  /** Broadcasts dropped by the receive pipeline, any reason (0 in a healthy run). */
  dropped: number;
  /** Sends the origin's write queues refused. */
  refusedSends: number;
  /** CPU time of all nodes over the window ÷ its length: how many cores the mesh kept busy. */
  coresBusy: number;
  /** CPU time of all nodes per broadcast delivered to all of them, µs. */
  cpuUsPerBroadcast: number;
}

interface Mark {
  delivered: number;
  originated: number;
  t: number;
  cpuMs: number;
}

interface NodeStats {
  delivered: number;
  originated: number;
  refusedSends: number;
  stats: { gossipFallbacks: number; dropped: Record<string, number> };
}

/** In flight at the origin: enough to keep every node busy, few enough that queues stay short (at most 4 MiB of payload). */
const windowFor = (bytes: number) => Number(process.env.NETCAST_WINDOW) || Math.max(64, Math.min(2048, Math.floor((4 * 2 ** 20) / bytes)));

const payloadLabel = (p: { bytes: number; binary: boolean }) =>
  `${p.bytes >= 1024 ? `${p.bytes / 1024} KiB` : `${p.bytes} B`} ${p.binary ? 'Buffer' : 'string'}`;

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
  const t0 = Date.now();
  const phase = (what: string) => process.env.NETCAST_DEBUG_PHASES && process.stderr.write(`${variant} ${payload.bytes} ${what} at ${Date.now() - t0} ms\n`);
  try {
    for (let index = 0; index < nodes; index++) {
      const spec: NetcastNodeSpec = { index, origin: index === 0, signed: variant === 'signed', payloadBytes: payload.bytes, binary: payload.binary, window: windowFor(payload.bytes) };
      children.push(fork(script, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }));
    }
    const ready = await all<{ id: string; address: string }>(children, 'ready', 30_000);
    phase('ready');
    const meshed = all(children, 'meshed', 30_000);
    children.forEach((child, i) => child.send({ type: 'connect', targets: ready.slice(i + 1).map(({ id, address }) => ({ id, address })), expect: nodes - 1 }));
    await meshed;
    phase('meshed');
    children[0]!.send({ type: 'go' });
    await sleep(warmupMs);
    const before = await all<Mark>(children, 'mark', 10_000, { type: 'mark' });
    await sleep(measuredMs);
    const after = await all<Mark>(children, 'mark', 10_000, { type: 'mark' });
    // Each node's own count over its own clock between the two marks (they reach the nodes a few ms apart).
    let value = 0;
    after.forEach((a, i) => (value += (a.delivered - before[i]!.delivered) / ((a.t - before[i]!.t) / 1000)));
    const cpuMs = after.reduce((sum, a, i) => sum + a.cpuMs - before[i]!.cpuMs, 0);
    const wallMs = after.reduce((sum, a, i) => sum + a.t - before[i]!.t, 0) / nodes;
    const coresBusy = cpuMs / wallMs;
    const cpuUsPerBroadcast = (coresBusy * 1e6) / (value / nodes);
    const broadcastsPerSec = (after[0]!.originated - before[0]!.originated) / ((after[0]!.t - before[0]!.t) / 1000);

    // Stop the origin and let the mesh drain what is in flight, then check that every node got every broadcast.
    phase('measured');
    const halted = message<{ originated: number }>(children[0]!, 'halted', 10_000);
    children[0]!.send({ type: 'halt' });
    const { originated } = await halted;
    let stats: NodeStats[] = [];
    for (let waited = 0; waited <= 3_000; waited += 50) {
      stats = await all<NodeStats>(children, 'stats', 10_000, { type: 'stats' });
      if (stats.every((s) => s.delivered >= originated)) break;
      await sleep(50);
    }
    phase('drained');
    return {
      value,
      broadcastsPerSec,
      missing: stats.reduce((sum, s) => sum + Math.max(0, originated - s.delivered), 0),
      gossipFallbacks: stats.reduce((sum, s) => sum + s.stats.gossipFallbacks, 0),
      dropped: stats.reduce((sum, s) => sum + Object.values(s.stats.dropped).reduce((a, b) => a + b, 0), 0),
      refusedSends: stats[0]!.refusedSends,
      coresBusy,
      cpuUsPerBroadcast,
    };
  } finally {
    await Promise.all(children.map(stop));
    phase('stopped');
  }
}

export interface NetcastRow {
  payload: { bytes: number; binary: boolean };
  signed: Spread;
  unsigned: Spread;
  /** signed ÷ unsigned within each round (the two ran back to back). */
  perRound: Spread;
  samples: Record<NetcastVariant, NetcastSample[]>;
}

/**
 * Runs the scenario: for every round, every payload, both variants back to back (their order
 * alternates by round), each in a fresh mesh of fresh processes. Prints as it goes; returns the
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

  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const range = (s: Spread, f: (n: number) => string) => `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
  const ratioFmt = (n: number) => `${n.toFixed(2)}×`;
  say(`\n${scenario.title}: ${nodes} plaintext nodes in separate processes, one origin, deliveries/s over all ${nodes} handlers`);
  say(`  (${warmupMs} ms warm-up, ${measuredMs} ms measured; broadcasts/s = deliveries/s ÷ ${nodes})`);
  const rows: NetcastRow[] = [];
  const lines: string[] = [];
  for (const [p, payload] of payloads.entries()) {
    const s = samples[p]!;
    if (s.signed.length === 0 || s.unsigned.length === 0) continue;
    const rounds = Math.min(s.signed.length, s.unsigned.length);
    const row: NetcastRow = {
      payload,
      signed: spread(s.signed.map((x) => x.value)),
      unsigned: spread(s.unsigned.map((x) => x.value)),
      perRound: spread(Array.from({ length: rounds }, (_, i) => s.signed[i]!.value / s.unsigned[i]!.value)),
      samples: s,
    };
    rows.push(row);
    say(`  ${payloadLabel(payload).padEnd(14)} signed ${range(row.signed, fmt).padStart(28)}   unsigned ${range(row.unsigned, fmt).padStart(28)}`);
    say(`  ${''.padEnd(14)} signed ÷ unsigned ${ratioFmt(row.signed.median / row.unsigned.median)} (per round ${range(row.perRound, ratioFmt)})`);
    for (const variant of VARIANTS) {
      const v = s[variant];
      const sum = (k: keyof NetcastSample) => v.reduce((a, x) => a + x[k], 0);
      if (sum('missing') + sum('gossipFallbacks') + sum('dropped') + sum('refusedSends') > 0) {
        say(`  ${''.padEnd(14)} ${variant}, all runs: ${sum('missing')} deliveries missing after the drain, ${sum('gossipFallbacks')} gossip fallbacks, ${sum('dropped')} dropped, ${sum('refusedSends')} sends refused at the origin`);
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
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const out = [
    `| ${nodes}-node mesh, network broadcast | signed (deliveries/s) | unsigned (deliveries/s) | signed ÷ unsigned | signed broadcasts/s | unsigned broadcasts/s |`,
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${payloadLabel(r.payload)} | ${fmt(r.signed.median)} | ${fmt(r.unsigned.median)} | ${(r.signed.median / r.unsigned.median).toFixed(2)}× | ` +
        `${fmt(r.signed.median / nodes)} | ${fmt(r.unsigned.median / nodes)} |`,
    );
  }
  return out;
}

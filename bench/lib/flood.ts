// The `throwaway-flood` scenario (issue 22, "Throwaway-key floods"): one hostile link sends network
// broadcasts signed by throwaway keys into a full mesh of 8 TLS nodes (core Peers with default budgets,
// one per process, flood-node.ts); the attacker is a process of its own (flood-attacker.ts). Honest
// request round trips are measured in the same mesh idle and then during the flood, back to back: from a
// neighbour to the victim V (the node the link goes into), and between two other nodes (which relay what
// V lets through). The figure is the ratio of their medians, flood ÷ idle. Beside it: honest data frames
// per attacker frame, when V throttled the link, and V's CPU.
import { fork, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { message, stop } from './ipc.js';
import { machineCpu } from './netcast.js';
import type { Scenario } from './scenarios.js';
import { percentile, spread } from './stats.js';

export type FloodStrategy = 'raintree' | 'gossip';
/**
 * The flood with each strategy, and a control: no flood, but an honest member (node 4) starts RainTree
 * broadcasts on the schedule V lets the flood's through (UNKNOWN_BURST at once, then UNKNOWN_RATE a
 * second, for as long as the flood lasts). What the flood still costs honest round trips, against
 * what the same broadcasts cost from a member that any node accepts (its own budget allows 200 at once
 * and 100 a second).
 */
export type FloodVariant = FloodStrategy | 'control';
const VARIANTS: FloodVariant[] = ['raintree', 'gossip', 'control'];
/** The defaults V admits unknown origins by: broadcastUnknownOriginRate 20/s, a burst of 5 s worth. */
const UNKNOWN_RATE = 20;
const UNKNOWN_BURST = 100;
/** Attacker frames a second: under the neighbour budget (1 000/s), as in issue 22, so that only the unknown-origin rule can stop them. */
const RATE = 900;
/** Broadcasts each throwaway key signs (within its origin budget). */
const PER_KEY = 200;
/** Pause between a reply and the next request of a probe loop. */
const GAP_MS = 10;
/** After the flood, time for the last relays and repairs before the frames are counted. */
const SETTLE_MS = 1_000;
/** From this far into the flood the link is throttled (after 0.6–0.8 s in trials): the victim's CPU is measured apart from then on. */
const THROTTLED_PHASE_MS = 1_500;

export interface FloodNodeSpec {
  index: number;
}

export interface FloodAttackerSpec {
  address: string;
  strategy: FloodStrategy;
  frames: number;
  perKey: number;
  rate: number;
}

export interface FloodNodeStats {
  /** Host monotonic clock, µs. */
  at: number;
  neighbours: number;
  sent: number;
  repairSent: number;
  delivered: number;
  dropped: Record<string, number>;
  cpuMs: number;
  /** Signatures checked. */
  verified: number;
  /** Event-loop delay since the node's previous stats, ms (monitorEventLoopDelay, 5 ms resolution). */
  loopDelay: { p99: number; max: number };
  attackerScore: number | null;
  attackerConnected: boolean | null;
  /** Host monotonic clock (µs) when the victim first scored the attacker below 0. */
  throttledAt: number | null;
}

interface Probed {
  /** [host clock µs at the request, round trip ms]. */
  rtts: Array<[number, number]>;
  failed: number;
}

/** Round trips (ms) of one probe: idle, during the flood, and the flood's first second (the unknown-origin burst) and the rest. */
export interface Trips {
  idle: number[];
  flood: number[];
  firstSecond: number[];
  rest: number[];
  failed: number;
}

export interface FloodSample {
  variant: FloodVariant;
  /** Round trips: a neighbour to the victim, and between two other honest nodes. */
  toVictim: Trips;
  others: Trips;
  frames: number;
  floodMs: number;
  /** Honest data frames (relays and repair copies) sent by all 8 nodes per attacker frame. */
  honestPerAttackerFrame: number;
  /** ms from the flood's first frame to the victim scoring the link below 0 (null: never). */
  throttledAfterMs: number | null;
  attackerScore: number | null;
  attackerConnected: boolean | null;
  victimDelivered: number;
  /** Signatures the victim checked during the flood (its own honest traffic has none here: nothing else broadcasts). */
  victimVerified: number;
  /** The victim's event-loop delay, ms: idle, the flood's first THROTTLED_PHASE_MS, and the rest of it. */
  victimLoop: { idle: { p99: number; max: number }; early: { p99: number; max: number }; throttled: { p99: number; max: number } };
  victimDropped: Record<string, number>;
  /** Cores used: the victim, all 8 nodes, and everything else (the attacker included), idle and during the flood. */
  cores: { idle: { victim: number; mesh: number; other: number }; flood: { victim: number; mesh: number; other: number } };
  /** Cores the victim used from THROTTLED_PHASE_MS into the flood to its end (the link throttled by then). */
  victimThrottledCores: number;
}

async function all<T>(nodes: ChildProcess[], type: string, timeoutMs: number, send?: object): Promise<T[]> {
  const replies = nodes.map((n) => message<T>(n, type, timeoutMs));
  if (send) for (const n of nodes) n.send(send);
  return Promise.all(replies);
}

const sum = (s: FloodNodeStats[], f: (x: FloodNodeStats) => number) => s.reduce((a, x) => a + f(x), 0);
const median = (v: number[]) => percentile([...v].sort((a, b) => a - b), 50);

async function runOnce(
  opts: { nodeScript: string; attackerScript: string; execArgv: string[] },
  nodes: number,
  variant: FloodVariant,
  counts: { warmupMs: number; idleMs: number; frames: number },
): Promise<FloodSample> {
  const strategy: FloodStrategy = variant === 'control' ? 'raintree' : variant;
  const children: ChildProcess[] = [];
  let attacker: ChildProcess | undefined;
  try {
    for (let index = 0; index < nodes; index++) {
      const spec: FloodNodeSpec = { index };
      children.push(fork(opts.nodeScript, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: opts.execArgv }));
    }
    const ready = await all<{ id: string; address: string }>(children, 'ready', 60_000);
    for (let i = 0; i < nodes; i++) {
      for (let j = i + 1; j < nodes; j++) {
        const done = Promise.all([message(children[i]!, 'dialed', 30_000), message(children[j]!, 'connected', 30_000)]);
        children[i]!.send({ type: 'dial', target: ready[j] });
        children[j]!.send({ type: 'await', id: ready[i]!.id });
        await done;
      }
    }
    const spec: FloodAttackerSpec = { address: ready[0]!.address, strategy, frames: counts.frames, perKey: PER_KEY, rate: RATE };
    attacker = fork(opts.attackerScript, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: opts.execArgv });
    const { id: attackerId } = await message<{ id: string }>(attacker, 'ready', 60_000);
    const watching = message(children[0]!, 'watching', 30_000);
    children[0]!.send({ type: 'watch', id: attackerId });
    await watching;

    // The probes: node 1 → V (node 0), and node 2 → node 3.
    const [a, b] = [children[1]!, children[2]!];
    const startProbes = async () => {
      const started = Promise.all([message(a, 'probing', 10_000), message(b, 'probing', 10_000)]);
      a.send({ type: 'probe', target: ready[0]!.id, gapMs: GAP_MS });
      b.send({ type: 'probe', target: ready[3]!.id, gapMs: GAP_MS });
      await started;
    };
    const stopProbes = async (): Promise<[Probed, Probed]> => {
      const done = Promise.all([message<Probed>(a, 'probed', 30_000), message<Probed>(b, 'probed', 30_000)]);
      a.send({ type: 'unprobe' });
      b.send({ type: 'unprobe' });
      return done;
    };
    await startProbes();
    await sleep(counts.warmupMs);
    await stopProbes();

    // Idle, then the flood at once.
    const s0 = await all<FloodNodeStats>(children, 'stats', 10_000, { type: 'stats' });
    const m0 = machineCpu();
    await startProbes();
    await sleep(counts.idleMs);
    const [idleA, idleB] = await stopProbes();
    const s1 = await all<FloodNodeStats>(children, 'stats', 10_000, { type: 'stats' });
    const m1 = machineCpu();
    await startProbes();
    // The control has the attacker connected and silent, and node 4 broadcasting instead.
    const caster = children[4]!;
    const flooded = message<{ startedAt: number; endedAt: number; written: number }>(variant === 'control' ? caster : attacker, variant === 'control' ? 'cast' : 'flooded', 120_000);
    if (variant === 'control') caster.send({ type: 'cast', seconds: counts.frames / RATE, rate: RATE, burst: UNKNOWN_BURST, sustained: UNKNOWN_RATE, strategy });
    else attacker.send({ type: 'flood' });
    await sleep(THROTTLED_PHASE_MS);
    const [v1] = await all<FloodNodeStats>([children[0]!], 'stats', 10_000, { type: 'stats' });
    const f = await flooded;
    const [floodA, floodB] = await stopProbes();
    const s2 = await all<FloodNodeStats>(children, 'stats', 10_000, { type: 'stats' });
    const m2 = machineCpu();
    await sleep(SETTLE_MS);
    const s3 = await all<FloodNodeStats>(children, 'stats', 10_000, { type: 'stats' });

    const cores = (x: FloodNodeStats[], y: FloodNodeStats[], mx: { busy: number; wall: number }, my: { busy: number; wall: number }) => {
      const wall = (y[0]!.at - x[0]!.at) / 1000;
      const mesh = (sum(y, (n) => n.cpuMs) - sum(x, (n) => n.cpuMs)) / wall;
      return { victim: (y[0]!.cpuMs - x[0]!.cpuMs) / wall, mesh, other: Math.max(0, (my.busy - mx.busy) / (my.wall - mx.wall) - mesh) };
    };
    const frames = (s: FloodNodeStats[]) => sum(s, (n) => n.sent + n.repairSent);
    const v = s3[0]!;
    const trips = (idle: Probed, flood: Probed): Trips => ({
      idle: idle.rtts.map(([, ms]) => ms),
      flood: flood.rtts.filter(([at]) => at >= f.startedAt).map(([, ms]) => ms),
      firstSecond: flood.rtts.filter(([at]) => at >= f.startedAt && at < f.startedAt + 1e6).map(([, ms]) => ms),
      rest: flood.rtts.filter(([at]) => at >= f.startedAt + 1e6).map(([, ms]) => ms),
      failed: idle.failed + flood.failed,
    });
    return {
      variant,
      toVictim: trips(idleA, floodA),
      others: trips(idleB, floodB),
      frames: f.written,
      floodMs: (f.endedAt - f.startedAt) / 1000,
      honestPerAttackerFrame: (frames(s3) - frames(s1)) / f.written,
      throttledAfterMs: v.throttledAt === null ? null : (v.throttledAt - f.startedAt) / 1000,
      attackerScore: v.attackerScore,
      attackerConnected: v.attackerConnected,
      victimDelivered: v.delivered - s1[0]!.delivered,
      victimVerified: v.verified - s1[0]!.verified,
      victimLoop: { idle: s1[0]!.loopDelay, early: v1!.loopDelay, throttled: s2[0]!.loopDelay },
      victimDropped: Object.fromEntries(Object.entries(v.dropped).map(([k, n]) => [k, n - (s1[0]!.dropped[k] ?? 0)]).filter(([, n]) => (n as number) > 0)),
      cores: { idle: cores(s0, s1, m0, m1), flood: cores(s1, s2, m1, m2) },
      victimThrottledCores: (s2[0]!.cpuMs - v1!.cpuMs) / ((s2[0]!.at - v1!.at) / 1000),
    };
  } finally {
    await Promise.all([...children.map(stop), attacker && stop(attacker)]);
  }
}

export interface FloodRow {
  variant: FloodVariant;
  /** Per run: median flood RTT ÷ median idle RTT. */
  toVictim: number[];
  others: number[];
  samples: FloodSample[];
}

const fmt = (n: number) => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toString());
const range = (v: number[], f = fmt) => {
  const s = spread(v);
  return `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
};

/**
 * Runs the scenario: `runs` rounds, each variant in a fresh mesh of fresh processes (their order
 * alternating by round). Prints the figures; returns the rows and their JSON lines.
 */
export async function runFlood(
  scenario: Scenario,
  opts: { runs: number; nodeScript: string; attackerScript: string; execArgv: string[]; machine: string; say: (s?: string) => void },
): Promise<{ rows: FloodRow[]; lines: string[] }> {
  const nodes = scenario.fanout ?? 8;
  const counts = { warmupMs: scenario.warmup, idleMs: scenario.intervalMs ?? 3_000, frames: scenario.measured };
  const samples = new Map<FloodVariant, FloodSample[]>(VARIANTS.map((s) => [s, []]));
  for (let run = 0; run < opts.runs; run++) {
    for (const variant of run % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
      try {
        samples.get(variant)!.push(await runOnce(opts, nodes, variant, counts));
      } catch (err) {
        opts.say(`  throwaway-flood / ${variant} run ${run + 1} failed: ${(err as Error).message}`);
      }
    }
  }
  const { say } = opts;
  say(
    `\n${scenario.title}: ${counts.frames} broadcasts from ${Math.ceil(counts.frames / PER_KEY)} throwaway keys (${PER_KEY} each) at ${RATE}/s through one TLS link into node V; ` +
      `request round trips (one in flight, ${GAP_MS} ms apart) idle for ${counts.idleMs / 1000} s, then during the flood`,
  );
  say(`  per run: median RTT during the flood ÷ median idle; figures: median of the runs [min–max]`);
  const rows: FloodRow[] = [];
  const lines: string[] = [];
  for (const variant of VARIANTS) {
    const s = samples.get(variant)!;
    if (s.length === 0) continue;
    const ratio = (p: Trips) => median(p.flood) / median(p.idle);
    const row: FloodRow = { variant, toVictim: s.map((x) => ratio(x.toVictim)), others: s.map((x) => ratio(x.others)), samples: s };
    rows.push(row);
    const p99 = (v: number[]) => percentile([...v].sort((p, q) => p - q), 99);
    const trips = (label: string, f: (x: FloodSample) => Trips, r: number[]) =>
      `  ${''.padEnd(8)} ${label}: flood ÷ idle ×${range(r)} (median ${range(s.map((x) => median(f(x).idle)))} ms idle, ${range(s.map((x) => median(f(x).flood)))} ms flood: ` +
      `${range(s.map((x) => median(f(x).firstSecond)))} in its first second, ${range(s.map((x) => median(f(x).rest)))} after); ` +
      `p99 ${range(s.map((x) => p99(f(x).idle)))} ms idle, ${range(s.map((x) => p99(f(x).flood)))} ms flood (${range(s.map((x) => p99(f(x).firstSecond)))} first second, ${range(s.map((x) => p99(f(x).rest)))} after)`;
    say(`  ${label(variant)}`);
    say(trips('neighbour → V     ', (x) => x.toVictim, row.toVictim));
    say(trips('between two others', (x) => x.others, row.others));
    const throttled = s.map((x) => x.throttledAfterMs ?? Infinity);
    say(
      `  ${''.padEnd(8)} ${variant === 'control' ? `${range(s.map((x) => x.frames))} broadcasts; data frames per broadcast` : 'honest frames per attacker frame'} ${range(s.map((x) => x.honestPerAttackerFrame))}, link throttled after ${range(throttled, (n) => (n === Infinity ? 'never' : `${Math.round(n)}`))} ms, ` +
        `flood ${range(s.map((x) => x.floodMs / 1000))} s; cores during the flood: V ${range(s.map((x) => x.cores.flood.victim))} (throttled phase ${range(s.map((x) => x.victimThrottledCores))}), ` +
        `mesh ${range(s.map((x) => x.cores.flood.mesh))}, other ${range(s.map((x) => x.cores.flood.other))}; idle: V ${range(s.map((x) => x.cores.idle.victim))}, mesh ${range(s.map((x) => x.cores.idle.mesh))}`,
    );
    const last = s.at(-1)!;
    const loop = (f: (x: FloodSample) => { p99: number; max: number }) => `p99 ${range(s.map((x) => f(x).p99))}, max ${range(s.map((x) => f(x).max))}`;
    say(
      `  ${''.padEnd(8)} V's event-loop delay (ms): idle ${loop((x) => x.victimLoop.idle)}; flood's first ${THROTTLED_PHASE_MS / 1000} s ${loop((x) => x.victimLoop.early)}; after ${loop((x) => x.victimLoop.throttled)}; ` +
        `signatures V checked per attacker frame ${range(s.map((x) => x.victimVerified / x.frames), (n) => n.toFixed(3))}`,
    );
    say(`  ${''.padEnd(8)} last run: V delivered ${last.victimDelivered}, dropped ${JSON.stringify(last.victimDropped)}, attacker score ${last.attackerScore?.toFixed(1)}, connected ${last.attackerConnected}`);
    const failed = s.reduce((a, x) => a + x.toVictim.failed + x.others.failed, 0);
    if (failed > 0) say(`  ${''.padEnd(8)} ${failed} probe requests failed`);
    const summary = (t: Trips) => ({ failed: t.failed, idle: t.idle.length, median: { idle: median(t.idle), flood: median(t.flood), firstSecond: median(t.firstSecond), rest: median(t.rest) }, p99: { idle: p99(t.idle), flood: p99(t.flood), firstSecond: p99(t.firstSecond), rest: p99(t.rest) } });
    lines.push(
      JSON.stringify({
        date: new Date().toISOString(),
        machine: opts.machine,
        scenario: 'throwaway-flood',
        unit: '×',
        nodes,
        variant,
        rate: RATE,
        perKey: PER_KEY,
        frames: counts.frames,
        toVictim: spread(row.toVictim),
        others: spread(row.others),
        runs: s.map((x) => ({ ...x, toVictim: summary(x.toVictim), others: summary(x.others) })),
      }),
    );
  }
  return { rows, lines };
}

/** The Markdown table of the scenario, for the README. */
const label = (v: FloodVariant) => (v === 'control' ? `control: no flood; an honest member's RainTree broadcasts, ${UNKNOWN_BURST} at once then ${UNKNOWN_RATE}/s (what V lets through of the flood)` : `flood, ${v}`);

export function floodTable(rows: FloodRow[]): string[] {
  const out = ['| variant | RTT neighbour → V, flood ÷ idle | RTT between two others, flood ÷ idle | honest frames per attacker frame | throttled after |', '|---|---:|---:|---:|---:|'];
  for (const r of rows) {
    const t = spread(r.samples.map((x) => x.throttledAfterMs ?? Infinity)).median;
    out.push(
      `| ${r.variant === 'control' ? 'control (honest broadcasts)' : r.variant} | ×${fmt(spread(r.toVictim).median)} | ×${fmt(spread(r.others).median)} | ${spread(r.samples.map((x) => x.honestPerAttackerFrame)).median.toFixed(2)} | ${t === Infinity ? 'never' : `${Math.round(t)} ms`} |`,
    );
  }
  return out;
}

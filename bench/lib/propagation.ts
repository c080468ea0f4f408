// The `propagation` scenario: how long a network broadcast takes to reach every node of a 16-node full
// mesh (TLS, signed broadcasts, one core Peer per process, propagation-node.ts), with repair (lazy pull,
// IHAVE/IWANT, every 500 ms by default) and without, in a healthy mesh and with 2 faulty relays: frozen
// (SIGSTOP: connected, silent) or dropping (the internal `dropRelays`: delivers, never forwards, never
// announces). Broadcasts are paced and started by rotating originators, so the figure is latency, not
// throughput. It also measures the repair traffic: IHAVE/IWANT bytes per connection while broadcasting
// and once the mesh is idle.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { message, stop } from './ipc.js';
import { machineCpu } from './netcast.js';
import type { Scenario } from './scenarios.js';
import { percentile, spread, type Spread } from './stats.js';

export type Fault = 'none' | 'frozen' | 'drop';
const FAULTS: Fault[] = ['none', 'frozen', 'drop'];
/** Faulty relays in the faulty variants. */
const FAULTY = 2;
const REPAIR_DEFAULT_MS = 500;
/** After the last broadcast, time for repair to fill in (6 intervals) before the figures are taken. */
const DRAIN_MS = 3_000;
/** The idle window, last, in the healthy mesh with repair: no broadcasts, only what repair still sends. */
const IDLE_MS = 10_000;
const PAYLOAD_BYTES = 64;
/** Healthy mesh, after the drain: a slow phase, one broadcast per repair interval, for the repair traffic at a low rate. */
const SLOW = { count: 20, intervalMs: 500 };
/**
 * The nodes' pexIntervalMs (30 s by default). A full peer-exchange round costs far more CPU than a broadcast (each node
 * reads 15 lists), so no round may fall in a window whose CPU is compared: in the healthy mesh the broadcasts start
 * after every node's first full round (when each node knows its neighbours' connections, as in a settled network)
 * and end before the next one. 40 s leaves room for the 23 s they take; at 30 s a run's second round came too close.
 */
export const PEX_INTERVAL_MS = 40_000;

/** What one node process is told (argv). */
export interface PropagationNodeSpec {
  index: number;
  /** broadcastRepairIntervalMs: 0 turns repair off. */
  repairIntervalMs: number;
  /** broadcastRepairFanout; the default when absent. 0 leaves only the designated announcers (core Peer: not validated). */
  repairFanout?: number;
  /** pexIntervalMs (PEX_INTERVAL_MS). */
  pexIntervalMs: number;
  dropRelays: boolean;
  payloadBytes: number;
  /**
   * The node's Ed25519 seed (hex), new for every round and the same for each variant in it: the ids, and so
   * where the faulty relays sit on the ring, are then the same with repair and without (a throwaway key).
   */
  privateKey: string;
}

/** A node's counters (networkBroadcastStats), as it reports them. */
export interface PropagationNodeStats {
  neighbours: number;
  sent: number;
  proxied: number;
  unrouted: number;
  tooManyArcs: number;
  dropped: Record<string, number>;
  repair: { announced: number; requested: number; sent: number; controlBytes: number };
  /** The process's CPU time so far (user + system), ms. */
  cpuMs: number;
  /** Bytes of control frames queued so far (before TLS): network broadcasts, IHAVE/IWANT, pings. */
  controlOutBytes: number;
}

interface NodeReport extends PropagationNodeStats {
  /** [sequence number, host clock µs] of every broadcast this node's handler got, first copy. */
  delivered: Array<[number, number]>;
  duplicates: number;
  /** [sequence number, host clock µs] of every broadcast this node started. */
  originated: Array<[number, number]>;
  refused: Array<[number, string]>;
}

export interface Variant {
  fault: Fault;
  /** broadcastRepairIntervalMs; 0: repair off. */
  repairMs: number;
  /** broadcastRepairFanout when not the default (`--repair-fanout`, healthy mesh only). */
  fanout?: number;
}

export interface PropagationSample {
  /** Per measured broadcast, ms from its send to the last live node's delivery; null when a live node never got it. */
  times: Array<number | null>;
  /** Percentiles of `times`, a broadcast that never reached every live node counting as Infinity (null in JSON). */
  p50: number;
  p99: number;
  /** Share of (broadcast, live node) pairs delivered. */
  coverage: number;
  /** Share of broadcasts that reached every live node. */
  complete: number;
  /** Nodes that could deliver: 16, or 14 with 2 frozen. */
  live: number;
  /** Live nodes' handlers that got a broadcast twice (0: exactly once). */
  duplicates: number;
  /** RainTree and gossip data frames sent, over all nodes, per broadcast (N − 1 = 15 in a healthy full mesh). */
  relaySendsPerBroadcast: number;
  /** Copies sent in answer to an IWANT, over all nodes, per broadcast (warm-up included, as relay sends). */
  repairCopiesPerBroadcast: number;
  /** Σ repair.controlBytes (IHAVE and IWANT sent) from the first broadcast to the end of the drain, per broadcast per connection. */
  controlBytesPerBroadcastPerConnection: number;
  /** Network broadcast frames (control bytes queued less repair.controlBytes), per broadcast per connection: what repair adds to. */
  dataBytesPerBroadcastPerConnection: number;
  /** CPU time of the live nodes while the measured broadcasts were sent, per broadcast, ms (all nodes together). */
  cpuMsPerBroadcast: number;
  /** Cores busy with anything but the live nodes while the measured broadcasts were sent (other processes on the machine). */
  otherCores: number;
  /** Broadcasts per second the run started (measured, over its own clock). */
  broadcastsPerSec: number;
  /** Healthy mesh with repair only: Σ repair.controlBytes per connection per second over the idle window. */
  idleBytesPerSecPerConnection?: number;
  /** Healthy mesh only: the slow phase (SLOW), its IHAVE/IWANT bytes per broadcast per connection and its CPU per broadcast (ms, all nodes). */
  slow?: {
    broadcastsPerSec: number;
    controlBytesPerBroadcastPerConnection: number;
    cpuMsPerBroadcast: number;
    /** The window on the host's monotonic clock, µs (process.hrtime, the clock of V8's profile timestamps): to cut it out of a `--profile`. */
    windowUs: [number, number];
  };
  /** Broadcasts the origin's budget or queues refused (left out of the figures). */
  refused: number;
  /** Fewest connections any live node had at the end (15: no connection was lost, frozen ones included). */
  minNeighbours: number;
  tooManyArcs: number;
  unrouted: number;
  /** Copies the live nodes' receive pipelines dropped, by reason (only reasons that occurred). */
  dropped: Record<string, number>;
}

const hostUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function all<T>(nodes: ChildProcess[], type: string, timeoutMs: number, send?: object): Promise<T[]> {
  const replies = nodes.map((n) => message<T>(n, type, timeoutMs));
  if (send) for (const n of nodes) n.send(send);
  return Promise.all(replies);
}

/** Processes stopped with SIGSTOP right now: woken (SIGCONT) whatever ends the orchestrator, so none is left stopped. */
const frozen = new Set<ChildProcess>();
function thaw(): void {
  for (const child of frozen) child.kill('SIGCONT');
  frozen.clear();
}
function onSignal(signal: NodeJS.Signals): void {
  thaw();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/**
 * Which of a pair dials: a node dials the 7 after it on the ring of indices, and nodes 0–7 also the one
 * opposite, so that none has more than 8 outbound or 8 inbound connections (the defaults: maxOutbound 10,
 * maxInboundPerIp 8, and every node is 127.0.0.1).
 */
function dials(nodes: number, i: number, j: number): boolean {
  const d = (j - i + nodes) % nodes;
  return d < nodes / 2 || (d === nodes / 2 && i < nodes / 2);
}

/** What every variant of a round shares: the nodes' keys (throwaway), and the order their connections come up in. */
interface Round {
  keys: string[];
  pairs: Array<[number, number]>;
}

function newRound(nodes: number): Round {
  const keys = Array.from({ length: nodes }, () => randomBytes(32).toString('hex'));
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < nodes; i++) for (let j = i + 1; j < nodes; j++) pairs.push([i, j]);
  for (let k = pairs.length - 1; k > 0; k--) {
    const r = randomInt(k + 1);
    [pairs[k], pairs[r]] = [pairs[r]!, pairs[k]!];
  }
  return { keys, pairs };
}

/** The faulty nodes: 2 of 16, spread over the indices (their ids, and so their ring places, are random). */
const faultyIndex = (nodes: number) => new Set(Array.from({ length: FAULTY }, (_, k) => Math.floor(((k + 0.5) * nodes) / FAULTY)));

export async function runOnce(
  script: string,
  execArgv: string[],
  nodes: number,
  variant: Variant,
  counts: { warmup: number; measured: number; intervalMs: number },
  phases: { idle: boolean; slow: boolean },
  round: Round,
): Promise<PropagationSample> {
  const faulty = variant.fault === 'none' ? new Set<number>() : faultyIndex(nodes);
  const children: ChildProcess[] = [];
  try {
    for (let index = 0; index < nodes; index++) {
      const spec: PropagationNodeSpec = {
        index,
        repairIntervalMs: variant.repairMs,
        ...(variant.fanout === undefined ? {} : { repairFanout: variant.fanout }),
        pexIntervalMs: PEX_INTERVAL_MS,
        dropRelays: variant.fault === 'drop' && faulty.has(index),
        payloadBytes: PAYLOAD_BYTES,
        privateKey: round.keys[index]!,
      };
      children.push(fork(script, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }));
    }
    const forked = performance.now();
    const ready = await all<{ id: string; address: string }>(children, 'ready', 60_000);
    const started = performance.now();
    // A full mesh, each pair once, one connection at a time in the round's order. RainTree hands a third to the
    // first neighbour inside it (in the order connections came up), so with the round's keys and order every
    // variant routes each broadcast the same way, and the faulty relays leave out the same nodes with repair and
    // without. The order is random, as on a network where connections come up as they may (in index order, a
    // third always went to its lowest index, and in a trial every broadcast lost nodes to the 2 faulty relays).
    for (const [i, j] of round.pairs) {
      const [dialer, acceptor] = dials(nodes, i, j) ? [i, j] : [j, i];
      const done = Promise.all([message(children[dialer]!, 'dialed', 30_000), message(children[acceptor]!, 'connected', 30_000)]);
      children[dialer]!.send({ type: 'dial', target: ready[acceptor] });
      children[acceptor]!.send({ type: 'await', id: ready[dialer]!.id });
      await done;
    }

    const liveIdx = children.map((_, i) => i).filter((i) => !(variant.fault === 'frozen' && faulty.has(i)));
    const live = liveIdx.map((i) => children[i]!);
    const origins = children.map((_, i) => i).filter((i) => !faulty.has(i));
    if (variant.fault === 'frozen') {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('exit', thaw);
      for (const i of faulty) {
        frozen.add(children[i]!);
        children[i]!.kill('SIGSTOP');
      }
    }

    // Healthy mesh (its CPU is compared with repair and without): after every node's first full peer-exchange round.
    if (phases.slow) await sleep(Math.max(0, started + PEX_INTERVAL_MS + 1_500 - performance.now()));
    const total = counts.warmup + counts.measured;
    let before: PropagationNodeStats[] = [];
    let firstCast = 0;
    let cpu0 = machineCpu();
    for (let seq = 0; seq < total; seq++) {
      if (seq === counts.warmup) {
        before = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
        cpu0 = machineCpu();
        firstCast = performance.now();
      }
      children[origins[seq % origins.length]!]!.send({ type: 'cast', seq });
      await sleep(counts.intervalMs);
    }
    const castMs = performance.now() - firstCast;
    const cast = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
    const cpu1 = machineCpu();
    await sleep(DRAIN_MS);
    const reports = await all<NodeReport>(live, 'report', 30_000, { type: 'report' });

    const connections = (nodes * (nodes - 1)) / 2;
    const controlBytes = (s: PropagationNodeStats[]) => s.reduce((sum, x) => sum + x.repair.controlBytes, 0);
    let slow: PropagationSample['slow'];
    if (phases.slow) {
      const a = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
      const t0 = performance.now();
      const w0 = hostUs();
      for (let k = 0; k < SLOW.count; k++) {
        children[origins[k % origins.length]!]!.send({ type: 'cast', seq: total + k });
        await sleep(SLOW.intervalMs);
      }
      const rate = SLOW.count / ((performance.now() - t0) / 1000);
      const b = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
      const w1 = hostUs();
      // Every node's second full round comes at least 2 PEX_INTERVAL_MS after the fork (a CPU spike of its own).
      if (performance.now() > forked + 2 * PEX_INTERVAL_MS) process.stderr.write(`  propagation: a peer-exchange round may have fallen in the measured window (${((performance.now() - forked) / 1000).toFixed(0)} s after the fork)\n`);
      // The last ids are announced up to 1.5 intervals after they arrive.
      await sleep(Math.max(1_000, 3 * variant.repairMs));
      const c = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
      const cpu = (x: PropagationNodeStats[]) => x.reduce((acc, n) => acc + n.cpuMs, 0);
      slow = {
        broadcastsPerSec: rate,
        controlBytesPerBroadcastPerConnection: (controlBytes(c) - controlBytes(a)) / SLOW.count / connections,
        cpuMsPerBroadcast: (cpu(b) - cpu(a)) / SLOW.count,
        windowUs: [w0, w1],
      };
    }

    let idleBytesPerSecPerConnection: number | undefined;
    if (phases.idle) {
      const t0 = performance.now();
      const a = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
      await sleep(IDLE_MS);
      const b = await all<PropagationNodeStats>(live, 'stats', 30_000, { type: 'stats' });
      idleBytesPerSecPerConnection = (controlBytes(b) - controlBytes(a)) / connections / ((performance.now() - t0) / 1000);
    }
    // Per measured broadcast: its send (the origin's clock reading) and every live node's delivery.
    const sentAt = new Map<number, number>();
    for (const r of reports) for (const [seq, at] of r.originated) sentAt.set(seq, at);
    const deliveredAt = reports.map((r) => new Map(r.delivered));
    const times: Array<number | null> = [];
    let pairs = 0;
    let complete = 0;
    let refused = 0;
    for (let seq = counts.warmup; seq < total; seq++) {
      const t0 = sentAt.get(seq);
      if (t0 === undefined) {
        refused++;
        continue;
      }
      let last = t0;
      let got = 0;
      for (const d of deliveredAt) {
        const at = d.get(seq);
        if (at === undefined) continue;
        got++;
        last = Math.max(last, at);
      }
      pairs += got;
      if (got === live.length) complete++;
      times.push(got === live.length ? (last - t0) / 1000 : null);
    }
    const sorted = times.map((t) => t ?? Infinity).sort((a, b) => a - b);
    const after = reports;
    const sum = (s: PropagationNodeStats[], f: (x: PropagationNodeStats) => number) => s.reduce((acc, x) => acc + f(x), 0);
    const measured = times.length;
    const dropped: Record<string, number> = {};
    for (const r of reports) for (const [reason, n] of Object.entries(r.dropped)) if (n > 0) dropped[reason] = (dropped[reason] ?? 0) + n;
    return {
      times,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      coverage: pairs / (measured * live.length),
      complete: complete / measured,
      live: live.length,
      duplicates: reports.reduce((acc, r) => acc + r.duplicates, 0),
      relaySendsPerBroadcast: sum(after, (x) => x.sent) / total,
      repairCopiesPerBroadcast: sum(after, (x) => x.repair.sent) / total,
      controlBytesPerBroadcastPerConnection: (controlBytes(after) - controlBytes(before)) / measured / connections,
      dataBytesPerBroadcastPerConnection:
        (sum(after, (x) => x.controlOutBytes) - sum(before, (x) => x.controlOutBytes) - (controlBytes(after) - controlBytes(before))) / measured / connections,
      cpuMsPerBroadcast: (sum(cast, (x) => x.cpuMs) - sum(before, (x) => x.cpuMs)) / measured,
      otherCores: Math.max(0, (cpu1.busy - cpu0.busy - (sum(cast, (x) => x.cpuMs) - sum(before, (x) => x.cpuMs))) / (cpu1.wall - cpu0.wall)),
      broadcastsPerSec: counts.measured / (castMs / 1000),
      idleBytesPerSecPerConnection,
      slow,
      refused: refused + reports.reduce((acc, r) => acc + r.refused.length, 0),
      minNeighbours: Math.min(...after.map((x) => x.neighbours)),
      tooManyArcs: sum(after, (x) => x.tooManyArcs),
      unrouted: sum(after, (x) => x.unrouted),
      dropped,
    };
  } finally {
    thaw();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', thaw);
    await Promise.all(children.map(stop));
  }
}

/** A figure over every run's broadcasts together, and its lowest and highest value in a single run. */
export interface Pooled {
  all: number;
  min: number;
  max: number;
}

export interface PropagationRow {
  variant: Variant;
  p50: Pooled;
  p99: Pooled;
  coverage: Pooled;
  complete: Pooled;
  samples: PropagationSample[];
}

export const faultLabel = (f: Fault) => (f === 'none' ? 'healthy' : f === 'frozen' ? `${FAULTY} frozen relays` : `${FAULTY} dropping relays`);
export const repairLabel = (ms: number, fanout?: number) => (ms > 0 ? `repair ${ms} ms${fanout === undefined ? '' : `, fanout ${fanout}`}` : 'repair off');
export const ms = (n: number) => (n === Infinity ? '∞' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
const pct = (n: number) => `${(n * 100).toFixed(n === 1 ? 0 : 2)} %`;
const range = (s: Pooled, f: (n: number) => string) => `${f(s.all)} [${f(s.min)}–${f(s.max)}]`;
const median = (v: number[]) => spread(v).median;

/**
 * Runs the scenario: in every round, for every fault, repair on and off back to back (their order
 * alternates by round), each in a fresh mesh of fresh processes with the round's keys and connection order. Prints the figures; returns the
 * rows and their JSON lines.
 */
export async function runPropagation(
  scenario: Scenario,
  opts: {
    runs: number;
    script: string;
    execArgv: string[];
    machine: string;
    say: (s?: string) => void;
    /** `--repair-fanout`: the healthy mesh runs with repair once per fanout (broadcastRepairFanout), beside repair off; default: the default fanout. */
    repairFanouts?: number[];
    /** `--healthy-only`: no faulty variants. */
    healthyOnly?: boolean;
  },
): Promise<{ rows: PropagationRow[]; lines: string[]; idle: Spread | undefined }> {
  const { runs, script, execArgv, machine, say } = opts;
  const nodes = scenario.fanout ?? 16;
  const counts = { warmup: scenario.warmup, measured: scenario.measured, intervalMs: scenario.intervalMs ?? 40 };
  const faults = opts.healthyOnly ? FAULTS.filter((f) => f === 'none') : FAULTS;
  const variants: Variant[] = faults.flatMap((fault): Variant[] => [
    ...(fault === 'none' && opts.repairFanouts ? opts.repairFanouts.map((fanout) => ({ fault, repairMs: REPAIR_DEFAULT_MS, fanout })) : [{ fault, repairMs: REPAIR_DEFAULT_MS }]),
    { fault, repairMs: 0 },
  ]);
  const samples = variants.map(() => [] as PropagationSample[]);
  for (let run = 0; run < runs; run++) {
    const round = newRound(nodes);
    for (const fault of faults) {
      const pair = variants.map((v, i) => [v, i] as const).filter(([v]) => v.fault === fault);
      for (const [variant, i] of run % 2 === 0 ? pair : [...pair].reverse()) {
        try {
          const phases = { idle: variant.fault === 'none' && variant.repairMs > 0, slow: variant.fault === 'none' };
          samples[i]!.push(await runOnce(script, execArgv, nodes, variant, counts, phases, round));
        } catch (err) {
          say(`  propagation / ${faultLabel(variant.fault)} / ${repairLabel(variant.repairMs, variant.fanout)} run ${run + 1} failed: ${(err as Error).message}`);
        }
      }
    }
  }

  say(
    `\n${scenario.title} (ms from send to the last live node's delivery; ${counts.measured} broadcasts per run after ${counts.warmup} unmeasured, ` +
      `one every ${counts.intervalMs} ms from rotating origins; ${PAYLOAD_BYTES} B string; figures taken ${DRAIN_MS / 1000} s after the last)`,
  );
  say(`  a broadcast that never reached every live node counts as ∞; coverage: deliveries over broadcasts × live nodes;`);
  say(`  each figure over all ${runs} runs' broadcasts together, [lowest–highest of a single run]; other figures: medians of the runs`);
  const rows: PropagationRow[] = [];
  const lines: string[] = [];
  for (const [i, variant] of variants.entries()) {
    const s = samples[i]!;
    if (s.length === 0) continue;
    // Pooled: which relays a frozen or dropping node leaves out depends on the mesh (its ids, and the order its
    // connections came up in, which picks the neighbour each third goes to), so runs differ far more than the
    // machine's noise; every run's broadcasts together give the figure, the runs' own values its range.
    const times = s.flatMap((x) => x.times).map((t) => t ?? Infinity).sort((a, b) => a - b);
    const pooled = (all: number, f: (x: PropagationSample) => number): Pooled => ({ all, min: Math.min(...s.map(f)), max: Math.max(...s.map(f)) });
    const weighted = (f: (x: PropagationSample) => number) => s.reduce((a, x) => a + f(x) * x.times.length, 0) / s.reduce((a, x) => a + x.times.length, 0);
    const row: PropagationRow = {
      variant,
      p50: pooled(percentile(times, 50), (x) => x.p50),
      p99: pooled(percentile(times, 99), (x) => x.p99),
      coverage: pooled(weighted((x) => x.coverage), (x) => x.coverage),
      complete: pooled(weighted((x) => x.complete), (x) => x.complete),
      samples: s,
    };
    rows.push(row);
    const extra = [
      `${median(s.map((x) => x.relaySendsPerBroadcast)).toFixed(1)} relay sends per broadcast`,
      `CPU ${median(s.map((x) => x.cpuMsPerBroadcast)).toFixed(1)} ms per broadcast, all nodes`,
      `other load ${median(s.map((x) => x.otherCores)).toFixed(2)} cores`,
      variant.repairMs > 0 ? `${median(s.map((x) => x.repairCopiesPerBroadcast)).toFixed(2)} repair copies per broadcast` : '',
      variant.repairMs > 0 ? `IHAVE/IWANT ${median(s.map((x) => x.controlBytesPerBroadcastPerConnection)).toFixed(1)} B per broadcast per connection` : '',
    ].filter(Boolean);
    say(
      `  ${faultLabel(variant.fault).padEnd(18)} ${repairLabel(variant.repairMs, variant.fanout).padEnd(15)} p50 ${range(row.p50, ms).padStart(22)} ms   p99 ${range(row.p99, ms).padStart(22)} ms   ` +
        `coverage ${range(row.coverage, pct)}, complete ${range(row.complete, pct)}   (${extra.join(', ')})`,
    );
    const anomalies: string[] = [];
    const total = (f: (x: PropagationSample) => number) => s.reduce((a, x) => a + f(x), 0);
    if (total((x) => x.duplicates) > 0) anomalies.push(`${total((x) => x.duplicates)} duplicate deliveries`);
    if (total((x) => x.refused) > 0) anomalies.push(`${total((x) => x.refused)} sends refused`);
    if (total((x) => x.tooManyArcs) > 0) anomalies.push(`${total((x) => x.tooManyArcs)} copies refused for too many arcs`);
    if (total((x) => x.unrouted) > 0) anomalies.push(`${total((x) => x.unrouted)} unrouted arcs`);
    const drops: Record<string, number> = {};
    for (const x of s) for (const [reason, n] of Object.entries(x.dropped)) drops[reason] = (drops[reason] ?? 0) + n;
    if (Object.keys(drops).length) anomalies.push(`dropped: ${Object.entries(drops).map(([reason, n]) => `${n} ${reason}`).join(', ')}`);
    const minN = Math.min(...s.map((x) => x.minNeighbours));
    if (minN < nodes - 1) anomalies.push(`a live node ended with ${minN} connections, not ${nodes - 1}`);
    if (anomalies.length) say(`  ${''.padEnd(34)} all runs: ${anomalies.join(', ')}`);
    lines.push(
      JSON.stringify({
        date: new Date().toISOString(),
        machine,
        scenario: 'propagation',
        unit: 'ms',
        nodes,
        tls: true,
        payloadBytes: PAYLOAD_BYTES,
        fault: variant.fault,
        repairFanout: variant.fanout,
        faulty: variant.fault === 'none' ? 0 : FAULTY,
        repairIntervalMs: variant.repairMs,
        warmup: counts.warmup,
        measured: counts.measured,
        intervalMs: counts.intervalMs,
        drainMs: DRAIN_MS,
        // Over all runs' broadcasts together, with the lowest and highest single-run value (∞ is null in JSON).
        p50: row.p50,
        p99: row.p99,
        coverage: row.coverage,
        complete: row.complete,
        runs: s,
      }),
    );
  }

  const reference = samples[variants.findIndex((v) => v.fault === 'none' && v.repairMs === 0)]!;
  let idle: Spread | undefined;
  // Each healthy variant with repair (one per --repair-fanout) against the same healthy mesh without.
  for (const [i, variant] of variants.entries()) {
    if (variant.fault !== 'none' || variant.repairMs === 0) continue;
    const healthy = samples[i]!;
    const idleValues = healthy.map((x) => x.idleBytesPerSecPerConnection).filter((x): x is number => x !== undefined);
    if (idleValues.length === 0) continue;
    const idleHere = spread(idleValues);
    idle ??= idleHere;
    const connections = (nodes * (nodes - 1)) / 2;
    const data = median(healthy.map((x) => x.dataBytesPerBroadcastPerConnection));
    const slowOf = (v: PropagationSample[]) => v.map((x) => x.slow).filter((x): x is NonNullable<PropagationSample['slow']> => x !== undefined);
    const cpuCost = (withRepair: number[], without: number[]) =>
      withRepair.length && without.length ? { withRepair: median(withRepair), without: median(without) } : undefined;
    const cpuText = (c: { withRepair: number; without: number } | undefined) =>
      c
        ? `; CPU per broadcast, all nodes: ${c.withRepair.toFixed(1)} ms with repair, ${c.without.toFixed(1)} ms without ` +
          `(${(c.withRepair / c.without).toFixed(2)}×)`
        : '';
    const phases = [
      {
        rate: median(healthy.map((x) => x.broadcastsPerSec)),
        perBroadcast: median(healthy.map((x) => x.controlBytesPerBroadcastPerConnection)),
        cpu: cpuCost(healthy.map((x) => x.cpuMsPerBroadcast), reference.map((x) => x.cpuMsPerBroadcast)),
      },
    ];
    const slow = slowOf(healthy);
    if (slow.length > 0) {
      phases.push({
        rate: median(slow.map((x) => x.broadcastsPerSec)),
        perBroadcast: median(slow.map((x) => x.controlBytesPerBroadcastPerConnection)),
        cpu: cpuCost(slow.map((x) => x.cpuMsPerBroadcast), slowOf(reference).map((x) => x.cpuMsPerBroadcast)),
      });
    }
    say(`  repair traffic, healthy mesh, ${repairLabel(variant.repairMs, variant.fanout)}: Σ IHAVE/IWANT bytes sent ÷ ${connections} connections (medians of the runs)`);
    say(`    idle, the ${IDLE_MS / 1000} s after the broadcasts: ${idleHere.median.toFixed(2)} [${idleHere.min.toFixed(2)}–${idleHere.max.toFixed(2)}] B/s per connection`);
    for (const p of phases) {
      say(`    at ${p.rate.toFixed(1)} broadcasts/s: ${(p.perBroadcast * p.rate).toFixed(1)} B/s per connection, ${p.perBroadcast.toFixed(1)} B per connection per broadcast${cpuText(p.cpu)}`);
    }
    say(`    (the broadcast frames themselves, ${PAYLOAD_BYTES} B payload: ${data.toFixed(1)} B per connection per broadcast)`);
    lines.push(
      JSON.stringify({
        date: new Date().toISOString(),
        machine,
        scenario: 'propagation-repair-traffic',
        unit: 'B/s per connection',
        nodes,
        connections,
        repairIntervalMs: variant.repairMs,
        repairFanout: variant.fanout,
        idleMs: IDLE_MS,
        idle: idleHere,
        dataBytesPerBroadcastPerConnection: data,
        phases: phases.map((p) => ({ broadcastsPerSec: p.rate, bytesPerSecPerConnection: p.perBroadcast * p.rate, bytesPerBroadcastPerConnection: p.perBroadcast, cpuMsPerBroadcast: p.cpu })),
      }),
    );
  }
  return { rows, lines, idle };
}

/** The Markdown table of the scenario, for the README. */
export function propagationTable(rows: PropagationRow[], nodes: number): string[] {
  const out = [
    `| ${nodes}-node mesh, TLS | repair | p50 (ms) | p99 (ms) | coverage | broadcasts complete | CPU per broadcast, all nodes |`,
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(`| ${faultLabel(r.variant.fault)} | ${repairLabel(r.variant.repairMs, r.variant.fanout)} | ${ms(r.p50.all)} | ${ms(r.p99.all)} | ${pct(r.coverage.all)} | ${pct(r.complete.all)} | ${median(r.samples.map((x) => x.cpuMsPerBroadcast)).toFixed(1)} ms |`);
  }
  return out;
}

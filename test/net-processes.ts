import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NetworkBroadcastStats } from '../src/broadcast/pipeline.js';

/**
 * Networks of real node processes on 127.0.0.1 (test/fixtures/core-node.mjs, the
 * built package), for the specs that need many nodes and real faults: a process
 * can be frozen with SIGSTOP, which no in-process node can imitate.
 */

const fixture = fileURLToPath(new URL('./fixtures/core-node.mjs', import.meta.url));

/** Every dial comes from 127.0.0.1, so the per-IP limits are raised as for any loopback network (as test/e2e/network.spec.ts does). */
export const LOOPBACK_LIMITS = { listen: '127.0.0.1:0', maxInboundPerIp: 200, inboundRatePerIp: 500 } as const;

export interface PeerLink {
  id: string;
  direction: 'inbound' | 'outbound';
}

export interface LogLine {
  level: 'log' | 'debug' | 'warn' | 'error';
  /** Date.now() in the node's process. */
  at: number;
  message: string;
}

/** Log lines kept per traced node. */
const TRACE_LINES = 20_000;

export interface NodeStats {
  stats: NetworkBroadcastStats;
  peers: PeerLink[];
  /** Network broadcasts the node's handler got. */
  handled: number;
}

export interface NodeProcess {
  readonly index: number;
  readonly child: ChildProcess;
  id: string;
  address: string;
  /** Deliveries to this node's handler, by broadcast id. */
  readonly heard: Map<string, number>;
  /** When the test process read this node's first delivery of each id (Date.now()). */
  readonly heardAt: Map<string, number>;
  frozen: boolean;
  exited: boolean;
  /** What the node logged, when started with startNode(…, { trace: true }) (bounded: the last TRACE_LINES). */
  readonly log: LogLine[];
  /** Sends a command and waits for the answer with its seq. */
  ask<T = Record<string, unknown>>(command: Record<string, unknown>, timeoutMs?: number): Promise<T>;
}

/**
 * Spawns a node process that loads the package and waits for {op:'start'} (start it with startNode).
 * `script`: another fixture that speaks the same protocol (test/fixtures/pattern-node.mjs, a Nest app).
 */
export async function spawnNode(index: number, timeoutMs = 30_000, script = fixture): Promise<NodeProcess> {
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let loaded: () => void = () => undefined;
  const loadedP = new Promise<void>((resolve) => (loaded = resolve));
  const node: NodeProcess = {
    index,
    child,
    id: '',
    address: '',
    heard: new Map(),
    heardAt: new Map(),
    frozen: false,
    exited: false,
    log: [],
    ask<T>(command: Record<string, unknown>, askTimeoutMs = 10_000): Promise<T> {
      const n = ++seq;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(n);
          reject(new Error(`node ${index} did not answer ${JSON.stringify(command).slice(0, 100)} within ${askTimeoutMs} ms`));
        }, askTimeoutMs);
        waiting.set(n, {
          resolve: (v) => (clearTimeout(timer), resolve(v as T)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        child.stdin!.write(JSON.stringify({ ...command, seq: n }) + '\n');
      });
    },
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // not ours
    }
    if (message.type === 'loaded') return loaded();
    if (message.type === 'log') {
      if (node.log.length >= TRACE_LINES) node.log.shift();
      node.log.push(message as unknown as LogLine);
      return;
    }
    if (message.type === 'heard') {
      const id = message.id as string;
      node.heard.set(id, (node.heard.get(id) ?? 0) + 1);
      if (!node.heardAt.has(id)) node.heardAt.set(id, Date.now());
      return;
    }
    const pending = typeof message.seq === 'number' ? waiting.get(message.seq) : undefined;
    if (!pending) return;
    waiting.delete(message.seq as number);
    if (message.type === 'error') pending.reject(new Error(`node ${index}: ${String(message.message)}`));
    else pending.resolve(message);
  });
  child.once('exit', () => {
    node.exited = true;
    for (const pending of waiting.values()) pending.reject(new Error(`node ${index} exited`));
    waiting.clear();
  });
  child.stdin!.on('error', () => undefined); // a node that exited: its answer is rejected above
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    loadedP,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`node ${index} did not load within ${timeoutMs} ms`)), timeoutMs))),
    once(child, 'exit').then(() => Promise.reject(new Error(`node ${index} exited while loading`))),
  ]).finally(() => clearTimeout(timer));
  return node;
}

/**
 * Starts a loaded node with these options (LOOPBACK_LIMITS first); resolves once it listens (after its first dial of each configured peer).
 * `trace`: the node's log lines are kept in node.log.
 */
export async function startNode(node: NodeProcess, options: Record<string, unknown>, { trace = false } = {}): Promise<NodeProcess> {
  const ready = await node.ask<{ id: string; address: string }>({ op: 'start', options: { ...LOOPBACK_LIMITS, ...options }, trace }, 30_000);
  node.id = ready.id;
  node.address = ready.address;
  return node;
}

/** Spawns `count` processes, numbered from `first`, loading at most `parallel` at a time (loading is the expensive part). */
export async function spawnNodes(count: number, first = 0, parallel = 8): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = [];
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < count) {
      const index = first + next++;
      try {
        nodes[index - first] = await spawnNode(index);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  if (failure !== undefined) {
    await stopNodes(nodes.filter(Boolean));
    throw failure;
  }
  return nodes;
}

export const addressOf = (node: NodeProcess) => `${node.id}@${node.address}`;

export function freeze(node: NodeProcess): void {
  node.child.kill('SIGSTOP');
  node.frozen = true;
}

export function thaw(node: NodeProcess): void {
  if (!node.frozen) return;
  node.child.kill('SIGCONT');
  node.frozen = false;
}

/** Thaws frozen nodes, asks every node to close (SIGTERM), and kills what has not exited within `graceMs`. */
export async function stopNodes(nodes: readonly NodeProcess[], graceMs = 5000): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      if (node.exited || node.child.exitCode !== null || node.child.signalCode !== null) return;
      const exited = once(node.child, 'exit');
      thaw(node);
      node.child.kill('SIGTERM');
      const timer = setTimeout(() => node.child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }),
  );
}

export function statsOf(node: NodeProcess): Promise<NodeStats> {
  return node.ask<NodeStats>({ op: 'stats' });
}

/** Data frames a node sent: RainTree, proxy and gossip copies, and repair answers. */
export const dataFrames = (s: NetworkBroadcastStats) => s.sent + s.repair.sent;

/** The sum of `pick` over the nodes' stats. */
export function total(stats: readonly NodeStats[], pick: (s: NetworkBroadcastStats) => number): number {
  return stats.reduce((a, s) => a + pick(s.stats), 0);
}

/** The network broadcast's id, from `from`. */
export async function broadcastFrom(from: NodeProcess, data: unknown): Promise<string> {
  const answer = await from.ask<{ id: string }>({ op: 'broadcast', data });
  return answer.id;
}

/** Waits, at most `timeoutMs`, until `check` holds; polls every `everyMs`. Returns whether it held. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** min / max / mean of a list of numbers, for reports. */
export function summary(values: readonly number[]): { min: number; max: number; mean: number } {
  return { min: Math.min(...values), max: Math.max(...values), mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length) };
}

/** Reports go to stdout only with P2P_TEST_STATS set (as test/e2e/network.spec.ts does). */
export function report(line: string): void {
  if (process.env.P2P_TEST_STATS) process.stdout.write(`${line}\n`);
}

/**
 * Waits until no connection opened or closed anywhere for `quietPolls` polls in a
 * row, `everyMs` apart (peer exchange has settled), at most `timeoutMs`.
 */
export async function settle(nodes: readonly NodeProcess[], timeoutMs = 60_000, quietPolls = 4, everyMs = 500): Promise<{ settled: boolean; polls: number; stats: NodeStats[] }> {
  let last = '';
  let quiet = 0;
  let polls = 0;
  let stats: NodeStats[] = [];
  const settled = await until(
    async () => {
      polls++;
      stats = await Promise.all(nodes.map(statsOf));
      const shape = stats.map((s) => s.peers.map((p) => p.id).sort().join()).join('|');
      quiet = shape === last ? quiet + 1 : 0;
      last = shape;
      return quiet >= quietPolls;
    },
    timeoutMs,
    everyMs,
  );
  return { settled, polls, stats };
}

/** Whether the connections join every node to every other. */
export function connected(nodes: readonly NodeProcess[], stats: readonly NodeStats[]): boolean {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const reached = new Set([0]);
  for (const i of reached) for (const p of stats[i]!.peers) if (index.has(p.id)) reached.add(index.get(p.id)!);
  return reached.size === nodes.length;
}

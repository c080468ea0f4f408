// The emulated multi-host network behind `npm run emulate` (bench/emulate.ts) and
// test/netns/emulate.spec.ts: N node processes (test/fixtures/net-node.mjs, a Nest app on the
// built package), each in its own network namespace with its own address on one bridge, each
// started knowing one seed. Root only (CAP_NET_ADMIN); every namespace carries the run's prefix
// and is removed before and after, processes are killed by their pid, on failure too.
//
// Phases:
//  1. settle: peer exchange and the RainTree topology (ring-topology.ts) until no node's set of
//     connections changes for `quietMs`;
//  2. healthy: broadcasts from random nodes;
//  3. faults: broadcasts again, and after a fifth of them 10 % of the nodes are SIGKILLed (the
//     seed always among them) and another 10 % SIGSTOPped, without pausing the stream;
//  4. after: once the survivors have dropped the dead and frozen (pong timeout) and the topology
//     is quiet again, broadcasts once more.
// Each broadcast must reach every survivor (alive and not frozen), each exactly once.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from './stats.js';

export interface EmulationOptions {
  nodes: number;
  /** Broadcasts per phase. */
  broadcasts: number;
  /** Namespace name prefix: namespaces are `<prefix>-<i>` and `<prefix>-br` (the bridge). */
  prefix: string;
  /** Second octet of the network: nodes get 10.<net>.x.y/16. */
  net: number;
  /** The node program (test/fixtures/net-node.mjs). */
  fixture: string;
  seed: number;
  pexIntervalMs: number;
  repairIntervalMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** Gap between two broadcasts of a phase. */
  spacingMs: number;
  /** How long no node's connections may change for the topology to count as settled. */
  quietMs: number;
  /** Longest wait for the topology to settle (and, after the faults, to heal). */
  settleTimeoutMs: number;
  /** Fraction of the nodes SIGKILLed, and the same fraction SIGSTOPped, in the faults phase. */
  faultFraction: number;
  /** Egress rate of every node's link, as tc's tbf takes it ('100mbit'); undefined: no limit. */
  rate?: string;
  /** Each node's stderr goes to `<dir>/node-<i>.log`, with every log level (NET_NODE_LOG=1); undefined: errors only, kept in memory. */
  nodeLogDir?: string;
  /** Progress lines. */
  log: (line: string) => void;
}

export const EMULATION_DEFAULTS: Omit<EmulationOptions, 'fixture' | 'log'> = {
  nodes: 30,
  broadcasts: 100,
  prefix: 'p2pemu',
  net: 213,
  seed: 1,
  pexIntervalMs: 500,
  repairIntervalMs: 500,
  pingIntervalMs: 1000,
  pongTimeoutMs: 2000,
  spacingMs: 100,
  quietMs: 3000,
  settleTimeoutMs: 60_000,
  faultFraction: 0.1,
};

/** The degree bound the library documents for maxPeers: max(8, 2·⌈log3 N⌉ + 2). */
export function degreeBound(n: number): number {
  let levels = 0;
  for (let p = 1; p < n && levels < 64; p *= 3) levels++;
  return Math.max(8, 2 * levels + 2);
}

export interface TopologySnapshot {
  /** Connections per node, in the order of the nodes asked. */
  degrees: number[];
  /** Ids each node knows of (view and peer-exchange candidates, itself included). */
  known: number[];
  /** Whether the connections (both ends' lists merged) join every node asked. */
  connected: boolean;
  /** Pairs where one end lists the other and the other does not. */
  oneSided: number;
}

export interface SettleResult {
  settled: boolean;
  /** From the start of the wait to the last change seen (or to the timeout). */
  ms: number;
  /** Snapshots that differed from the one before. */
  changes: number;
  /** Connections opened or closed between two snapshots, summed (each counted once, not at both ends). */
  churn: number;
  topology: TopologySnapshot;
}

export interface PhaseResult {
  name: string;
  /** Nodes a broadcast must reach (alive, not frozen, at the end of the phase). */
  targets: number;
  broadcasts: number;
  /** Deliveries seen ÷ deliveries due (every target but the origin, for every broadcast). */
  coverage: number;
  /** Deliveries due that never came: `broadcast index → node index`. */
  missed: Array<{ broadcast: number; node: number }>;
  /** Handler deliveries past the first of one broadcast at one node (must be 0). */
  extraDeliveries: number;
  /** Last delivery minus send time, per broadcast that reached every target, ms. */
  propagationMs: { p50: number; p99: number; max: number };
  maxHops: number;
  /** Per broadcast, summed over the nodes: RainTree/gossip data frames, repair data frames, copies dropped as duplicates. */
  perBroadcast: { dataFrames: number; relayFrames: number; repairFrames: number; duplicates: number; repairControlBytes: number; repairRequested: number };
  /** Nodes that asked a neighbour for a broadcast (IWANT): RainTree, or a relay, left them out. */
  nodesRepaired: number;
  /** Copies dropped before delivery, by reason (networkBroadcastStats().dropped), summed over the nodes; reasons with none left out. */
  dropped: Record<string, number>;
  proxied: number;
  unrouted: number;
  gossipFallbacks: number;
  /** Broadcasts the origin could not start (an error from broadcast()). */
  sendErrors: string[];
}

export interface EmulationResult {
  options: Omit<EmulationOptions, 'log'>;
  maxPeers: number;
  ids: string[];
  startMs: number;
  settle: SettleResult;
  killed: number[];
  frozen: number[];
  /** From the faults to the survivors' topology being quiet again with no dead or frozen neighbour. */
  recovery?: SettleResult;
  phases: PhaseResult[];
  /** Lines on the nodes' stderr (Nest logs errors there), with the last few. */
  stderrLines: number;
  stderrTail: string[];
  failures: string[];
}

/** Why the emulation cannot run here, or undefined when it can. */
export function emulationUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CAP_NET_ADMIN)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' });
  } catch {
    return 'the ip command (iproute2) with netns support is not available';
  }
  return undefined;
}

const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

/** Namespaces of this prefix (from an earlier run that did not finish), bridge last. */
function namespacesOf(prefix: string): string[] {
  const names = run('ip', 'netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => name.startsWith(`${prefix}-`));
  return names.sort((a, b) => Number(a.endsWith('-br')) - Number(b.endsWith('-br')));
}

/** Deletes this prefix's namespaces; processes still inside are ours (this prefix is the run's own): SIGKILLed by pid first. */
export function teardownNamespaces(prefix: string): void {
  for (const ns of namespacesOf(prefix)) {
    try {
      for (const pid of run('ip', 'netns', 'pids', ns).split('\n').filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* no such namespace any more */
    }
    try {
      run('ip', 'netns', 'del', ns);
    } catch {
      /* gone */
    }
  }
}

function addressOf(o: Pick<EmulationOptions, 'net'>, i: number): string {
  const host = i + 1; // 10.<net>.0.1 upwards; /16 leaves 65 534 hosts
  return `10.${o.net}.${host >> 8}.${host & 0xff}`;
}

function setupNamespaces(o: EmulationOptions): void {
  const bridge = `${o.prefix}-br`;
  run('ip', 'netns', 'add', bridge);
  run('ip', '-n', bridge, 'link', 'add', 'br0', 'type', 'bridge');
  run('ip', '-n', bridge, 'link', 'set', 'br0', 'up');
  for (let i = 0; i < o.nodes; i++) {
    const ns = `${o.prefix}-${i}`;
    run('ip', 'netns', 'add', ns);
    // Both ends are created inside the run's namespaces: nothing touches the host's.
    run('ip', '-n', bridge, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    run('ip', '-n', bridge, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
    run('ip', '-n', ns, 'addr', 'add', `${addressOf(o, i)}/16`, 'dev', 'eth0');
    run('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
    run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    if (o.rate) run('tc', '-n', ns, 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', o.rate, 'burst', '64kb', 'latency', '200ms');
  }
}

type Line = Record<string, unknown> & { type?: string; tag?: number };

class EmuNode {
  id = '';
  state: 'running' | 'killed' | 'frozen' = 'running';
  readonly heard = new Map<string, { at: bigint; hops: number; count: number }>();
  readonly stderr: string[] = [];
  stderrLines = 0;
  exited = false;
  private readonly waiting = new Map<number, (line: Line) => void>();
  private ready?: (line: Line) => void;
  private nextTag = 1;

  constructor(
    readonly index: number,
    readonly address: string,
    readonly child: ChildProcess,
  ) {
    child.on('exit', () => {
      this.exited = true;
    });
    createInterface({ input: child.stdout! }).on('line', (text) => this.onLine(text));
    createInterface({ input: child.stderr! }).on('line', (text) => {
      this.stderrLines++;
      this.stderr.push(text);
      if (this.stderr.length > 10) this.stderr.shift();
    });
  }

  private onLine(text: string): void {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      return;
    }
    if (line.type === 'heard') {
      const id = line.id as string;
      const seen = this.heard.get(id);
      if (seen) seen.count++;
      else this.heard.set(id, { at: BigInt(line.at as string), hops: Number(line.hops ?? 0), count: 1 });
    } else if (line.type === 'ready') {
      this.ready?.(line);
    } else if (typeof line.tag === 'number') {
      this.waiting.get(line.tag)?.(line);
      this.waiting.delete(line.tag);
    }
  }

  started(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${this.index} did not start in ${timeoutMs} ms: ${this.stderr.join(' | ')}`)), timeoutMs);
      this.child.once('exit', (code) => reject(new Error(`node ${this.index} exited (${code}) before it started: ${this.stderr.join(' | ')}`)));
      this.ready = (line) => {
        clearTimeout(timer);
        this.id = line.id as string;
        resolve();
      };
    });
  }

  ask(command: Record<string, unknown>, timeoutMs = 5000): Promise<Line> {
    const tag = this.nextTag++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(tag);
        reject(new Error(`node ${this.index} did not answer ${String(command.op)} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(tag, (line) => {
        clearTimeout(timer);
        resolve(line);
      });
      this.child.stdin!.write(JSON.stringify({ ...command, tag }) + '\n');
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      /* gone */
    }
  }
}

interface Stats {
  sent: number;
  dropped: Record<string, number>;
  duplicates: number;
  proxied: number;
  unrouted: number;
  gossipFallbacks: number;
  repair: { sent: number; requested: number; controlBytes: number };
}
interface StatsLine {
  peers: number;
  ids: string[];
  /** The ids of `ids` this node dialed. */
  outbound: string[];
  known: number;
  stats: Stats;
}

/** Small seeded PRNG (mulberry32), so that a seed repeats the victims and the origins. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const msSince = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

export async function runEmulation(options: EmulationOptions): Promise<EmulationResult> {
  let o = options;
  if (!(o.nodes >= 4 && o.nodes <= 60_000)) throw new Error(`nodes must be 4..60000, not ${o.nodes}`);
  const maxPeers = degreeBound(o.nodes);
  const random = prng(o.seed);
  const nodes: EmuNode[] = [];
  const failures: string[] = [];
  const began = process.hrtime.bigint();
  const log = o.log;
  o = { ...o, log: (line: string) => log(`[${(msSince(began) / 1000).toFixed(1).padStart(5)} s] ${line}`) };

  // Whatever ends this process mid-run, it takes its node processes and namespaces with it.
  const abort = () => {
    for (const n of nodes) (n.signal('SIGCONT'), n.signal('SIGKILL'));
    teardownNamespaces(o.prefix);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    abort();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', abort);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  try {
    teardownNamespaces(o.prefix);
    if (o.nodeLogDir) mkdirSync(o.nodeLogDir, { recursive: true });
    setupNamespaces(o);
    o.log(`${o.nodes} namespaces ${o.prefix}-0..${o.nodes - 1} on bridge ${o.prefix}-br, 10.${o.net}.0.0/16${o.rate ? `, tbf ${o.rate} per link` : ''}`);

    const spawnNode = (i: number, peers: string[]) => {
      const config = {
        listen: `${addressOf(o, i)}:4000`,
        peers,
        tls: true,
        peerExchange: true,
        pexIntervalMs: o.pexIntervalMs,
        maxPeers,
        broadcastRepairIntervalMs: o.repairIntervalMs,
        pingIntervalMs: o.pingIntervalMs,
        pongTimeoutMs: o.pongTimeoutMs,
        privateKey: createHash('sha256').update(`nestjs-p2p emulate ${o.seed} ${i}`).digest('hex'),
      };
      const child = spawn('ip', ['netns', 'exec', `${o.prefix}-${i}`, process.execPath, o.fixture, JSON.stringify(config)], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: o.nodeLogDir ? { ...process.env, NET_NODE_LOG: '1' } : process.env,
      });
      if (o.nodeLogDir) child.stderr!.pipe(createWriteStream(join(o.nodeLogDir, `node-${i}.log`)));
      const node = new EmuNode(i, config.listen, child);
      nodes[i] = node;
      return node;
    };

    // The seed first, then every other node knowing only the seed, a few at a time (2 cores start Nest apps slowly).
    const t0 = process.hrtime.bigint();
    const seed = spawnNode(0, []);
    await seed.started(60_000);
    const seedAddress = `${seed.id}@${seed.address}`;
    const startTimeout = 60_000 + o.nodes * 2000;
    const batch = 6;
    for (let i = 1; i < o.nodes; i += batch) {
      const group: EmuNode[] = [];
      for (let j = i; j < Math.min(o.nodes, i + batch); j++) group.push(spawnNode(j, [seedAddress]));
      await Promise.all(group.map((n) => n.started(startTimeout)));
    }
    const startMs = msSince(t0);
    o.log(`${o.nodes} nodes started in ${(startMs / 1000).toFixed(1)} s (TLS, maxPeers ${maxPeers}, pex ${o.pexIntervalMs} ms)`);
    const ids = nodes.map((n) => n.id);
    const indexOf = new Map(ids.map((id, i) => [id, i]));

    const statsOf = async (group: EmuNode[]): Promise<StatsLine[]> =>
      (await Promise.all(group.map((n) => n.ask({ op: 'stats' })))) as unknown as StatsLine[];

    const topologyOf = (group: EmuNode[], lines: StatsLine[]): TopologySnapshot => {
      const members = new Set(group.map((n) => n.id));
      const edges = new Map<string, Set<string>>(group.map((n) => [n.id, new Set<string>()]));
      let oneSided = 0;
      lines.forEach((line, k) => {
        const self = group[k]!.id;
        for (const other of line.ids) {
          if (!members.has(other)) continue;
          edges.get(self)!.add(other);
          edges.get(other)!.add(self);
          const back = lines[group.findIndex((n) => n.id === other)];
          if (back && !back.ids.includes(self)) oneSided++;
        }
      });
      const reached = new Set<string>([group[0]!.id]);
      const queue = [group[0]!.id];
      for (let q = 0; q < queue.length; q++) for (const next of edges.get(queue[q]!)!) if (!reached.has(next)) (reached.add(next), queue.push(next));
      return { degrees: lines.map((l) => l.peers), known: lines.map((l) => l.known), connected: reached.size === group.length, oneSided };
    };

    /** Polls connections until no node's set changes for quietMs (and `extra` holds), bounded by settleTimeoutMs. */
    const waitQuiet = async (group: EmuNode[], extra: (lines: StatsLine[]) => boolean): Promise<SettleResult> => {
      const start = process.hrtime.bigint();
      let last = '';
      let lastChange = 0;
      let changes = 0;
      let churn = 0;
      let lines: StatsLine[] = [];
      let previous: StatsLine[] = [];
      const recent: string[] = [];
      for (let poll = 0; msSince(start) < o.settleTimeoutMs && poll < 100_000; poll++) {
        lines = await statsOf(group);
        const now = msSince(start);
        // A connection closed and reopened the other way round between two polls counts as a change.
        const signature = lines.map((l) => l.ids.map((id) => (l.outbound.includes(id) ? `>${id}` : `<${id}`)).sort().join(',')).join(';');
        if (signature !== last) {
          if (previous.length > 0) {
            // Which connections came and went, for the report when it never settles.
            const diff = lines.flatMap((l, k) => {
              const before = previous[k]!;
              const was = new Set(before.ids);
              const is = new Set(l.ids);
              const name = (id: string) => String(indexOf.get(id) ?? id.slice(0, 8));
              const plus = l.ids.filter((id) => !was.has(id)).map((id) => `+${name(id)}`);
              const minus = before.ids.filter((id) => !is.has(id)).map((id) => `-${name(id)}`);
              // Still connected, but dialed by the other end now: closed and reopened.
              const flipped = l.ids.filter((id) => was.has(id) && l.outbound.includes(id) !== before.outbound.includes(id)).map((id) => `~${name(id)}`);
              churn += (plus.length + minus.length + 2 * flipped.length) / 2;
              const all = [...plus, ...minus, ...flipped];
              return all.length > 0 ? [`${group[k]!.index}:${all.join('')}`] : [];
            });
            recent.push(`${(now / 1000).toFixed(1)} s ${diff.join(' ')}`);
            if (recent.length > 12) recent.shift();
          }
          last = signature;
          lastChange = now;
          changes++;
        } else if (now - lastChange >= o.quietMs && extra(lines) && topologyOf(group, lines).connected) {
          return { settled: true, ms: lastChange, changes, churn, topology: topologyOf(group, lines) };
        }
        previous = lines;
        await sleep(250);
      }
      o.log(`connections still changing; the last changes (node:+opened-closed~reopened the other way):\n    ${recent.join('\n    ')}`);
      return { settled: false, ms: msSince(start), changes, churn, topology: topologyOf(group, lines) };
    };

    const settle = await waitQuiet(nodes, () => true);
    o.log(`settle: ${settle.settled ? `${(settle.ms / 1000).toFixed(1)} s` : `not settled in ${o.settleTimeoutMs / 1000} s`}, ${settle.churn} connections opened or closed, degrees ${describeDegrees(settle.topology.degrees)}`);
    if (!settle.settled) failures.push(`peer exchange did not settle in ${o.settleTimeoutMs / 1000} s`);

    const phases: PhaseResult[] = [];
    let sequence = 0;

    /** Sends `count` broadcasts from random survivors; `midway` runs (once) after a fifth of them. */
    const phase = async (name: string, survivors: () => EmuNode[], midway?: () => Promise<void>): Promise<PhaseResult> => {
      let everyone = nodes.filter((n) => n.state === 'running');
      const before = new Map<EmuNode, Stats>();
      (await statsOf(everyone)).forEach((line, k) => before.set(everyone[k]!, line.stats));
      const atFault = new Map<EmuNode, Stats>();
      const sent: Array<{ id: string; origin: EmuNode; at: bigint }> = [];
      const sendErrors: string[] = [];
      const origins = survivors();
      for (let k = 0; k < o.broadcasts; k++) {
        if (midway && k === Math.floor(o.broadcasts / 5)) {
          // The victims' counters up to now count; after the signal they cannot answer.
          const victims = everyone.filter((n) => !origins.includes(n));
          (await statsOf(victims)).forEach((line, v) => atFault.set(victims[v]!, line.stats));
          await midway();
          everyone = nodes.filter((n) => n.state === 'running');
        }
        const origin = origins[Math.floor(random() * origins.length)]!;
        const reply = await origin.ask({ op: 'broadcast', data: `${name} ${sequence++}` });
        if (typeof reply.id === 'string') sent.push({ id: reply.id, origin, at: BigInt(reply.at as string) });
        else sendErrors.push(`node ${origin.index}: ${String(reply.error)}`);
        await sleep(o.spacingMs);
      }
      const targets = nodes.filter((n) => n.state === 'running');
      const due = (n: EmuNode, b: (typeof sent)[number]) => n !== b.origin;
      const complete = () => sent.every((b) => targets.every((n) => !due(n, b) || n.heard.has(b.id)));
      // Repair needs an interval to announce and one to answer, per hop it fills: 20 intervals at least.
      const drainMs = Math.max(5000, 20 * o.repairIntervalMs);
      const drainStart = process.hrtime.bigint();
      for (let i = 0; i < 10_000 && !complete() && msSince(drainStart) < drainMs; i++) await sleep(50);
      // Late repair frames and copies still count: two more intervals.
      await sleep(2 * o.repairIntervalMs + 200);

      const after = await statsOf(targets);
      const totals = { sent: 0, duplicates: 0, proxied: 0, unrouted: 0, gossipFallbacks: 0, repairSent: 0, requested: 0, controlBytes: 0 };
      let nodesRepaired = 0;
      const dropped: Record<string, number> = {};
      const add = (from: Stats, to: Stats) => {
        if (to.repair.requested > from.repair.requested) nodesRepaired++;
        for (const [reason, n] of Object.entries(to.dropped)) {
          const delta = n - (from.dropped[reason] ?? 0);
          if (delta > 0) dropped[reason] = (dropped[reason] ?? 0) + delta;
        }
        totals.sent += to.sent - from.sent;
        totals.duplicates += to.duplicates - from.duplicates;
        totals.proxied += to.proxied - from.proxied;
        totals.unrouted += to.unrouted - from.unrouted;
        totals.gossipFallbacks += to.gossipFallbacks - from.gossipFallbacks;
        totals.repairSent += to.repair.sent - from.repair.sent;
        totals.requested += to.repair.requested - from.repair.requested;
        totals.controlBytes += to.repair.controlBytes - from.repair.controlBytes;
      };
      targets.forEach((n, k) => add(before.get(n)!, after[k]!.stats));
      for (const [n, stats] of atFault) add(before.get(n)!, stats);

      const missed: PhaseResult['missed'] = [];
      const propagation: number[] = [];
      let extraDeliveries = 0;
      let delivered = 0;
      let owed = 0;
      let maxHops = 0;
      sent.forEach((b, k) => {
        let last = 0;
        let all = true;
        for (const n of targets) {
          const got = n.heard.get(b.id);
          if (got) extraDeliveries += got.count - 1;
          if (!due(n, b)) continue;
          owed++;
          if (!got) {
            all = false;
            missed.push({ broadcast: k, node: n.index });
            continue;
          }
          delivered++;
          maxHops = Math.max(maxHops, got.hops);
          last = Math.max(last, Number(got.at - b.at) / 1e6);
        }
        if (all) propagation.push(last);
      });
      propagation.sort((a, b) => a - b);
      const per = (x: number) => x / Math.max(1, sent.length);
      return {
        name,
        targets: targets.length,
        broadcasts: sent.length,
        coverage: owed === 0 ? 0 : delivered / owed,
        missed,
        extraDeliveries,
        propagationMs: { p50: percentile(propagation, 50), p99: percentile(propagation, 99), max: propagation[propagation.length - 1] ?? NaN },
        maxHops,
        perBroadcast: {
          dataFrames: per(totals.sent + totals.repairSent),
          relayFrames: per(totals.sent),
          repairFrames: per(totals.repairSent),
          duplicates: per(totals.duplicates),
          repairControlBytes: per(totals.controlBytes),
          repairRequested: per(totals.requested),
        },
        nodesRepaired,
        dropped,
        proxied: totals.proxied,
        unrouted: totals.unrouted,
        gossipFallbacks: totals.gossipFallbacks,
        sendErrors,
      };
    };

    const check = (p: PhaseResult) => {
      o.log(
        `${p.name}: coverage ${(p.coverage * 100).toFixed(2)} % of ${p.targets} nodes, propagation p50 ${p.propagationMs.p50.toFixed(1)} ms p99 ${p.propagationMs.p99.toFixed(1)} ms, ` +
          `${p.perBroadcast.dataFrames.toFixed(1)} data frames per broadcast (${p.perBroadcast.repairFrames.toFixed(1)} repair)`,
      );
      if (p.broadcasts < o.broadcasts) failures.push(`${p.name}: ${o.broadcasts - p.broadcasts} broadcasts could not be sent (${p.sendErrors.slice(0, 3).join('; ')})`);
      if (p.coverage < 1) {
        const list = p.missed.slice(0, 10).map((m) => `#${m.broadcast}→node ${m.node}`).join(', ');
        failures.push(`${p.name}: coverage ${(p.coverage * 100).toFixed(2)} % < 100 % (${p.missed.length} deliveries missed: ${list}${p.missed.length > 10 ? ', …' : ''})`);
      }
      if (p.extraDeliveries > 0) failures.push(`${p.name}: ${p.extraDeliveries} deliveries past the first (each node must get each broadcast once)`);
    };

    const healthy = await phase('healthy', () => nodes.filter((n) => n.state === 'running'));
    check(healthy);
    phases.push(healthy);
    const limit = 1.3 * o.nodes;
    if (healthy.perBroadcast.dataFrames > limit) failures.push(`healthy: ${healthy.perBroadcast.dataFrames.toFixed(1)} data frames per broadcast > 1.3 × N = ${limit.toFixed(1)}`);

    // Victims: the seed is always SIGKILLed (nothing may depend on the node everyone started knowing), the rest at random.
    const faults = Math.max(1, Math.round(o.faultFraction * o.nodes));
    const others = nodes.slice(1).map((n) => n.index);
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [others[i], others[j]] = [others[j]!, others[i]!];
    }
    const killed = [0, ...others.slice(0, faults - 1)].sort((a, b) => a - b);
    const frozen = others.slice(faults - 1, 2 * faults - 1).sort((a, b) => a - b);
    const victims = new Set([...killed, ...frozen]);
    const survivors = nodes.filter((n) => !victims.has(n.index));
    const gone = new Set([...victims].map((i) => ids[i]!));
    // Watched from the faults on, while the phase runs: until the survivors list none of the victims and are quiet again.
    let healing: Promise<SettleResult> | undefined;
    const faulty = await phase(
      'faults',
      () => nodes.filter((n) => !victims.has(n.index)),
      async () => {
        healing = waitQuiet(survivors, (lines) => lines.every((l) => !l.ids.some((id) => gone.has(id))));
        for (const i of killed) (nodes[i]!.signal('SIGKILL'), (nodes[i]!.state = 'killed'));
        for (const i of frozen) (nodes[i]!.signal('SIGSTOP'), (nodes[i]!.state = 'frozen'));
        o.log(`SIGKILL nodes ${killed.join(', ')}; SIGSTOP nodes ${frozen.join(', ')}`);
      },
    );
    check(faulty);
    phases.push(faulty);

    // The survivors must drop every dead and frozen neighbour and settle again.
    const recovery = await healing!;
    o.log(`recovery: ${recovery.settled ? `${(recovery.ms / 1000).toFixed(1)} s after the faults` : 'did not settle'}, ${recovery.churn} connections opened or closed, degrees ${describeDegrees(recovery.topology.degrees)}`);
    if (!recovery.settled) failures.push(`the survivors did not settle again in ${o.settleTimeoutMs / 1000} s after the faults`);
    const healed = await phase('after', () => nodes.filter((n) => n.state === 'running'));
    check(healed);
    phases.push(healed);

    const { log: _log, ...kept } = o;
    return {
      options: kept,
      maxPeers,
      ids,
      startMs,
      settle,
      killed,
      frozen,
      recovery,
      phases,
      stderrLines: nodes.reduce((a, n) => a + n.stderrLines, 0),
      stderrTail: nodes.flatMap((n) => n.stderr.slice(-2).map((l) => `node ${n.index}: ${l}`)).slice(0, 20),
      failures,
    };
  } finally {
    await stopAll(nodes);
    teardownNamespaces(o.prefix);
    process.off('exit', abort);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
  }
}

/** Frozen nodes are continued and killed; the others get SIGTERM (their app closes) and SIGKILL after 3 s. */
async function stopAll(nodes: EmuNode[]): Promise<void> {
  const exits = nodes.filter(Boolean).map((n) => (n.exited ? Promise.resolve() : new Promise<void>((resolve) => n.child.once('exit', () => resolve()))));
  for (const n of nodes.filter(Boolean)) {
    if (n.state === 'frozen') (n.signal('SIGCONT'), n.signal('SIGKILL'));
    else n.signal('SIGTERM');
  }
  const timer = setTimeout(() => nodes.filter(Boolean).forEach((n) => n.signal('SIGKILL')), 3000);
  await Promise.race([Promise.all(exits), sleep(6000)]);
  clearTimeout(timer);
}

export function describeDegrees(degrees: number[]): string {
  if (degrees.length === 0) return 'none';
  const mean = degrees.reduce((a, b) => a + b, 0) / degrees.length;
  return `min ${Math.min(...degrees)} / mean ${mean.toFixed(1)} / max ${Math.max(...degrees)}`;
}

/** The result as a table (markdown or aligned text). */
export function formatEmulation(r: EmulationResult, markdown = false): string {
  const o = r.options;
  const out: string[] = [];
  out.push(
    `${o.nodes} nodes, each in its own network namespace on one bridge (10.${o.net}.0.0/16${o.rate ? `, tbf ${o.rate} per link` : ''}), TLS, ` +
      `started knowing only node 0; maxPeers ${r.maxPeers}, peer exchange every ${o.pexIntervalMs} ms, repair every ${o.repairIntervalMs} ms, ` +
      `ping ${o.pingIntervalMs} ms / pong timeout ${o.pongTimeoutMs} ms; ${o.broadcasts} broadcasts per phase, ${o.spacingMs} ms apart, from random survivors; seed ${o.seed}`,
  );
  out.push('');
  const s = r.settle;
  out.push(`started in ${(r.startMs / 1000).toFixed(1)} s; settled ${s.settled ? `${(s.ms / 1000).toFixed(1)} s` : 'NOT'} after the last node started (no node's connections changed for ${o.quietMs / 1000} s after that), ${s.churn} connections opened or closed until then; degrees ${describeDegrees(s.topology.degrees)}, node 0 (the seed) ${s.topology.degrees[0]}; one-sided connections ${s.topology.oneSided}; ids known per node ${describeDegrees(s.topology.known)} of ${o.nodes}`);
  out.push(`faults (after ${Math.floor(o.broadcasts / 5)} broadcasts of the faults phase): SIGKILL nodes ${r.killed.join(', ')} (the seed among them); SIGSTOP nodes ${r.frozen.join(', ')}`);
  if (r.recovery) {
    const h = r.recovery;
    out.push(`survivors dropped the dead and frozen and settled ${h.settled ? `${(h.ms / 1000).toFixed(1)} s` : 'NOT'} after the faults, ${h.churn} connections opened or closed until then; degrees ${describeDegrees(h.topology.degrees)}`);
  }
  out.push('');
  const header = ['phase', 'nodes', 'broadcasts', 'coverage', 'extra deliveries', 'p50 ms', 'p99 ms', 'max ms', 'max hops', 'data frames / bcast', 'relay', 'repair', 'duplicates / bcast', 'IHAVE+IWANT B / bcast', 'nodes repaired', 'proxied', 'unrouted', 'gossip fallbacks', 'dropped'];
  const rows = r.phases.map((p) => [
    p.name,
    String(p.targets),
    String(p.broadcasts),
    `${(p.coverage * 100).toFixed(2)} %`,
    String(p.extraDeliveries),
    p.propagationMs.p50.toFixed(1),
    p.propagationMs.p99.toFixed(1),
    p.propagationMs.max.toFixed(1),
    String(p.maxHops),
    p.perBroadcast.dataFrames.toFixed(1),
    p.perBroadcast.relayFrames.toFixed(1),
    p.perBroadcast.repairFrames.toFixed(1),
    p.perBroadcast.duplicates.toFixed(1),
    p.perBroadcast.repairControlBytes.toFixed(0),
    String(p.nodesRepaired),
    String(p.proxied),
    String(p.unrouted),
    String(p.gossipFallbacks),
    Object.entries(p.dropped).map(([reason, n]) => `${reason} ${n}`).join(', ') || '0',
  ]);
  if (markdown) {
    out.push(`| ${header.join(' | ')} |`);
    out.push(`|${header.map(() => '---').join('|')}|`);
    for (const row of rows) out.push(`| ${row.join(' | ')} |`);
  } else {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    out.push(line(header));
    for (const row of rows) out.push(line(row));
  }
  out.push('');
  out.push(
    `nodes: survivors at the end of the phase, the ones every broadcast must reach. coverage: deliveries seen ÷ due (every survivor but the origin). ` +
      `p50/p99/max: last delivery minus send time, per broadcast (one host clock, CLOCK_MONOTONIC). data frames: RainTree/gossip frames (relay) plus repair answers, summed over the nodes. ` +
      `duplicates: copies a node's seen-cache dropped. nodes repaired: nodes that asked a neighbour (IWANT) for a broadcast in the phase. ` +
      `proxied: arcs handed to a neighbour outside them (no neighbour inside); dropped: copies refused before delivery, by reason, all nodes.`,
  );
  out.push(`node stderr: ${r.stderrLines} lines${r.stderrTail.length ? `; last: ${r.stderrTail.slice(0, 6).join(' | ')}` : ''}`);
  out.push(r.failures.length === 0 ? `ok: coverage 100 % in every phase, each delivery once, healthy frames per broadcast ≤ 1.3 × N = ${(1.3 * o.nodes).toFixed(1)}` : `FAILED:\n  ${r.failures.join('\n  ')}`);
  return out.join('\n');
}

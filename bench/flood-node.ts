// One node of the `throwaway-flood` scenario (lib/flood.ts): a core Peer with TLS and signed broadcasts
// (the defaults, default budgets) in its own process, one of 8 in a full mesh. On the orchestrator's word
// it runs a request loop to another node (one request in flight, a short pause between two) and keeps
// each round trip; it reports its broadcast counters, its CPU time, and (node 0, the victim) the score it
// gives the attacker and when that first went below 0. Times are read from the host's monotonic clock
// (process.hrtime), one clock for every process on the host.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as P2P from 'nestjs-p2p/core';
import type { FloodNodeSpec, FloodNodeStats } from './lib/flood.js';

// Only the core: the package root also loads NestJS (0.8 s of start-up per process against 0.2 s).
const { Peer, silentLogger } = (await import(new URL('../../dist/core.js', import.meta.url).href)) as typeof P2P;

const spec = JSON.parse(process.argv[2]!) as FloodNodeSpec;
// P2P_BENCH_NO_ORIGIN_RULE=1: the same flood without the unknown-origin budget (as before issue 22's item 4).
const noRule = process.env.P2P_BENCH_NO_ORIGIN_RULE ? { broadcastUnknownOriginRate: 10_000_000 } : {};
const peer = new Peer({ listen: '127.0.0.1:0', peerExchange: false, logger: silentLogger, ...noRule });
peer.setHandler({
  onEvent() {},
  onRequest(_peer, _topic, data, reply) {
    reply.next(data);
    reply.complete();
  },
});

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

let probing: Promise<void> | undefined;
let stopProbe = false;
/** [host clock µs at the request, round trip ms]. */
let rtts: Array<[number, number]> = [];
let failed = 0;

/** One request in flight to `target`, `gapMs` between a reply and the next request, until told to stop. */
async function probe(target: string, gapMs: number): Promise<void> {
  while (!stopProbe) {
    const t0 = nowUs();
    try {
      await new Promise<void>((resolve, reject) => {
        peer.request(target, 'bench.rtt', 'ping', { next: () => undefined, error: reject, complete: resolve }, { timeoutMs: 10_000 });
      });
      rtts.push([t0, (nowUs() - t0) / 1000]);
    } catch {
      failed++;
    }
    await sleep(gapMs);
  }
}

// The victim watches the attacker's score, to say when the link was throttled (its score first below 0).
let watching: string | undefined;
let throttledAt: number | null = null;
const watch = setInterval(() => {
  if (watching && throttledAt === null && peer.peerScore(watching) < 0) throttledAt = nowUs();
}, 5);
watch.unref();

// How long the event loop was held up, since the last stats (each call starts a new window).
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

function stats(): FloodNodeStats {
  const s = peer.networkBroadcastStats();
  const cpu = process.cpuUsage();
  const loopDelay = { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
  loop.reset();
  return {
    loopDelay,
    verified: s.verified,
    at: nowUs(),
    neighbours: peer.peers().length,
    sent: s.sent,
    repairSent: s.repair.sent,
    delivered: s.delivered,
    dropped: s.dropped,
    cpuMs: (cpu.user + cpu.system) / 1000,
    attackerScore: watching ? peer.peerScore(watching) : null,
    attackerConnected: watching ? peer.peers().some((p) => p.id === watching) : null,
    throttledAt,
  };
}

/**
 * The control variant: this node, an honest member, starts network broadcasts for `seconds`, as many
 * by each moment as `rate` a second allows but no more than `burst` plus `sustained` a second: the
 * schedule by which V lets the attacker's broadcasts through its unknown-origin budget.
 */
async function cast(m: CastCommand): Promise<{ startedAt: number; endedAt: number; written: number; refused: number }> {
  const startedAt = nowUs();
  let written = 0;
  let refused = 0;
  for (let t = 0; t < m.seconds; t = (nowUs() - startedAt) / 1e6) {
    const due = Math.floor(Math.min(m.rate * t + 1, m.burst + m.sustained * t));
    for (; written < due; written++) {
      try {
        peer.broadcast('flood', { i: written }, { scope: 'network', strategy: m.strategy });
      } catch {
        refused++;
      }
    }
    await sleep(10);
  }
  return { startedAt, endedAt: nowUs(), written, refused };
}

interface CastCommand {
  type: 'cast';
  seconds: number;
  rate: number;
  burst: number;
  sustained: number;
  strategy: 'raintree' | 'gossip';
}

type Command =
  | CastCommand
  | { type: 'dial'; target: { id: string; address: string } }
  | { type: 'await'; id: string }
  | { type: 'watch'; id: string }
  | { type: 'probe'; target: string; gapMs: number }
  | { type: 'unprobe' }
  | { type: 'stats' };

process.on('message', (m: Command) => {
  switch (m.type) {
    case 'dial':
      void (async () => {
        await peer.connect(`${m.target.id}@${m.target.address}`);
        await connectedTo(m.target.id);
        process.send!({ type: 'dialed' });
      })().catch(fail);
      return;
    case 'await':
      connectedTo(m.id)
        .then(() => process.send!({ type: 'connected' }))
        .catch(fail);
      return;
    case 'watch':
      watching = m.id;
      throttledAt = null;
      connectedTo(m.id)
        .then(() => process.send!({ type: 'watching' }))
        .catch(fail);
      return;
    case 'probe':
      stopProbe = false;
      rtts = [];
      failed = 0;
      probing = probe(m.target, m.gapMs);
      process.send!({ type: 'probing' });
      return;
    case 'unprobe':
      stopProbe = true;
      void (probing ?? Promise.resolve()).then(() => process.send!({ type: 'probed', rtts, failed }));
      return;
    case 'stats':
      process.send!({ type: 'stats', ...stats() });
      return;
    case 'cast':
      void cast(m).then((r) => process.send!({ type: 'cast', ...r }));
      return;
  }
});

async function connectedTo(id: string): Promise<void> {
  for (let waited = 0; !peer.peers().some((p) => p.id === id); waited += 2) {
    if (waited >= 10_000) throw new Error(`no connection to ${id.slice(0, 8)} after 10 s`);
    await sleep(2);
  }
}

function fail(err: Error): void {
  process.stderr.write(`flood node ${spec.index} failed: ${err.stack}\n`);
  process.exit(1);
}

process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
await peer.start();
process.send!({ type: 'ready', id: peer.id, address: peer.address() });

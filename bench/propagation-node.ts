// One node of the `propagation` scenario (lib/propagation.ts): a core Peer with TLS (the default) in its
// own process, one of 16 in a full mesh. When the orchestrator says so it originates one network
// broadcast; its handler notes when each broadcast arrives. Every time is read from the host's
// monotonic clock (process.hrtime, CLOCK_MONOTONIC on Linux: one clock for every process on the host),
// so a send time in one process and a delivery time in another can be subtracted.
import { setTimeout as sleep } from 'node:timers/promises';
import type * as P2P from 'nestjs-p2p/core';
import type { PropagationNodeSpec, PropagationNodeStats } from './lib/propagation.js';

// Only the core: the package root also loads NestJS (about 0.8 s of start-up per process against
// 0.2 s), and every run starts 16 processes on this machine's cores.
const { Peer, silentLogger } = (await import(new URL('../../dist/core.js', import.meta.url).href)) as typeof P2P;

const spec = JSON.parse(process.argv[2]!) as PropagationNodeSpec;
const TOPIC = 'bench.propagation';
/** The sequence number rides in the payload's first characters. */
const SEQ_DIGITS = 8;

// dropRelays is internal (stripped from the published types): the bench's own faulty relays.
const options: P2P.PeerOptions & { dropRelays: boolean } = {
  listen: '127.0.0.1:0',
  privateKey: spec.privateKey,
  // TLS 1.3, signed broadcasts and peer exchange: the defaults, as a deployment runs them. Repair's watchers go by
  // what each neighbour's peer exchange says it is connected to (docs/broadcast.md).
  // The orchestrator dials a full mesh of 16, so every node takes 7-8 inbound connections it did not choose: the
  // share of those (a third) and maxInboundPerThird would refuse some. At maxInbound both are off.
  maxInboundPerThird: 40,
  logger: silentLogger,
  broadcastRepairIntervalMs: spec.repairIntervalMs,
  // --repair-fanout: 0 is below what P2PConfig accepts (Nest), but the core Peer takes it as given: only the designated announcers.
  ...(spec.repairFanout === undefined ? {} : { broadcastRepairFanout: spec.repairFanout }),
  pexIntervalMs: spec.pexIntervalMs,
  dropRelays: spec.dropRelays,
  // A frozen relay keeps its connections open until a ping goes unanswered (15 s + 10 s by default).
  // The measurement is that window, so no ping may close it within a run: 120 s for every node, whatever the variant.
  // Past a run's length (about 80 s in the healthy mesh, which waits for the first peer-exchange round): at 60 s the
  // pings of 120 connections fell in the measured window at 2/s, whose CPU is compared.
  pingIntervalMs: 120_000,
};
const peer = new Peer(options);

// Bytes of control frames this node queued (before TLS): network broadcasts, repair and the rest. Less
// repair.controlBytes, that is the broadcast data the mesh carries: the reference for the repair traffic.
let controlOutBytes = 0;
peer.setMetrics({
  frame(direction, kind, bytes) {
    if (direction === 'out' && kind === 'control') controlOutBytes += bytes;
  },
  request() {},
  error() {},
});

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Host clock (µs) at which this node's handler got each broadcast, by sequence number. */
const delivered = new Map<number, number>();
let duplicates = 0;
/** Host clock (µs) just before this node started each broadcast it originated. */
const originated: Array<[number, number]> = [];
const refused: Array<[number, string]> = [];
const filler = 'x'.repeat(Math.max(0, spec.payloadBytes - SEQ_DIGITS));

peer.setHandler({
  onEvent(_info, topic, data) {
    if (topic !== TOPIC) return;
    const at = nowUs();
    const seq = Number((data as string).slice(0, SEQ_DIGITS));
    if (delivered.has(seq)) duplicates++;
    else delivered.set(seq, at);
  },
  onRequest(_peer, _topic, _data, reply) {
    reply.complete();
  },
});

function cast(seq: number): void {
  const payload = String(seq).padStart(SEQ_DIGITS, '0') + filler;
  const at = nowUs();
  try {
    const result = peer.broadcast(TOPIC, payload, { scope: 'network' });
    originated.push([seq, at]);
    for (const f of result.failed) refused.push([seq, `${f.peerId.slice(0, 8)}: ${f.error.message}`]);
  } catch (err) {
    refused.push([seq, (err as Error).message]);
  }
}

function stats(): PropagationNodeStats {
  const s = peer.networkBroadcastStats();
  const cpu = process.cpuUsage();
  return {
    neighbours: peer.peers().length,
    sent: s.sent,
    proxied: s.proxied,
    unrouted: s.unrouted,
    tooManyArcs: s.tooManyArcs,
    dropped: s.dropped,
    repair: { ...s.repair },
    cpuMs: (cpu.user + cpu.system) / 1000,
    controlOutBytes,
  };
}
type Command =
  | { type: 'dial'; target: { id: string; address: string } }
  | { type: 'await'; id: string }
  | { type: 'cast'; seq: number }
  | { type: 'stats' | 'report' };

process.on('message', (m: Command) => {
  switch (m.type) {
    case 'dial':
      void (async () => {
        // Discovery may dial the same peer meanwhile (it learns of it by peer exchange): one connection stays.
        await peer.connect(`${m.target.id}@${m.target.address}`).catch((err: Error) => {
          if (!peer.peers().some((p) => p.id === m.target.id)) return sleep(500).then(() => connectedTo(m.target.id, err));
        });
        await connectedTo(m.target.id);
        process.send!({ type: 'dialed' });
      })().catch(fail);
      return;
    case 'await':
      connectedTo(m.id)
        .then(() => process.send!({ type: 'connected' }))
        .catch(fail);
      return;
    case 'cast':
      cast(m.seq);
      return;
    case 'stats':
      process.send!({ type: 'stats', at: nowUs(), ...stats() });
      return;
    case 'report':
      process.send!({ type: 'report', delivered: [...delivered], duplicates, originated, refused, ...stats() });
      return;
  }
});

/** Resolves once the connection to `id` is up on this side (the dialer's connect may resolve before the acceptor has it). */
async function connectedTo(id: string, cause?: Error): Promise<void> {
  for (let waited = 0; !peer.peers().some((p) => p.id === id); waited += 2) {
    if (waited >= 10_000) throw new Error(`no connection to ${id.slice(0, 8)} after 10 s${cause ? ` (${cause.message})` : ''}`);
    await sleep(2);
  }
}

function fail(err: Error): void {
  process.stderr.write(`propagation node ${spec.index} failed: ${err.stack}\n`);
  process.exit(1);
}

process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
await peer.start();
process.send!({ type: 'ready', id: peer.id, address: peer.address() });

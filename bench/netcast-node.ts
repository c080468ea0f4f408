// One node of the `netcast` scenario (lib/netcast.ts): a plaintext Peer in its own process, one of
// 8 in a full mesh. Node 0 originates network broadcasts as fast as the mesh absorbs them; every node
// counts those its handler gets, and answers the orchestrator's marks with its count and clock.
//
// Flow control: the origin keeps at most `window` broadcasts in flight. Every node tells the origin
// the highest sequence number it has had (a direct event on their connection; every ACK_EVERY
// deliveries and after each read), and the origin waits while its newest broadcast is `window` ahead
// of the lowest of them. Without it the origin would sign as fast as it can into 16 MiB write queues
// (tens of thousands of small broadcasts, seconds of backlog), taking CPU from the nodes that verify
// for longer than any warm-up, and a relay, which cannot wait, would drop what its full queues refuse.
// A send the origin's own queues refuse (P2PQueueFullError) waits for room.
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import type * as P2P from 'nestjs-p2p/core';
import type { NetcastNodeSpec } from './lib/netcast.js';

// Only the core: the package root also loads NestJS (about 0.8 s of start-up per process against
// 0.2 s), and every run starts 8 processes on this machine's cores.
const { Peer, P2PQueueFullError, P2PRateLimitError, silentLogger } = (await import(
  new URL('../../dist/core.js', import.meta.url).href
)) as typeof P2P;

const spec = JSON.parse(process.argv[2]!) as NetcastNodeSpec;
const TOPIC = 'bench.netcast';
const ACK = 'bench.netcast.ack';
const ACK_EVERY = 32;
/** The origin yields to I/O every so many broadcasts, as the other bench senders do. */
const YIELD_EVERY = 64;
/** Sequence numbers ride in the payload's first bytes (decimal in a string, u32 BE in a Buffer). */
const SEQ_DIGITS = 12;

// unsignedBroadcasts is internal (stripped from the published types): the bench's own comparison.
const options: P2P.PeerOptions & { unsignedBroadcasts: boolean } = {
  listen: '127.0.0.1:0',
  tls: false,
  peerExchange: false,
  logger: silentLogger,
  unsignedBroadcasts: !spec.signed,
  // Budgets far above what the mesh can do, so that they never refuse or drop a broadcast here.
  broadcastOriginRate: 1e6,
  broadcastOriginBurst: 1e7,
  broadcastOriginBytesPerSec: 1e9,
  broadcastNeighbourRate: 1e7,
  broadcastNeighbourBytesPerSec: 1e9,
  broadcastCacheSize: 1_000_000,
};
const peer = new Peer(options);

let delivered = 0;
let highest = -1;
let sinceAck = 0;
let ackScheduled = false;
let originId: string | undefined;

// Origin side.
let originated = 0;
let refusedSends = 0;
let halted = false;
const acked = new Map<string, number>();
let floor = -1;
let wake: (() => void) | undefined;

const seqOf = (data: unknown): number =>
  typeof data === 'string' ? Number(data.slice(0, SEQ_DIGITS)) : (data as Buffer).readUInt32BE(0);

function onAck(from: string, seq: number): void {
  if (seq <= (acked.get(from) ?? -1)) return;
  acked.set(from, seq);
  let low = Infinity;
  for (const v of acked.values()) low = Math.min(low, v);
  if (low > floor) {
    floor = low;
    wake?.();
  }
}

function ack(): void {
  sinceAck = 0;
  try {
    peer.send(originId!, ACK, highest);
  } catch {
    // A full queue to the origin only delays the next ack.
  }
}

const ackLater = (): void => {
  ackScheduled = false;
  if (sinceAck > 0) ack();
};

peer.setHandler({
  onEvent(info, topic, data, meta) {
    if (topic === ACK) return onAck(info.id, data as number);
    delivered++;
    const seq = seqOf(data);
    if (seq > highest) highest = seq;
    originId ??= meta?.origin;
    if (spec.origin) return;
    // Every ACK_EVERY deliveries, and once the read that brought them is done: the origin never waits on
    // an ack that is not coming (a node that missed a broadcast still reports the highest it has).
    if (++sinceAck >= ACK_EVERY) ack();
    else if (!ackScheduled) {
      ackScheduled = true;
      setImmediate(ackLater);
    }
  },
  onRequest(_peer, _topic, _data, reply) {
    reply.complete();
  },
});

function payloadMaker(): (seq: number) => string | Buffer {
  if (spec.binary) {
    const template = Buffer.alloc(spec.payloadBytes, 0xab);
    return (seq) => {
      // A fresh Buffer per broadcast: the pipeline may keep a reference to the one it was given.
      const b = Buffer.allocUnsafe(spec.payloadBytes);
      template.copy(b);
      b.writeUInt32BE(seq, 0);
      return b;
    };
  }
  const filler = 'x'.repeat(Math.max(0, spec.payloadBytes - SEQ_DIGITS));
  return (seq) => String(seq).padStart(SEQ_DIGITS, '0') + filler;
}

async function originate(): Promise<void> {
  const payload = payloadMaker();
  for (const p of peer.peers()) acked.set(p.id, -1);
  while (!halted) {
    if (originated - 1 - floor >= spec.window) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      continue;
    }
    let result: P2P.BroadcastResult;
    try {
      result = peer.broadcast(TOPIC, payload(originated), { scope: 'network' });
    } catch (err) {
      if (!(err instanceof P2PQueueFullError) && !(err instanceof P2PRateLimitError)) throw err;
      refusedSends++;
      await sleep(1);
      continue;
    }
    originated++;
    if (result.failed.length > 0) {
      refusedSends += result.failed.length;
      await Promise.all(result.failed.map((f) => peer.whenWritable(f.peerId).catch(() => undefined)));
    }
    if (originated % YIELD_EVERY === 0) await tick();
  }
}

type Command = { type: 'connect'; targets: Array<{ id: string; address: string }>; expect: number } | { type: 'go' | 'mark' | 'halt' | 'stats' };

process.on('message', (m: Command) => {
  switch (m.type) {
    case 'connect':
      void (async () => {
        // Each pair once: the orchestrator hands every node only the nodes after it.
        await Promise.all(m.targets.map((t) => peer.connect(`${t.id}@${t.address}`)));
        while (peer.peers().length < m.expect) await sleep(5);
        process.send!({ type: 'meshed' });
      })().catch(fail);
      return;
    case 'go':
      if (spec.origin) originate().catch(fail);
      return;
    case 'mark':
      process.send!({ type: 'mark', delivered, originated, t: Number(process.hrtime.bigint()) / 1e6, cpuMs: cpuMs() });
      return;
    case 'halt':
      halted = true;
      wake?.();
      process.send!({ type: 'halted', originated });
      return;
    case 'stats':
      process.send!({ type: 'stats', delivered, highest, originated, refusedSends, neighbours: peer.peers().length, stats: peer.networkBroadcastStats() });
      return;
  }
});

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function fail(err: Error): void {
  process.stderr.write(`netcast node ${spec.index} failed: ${err.stack}\n`);
  process.exit(1);
}

// process.exit (not a signal death) lets --cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
await peer.start();
process.send!({ type: 'ready', id: peer.id, address: peer.address() });

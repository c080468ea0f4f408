import { DEFAULTS } from '../common/defaults.js';
import { loadIdentity } from '../common/identity.js';
import { silentLogger } from '../common/types.js';
import { NETWORK_MESSAGE_OVERHEAD } from '../broadcast/codec.js';
import { Directory } from '../directory/directory.js';
import { DIRECTORY_TOPIC, signRecord } from '../directory/record.js';
import { DIGEST_BUCKETS } from '../directory/record-table.js';
import { HEADER_BYTES } from '../wire/constants.js';
import { rng } from './ids.js';
import { SimNet } from './topology.js';
import { simulateBroadcast } from './broadcast.js';

/**
 * The directory of handlers at scale, without sockets (docs/directory.md, Memory): one node's
 * `Directory` filled with the signed records of `nodes` nodes, each handling `patternsPerNode`
 * patterns drawn from `distinctPatterns` (Zipf with exponent `zipf`, 0: uniform), each record
 * judged as an anti-entropy page's would be (decoded, bounds, signature verified).
 */
export interface DirectoryFillOptions {
  /** Records to fill the directory with, one per simulated node. */
  nodes: number;
  /** Patterns each node handles (a third of them events, the rest requests). */
  patternsPerNode: number;
  /** Distinct patterns the nodes draw theirs from (one in ten a `*` wildcard). */
  distinctPatterns: number;
  /** Zipf exponent of pattern popularity; 0 draws them uniformly. */
  zipf?: number;
  /** Seed of the pattern draws (default 1). */
  seed?: number;
}

/** What filling a directory gave. */
export interface DirectoryFill {
  /** The filled directory: measure the heap with it held. */
  directory: unknown;
  /** Records it holds. */
  records: number;
  /** Distinct patterns it holds. */
  patterns: number;
  /** Mean bytes of one record on the wire. */
  recordBytes: number;
  /** Mean bytes of the network-broadcast frame body that carries a record. */
  frameBytes: number;
  /** Time spent signing the records, ms. */
  signMs: number;
  /** Time spent judging them (decode, bounds, signature, store), ms. */
  judgeMs: number;
  /** Looks up `subject` (request kind): the handlers found. */
  lookup(subject: string): number;
  /** A subject some records handle (for lookups), and its handlers. */
  sample: string;
  /** Expires every record at once (the clock moved past directoryTtlMs) and returns the sweep's time, ms. Leaves the directory empty. */
  sweep(): number;
}

/** A small deterministic generator (mulberry32). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills one node's directory with `nodes` records. Takes seconds at 100 000 (a signature and a check each). */
export function fillDirectory(options: DirectoryFillOptions): DirectoryFill {
  const random = generator(options.seed ?? 1);
  const names = Array.from({ length: options.distinctPatterns }, (_, i) => (i % 10 === 9 ? `svc${i}.*` : `orders.svc${i}.request`));
  // Zipf: cumulative weights 1/k^s, drawn by binary search.
  const s = options.zipf ?? 0;
  const cumulative: number[] = [];
  let total = 0;
  for (let k = 1; k <= names.length; k++) cumulative.push((total += 1 / k ** s));
  const draw = () => {
    const x = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return names[lo]!;
  };
  const self = loadIdentity();
  const now = Date.now();
  let clockOffset = 0;
  const directory = new Directory(
    { selfId: self.peerId, logger: silentLogger, isRunning: () => false, publish: () => 0, penalize: () => undefined, changed: () => undefined, isKnown: () => true },
    self,
    () => null,
    {
      maxPatterns: DEFAULTS.directoryMaxPatterns,
      maxPatternBytes: DEFAULTS.directoryMaxPatternBytes,
      maxPatternTokens: DEFAULTS.directoryMaxPatternTokens,
      maxPatternMemory: DEFAULTS.directoryMaxPatternMemory,
      maxRecords: Math.max(options.nodes + 1, DEFAULTS.directoryMaxRecords),
      updateRate: DEFAULTS.directoryUpdateRate,
      updateBurst: DEFAULTS.directoryUpdateBurst,
      ttlMs: DEFAULTS.directoryTtlMs,
      clockSkewMs: DEFAULTS.broadcastClockSkewMs,
      unvouchedUpdateRate: DEFAULTS.broadcastUnknownOriginRate,
    },
    () => Date.now() + clockOffset,
  );
  let recordBytes = 0;
  let signMs = 0;
  let judgeMs = 0;
  for (let i = 0; i < options.nodes; i++) {
    const key = loadIdentity((i + 1).toString(16).padStart(64, '0'));
    const patterns = new Set<string>();
    while (patterns.size < Math.min(options.patternsPerNode, names.length)) patterns.add(draw());
    const all = [...patterns];
    const events = all.splice(0, Math.floor(all.length / 3));
    let t = performance.now();
    const bytes = signRecord(key, { publicKey: key.publicKeyRaw, seq: now, issuedAt: now, leaving: false, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:4000`, requests: all, events });
    signMs += performance.now() - t;
    recordBytes += bytes.length;
    t = performance.now();
    const verdict = directory.receive(bytes, { via: 'sync', from: '00'.repeat(20) });
    judgeMs += performance.now() - t;
    if (verdict !== 'accept') throw new Error(`record ${i} was not accepted (${verdict})`);
  }
  const stats = directory.stats();
  const mean = recordBytes / Math.max(1, options.nodes);
  return {
    directory,
    records: stats.records,
    patterns: stats.patterns,
    recordBytes: mean,
    frameBytes: NETWORK_MESSAGE_OVERHEAD + Buffer.byteLength(DIRECTORY_TOPIC) + mean,
    signMs,
    judgeMs,
    lookup: (subject) => directory.handlers(subject, 'request').length,
    sample: names[0]!,
    sweep: () => {
      clockOffset = DEFAULTS.directoryTtlMs + 1;
      const t = performance.now();
      directory.sweep();
      return performance.now() - t;
    },
  };
}

/** What `directoryTraffic` takes. */
export interface DirectoryTrafficOptions {
  /** Nodes in the network. */
  nodes: number;
  /** Fraction of the nodes joining or leaving a minute, half each (0.01: 1 %). */
  churn: number;
  /** Bytes of one record (fillDirectory's `recordBytes`). */
  recordBytes: number;
  /** Nodes of the simulated network whose RainTree broadcasts are measured (per-node costs are carried over to `nodes`); default min(nodes, 3 000). */
  simNodes?: number;
  /** Broadcasts simulated; default 8. */
  broadcasts?: number;
  /** directoryTtlMs (re-publish every third of it); default DEFAULTS. */
  ttlMs?: number;
  /** directorySyncIntervalMs; default DEFAULTS. */
  syncIntervalMs?: number;
  /** Milliseconds a hop takes (the latency that leaves two neighbours' digests differing); default 25. */
  hopMs?: number;
  /** Seed of the simulated network and broadcasts (default 1). */
  seed?: number;
}

/** Bytes one node receives a minute from the directory, by cause (`directoryTraffic`). */
export interface DirectoryTraffic {
  /** Records (and tombstones) broadcast a minute for the churn. */
  churnRecords: number;
  /** Records re-published a minute (every node every third of directoryTtlMs). */
  refreshRecords: number;
  /** Data frames a node receives per broadcast, measured (≈ 1: RainTree). */
  framesPerNode: number;
  /** Bytes of repair (IHAVE/IWANT) a node receives per broadcast, measured. */
  repairBytesPerNode: number;
  /** Mean connections of a node in the simulated network. */
  degree: number;
  /** Median rounds from a broadcast's origin to a node (× hopMs: how long two neighbours' directories differ). */
  latencyRounds: number;
  /** Bytes a node receives a minute, by cause. */
  bytes: {
    /** Broadcast frames (header, signed body) and repair of the churn's records. */
    churn: number;
    /** The same for re-published records. */
    refresh: number;
    /** Periodic digests received: the answer to its own (one an interval, with ASK), and a neighbour's. */
    digests: number;
    /** Digests on the connections the churn opens (a joiner's, and replacements for a leaver's). */
    connectDigests: number;
    /** The whole directory a joiner pulls from one neighbour, averaged over all nodes. */
    joins: number;
    /** Pages of whole buckets that a periodic exchange finds differing because an update is still in flight. */
    inFlightPages: number;
  };
  /** All of the above. */
  total: number;
}

/**
 * Bytes per node a minute that the directory costs (docs/directory.md, Traffic): RainTree broadcasts of
 * records, with repair, measured on a simulated network (`simulateBroadcast`, the node's own router and
 * repair) and carried over per node; anti-entropy digests and pages counted from the protocol's sizes
 * (src/directory/sync.ts). The in-flight term is a model: two neighbours' digests differ in about
 * (updates a second × median delivery time) buckets, and each differing bucket is paged whole.
 */
export function directoryTraffic(options: DirectoryTrafficOptions): DirectoryTraffic {
  const n = options.nodes;
  const simNodes = options.simNodes ?? Math.min(n, 3000);
  const broadcasts = options.broadcasts ?? 8;
  const ttlMs = options.ttlMs ?? DEFAULTS.directoryTtlMs;
  const syncMs = options.syncIntervalMs ?? DEFAULTS.directorySyncIntervalMs;
  const hopMs = options.hopMs ?? 25;
  const random = rng(options.seed ?? 1);
  const net = new SimNet(simNodes, random);
  net.settle();
  let frames = 0;
  let repairBytes = 0;
  let latency = 0;
  for (let b = 0; b < broadcasts; b++) {
    const r = simulateBroadcast(net, { origin: Math.floor(random() * simNodes), strategy: 'raintree', random, hopMs });
    frames += r.dataFrames;
    repairBytes += r.controlBytes;
    latency += r.latencyP50;
  }
  const framesPerNode = frames / broadcasts / simNodes;
  const repairBytesPerNode = repairBytes / broadcasts / simNodes;
  const latencyRounds = latency / broadcasts;
  const frameBytes = HEADER_BYTES + NETWORK_MESSAGE_OVERHEAD + Buffer.byteLength(DIRECTORY_TOPIC) + options.recordBytes;
  const perBroadcast = framesPerNode * frameBytes + repairBytesPerNode;
  const churnRecords = options.churn * n;
  const refreshRecords = n / (ttlMs / 3 / 60_000);
  const degree = net.stats().meanDegree;
  const digestBytes = HEADER_BYTES + 2 + 1 + DIGEST_BUCKETS * 12;
  const exchanges = 60_000 / syncMs; // periodic digests a node sends a minute (each with PULL and ASK)
  const updatesPerSecond = (churnRecords + refreshRecords) / 60;
  const differing = Math.min(DIGEST_BUCKETS, updatesPerSecond * ((latencyRounds * hopMs) / 1000));
  const recordsPerBucket = n / DIGEST_BUCKETS;
  const bytes = {
    churn: churnRecords * perBroadcast,
    refresh: refreshRecords * perBroadcast,
    digests: exchanges * 2 * digestBytes,
    connectDigests: options.churn * degree * 2 * digestBytes,
    joins: (options.churn / 2) * n * (options.recordBytes + 2),
    // A node pulls at each of its exchanges, and is pulled from at a neighbour's (its answer digest carries PULL too).
    inFlightPages: 2 * exchanges * differing * recordsPerBucket * (options.recordBytes + 2),
  };
  const total = Object.values(bytes).reduce((a, b) => a + b, 0);
  return { churnRecords, refreshRecords, framesPerNode, repairBytesPerNode, degree, latencyRounds, bytes, total };
}

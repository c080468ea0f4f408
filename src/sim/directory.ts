import { DEFAULTS } from '../common/defaults.js';
import { loadIdentity } from '../common/identity.js';
import { silentLogger } from '../common/types.js';
import { NETWORK_MESSAGE_OVERHEAD } from '../broadcast/codec.js';
import { Directory } from '../directory/directory.js';
import { DIRECTORY_TOPIC, signRecord } from '../directory/record.js';

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
    },
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
  };
}

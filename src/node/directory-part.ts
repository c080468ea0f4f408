import { P2PConfigError, P2PReservedPatternError } from '../common/errors.js';
import type { Identity } from '../common/identity.js';
import type { P2PLogger } from '../common/types.js';
import type { BroadcastPipeline } from '../broadcast/pipeline.js';
import type { Misbehaviour } from '../trust/peer-score.js';
import { Encoding } from '../wire/constants.js';
import { Directory, type DirectoryChange, type DirectoryStats, type HandlerInfo, type PatternCount } from '../directory/directory.js';
import { DIRECTORY_TOPIC, isReserved, MAX_ADDRESS_BYTES, MAX_RECORD_BYTES, RECORD_FIXED_BYTES } from '../directory/record.js';
import { DirectorySync } from '../directory/sync.js';
import type { P2PSocket } from '../connection/socket.js';
import { ControlType } from '../wire/control.js';

/** Bytes of records in one anti-entropy page: small enough not to hold a connection's queue up for long, and one record of MAX_RECORD_BYTES. */
const PAGE_BYTES = MAX_RECORD_BYTES + 4;
import type { ResolvedPeerOptions } from './peer-options.js';
import { isWildcard } from '../common/subject.js';

/**
 * The node's part in the directory of handlers (docs/directory.md): this node's record (set by
 * the Nest server from its handlers), the records of every other node, received through the
 * network-broadcast pipeline on the reserved topic `$p2p.directory`, where the record's own
 * signature is judged by a validator (so a refused record is neither delivered nor relayed,
 * and its sender pays). Needs from its host: `DirectoryPartHost`.
 */
export class DirectoryPart {
  readonly directory: Directory;
  readonly sync: DirectorySync;

  constructor(
    private readonly host: DirectoryPartHost,
    identity: Identity,
    private readonly o: ResolvedPeerOptions,
  ) {
    this.directory = new Directory(
      {
        selfId: host.selfId,
        logger: host.logger,
        isRunning: () => host.isRunning(),
        publish: (bytes) => host.pipeline().originate(DIRECTORY_TOPIC, Encoding.Binary, bytes, 'raintree').sent.length,
        penalize: (peerId, what, detail, weight) => host.penalize(peerId, what, detail, weight),
        changed: (change) => host.emit(change),
        isKnown: (id, via) => host.isKnown(id, via),
      },
      identity,
      () => host.address(),
      {
        maxPatterns: o.directoryMaxPatterns,
        maxPatternBytes: o.directoryMaxPatternBytes,
        maxPatternTokens: o.directoryMaxPatternTokens,
        maxPatternMemory: o.directoryMaxPatternMemory,
        maxRecords: o.directoryMaxRecords,
        updateRate: o.directoryUpdateRate,
        updateBurst: o.directoryUpdateBurst,
        ttlMs: o.directoryTtlMs,
        clockSkewMs: o.broadcastClockSkewMs,
        unvouchedUpdateRate: o.broadcastUnknownOriginRate,
      },
    );
    this.sync = new DirectorySync(
      {
        logger: host.logger,
        neighbours: () => [...host.connections()].filter(([, socket]) => socket.isOpen).map(([id]) => id),
        sendDigest: (id, body) => host.socketFor(id).sendControl({ type: ControlType.DirectoryDigest, body }),
        sendRecords: (id, body) => host.socketFor(id).sendDirectoryRecords(body),
        whenWritable: (id) => host.socketFor(id).whenWritable(),
        maxFrameBytes: (id) => host.socketFor(id).remote?.maxFrameBytes ?? o.maxFrameBytes,
        penalize: (peerId, what, detail, weight) => host.penalize(peerId, what, detail, weight),
      },
      this.directory,
      { intervalMs: o.directorySyncIntervalMs, pageBytes: PAGE_BYTES },
    );
  }

  /** A neighbour connected: the two ends compare digests. */
  onConnected(peerId: string): void {
    this.sync.onConnected(peerId);
    this.directory.onConnected(peerId);
  }

  onDisconnected(peerId: string): void {
    this.sync.onDisconnected(peerId);
  }

  /** A directory control frame from a neighbour; throws P2PProtocolError when malformed. */
  onControl(from: string, type: ControlType.DirectoryDigest | ControlType.DirectoryRecords, body: Buffer): void {
    if (type === ControlType.DirectoryDigest) this.sync.onDigest(from, body);
    else this.sync.onRecords(from, body);
  }

  /** Installs the directory's validator on the pipeline (before start: records may arrive as soon as a neighbour does). */
  attach(pipeline: BroadcastPipeline): void {
    pipeline.setValidator(DIRECTORY_TOPIC, (b) =>
      Buffer.isBuffer(b.data) ? this.directory.receive(b.data, { via: 'broadcast', origin: b.origin, from: b.from }) : 'reject',
    );
  }

  start(): void {
    this.directory.start();
    this.sync.start();
  }

  /** Stops its timers and publishes this node's tombstone (queued before the goodbyes, so flushed with them). */
  close(publish: boolean): void {
    this.directory.stop();
    this.sync.stop();
    const tombstone = this.directory.leave();
    if (!tombstone || !publish) return;
    try {
      this.host.pipeline().originate(DIRECTORY_TOPIC, Encoding.Binary, tombstone, 'raintree');
    } catch (err) {
      this.host.logger.debug?.(`directory tombstone not sent: ${(err as Error).message}`, { event: 'directory' });
    }
  }

  /** Replaces this node's record; throws a typed error for a reserved pattern or one over the bounds. */
  setHandledPatterns(patterns: { requests: readonly string[]; events: readonly string[] }): void {
    const all = [...new Set(patterns.requests), ...new Set(patterns.events)];
    const reserved = all.find((p) => typeof p !== 'string' || isReserved(p));
    if (reserved !== undefined) throw new P2PReservedPatternError(`pattern "${String(reserved)}" is reserved (the $p2p. prefix is the library's own)`);
    const problems: string[] = [];
    if (all.length > this.o.directoryMaxPatterns) problems.push(`directoryMaxPatterns: ${all.length} handled patterns, over ${this.o.directoryMaxPatterns}`);
    for (const p of all) {
      const bytes = Buffer.byteLength(p, 'utf8');
      if (bytes === 0 || bytes > this.o.directoryMaxPatternBytes) problems.push(`directoryMaxPatternBytes: pattern "${p.slice(0, 64)}" is ${bytes} bytes (1 to ${this.o.directoryMaxPatternBytes})`);
      const tokens = isWildcard(p) ? p.split('.').length : 0;
      if (tokens > this.o.directoryMaxPatternTokens) problems.push(`directoryMaxPatternTokens: wildcard pattern "${p.slice(0, 64)}" has ${tokens} tokens (at most ${this.o.directoryMaxPatternTokens})`);
    }
    // Whatever address the node listens on later (up to 255 bytes), its record must fit one anti-entropy page.
    const size = RECORD_FIXED_BYTES + MAX_ADDRESS_BYTES + all.reduce((n, p) => n + 2 + Buffer.byteLength(p, 'utf8'), 0);
    if (size > MAX_RECORD_BYTES) {
      problems.push(`directory record: ${all.length} patterns make a record of up to ${size} bytes, over ${MAX_RECORD_BYTES} (one anti-entropy page); handle fewer or shorter patterns`);
    }
    if (problems.length > 0) throw new P2PConfigError(problems);
    this.directory.setOwn(patterns);
  }

  patternCounts(limit: number): PatternCount[] {
    return this.directory.patternCounts(limit);
  }

  handlers(subject: string, kind: 'request' | 'event'): HandlerInfo[] {
    return this.directory.handlers(subject, kind);
  }

  /** The ids of `handlers(subject, kind)`, sorted (records past their TTL until the sweep). */
  /** Directory.sharingIds: the nodes sharing each of this node's event patterns, for the choice of its covers. */
  sharingIds(limit: number): Array<readonly string[]> {
    return this.directory.sharingIds(limit);
  }

  handlerIds(subject: string, kind: 'request' | 'event'): readonly string[] {
    return this.directory.handlerIds(subject, kind);
  }

  /** Node `id`'s entry in `handlers(subject, kind)` now, without listing the others; undefined when it has none. */
  handler(id: string, subject: string, kind: 'request' | 'event'): HandlerInfo | undefined {
    return this.directory.handler(id, subject, kind);
  }

  stats(): DirectoryStats {
    const { originated, delivered, duplicates, sent } = this.host.pipeline().router.internalStats;
    return { ...this.directory.stats(), sync: { ...this.sync.stats }, broadcasts: { originated, delivered, duplicates, sent } };
  }
}

/** What the directory part needs from the node. */
export interface DirectoryPartHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  address(): string | null;
  pipeline(): BroadcastPipeline;
  /** The open connections, one per peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** The open connection to a peer; throws a typed error when there is none. */
  socketFor(peerId: string): P2PSocket;
  penalize(peerId: string, what: Misbehaviour, detail: string, weight?: number): void;
  /** The node's `directory` event. */
  emit(change: DirectoryChange): void;
  /** Evidence of `id` other than neighbour `via`'s word: a neighbour, a proven past one, or a candidate another neighbour named (Discovery.isMember). */
  isKnown(id: string, via: string): boolean;
}

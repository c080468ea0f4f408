import type { BroadcastStrategy } from '../broadcast/codec.js';
import { BroadcastPipeline, type NetworkBroadcastStats, type PipelineHost } from '../broadcast/pipeline.js';
import type { P2PSocket } from '../connection/socket.js';
import type { Identity } from '../common/identity.js';
import type { BroadcastMeta } from '../common/types.js';
import { encodePayload } from '../wire/codec.js';
import { perTurn } from '../common/per-turn.js';
import { ControlType } from '../wire/control.js';
import { isReserved } from '../directory/record.js';
import type { Metadata } from '../wire/metadata.js';
import type { MetricsSink } from '../connection/metrics.js';
import type { PeerOptions, ResolvedPeerOptions } from './peer-options.js';

/**
 * The node's broadcasts, in both scopes: to every neighbour, or through the network-broadcast
 * pipeline, which it builds from the node's options and connects to its connections (relays,
 * IHAVE/IWANT) and to its handlers (delivery). Needs from its host: `BroadcastsHost`.
 */
export class Broadcasts {
  readonly pipeline: BroadcastPipeline;

  constructor(
    private readonly host: BroadcastsHost,
    identity: Identity,
    o: ResolvedPeerOptions,
    flags: Pick<PeerOptions, 'unsignedBroadcasts' | 'dropRelays'>,
  ) {
    this.pipeline = new BroadcastPipeline(
      {
        selfId: host.selfId,
        logger: host.logger,
        // Once per callback: a read of many frames relays them all over the same lists (src/common/per-turn.ts).
        knownIds: perTurn(() => host.knownIds()),
        neighbours: perTurn(() => [...host.connections()].filter(([, socket]) => socket.isOpen).map(([id]) => id)),
        reaches: (id, arc, only) => host.reaches(id, arc, only),
        isMember: (id, via) => host.isMember(id, via),
        namedByOthers: (id) => host.namedByOthers(id),
        send: (id, body) => host.socketFor(id).sendNetworkBroadcast(body),
        check: (id, bodyBytes, alsoQueued) => host.socketFor(id).checkNetworkBroadcast(bodyBytes, alsoQueued),
        sendIHave: (id, body) => host.socketFor(id).sendControl({ type: ControlType.BroadcastIHave, body }),
        sendIWant: (id, body) => host.socketFor(id).sendControl({ type: ControlType.BroadcastIWant, body }),
        deliver: (from, message, data) => this.deliver(from, { id: message.id, origin: message.origin, hops: message.hops, sentAt: Math.floor(message.timestampUs / 1000) }, message.topic, data, message.metadata),
        penalize: (peerId, what, detail, weight) => host.penalize(peerId, what, detail, weight),
        subscribersOf: (topic) => host.subscribersOf(topic),
        subscribes: (topic) => host.subscribes(topic),
        fanoutOf: (topic) => host.fanoutOf?.(topic) ?? [],
        eventOriginPaths: o.eventOriginPaths,
        counted: (topic, outcome) => host.metrics()?.event?.(topic, outcome),
      },
      identity,
      {
        windowMs: o.broadcastCacheTtlMs,
        skewMs: o.broadcastClockSkewMs,
        cacheSize: o.broadcastCacheSize,
        originRate: o.broadcastOriginRate,
        originBurst: o.broadcastOriginBurst,
        originBytesPerSec: o.broadcastOriginBytesPerSec,
        neighbourRate: o.broadcastNeighbourRate,
        neighbourBytesPerSec: o.broadcastNeighbourBytesPerSec,
        unknownOriginRate: o.broadcastUnknownOriginRate,
        maxFrameBytes: o.maxFrameBytes,
        unsigned: flags.unsignedBroadcasts === true,
        batchMax: o.broadcastBatchMax,
        verifiedBatches: o.broadcastVerifiedBatches,
        repairIntervalMs: o.broadcastRepairIntervalMs,
        repairCacheBytes: o.broadcastRepairCacheBytes,
        repairFanout: o.broadcastRepairFanout,
      },
    );
    if (flags.dropRelays) {
      this.pipeline.router.dropRelays = true;
      this.pipeline.repair.silent = true;
    }
  }

  /** Sends one broadcast (`topic`: `pattern` encoded); the caller checked that the node runs. */
  send(pattern: string, topic: Buffer, data: unknown, options: BroadcastOptions): BroadcastResult {
    if (options.scope === 'network' || options.scope === 'subscribers') {
      const { encoding, bytes } = encodePayload(data);
      if (options.scope === 'network') return this.pipeline.originate(pattern, encoding, bytes, options.strategy ?? 'raintree', options.metadata);
      const result = this.pipeline.originate(pattern, encoding, bytes, 'subscribers', options.metadata);
      if (!this.host.subscribes(pattern)) this.host.sentToSubscribers?.(pattern);
      return { ...result, subscribers: this.host.subscribersOf(pattern).length };
    }
    const result: BroadcastResult = { sent: [], failed: [] };
    for (const [peerId, socket] of this.host.connections()) {
      try {
        socket.sendEvent(topic, data, options.metadata);
        result.sent.push(peerId);
      } catch (err) {
        result.failed.push({ peerId, error: err as Error });
      }
    }
    return result;
  }

  /** Counters of network-wide broadcasts seen by this node (a copy). */
  stats(): NetworkBroadcastStats {
    const stats = this.pipeline.stats;
    return { ...stats, dropped: { ...stats.dropped }, repair: { ...stats.repair } };
  }

  /** A network broadcast for this node's handlers; `from` is the relaying neighbour, or this node for its own. */
  private deliver(from: string, meta: BroadcastMeta, topic: string, data: unknown, metadata?: Metadata): void {
    // The library's own topics ($p2p.: directory records) are consumed by their validators, never by handlers.
    if (!this.host.isRunning() || isReserved(topic)) return;
    if (from !== this.host.selfId) return void this.host.connections().get(from)?.dispatchEvent(topic, data, meta, metadata);
    // The originator's own copy has no connection to go through.
    const failed = (err: unknown) =>
      this.host.logger.error(`network broadcast handler for "${topic}" failed: ${(err as Error)?.message ?? err}`, { event: 'handler-failed' });
    try {
      const result = this.host.deliverOwn(meta, topic, data, metadata);
      if (result instanceof Promise) result.then((value) => value !== undefined && this.host.ownResult(value)).catch(failed);
    } catch (err) {
      failed(err);
    }
  }
}

/** Where a broadcast goes and how. */
export interface BroadcastOptions {
  /**
   * `neighbors` (default): every connected peer. `network`: every node of the network, relayed.
   * `subscribers`: every node whose handlers (directory record) include an event pattern matching
   * this one, this node included, each once, relayed over the id ring by those and as few other
   * nodes as the mesh allows; signed, budgeted and repaired as `network` (docs/events.md).
   */
  scope?: 'neighbors' | 'network' | 'subscribers';
  /** For `network`: RainTree (default; about one message per node) or gossip (flooding, for incomplete views). Ignored for the other scopes. */
  strategy?: Exclude<BroadcastStrategy, 'subscribers'>;
  /** Sent beside the data to every receiver (for `network`, signed by this node with the rest). */
  metadata?: Metadata;
}

/** Which peers a broadcast was queued for, and which it failed for. */
export interface BroadcastResult {
  /** The broadcast's id (network and subscribers scopes). */
  id?: string;
  /**
   * Subscribers scope: how many nodes this node knew to have a matching event handler when it
   * sent it, itself included (from its directory). 0: nobody gets it (as a NATS publish to a
   * subject nobody subscribes to).
   */
  subscribers?: number;
  /** Peers the message was queued for. */
  sent: string[];
  /** Peers it could not be queued for, with the reason. */
  failed: Array<{
    /** The peer it could not be queued for. */
    peerId: string;
    /** Why (a typed error, such as P2PQueueFullError). */
    error: Error;
  }>;
}

/** What the node's broadcasts need from it. */
export interface BroadcastsHost extends Pick<PipelineHost, 'selfId' | 'logger' | 'knownIds' | 'penalize'>, Required<Pick<PipelineHost, 'reaches' | 'isMember' | 'namedByOthers'>> {
  isRunning(): boolean;
  /** The open connections, one per peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** The open connection to a peer; throws a typed error when the node is not running or the peer is not connected. */
  socketFor(peerId: string): P2PSocket;
  /** Hands this node's own network broadcast to its handler (no connection goes through); may return a promise. */
  deliverOwn(meta: BroadcastMeta, topic: string, data: unknown, metadata?: Metadata): unknown;
  /** What deliverOwn's promise resolved to, when not undefined (InboundHandler.onEventResult). */
  ownResult(value: unknown): void;
  /** The topic's subscribers, sorted, this node included when it is one (src/node/subscribers.ts). */
  subscribersOf(topic: string): readonly string[];
  /** Whether this node has an event handler matching the topic. */
  subscribes(topic: string): boolean;
  /** This node sent an event to the topic's subscribers without being one (its fanout: event-fanout.ts). */
  sentToSubscribers?(topic: string): void;
  /** The subscribers of the topic this node dialed for its events (event-fanout.ts): sent a copy each, routed around. */
  fanoutOf?(topic: string): readonly string[];
  /** Where metrics go, if anywhere (Peer.setMetrics). */
  metrics(): MetricsSink | undefined;
}

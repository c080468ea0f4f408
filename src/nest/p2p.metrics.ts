import { Inject, Injectable, Optional, type OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge, Histogram, register as defaultRegistry, type Registry } from 'prom-client';
import type { FrameKind } from '../wire/codec.js';
import type { MetricsSink, RequestOutcome } from '../connection/metrics.js';
import type { Peer } from '../node/peer.js';
import { P2P_NODE } from './p2p.constants.js';

/** Inject a prom-client Registry under this token to keep P2P metrics out of the default one. */
export const P2P_METRICS_REGISTRY = Symbol('P2P_METRICS_REGISTRY');

// Patterns become a label; past this many distinct ones they are counted as "other".
const MAX_PATTERN_LABELS = 200;
const KINDS: FrameKind[] = ['event', 'request', 'response', 'control'];

/**
 * Prometheus metrics of the node, with prom-client (an optional peer dependency,
 * hence the `nestjs-p2p/metrics` subpath). Add it to a module's providers next to
 * P2PModule; expose `registry.metrics()` from a controller (see the README).
 */
@Injectable()
export class P2PMetrics implements MetricsSink, OnModuleDestroy {
  /** The prom-client registry holding these metrics (the injected P2P_METRICS_REGISTRY, else the default): serve `registry.metrics()`. */
  readonly registry: Registry;
  private readonly frames: Counter<'direction' | 'kind'>;
  private readonly bytes: Counter<'direction' | 'kind'>;
  private readonly durations: Histogram<'pattern' | 'outcome'>;
  private readonly errors: Counter<'type'>;
  private readonly routedRequests: Counter<'handler'>;
  private readonly noHandlers: Counter<'pattern'>;
  private readonly events: Counter<'pattern' | 'outcome'>;
  private readonly eventPatterns = new Set<string>();
  private readonly handlerIds = new Set<string>();
  private readonly noHandlerPatterns = new Set<string>();
  private readonly names: string[] = [];
  private readonly patterns = new Set<string>();
  // Children bound once per label pair: the per-frame path is two map-free increments.
  private readonly frameChildren = new Map<string, { frames: { inc(): void }; bytes: { inc(n: number): void } }>();

  constructor(
    @Inject(P2P_NODE) private readonly peer: Peer,
    @Optional() @Inject(P2P_METRICS_REGISTRY) registry?: Registry,
  ) {
    this.registry = registry ?? defaultRegistry;
    const registers = [this.registry];
    const track = <T extends { name: string }>(config: T): T => (this.names.push(config.name), config);
    this.frames = new Counter(track({ name: 'p2p_frames_total', help: 'Frames sent and received, by direction and kind.', labelNames: ['direction', 'kind'] as const, registers }));
    this.bytes = new Counter(track({ name: 'p2p_bytes_total', help: 'Frame bytes sent and received, by direction and kind.', labelNames: ['direction', 'kind'] as const, registers }));
    this.durations = new Histogram(
      track({
        name: 'p2p_request_duration_seconds',
        help: 'Duration of requests this node sent, by pattern and outcome (ok, remote_error, timeout, closed).',
        labelNames: ['pattern', 'outcome'] as const,
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers,
      }),
    );
    this.errors = new Counter(track({ name: 'p2p_errors_total', help: 'Typed errors on connections and requests, by class (timeouts included).', labelNames: ['type'] as const, registers }));
    this.routedRequests = new Counter(
      track({
        name: 'p2p_pattern_requests_total',
        help: 'Requests to a pattern this node sent, by the handler node chosen (its peer id; this node\'s own when it answered itself).',
        labelNames: ['handler'] as const,
        registers,
      }),
    );
    this.noHandlers = new Counter(
      track({ name: 'p2p_no_handler_total', help: 'Requests to a pattern that failed with P2P_NO_HANDLER, by pattern.', labelNames: ['pattern'] as const, registers }),
    );
    this.events = new Counter(
      track({
        name: 'p2p_events_total',
        help: 'Events for subscribers (emit to a pattern) by subject: sent by this node, delivered to its handlers, or carried (relayed with no matching handler here).',
        labelNames: ['pattern', 'outcome'] as const,
        registers,
      }),
    );
    for (const direction of ['in', 'out'] as const) {
      for (const kind of KINDS) {
        this.frameChildren.set(`${direction}:${kind}`, { frames: this.frames.labels(direction, kind), bytes: this.bytes.labels(direction, kind) });
      }
    }
    const node = this.peer;
    new Gauge(
      track({
        name: 'p2p_connected_peers',
        help: 'Connected peers, by direction.',
        labelNames: ['direction'] as const,
        registers,
        collect() {
          const peers = node.peers();
          this.set({ direction: 'inbound' }, peers.filter((p) => p.direction === 'inbound').length);
          this.set({ direction: 'outbound' }, peers.filter((p) => p.direction === 'outbound').length);
        },
      }),
    );
    new Gauge(
      track({
        name: 'p2p_queue_bytes',
        help: 'Bytes waiting to be written, summed over all connections.',
        registers,
        collect() {
          this.set(node.peers().reduce((sum, p) => sum + (node.connection(p.id)?.queuedBytes ?? 0), 0));
        },
      }),
    );
    const fromNode = (name: string, help: string, read: () => number) => {
      let last = 0;
      new Counter(
        track({
          name,
          help,
          registers,
          collect() {
            const now = read();
            if (now > last) this.inc(now - last);
            last = now;
          },
        }),
      );
    };
    fromNode('p2p_refused_connections_total', 'Inbound connections refused (maxInbound).', () => node.refused);
    fromNode('p2p_broadcast_delivered_total', 'Network broadcasts delivered to this node\'s handlers.', () => node.networkBroadcastStats().delivered);
    fromNode('p2p_broadcast_verified_total', 'Origin signatures of network broadcasts this node checked (its costliest step per broadcast).', () => node.networkBroadcastStats().verified);
    fromNode('p2p_broadcast_duplicates_total', 'Network broadcast copies dropped by the seen-cache.', () => node.networkBroadcastStats().duplicates);
    fromNode('p2p_broadcast_sent_total', 'Network broadcast messages this node sent or relayed.', () => node.networkBroadcastStats().sent);
    fromNode('p2p_broadcast_repaired_total', 'Network broadcasts this node sent a neighbour that asked for them (repair).', () => node.networkBroadcastStats().repair.sent);
    fromNode('p2p_broadcast_repair_requested_total', 'Network broadcast ids this node asked a neighbour for (repair).', () => node.networkBroadcastStats().repair.requested);
    fromNode('p2p_broadcast_repair_bytes_total', 'Bytes of repair announcements and requests (IHAVE, IWANT) this node sent.', () => node.networkBroadcastStats().repair.controlBytes);
    fromNode('p2p_broadcast_unrouted_total', 'Arcs of network broadcasts no neighbour could take (left to repair).', () => node.networkBroadcastStats().unrouted);
    new Gauge(
      track({
        name: 'p2p_handlers_known',
        help: 'Nodes this node\'s directory knows to handle each pattern, by kind (request: @MessagePattern, event: @EventPattern); the first 200 patterns.',
        labelNames: ['pattern', 'kind'] as const,
        registers,
        collect() {
          this.reset();
          for (const { pattern, requests, events } of node.patternCounts(MAX_PATTERN_LABELS)) {
            if (requests > 0) this.set({ pattern, kind: 'request' }, requests);
            if (events > 0) this.set({ pattern, kind: 'event' }, events);
          }
        },
      }),
    );
    fromNode('p2p_bans_total', 'Peers banned (misbehaviour or by hand).', () => node.bansTotal);
    new Gauge(
      track({
        name: 'p2p_banned_peers',
        help: 'Bans in force (peer ids and IPs).',
        registers,
        collect() {
          this.set(node.bans().length);
        },
      }),
    );
    const dropped: Record<string, number> = {};
    new Counter(
      track({
        name: 'p2p_broadcast_dropped_total',
        help: 'Network broadcasts (or copies) dropped before delivery, by reason: neighbourBudget, originBudget, unknownOrigin, invalidSignature, stale, future, cacheFull, misrouted, ignored, rejected, validatorBusy.',
        labelNames: ['reason'] as const,
        registers,
        collect() {
          for (const [reason, now] of Object.entries(node.networkBroadcastStats().dropped)) {
            if (now > (dropped[reason] ?? 0)) this.inc({ reason }, now - (dropped[reason] ?? 0));
            dropped[reason] = now;
          }
        },
      }),
    );
    node.setMetrics(this);
  }

  frame(direction: 'in' | 'out', kind: FrameKind, bytes: number): void {
    const child = this.frameChildren.get(`${direction}:${kind}`)!;
    child.frames.inc();
    child.bytes.inc(bytes);
  }

  request(pattern: string, seconds: number, outcome: RequestOutcome): void {
    if (!this.patterns.has(pattern)) {
      if (this.patterns.size >= MAX_PATTERN_LABELS) pattern = 'other';
      else this.patterns.add(pattern);
    }
    this.durations.labels(pattern, outcome).observe(seconds);
  }

  error(type: string): void {
    this.errors.labels(type).inc();
  }

  /** Counts a request to a pattern by the handler node it was handed to. */
  routed(_subject: string, handlerId: string): void {
    this.routedRequests.labels(bounded(this.handlerIds, handlerId)).inc();
  }

  /** Counts a P2P_NO_HANDLER failure by pattern. */
  noHandler(subject: string): void {
    this.noHandlers.labels(bounded(this.noHandlerPatterns, subject)).inc();
  }

  /** Counts an event for subscribers by subject and what this node did with it. */
  event(subject: string, outcome: 'sent' | 'delivered' | 'carried'): void {
    this.events.labels(bounded(this.eventPatterns, subject), outcome).inc();
  }

  /** Stops counting and removes these metrics from the registry, so that another app in the process can register them again. */
  onModuleDestroy(): void {
    this.peer.setMetrics(undefined);
    for (const name of this.names) this.registry.removeSingleMetric(name);
  }
}

/** `value` as a label, or "other" once MAX_PATTERN_LABELS distinct ones are in use. */
function bounded(seen: Set<string>, value: string): string {
  if (seen.has(value)) return value;
  if (seen.size >= MAX_PATTERN_LABELS) return 'other';
  seen.add(value);
  return value;
}

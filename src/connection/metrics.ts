import type { FrameKind } from '../wire/codec.js';

/**
 * What the core reports for metrics, as plain calls: the Nest layer turns them
 * into prom-client counters (nestjs-p2p/metrics), and without a sink nothing is
 * counted at all. Gauges (connections, queue bytes, refusals, broadcasts) are read
 * from the node at scrape time instead.
 */
export interface MetricsSink {
  /** A frame sent (`out`) or received (`in`), of `bytes` bytes on the wire. */
  frame(direction: 'in' | 'out', kind: FrameKind, bytes: number): void;
  /** A request this node sent has ended. */
  request(pattern: string, seconds: number, outcome: RequestOutcome): void;
  /** A typed error on a connection (by class name), e.g. P2PProtocolError, P2PQueueFullError. */
  error(type: string): void;
  /** A request to a pattern (`requestPattern`) was handed to the handler node `handlerId` (this node's own id when it answers itself). */
  routed?(subject: string, handlerId: string): void;
  /** A request to a pattern failed with P2PNoHandlerError (reported as an error too). */
  noHandler?(subject: string): void;
  /**
   * An event for subscribers on `subject`: `sent` by this node, `delivered` to its handler, or
   * `carried` (relayed with no matching handler here).
   */
  event?(subject: string, outcome: 'sent' | 'delivered' | 'carried'): void;
}

/**
 * How a request this node sent ended: `ok`, `remote_error` (the handler failed), `timeout`, or
 * `closed` (any other error, the connection closing among them); `cancelled` is not reported yet.
 */
export type RequestOutcome = 'ok' | 'remote_error' | 'timeout' | 'closed' | 'cancelled';

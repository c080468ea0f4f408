/** The logging surface the core needs; Nest's `Logger` satisfies it. */
export interface P2PLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

export const silentLogger: P2PLogger = { log() {}, warn() {}, error() {}, debug() {} };

export type Direction = 'inbound' | 'outbound';

/** What a node knows about one connected peer. */
export interface PeerInfo {
  id: string;
  /** Remote socket address of this connection. */
  remoteAddress: string;
  /** The address the peer says it can be dialed at (from its hello), or null. */
  listenAddress: string | null;
  direction: Direction;
  connectedAt: Date;
  /** Last measured ping round trip in ms, or null before the first pong. */
  rttMs: number | null;
  /** TLS 1.3, with the peer id proven by the remote's certificate (false: plaintext, id only claimed). */
  secure: boolean;
}

export type PeerEvent =
  | { type: 'connected'; peer: PeerInfo }
  | { type: 'disconnected'; peer: PeerInfo; reason: string; error?: Error; undeliveredBytes: number };

/** Set on a network-wide broadcast delivered to a handler: where it started and how far it came. */
export interface BroadcastMeta {
  id: string;
  /** The peer id that originated the broadcast: proven by its signature, whoever relayed it. */
  origin: string;
  hops: number;
  /** When the origin sent it, by the origin's clock (ms since the epoch); within the replay window of this node's clock. */
  sentAt: number;
}

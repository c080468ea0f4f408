/** The logging surface the core needs; Nest's `Logger` satisfies it. */
export interface P2PLogger {
  /** Lifecycle news: listening, connected, disconnected. */
  log(message: string): void;
  /** Something went wrong that the node survives: a dropped connection, a refused peer, an undelivered queue. */
  warn(message: string): void;
  /** A failure the application should look at, such as an event handler or broadcast validator that threw. */
  error(message: string): void;
  /** Detail for troubleshooting (expected refusals such as a self-dial); optional. */
  debug?(message: string): void;
}

/** A P2PLogger that discards everything: pass it as `logger` to silence a node (in tests, for one). */
export const silentLogger: P2PLogger = { log() {}, warn() {}, error() {}, debug() {} };

/** Who dialed: `outbound` when this node opened the connection, `inbound` when the peer did. */
export type Direction = 'inbound' | 'outbound';

/** What a node knows about one connected peer. */
export interface PeerInfo {
  /** The peer's id: proven by its TLS certificate when `secure`, otherwise only claimed in its hello. */
  id: string;
  /** Remote socket address of this connection. */
  remoteAddress: string;
  /** The address the peer says it can be dialed at (from its hello), or null. */
  listenAddress: string | null;
  /** Who dialed this connection. */
  direction: Direction;
  /** When this connection was set up, just before the hello exchange. */
  connectedAt: Date;
  /** Last measured ping round trip in ms, or null before the first pong. */
  rttMs: number | null;
  /** TLS 1.3, with the peer id proven by the remote's certificate (false: plaintext, id only claimed). */
  secure: boolean;
}

/** A connection to a peer opened or closed: the node's `peer` event, and `P2PService.events$`. */
export type PeerEvent =
  | {
      /** The handshake with a peer completed. */
      type: 'connected';
      /** The peer, as `peers()` lists it. */
      peer: PeerInfo;
    }
  | {
      /** The connection to a peer closed, for whatever reason. */
      type: 'disconnected';
      /** The peer, as it was while connected. */
      peer: PeerInfo;
      /** Why, in words: the peer's goodbye, a timeout, a socket error, this node's own close. */
      reason: string;
      /** The error that closed it, when one did. */
      error?: Error;
      /** Bytes still queued to the peer that were never sent. */
      undeliveredBytes: number;
    };

/** Set on a network-wide broadcast delivered to a handler: where it started and how far it came. */
export interface BroadcastMeta {
  /** The broadcast's id (32 hex characters, from a hash of what its origin signed): the same on every node. */
  id: string;
  /** The peer id that originated the broadcast: proven by its signature, whoever relayed it. */
  origin: string;
  /** Hops it travelled to get here: 1 straight from its origin, 0 for this node's own broadcast. */
  hops: number;
  /** When the origin sent it, by the origin's clock (ms since the epoch); within the replay window of this node's clock. */
  sentAt: number;
}

/**
 * Names of what a log line reports, the `event` of its LogFields. One small, fixed vocabulary (docs/operations.md
 * lists when each is written) so that a log pipeline can select lines without parsing their text.
 */
export type LogEvent =
  | 'listening'
  | 'closed'
  | 'config'
  | 'connected'
  | 'closing'
  | 'disconnected'
  | 'reconnected'
  | 'refused'
  | 'dial-failed'
  | 'dialed'
  | 'connection-error'
  | 'listener-error'
  | 'undelivered'
  | 'id-conflict'
  | 'banned'
  | 'unbanned'
  | 'peer-store'
  | 'peer-exchange'
  | 'peer-forgotten'
  | 'handler-failed'
  | 'reply-failed'
  | 'request-failed'
  | 'directory';

/** Structured fields of one log line: what it reports and, when the line is about one peer, which peer. */
export interface LogFields {
  /** What the line reports, from a small fixed vocabulary (LogEvent). */
  event: LogEvent;
  /** The peer the line is about (40 hex characters), when one is known. */
  peerId?: string;
  /** The peer's `host:port` (its socket's remote address, or the address dialed), when one is known. */
  address?: string;
}

/**
 * The logging surface the core needs. Every call passes LogFields as a second argument: a logger that
 * takes only the message (as before) keeps working. Nest's `Logger` prints an extra argument as a second
 * message, so Nest apps get a wrapper (P2PModule does this); a structured logger such as pino can keep the fields.
 */
export interface P2PLogger {
  /** Lifecycle news: listening, connected, disconnected. */
  log(message: string, fields?: LogFields): void;
  /** Something went wrong that the node survives: a dropped connection, a refused peer, an undelivered queue. */
  warn(message: string, fields?: LogFields): void;
  /** A failure the application should look at, such as an event handler or broadcast validator that threw. */
  error(message: string, fields?: LogFields): void;
  /** Detail for troubleshooting (expected refusals such as a self-dial); optional. */
  debug?(message: string, fields?: LogFields): void;
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

/**
 * Typed errors. Every error that reaches a caller is a P2PError subclass with a
 * stable `p2pCode`, and carries the peer id and address when one is involved.
 *
 * `code` is what Nest users branch on (Nest's own samples test `err.code === 'ECONNREFUSED'`):
 * for a dial or listen that the operating system refused it is the system code
 * (ECONNREFUSED, EADDRINUSE, …), as on Nest's TCP client; otherwise it equals `p2pCode`.
 */

/** The peer an error is about, as far as it is known when the error is made. */
export interface PeerRef {
  /** The remote's peer id (40 hex characters); absent before its hello names it. */
  peerId?: string;
  /** The remote's `host:port`: the address dialed, or the connection's remote socket address. */
  address?: string;
}

/**
 * The system codes a P2PDialError or P2PListenError may carry as `code`. Others (rare:
 * EPERM, EMFILE…) are not copied, so that `code` stays within this type; they remain on `cause`.
 */
export type SystemErrorCode =
  | 'ECONNREFUSED'
  | 'ECONNRESET'
  | 'ETIMEDOUT'
  | 'EHOSTUNREACH'
  | 'ENETUNREACH'
  | 'ENOTFOUND'
  | 'EAI_AGAIN'
  | 'EADDRINUSE'
  | 'EADDRNOTAVAIL'
  | 'EACCES';

const SYSTEM_CODES: ReadonlySet<string> = new Set<SystemErrorCode>([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRINUSE',
  'EADDRNOTAVAIL',
  'EACCES',
]);

/** Every `p2pCode`, one per class. */
export type P2PErrorCode =
  | 'P2P_ERROR'
  | 'P2P_PROTOCOL'
  | 'P2P_FRAME_TOO_LARGE'
  | 'P2P_QUEUE_FULL'
  | 'P2P_TIMEOUT'
  | 'P2P_CONNECTION_CLOSED'
  | 'P2P_HANDSHAKE'
  | 'P2P_IDENTITY_MISMATCH'
  | 'P2P_SELF_CONNECTION'
  | 'P2P_ID_CONFLICT'
  | 'P2P_PEER_NOT_ALLOWED'
  | 'P2P_PEER_BANNED'
  | 'P2P_DIAL'
  | 'P2P_LISTEN'
  | 'P2P_PEER_NOT_CONNECTED'
  | 'P2P_NOT_RUNNING'
  | 'P2P_REMOTE'
  | 'P2P_RATE_LIMIT'
  | 'P2P_METADATA'
  | 'P2P_CONFIG'
  | 'P2P_RESERVED_PATTERN'
  | 'P2P_NO_HANDLER';

/** What a P2PError's constructor takes besides its message and peer. */
export interface P2PErrorOptions {
  /** The underlying error (a socket's, the OS's), kept as the standard `Error.cause`. */
  cause?: unknown;
  /** The system code to expose as `code` when `cause` has none (a dial timeout is ETIMEDOUT). */
  systemCode?: SystemErrorCode;
}

/**
 * The codes are set by this constructor from the class's static `p2pCode` (own, enumerable
 * properties, as on Node's errors). Each subclass narrows `code` and `p2pCode` with `declare`
 * to the codes its instances can hold: its own, and those of its subclasses (a
 * P2PProtocolError may be a P2PFrameTooLargeError), so `e.code === 'P2P_FRAME_TOO_LARGE'`
 * type-checks after `e instanceof P2PProtocolError`.
 */
export class P2PError extends Error {
  /** The `p2pCode` every instance of this class carries, readable without an instance. */
  static readonly p2pCode: P2PErrorCode = 'P2P_ERROR';
  /** Whether `code` takes the system code of `cause` (dial and listen failures only). */
  protected static readonly exposesSystemCode: boolean = false;
  /** This library's code for the error's class; never a system code. */
  readonly p2pCode: P2PErrorCode;
  /** The system code (ECONNREFUSED, EADDRINUSE…) of a refused dial or listen, else `p2pCode`. */
  readonly code: P2PErrorCode | SystemErrorCode;
  /** The peer id of the remote end involved, when known (also in the message). */
  readonly peerId?: string;
  /** The remote `host:port` involved, when known (also in the message). */
  readonly address?: string;
  /** The message without the peer it names: what a goodbye tells that very peer. */
  readonly detail: string;

  constructor(message: string, peer: PeerRef = {}, options: P2PErrorOptions = {}) {
    super(withPeer(message, peer), 'cause' in options ? { cause: options.cause } : undefined);
    this.detail = message;
    const type = new.target as typeof P2PError;
    this.name = new.target.name;
    this.p2pCode = type.p2pCode;
    this.code = (type.exposesSystemCode ? (systemCodeOf(options.cause) ?? options.systemCode) : undefined) ?? type.p2pCode;
    this.peerId = peer.peerId;
    this.address = peer.address;
  }
}

function systemCodeOf(cause: unknown): SystemErrorCode | undefined {
  const code = cause && typeof cause === 'object' && 'code' in cause ? cause.code : undefined;
  return typeof code === 'string' && SYSTEM_CODES.has(code) ? (code as SystemErrorCode) : undefined;
}

function withPeer(message: string, { peerId, address }: PeerRef): string {
  if (!peerId && !address) return message;
  return `${message} (peer ${peerId ?? '?'} at ${address ?? '?'})`;
}

/** The remote end broke the wire protocol; the connection is closed. */
export class P2PProtocolError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_PROTOCOL';
  declare readonly p2pCode: 'P2P_PROTOCOL' | 'P2P_FRAME_TOO_LARGE';
  declare readonly code: 'P2P_PROTOCOL' | 'P2P_FRAME_TOO_LARGE';
}

/** A frame (header + body) larger than `maxFrameBytes`, on send or on receive. */
export class P2PFrameTooLargeError extends P2PProtocolError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_FRAME_TOO_LARGE';
  declare readonly p2pCode: 'P2P_FRAME_TOO_LARGE';
  declare readonly code: 'P2P_FRAME_TOO_LARGE';
  /**
   * @param size - Bytes of the refused frame, header included.
   * @param limit - The `maxFrameBytes` it exceeds: this node's, or with `peerLimit` the peer's.
   * @param peerLimit - True when `limit` is the peer's, as it announced in its hello (smaller than this node's own).
   */
  constructor(readonly size: number, readonly limit: number, peer: PeerRef = {}, readonly peerLimit = false) {
    super(`frame of ${size} bytes exceeds ${peerLimit ? "the peer's " : ''}maxFrameBytes ${limit}`, peer);
  }
}

/** The per-peer write queue is at `maxQueueBytes`: the peer is not reading fast enough. */
export class P2PQueueFullError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_QUEUE_FULL';
  declare readonly p2pCode: 'P2P_QUEUE_FULL';
  declare readonly code: 'P2P_QUEUE_FULL';
  /**
   * @param queuedBytes - Bytes already waiting to be written to that peer.
   * @param limit - This node's `maxQueueBytes`.
   */
  constructor(readonly queuedBytes: number, readonly limit: number, peer: PeerRef = {}) {
    super(`write queue full (${queuedBytes} of ${limit} bytes)`, peer);
  }
}

/** No reply within the request's timeout, or (`deadline`) the reply stream did not end within its total deadline. */
export class P2PTimeoutError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_TIMEOUT';
  declare readonly p2pCode: 'P2P_TIMEOUT';
  declare readonly code: 'P2P_TIMEOUT';
  /**
   * @param pattern - The normalised pattern of the request.
   * @param timeoutMs - The timeout that passed, ms: between replies, or with `deadline` for the whole stream.
   * @param deadline - True when the whole reply stream overran its deadline (`deadlineMs`), not a gap between replies.
   */
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
    peer: PeerRef = {},
    readonly deadline = false,
  ) {
    super(deadline ? `request "${pattern}" did not complete within its deadline of ${timeoutMs} ms` : `request "${pattern}" got no reply within ${timeoutMs} ms`, peer);
  }
}

/** The connection closed before the operation completed. */
export class P2PConnectionClosedError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_CONNECTION_CLOSED';
  declare readonly p2pCode: 'P2P_CONNECTION_CLOSED';
  declare readonly code: 'P2P_CONNECTION_CLOSED';
}

/** The `p2pCode` of a P2PHandshakeError or one of its subclasses: how the handshake failed. */
export type HandshakeCode = 'P2P_HANDSHAKE' | 'P2P_IDENTITY_MISMATCH' | 'P2P_SELF_CONNECTION' | 'P2P_ID_CONFLICT' | 'P2P_PEER_NOT_ALLOWED' | 'P2P_PEER_BANNED';

/** The handshake failed: timeout, version mismatch, self or duplicate connection, refusal. */
export class P2PHandshakeError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_HANDSHAKE';
  declare readonly p2pCode: HandshakeCode;
  declare readonly code: HandshakeCode;
}

/** The peer at the dialed address proved a different id than the one expected. */
export class P2PIdentityMismatchError extends P2PHandshakeError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_IDENTITY_MISMATCH';
  declare readonly p2pCode: 'P2P_IDENTITY_MISMATCH';
  declare readonly code: 'P2P_IDENTITY_MISMATCH';
  /**
   * @param expected - The peer id required: the one in `<peerId>@host:port`, or the one the remote's TLS certificate proved.
   * @param actual - The peer id the remote end has instead (proven by TLS, or claimed in its hello).
   */
  constructor(readonly expected: string, readonly actual: string, peer: PeerRef = {}, message?: string) {
    super(message ?? `expected peer id ${expected}, the remote end is ${actual}`, peer);
  }
}

/** The remote end is this node itself (a configured or advertised address that loops back). */
export class P2PSelfConnectionError extends P2PHandshakeError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_SELF_CONNECTION';
  declare readonly p2pCode: 'P2P_SELF_CONNECTION';
  declare readonly code: 'P2P_SELF_CONNECTION';
}

/**
 * Two nodes run with one key, so one peer id: met when a node dials another that proves this
 * node's own id (a different process: not its own certificate), or when a peer refuses this
 * node's connection because a node with this id at another address is connected to it already.
 * The node logs it once as an error and does not redial that address for `idConflictRetryMs`.
 * Give each node its own `privateKeyFile`.
 */
export class P2PIdentityConflictError extends P2PHandshakeError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_ID_CONFLICT';
  declare readonly p2pCode: 'P2P_ID_CONFLICT';
  declare readonly code: 'P2P_ID_CONFLICT';
  /**
   * @param sharedId - The peer id both nodes use.
   * @param otherAddress - Where the other node with that id is, when known (the address the refusing peer has it at).
   * @param peer - The connection on which the conflict was met: the address dialed, or the refusing peer.
   * @param how - How it was met, for the message.
   */
  constructor(readonly sharedId: string, readonly otherAddress: string | undefined, peer: PeerRef = {}, how?: string) {
    super(
      `peer id ${sharedId} is used by two nodes: ${how ?? `met at ${peer.address ?? 'an unknown address'}`}` +
        `${otherAddress && otherAddress !== peer.address ? `; the other node is at ${otherAddress}` : ''}. Two nodes share one key: give each its own privateKeyFile`,
      peer,
    );
  }
}

/** The remote proved an id that is not in this node's `allowedPeers`. */
export class P2PPeerNotAllowedError extends P2PHandshakeError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_PEER_NOT_ALLOWED';
  declare readonly p2pCode: 'P2P_PEER_NOT_ALLOWED';
  declare readonly code: 'P2P_PEER_NOT_ALLOWED';
  /** @param remotePeerId - The refused peer id. */
  constructor(readonly remotePeerId: string, peer: PeerRef = {}) {
    super(`peer ${remotePeerId} is not in allowedPeers`, peer);
  }
}

/**
 * A dial could not be made: refused, unreachable, timed out, or over `maxOutbound`.
 * `code` is the system code when the OS refused it (ECONNREFUSED…) and ETIMEDOUT when
 * `dialTimeoutMs` passed, as Nest's TCP client reports them; else P2P_DIAL.
 */
export class P2PDialError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_DIAL';
  protected static override readonly exposesSystemCode = true;
  declare readonly p2pCode: 'P2P_DIAL';
  declare readonly code: 'P2P_DIAL' | SystemErrorCode;
}

/** The node could not listen on its `listen` address (EADDRINUSE, EADDRNOTAVAIL…, as `code`). */
export class P2PListenError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_LISTEN';
  protected static override readonly exposesSystemCode = true;
  declare readonly p2pCode: 'P2P_LISTEN';
  declare readonly code: 'P2P_LISTEN' | SystemErrorCode;
  /** @param listenAddress - The configured `listen` address (not a peer's, hence not `address`). */
  constructor(readonly listenAddress: string, cause: unknown) {
    super(`cannot listen on ${listenAddress}: ${describeCause(cause)}`, {}, { cause });
  }
}

/** No live connection to that peer id. */
export class P2PPeerNotConnectedError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_PEER_NOT_CONNECTED';
  declare readonly p2pCode: 'P2P_PEER_NOT_CONNECTED';
  declare readonly code: 'P2P_PEER_NOT_CONNECTED';
  constructor(peerId: string) {
    super(`not connected to peer ${peerId}`, { peerId });
  }
}

/** The node is not started yet, or is closed. */
export class P2PNotRunningError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_NOT_RUNNING';
  declare readonly p2pCode: 'P2P_NOT_RUNNING';
  declare readonly code: 'P2P_NOT_RUNNING';
}

/** The remote handler failed; `error` is what it replied (Nest's RpcException error, or `{ status, message }`). */
export class P2PRemoteError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_REMOTE';
  declare readonly p2pCode: 'P2P_REMOTE';
  declare readonly code: 'P2P_REMOTE';
  /** @param error - What the remote handler replied with: Nest's RpcException error, or `{ status, message }`. */
  constructor(readonly error: unknown, peer: PeerRef = {}) {
    super(`remote handler failed: ${describeRemote(error)}`, peer);
  }
}

/** Over a rate limit: this node's own network-broadcast budget (`broadcastOriginRate`, `broadcastOriginBurst`, `broadcastOriginBytesPerSec`). */
export class P2PRateLimitError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_RATE_LIMIT';
  declare readonly p2pCode: 'P2P_RATE_LIMIT';
  declare readonly code: 'P2P_RATE_LIMIT';
}

/** The peer is banned (misbehaviour, or `P2PService.ban`) until its ban ends or is lifted. */
export class P2PPeerBannedError extends P2PHandshakeError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_PEER_BANNED';
  declare readonly p2pCode: 'P2P_PEER_BANNED';
  declare readonly code: 'P2P_PEER_BANNED';
}

/** Message metadata that is not an object of strings, or larger than 4 KiB encoded. */
export class P2PMetadataError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_METADATA';
  declare readonly p2pCode: 'P2P_METADATA';
  declare readonly code: 'P2P_METADATA';
}

/**
 * A pattern the library reserves for itself (`$p2p.` prefix, as NATS reserves `$SYS`): no
 * handler or broadcast of the application may use one.
 */
export class P2PReservedPatternError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_RESERVED_PATTERN';
  declare readonly p2pCode: 'P2P_RESERVED_PATTERN';
  declare readonly code: 'P2P_RESERVED_PATTERN';
}

/** The configuration is invalid; `problems` names every bad key. */
export class P2PConfigError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_CONFIG';
  declare readonly p2pCode: 'P2P_CONFIG';
  declare readonly code: 'P2P_CONFIG';
  /** @param problems - One line per problem, each naming the bad key and what is wrong with it. */
  constructor(readonly problems: string[]) {
    super(`invalid P2P config:\n  - ${problems.join('\n  - ')}`);
  }
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function describeRemote(error: unknown): string {
  if (typeof error === 'string') return error;
  if (error && typeof error === 'object' && 'message' in error) return String(error.message);
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

/**
 * A request to a pattern (`requestPattern`, a `P2PClient` without `peer`) found no node with a
 * matching `@MessagePattern` within its timeout: none was known, or none could be reached.
 */
export class P2PNoHandlerError extends P2PError {
  static override readonly p2pCode: P2PErrorCode = 'P2P_NO_HANDLER';
  declare readonly p2pCode: 'P2P_NO_HANDLER';
  declare readonly code: 'P2P_NO_HANDLER';
  /**
   * @param pattern - The subject the request was sent to (the normalised pattern).
   * @param waitedMs - How long it waited for a handler, ms.
   * @param cause - Why the last handler known could not be reached, when one was known.
   */
  constructor(
    readonly pattern: string,
    readonly waitedMs: number,
    cause?: Error,
  ) {
    super(
      cause ? `no reachable node handles "${pattern}" within ${waitedMs} ms (last: ${cause.message})` : `no node handles "${pattern}" (waited ${waitedMs} ms for one)`,
      {},
      cause ? { cause } : {},
    );
  }
}

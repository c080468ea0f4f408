/**
 * Typed errors. Every error that reaches a caller is a P2PError subclass with a
 * stable `code`, and carries the peer id and address when one is involved.
 */
export interface PeerRef {
  peerId?: string;
  address?: string;
}

export class P2PError extends Error {
  readonly code: string = 'P2P_ERROR';
  readonly peerId?: string;
  readonly address?: string;

  constructor(message: string, peer: PeerRef = {}, options?: { cause?: unknown }) {
    super(withPeer(message, peer), options);
    this.name = new.target.name;
    this.peerId = peer.peerId;
    this.address = peer.address;
  }
}

function withPeer(message: string, { peerId, address }: PeerRef): string {
  if (!peerId && !address) return message;
  return `${message} (peer ${peerId ?? '?'} at ${address ?? '?'})`;
}

/** The remote end broke the wire protocol; the connection is closed. */
export class P2PProtocolError extends P2PError {
  override readonly code: string = 'P2P_PROTOCOL';
}

/** A frame (header + body) larger than `maxFrameBytes`, on send or on receive. */
export class P2PFrameTooLargeError extends P2PProtocolError {
  override readonly code = 'P2P_FRAME_TOO_LARGE' as 'P2P_PROTOCOL';
  /** `limit` is the peer's, as it announced in its hello (smaller than this node's own). */
  constructor(readonly size: number, readonly limit: number, peer: PeerRef = {}, readonly peerLimit = false) {
    super(`frame of ${size} bytes exceeds ${peerLimit ? "the peer's " : ''}maxFrameBytes ${limit}`, peer);
  }
}

/** The per-peer write queue is at `maxQueueBytes`: the peer is not reading fast enough. */
export class P2PQueueFullError extends P2PError {
  override readonly code: string = 'P2P_QUEUE_FULL';
  constructor(readonly queuedBytes: number, readonly limit: number, peer: PeerRef = {}) {
    super(`write queue full (${queuedBytes} of ${limit} bytes)`, peer);
  }
}

/** No reply within the request's timeout, or (`deadline`) the reply stream did not end within its total deadline. */
export class P2PTimeoutError extends P2PError {
  override readonly code: string = 'P2P_TIMEOUT';
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
  override readonly code: string = 'P2P_CONNECTION_CLOSED';
}

/** The handshake failed: timeout, version mismatch, self or duplicate connection, refusal. */
export class P2PHandshakeError extends P2PError {
  override readonly code: string = 'P2P_HANDSHAKE';
}

/** The peer at the dialed address proved a different id than the one expected. */
export class P2PIdentityMismatchError extends P2PHandshakeError {
  override readonly code = 'P2P_IDENTITY_MISMATCH' as 'P2P_HANDSHAKE';
  constructor(readonly expected: string, readonly actual: string, peer: PeerRef = {}, message?: string) {
    super(message ?? `expected peer id ${expected}, the remote end is ${actual}`, peer);
  }
}

/** The remote end is this node itself (a configured or advertised address that loops back). */
export class P2PSelfConnectionError extends P2PHandshakeError {
  override readonly code = 'P2P_SELF_CONNECTION' as 'P2P_HANDSHAKE';
}

/** The remote proved an id that is not in this node's `allowedPeers`. */
export class P2PPeerNotAllowedError extends P2PHandshakeError {
  override readonly code = 'P2P_PEER_NOT_ALLOWED' as 'P2P_HANDSHAKE';
  constructor(readonly remotePeerId: string, peer: PeerRef = {}) {
    super(`peer ${remotePeerId} is not in allowedPeers`, peer);
  }
}

/** A dial could not be made: refused, unreachable, timed out, or over `maxOutbound`. */
export class P2PDialError extends P2PError {
  override readonly code: string = 'P2P_DIAL';
}

/** No live connection to that peer id. */
export class P2PPeerNotConnectedError extends P2PError {
  override readonly code: string = 'P2P_PEER_NOT_CONNECTED';
  constructor(peerId: string) {
    super(`not connected to peer ${peerId}`, { peerId });
  }
}

/** The node is not started yet, or is closed. */
export class P2PNotRunningError extends P2PError {
  override readonly code: string = 'P2P_NOT_RUNNING';
}

/** The remote handler failed; `error` is what it replied (Nest's RpcException error, or `{ status, message }`). */
export class P2PRemoteError extends P2PError {
  override readonly code: string = 'P2P_REMOTE';
  constructor(readonly error: unknown, peer: PeerRef = {}) {
    super(`remote handler failed: ${describeRemote(error)}`, peer);
  }
}

/** Over a rate limit: this node's own network-broadcast budget (`broadcastOriginRate`, `broadcastOriginBurst`, `broadcastOriginBytesPerSec`). */
export class P2PRateLimitError extends P2PError {
  override readonly code: string = 'P2P_RATE_LIMIT';
}

/** The peer is banned (misbehaviour, or `P2PService.ban`) until its ban ends or is lifted. */
export class P2PPeerBannedError extends P2PHandshakeError {
  override readonly code = 'P2P_PEER_BANNED' as 'P2P_HANDSHAKE';
}

/** The configuration is invalid; `problems` names every bad key. */
export class P2PConfigError extends P2PError {
  override readonly code: string = 'P2P_CONFIG';
  constructor(readonly problems: string[]) {
    super(`invalid P2P config:\n  - ${problems.join('\n  - ')}`);
  }
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

/**
 * `nestjs-p2p/core`: the transport without Nest. A {@link Peer} is a node: it listens, dials, keeps
 * one authenticated connection per neighbour, sends, requests and broadcasts. Nothing here
 * imports Nest; the package root adds the Nest module, service, client and server on top.
 *
 * @packageDocumentation
 */
export { Peer, type BroadcastOptions, type BroadcastResult, type InboundHandler, type RequestObserver, type RequestOptions } from './node/peer.js';
export type { PeerOptions } from './node/peer-options.js';
export type { DirectoryChange, DirectoryRefusal, DirectoryStats, HandlerInfo, PatternCount, SyncStats } from './directory/directory.js';
export type { SocketLimits } from './connection/socket.js';
export { DEFAULTS } from './common/defaults.js';
export { silentLogger, type BroadcastMeta, type Direction, type LogEvent, type LogFields, type P2PLogger, type PeerEvent, type PeerInfo } from './common/types.js';
export { loadIdentity, loadIdentityFile, peerIdFromPublicKey, type Identity, type KeyFileResult } from './common/identity.js';
export { createTlsCredentials, type TlsCredentials } from './connection/secure-channel.js';
export type { ReplySink } from './connection/reply-sink.js';
export type { MetricsSink, RequestOutcome } from './connection/metrics.js';
export type { FrameKind } from './wire/codec.js';
export type { Metadata } from './wire/metadata.js';
export { GoodbyeReason } from './wire/control.js';
export type { KnownPeer } from './discovery/address-book.js';
export type { BanInfo } from './trust/ban-list.js';
export type { BroadcastStrategy } from './broadcast/codec.js';
export type { RelayStats } from './broadcast/router.js';
export type { RepairStats } from './broadcast/repair.js';
export type {
  BroadcastToValidate,
  BroadcastValidatorFn,
  BroadcastVerdict,
  DropReason,
  NetworkBroadcastStats,
} from './broadcast/pipeline.js';
export {
  P2PConfigError,
  P2PConnectionClosedError,
  P2PDialError,
  P2PError,
  P2PFrameTooLargeError,
  P2PHandshakeError,
  P2PIdentityMismatchError,
  P2PListenError,
  P2PMetadataError,
  P2PNoHandlerError,
  P2PNotRunningError,
  P2PPeerBannedError,
  P2PPeerNotAllowedError,
  P2PPeerNotConnectedError,
  P2PProtocolError,
  P2PQueueFullError,
  P2PRateLimitError,
  P2PRemoteError,
  P2PReservedPatternError,
  P2PSelfConnectionError,
  P2PIdentityConflictError,
  P2PTimeoutError,
  type HandshakeCode,
  type P2PErrorCode,
  type P2PErrorOptions,
  type PeerRef,
  type SystemErrorCode,
} from './common/errors.js';

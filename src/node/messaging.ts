import type { ReplySink } from '../connection/reply-sink.js';
import type { P2PSocket } from '../connection/socket.js';
import { P2PPeerNotConnectedError } from '../common/errors.js';
import type { BroadcastMeta, PeerInfo } from '../common/types.js';
import { encodeTopic } from '../wire/codec.js';
import type { Metadata } from '../wire/metadata.js';
import type { ResolvedPeerOptions } from './peer-options.js';

/**
 * The application's messages to and from single peers: events and requests sent on a peer's
 * connection (each pattern's topic encoded once), and the events and requests peers send,
 * handed to the handler. Needs from its host: `MessagingHost`.
 */
export class Messaging {
  /** Receives what peers send (the Nest server). */
  handler: InboundHandler | undefined;
  private readonly topics = new Map<string, Buffer>();

  constructor(
    private readonly host: MessagingHost,
    private readonly opts: Pick<ResolvedPeerOptions, 'timeoutMs'>,
  ) {}

  /** The open connection to a peer; throws a typed error when the node is not running or the peer is not connected. */
  socketFor(peerId: string): P2PSocket {
    if (!this.host.isRunning()) throw this.host.notRunning();
    const socket = this.host.connections().get(peerId);
    if (!socket) throw new P2PPeerNotConnectedError(peerId);
    return socket;
  }

  /** A pattern encoded as a frame's topic. */
  topic(pattern: string): Buffer {
    let topic = this.topics.get(pattern);
    if (!topic) {
      topic = encodeTopic(pattern);
      // Patterns are few in practice; the cap keeps a caller with dynamic patterns from growing it forever.
      if (this.topics.size >= 1024) this.topics.clear();
      this.topics.set(pattern, topic);
    }
    return topic;
  }

  send(peerId: string, pattern: string, data: unknown, metadata: Metadata | undefined): void {
    this.socketFor(peerId).sendEvent(this.topic(pattern), data, metadata);
  }

  request(peerId: string, pattern: string, data: unknown, observer: RequestObserver, options: RequestOptions): () => void {
    const socket = this.socketFor(peerId);
    return socket.request(pattern, this.topic(pattern), data, options.timeoutMs ?? this.opts.timeoutMs, observer, options.deadlineMs, options.metadata);
  }

  whenWritable(peerId: string): Promise<void> {
    try {
      return this.socketFor(peerId).whenWritable();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** An event arrived on a connection. */
  onEvent(socket: P2PSocket, topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown {
    return this.handler?.onEvent(socket.senderInfo(), topic, data, broadcast, metadata);
  }

  /** A request arrived on a connection; without a handler it is answered with an error. */
  onRequest(socket: P2PSocket, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void {
    if (!this.handler) return reply.error({ status: 'error', message: 'node has no handlers' });
    this.handler.onRequest(socket.senderInfo(), topic, data, reply, metadata);
  }
}

/** Receives what remote peers send; the Nest server implements it. */
export interface InboundHandler {
  /** `broadcast` is set when the event is a network-wide broadcast (`peer` is the neighbour that relayed it). */
  onEvent(peer: PeerInfo, topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown;
  /**
   * What a promise onEvent returned resolved to, when not undefined: the Nest server runs a returned
   * stream here. The transport calls it in the step that frees the handler slot, so the result costs
   * no promise step of its own.
   */
  onEventResult?(result: unknown): void;
  /** A request from `peer`: answer through `reply` (one value, a stream of them, or an error). */
  onRequest(peer: PeerInfo, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void;
}

/** How one request is sent and how long its replies may take. */
export interface RequestOptions {
  /** Sent beside the data; the handler reads it with `ctx.getMetadata()` (string values, at most 4 KiB encoded). */
  metadata?: Metadata;
  /** The longest wait for the first reply value, and between values of a stream (default: the node's `timeoutMs`). */
  timeoutMs?: number;
  /** The longest the whole request may take, however the replies trickle in (default: none). */
  deadlineMs?: number;
}

/** Receives the replies to one request, as an RxJS observer does. */
export interface RequestObserver {
  /** One reply value. */
  next(value: unknown): void;
  /** The request failed (typed error); nothing follows. */
  error(err: Error): void;
  /** The last reply value has come. */
  complete(): void;
}

/** What messaging needs from the node. */
export interface MessagingHost {
  isRunning(): boolean;
  /** Why the node cannot send now (it is not running). */
  notRunning(): Error;
  /** The open connections, one per peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
}

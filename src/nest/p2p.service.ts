import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Observable, share } from 'rxjs';
import type { BanInfo } from '../trust/ban-list.js';
import type { Metadata } from '../wire/metadata.js';
import type { BroadcastValidatorFn } from '../broadcast/pipeline.js';
import type { BroadcastOptions, BroadcastResult, HandlerInfo, Peer, RequestOptions } from '../node/peer.js';
import type { PeerEvent, PeerInfo } from '../common/types.js';
import { P2P_NODE } from './p2p.constants.js';
import { route, type P2PPattern } from './p2p.route.js';

export type { P2PPattern };


/**
 * What the application calls to talk to peers. Every method fails with a typed
 * error (see the README's error table) rather than dropping a message.
 */
@Injectable()
export class P2PService implements OnApplicationShutdown {
  /** Connected / disconnected events with the peer's info. */
  readonly events$: Observable<PeerEvent>;

  constructor(@Inject(P2P_NODE) private readonly node: Peer) {
    const live = new Observable<PeerEvent>((subscriber) => {
      const listener = (event: PeerEvent) => subscriber.next(event);
      node.on('peer', listener);
      return () => node.off('peer', listener);
    }).pipe(share());
    // A late subscriber first hears who is connected already, as a 'connected' event each, then what changes.
    this.events$ = new Observable<PeerEvent>((subscriber) => {
      const subscription = live.subscribe(subscriber);
      for (const peer of node.peers()) subscriber.next({ type: 'connected', peer });
      return subscription;
    });
  }

  /** This node's peer id (hex of the first 20 bytes of SHA-256 of its Ed25519 public key). */
  get id(): string {
    return this.node.id;
  }

  /** `host:port` this node listens on, or null before it starts. */
  address(): string | null {
    return this.node.address();
  }

  /** Connected peers, one entry per peer id. */
  peers(): PeerInfo[] {
    return this.node.peers();
  }

  /** Dials `host:port` or `<peerId>@host:port`; resolves with the peer after the handshake. */
  connect(address: string): Promise<PeerInfo> {
    return this.node.connect(address);
  }

  /**
   * Closes the connection to a peer with a goodbye, once its queue flushes (within `closeGraceMs`); a configured
   * peer is redialed later. Rejects with P2PPeerNotConnectedError when there is no connection.
   */
  disconnect(peerId: string): Promise<void> {
    return this.node.disconnect(peerId);
  }

  /** Fire-and-forget to an `@EventPattern`; resolves once queued. */
  async send(peerId: string, pattern: P2PPattern, data?: unknown, options?: { metadata?: Metadata }): Promise<void> {
    this.node.send(peerId, route(pattern), data, options);
  }

  /**
   * Resolves when the peer's write queue is below half of `maxQueueBytes`. `send` never
   * waits (it rejects with P2PQueueFullError when the queue is full); a sender that must
   * not drop awaits this after that error and sends again, as a stream writer awaits
   * 'drain'. Rejects with P2PPeerNotConnectedError, or P2PConnectionClosedError if the
   * connection closes while waiting.
   */
  whenWritable(peerId: string): Promise<void> {
    return this.node.whenWritable(peerId);
  }

  /**
   * Asks a `@MessagePattern` handler; resolves with its reply (the last value of a stream).
   * `timeoutMs` is also the total deadline, unless `deadlineMs` sets another: a stream whose
   * values keep trickling in cannot hold the request open past it.
   */
  request<T = unknown>(peerId: string, pattern: P2PPattern, data?: unknown, options?: RequestOptions): Promise<T> {
    const bounded = options ? this.bounded(options) : this.defaultBounds();
    // What lastValueFrom(requestStream(...)) gives, without an Observable per request.
    return new Promise<T>((resolve, reject) => this.node.request(peerId, route(pattern), data, new LastValue(resolve, reject), bounded));
  }

  /** The request's options with `timeoutMs` as the deadline too, unless `deadlineMs` sets another. */
  private bounded(options: RequestOptions): RequestOptions {
    const timeoutMs = options.timeoutMs ?? this.node.defaultTimeoutMs;
    return { ...options, timeoutMs, deadlineMs: options.deadlineMs ?? timeoutMs };
  }

  /** Options-less requests (most) share one object, made again only when the node's default changes. */
  private defaultBounds(): RequestOptions {
    const timeoutMs = this.node.defaultTimeoutMs;
    if (this.defaults?.timeoutMs !== timeoutMs) this.defaults = Object.freeze({ timeoutMs, deadlineMs: timeoutMs });
    return this.defaults;
  }

  private defaults: Readonly<RequestOptions> | undefined;

  /**
   * Like request, but emits every value a streaming handler returns. Sent on subscribe; unsubscribing
   * cancels. `timeoutMs` is the longest gap between values; `deadlineMs`, if set, bounds the whole stream.
   */
  requestStream<T = unknown>(peerId: string, pattern: P2PPattern, data?: unknown, options?: RequestOptions): Observable<T> {
    return new Observable<T>((subscriber) => {
      try {
        return this.node.request(
          peerId,
          route(pattern),
          data,
          {
            next: (value) => subscriber.next(value as T),
            error: (err) => subscriber.error(err),
            complete: () => subscriber.complete(),
          },
          options,
        );
      } catch (err) {
        subscriber.error(err);
        return undefined;
      }
    });
  }

  /**
   * Asks whichever node handles `pattern`, as `client.send(pattern, data)` on a Nest NATS client
   * does: exactly one node with a matching `@MessagePattern` (this node's own handler counts as
   * one), chosen by cost; resolves with its reply (the last value of a stream). While no node
   * handles it, waits for one until `timeoutMs`, then rejects with P2PNoHandlerError. At most
   * once: a handler that dies mid-request rejects it with P2PConnectionClosedError, never re-sent.
   * `timeoutMs` is also the total deadline, unless `deadlineMs` sets another. See docs/pattern-requests.md.
   */
  requestPattern<T = unknown>(pattern: P2PPattern, data?: unknown, options?: RequestOptions): Promise<T> {
    const timeoutMs = options?.timeoutMs ?? this.node.defaultTimeoutMs;
    const bounded = { ...options, timeoutMs, deadlineMs: options?.deadlineMs ?? timeoutMs };
    return new Promise<T>((resolve, reject) => {
      let last: T | undefined;
      this.node.requestPattern(route(pattern), data, { next: (value) => (last = value as T), error: reject, complete: () => resolve(last as T) }, bounded);
    });
  }

  /**
   * Like requestPattern, but emits every value a streaming handler returns. Sent on subscribe;
   * unsubscribing cancels. `timeoutMs` is the longest wait for a handler and between values.
   */
  requestPatternStream<T = unknown>(pattern: P2PPattern, data?: unknown, options?: RequestOptions): Observable<T> {
    return new Observable<T>((subscriber) => {
      try {
        return this.node.requestPattern(
          route(pattern),
          data,
          { next: (value) => subscriber.next(value as T), error: (err) => subscriber.error(err), complete: () => subscriber.complete() },
          options,
        );
      } catch (err) {
        subscriber.error(err);
        return undefined;
      }
    });
  }

  /**
   * Sends an event to every connected peer (default), or with `{ scope: 'network' }`
   * to every node of the network, relayed by RainTree (or `strategy: 'gossip'`), or with
   * `{ scope: 'subscribers' }` to the nodes with a matching event handler (as `emitPattern`).
   * Says which peers it was handed to and which failed.
   */
  async broadcast(pattern: P2PPattern, data?: unknown, options?: BroadcastOptions): Promise<BroadcastResult> {
    return this.node.broadcast(route(pattern), data, options);
  }

  /**
   * Sends an event to every node with a matching `@EventPattern` (wildcards included), this node
   * included, each once, as `client.emit()` of a P2PClient with no `peer` and of Nest's NATS
   * client: signed, budgeted and repaired as a network broadcast, carried by as few other nodes
   * as the mesh allows. At most once; `subscribers` in the result says how many nodes this node
   * knew to subscribe when it sent it (0: nobody gets it). Throws P2PRateLimitError past this
   * node's broadcast budget (docs/events.md).
   */
  async emitPattern(pattern: P2PPattern, data?: unknown, options?: { metadata?: Metadata }): Promise<BroadcastResult> {
    return this.node.broadcast(route(pattern), data, { scope: 'subscribers', metadata: options?.metadata });
  }

  /** Counters of network-wide broadcasts: originated, delivered, duplicates dropped, sent, repair (docs/api.md lists them all). */
  networkBroadcastStats(): ReturnType<Peer['networkBroadcastStats']> {
    return this.node.networkBroadcastStats();
  }

  /**
   * Decides whether network broadcasts on `pattern` from other nodes are delivered
   * and relayed ('accept'), dropped ('ignore'), or dropped with a penalty ('reject': to its origin,
   * or to the relay that handed it over when it was valid as its origin sent it; judge time by
   * `receivedAt`, and say 'ignore' for what depends on it). Runs after the origin's signature and
   * budget are checked; may return a Promise. undefined removes it. The
   * `@BroadcastValidator(pattern)` decorator registers one from a provider.
   */
  setBroadcastValidator(pattern: P2PPattern, validator: BroadcastValidatorFn | undefined): void {
    this.node.setBroadcastValidator(route(pattern), validator);
  }

  /** Bans in force (by peer id, and for inbound peers by IP), with when each ends and why. */
  bans(): BanInfo[] {
    return this.node.bans();
  }

  /** Bans a peer (default `banMs`) and closes its connection; it is refused both ways until the ban ends. */
  ban(peerId: string, options?: { durationMs?: number; reason?: string }): BanInfo {
    return this.node.ban(peerId, options);
  }

  /** Lifts the ban on a peer id (and the IP banned with it), or on an IP; false when there was none. */
  unban(peerIdOrIp: string): boolean {
    return this.node.unban(peerIdOrIp);
  }

  /**
   * The nodes that handle `pattern` (docs/directory.md): those whose `@MessagePattern` (`kind`
   * 'request', the default) or `@EventPattern` ('event') matches it, exactly or by a `*` / `>`
   * wildcard, this node included, sorted by id. A local lookup: every node holds every node's record.
   */
  handlers(pattern: P2PPattern, kind: 'request' | 'event' = 'request'): HandlerInfo[] {
    return this.node.handlers(route(pattern), kind);
  }

  /** Closes the node when the app shuts down (`app.close()`, or a signal with `enableShutdownHooks()`). */
  async onApplicationShutdown(): Promise<void> {
    await this.node.close();
  }
}

/** Resolves a request's promise with its last reply value: one object per request, with its methods on the prototype. */
class LastValue<T> {
  private last: T | undefined;

  constructor(
    private readonly resolve: (value: T) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  next(value: unknown): void {
    this.last = value as T;
  }

  error(err: Error): void {
    this.reject(err);
  }

  complete(): void {
    this.resolve(this.last as T);
  }
}

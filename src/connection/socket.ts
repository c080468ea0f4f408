import type { Socket } from 'node:net';
import { socketAddress } from './address.js';
import { decodePayload, encodePayload, FrameDecoder, frameKind, frameSize, parseMessage, TopicCache, type Message } from '../wire/codec.js';
import {
  Encoding,
  HEADER_BYTES,
  FLAG_CONTROL,
  FLAG_REQUEST,
  FLAG_RESPONSE,
  FLAG_WRAPPED,
  PROTOCOL_VERSION,
} from '../wire/constants.js';
import { controlBody, ControlType, decodeControl, GoodbyeReason, type Control, type Hello } from '../wire/control.js';
import {
  P2PConnectionClosedError,
  P2PError,
  P2PFrameTooLargeError,
  P2PHandshakeError,
  P2PIdentityMismatchError,
  P2PProtocolError,
  P2PSelfConnectionError,
  P2PQueueFullError,
  P2PRemoteError,
  P2PTimeoutError,
  type PeerRef,
} from '../common/errors.js';
import { FrameWatch } from './frame-watch.js';
import { peerIdFromPublicKey } from '../common/identity.js';
import type { MetricsSink, RequestOutcome } from './metrics.js';
import type { PartialFrameBudget } from './partial-frames.js';
import { looksLikeTls, type ProvenPeer } from './secure-channel.js';
import { PendingRequests, type PendingRequest } from './pending-requests.js';
import type { BroadcastMeta, Direction, P2PLogger, PeerInfo } from '../common/types.js';
import { withMetadata, type Metadata } from '../wire/metadata.js';
import { createReplySink, type ReplySink } from './reply-sink.js';
import { WriteQueue } from './write-queue.js';

export type { ReplySink };

export interface SocketLimits {
  maxFrameBytes: number;
  maxQueueBytes: number;
  maxConcurrentHandlers: number;
  handshakeTimeoutMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  closeGraceMs: number;
  /** A frame that spans reads is cut when none of its bytes arrive for this long. */
  frameStallMs: number;
}

export interface SocketOptions extends SocketLimits {
  direction: Direction;
  localHello: Hello;
  /** For outbound connections to `<peerId>@host:port`: the id the remote must prove. */
  expectedPeerId?: string;
  /** Set on a TLS connection: the identity the remote's certificate proved. Its hello must match it. */
  proven?: ProvenPeer;
  /** The node's admission policy for a remote id (allowedPeers, bans): why it is refused, or undefined. */
  admit?: (peerId: string, socket: P2PSocket) => Refusal | undefined;
  logger: P2PLogger;
  /** Read at each use, so a sink attached after start applies to live connections too. */
  metrics?: () => MetricsSink | undefined;
  /** The node's budget for partial frames, shared by all its connections. */
  partialFrames?: PartialFrameBudget;
}

/** Why a remote id is not admitted: the error its dialer or log gets, and the goodbye reason. */
export interface Refusal {
  error: Error;
  reason: GoodbyeReason;
}


/** The seed's SocketEventMonitor, split by event; the Peer implements it. */
export interface SocketHooks {
  /** The hello exchange succeeded; the Peer accepts the connection or closes it. */
  onOpened(socket: P2PSocket): void;
  onEvent(socket: P2PSocket, topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown;
  onRequest(socket: P2PSocket, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void;
  onClosed(socket: P2PSocket, reason: string, error: Error | undefined, undeliveredBytes: number): void;
  /** A peer-exchange body arrived on an open connection (unparsed: the Peer bounds and judges it). */
  onPeerExchange(socket: P2PSocket, body: Buffer): void;
  /** A network broadcast body arrived; throwing P2PProtocolError closes the connection. */
  onNetworkBroadcast(socket: P2PSocket, body: Buffer): void;
  /** A repair IHAVE or IWANT body arrived; throwing P2PProtocolError closes the connection. */
  onBroadcastRepair(socket: P2PSocket, type: ControlType.BroadcastIHave | ControlType.BroadcastIWant, body: Buffer): void;
}

type State = 'handshaking' | 'open' | 'closing' | 'closed';

/**
 * One connection (the seed's Socket): authenticates it with a hello exchange,
 * reads and decodes frames continually, writes through a bounded queue, matches
 * replies to requests by nonce, keeps the link alive with pings, and closes it.
 * A failure here closes this connection only.
 */
export class P2PSocket {
  readonly direction: Direction;
  readonly connectedAt = new Date();
  remote: Hello | undefined;
  rttMs: number | null = null;

  private state: State = 'handshaking';
  private readonly decoder: FrameDecoder;
  private readonly frameWatch: FrameWatch;
  private readonly queue: WriteQueue;
  private readonly pending = new PendingRequests();
  private readonly topics = new TopicCache();
  private activeHandlers = 0;
  private paused = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private pingToken = 0;
  private pingSentAt = 0;
  private lastReadAt = Date.now();
  private sawData = false;
  private cachedInfo: PeerInfo | undefined;
  /** Closing a duplicate: frames the peer sent before our goodbye are still delivered. */
  private drainInbound = false;
  /** When this peer last sent a peer exchange that was read (rate limit). */
  lastPeerExchangeAt = 0;
  /** When we last sent this peer a peer exchange (so that we never trip its rate limit). */
  lastPeerExchangeSentAt = 0;
  private closeReason = 'connection closed';
  /** Why the remote said goodbye, when it did. */
  goodbyeReceived: GoodbyeReason | undefined;
  private closeError: Error | undefined;
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  /** The remote end as last seen: a destroyed socket no longer knows it, and the disconnect is logged after that. */
  private lastAddress = 'unknown';

  constructor(
    readonly raw: Socket,
    private readonly options: SocketOptions,
    private readonly hooks: SocketHooks,
  ) {
    this.direction = options.direction;
    this.lastAddress = socketAddress(raw);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.frameWatch = new FrameWatch(
      { partial: () => this.decoder.partial, progress: () => this.decoder.partialProgress(), cut: (message) => this.cutPartialFrame(message) },
      options.frameStallMs,
      options.partialFrames,
    );
    this.decoder = new FrameDecoder(
      options.maxFrameBytes,
      (flags, nonce, body) => this.onFrame(flags, nonce, body),
      (allocated) => this.frameWatch.allocated(allocated),
    );
    this.queue = new WriteQueue(raw);
    raw.setNoDelay(true);
    raw.on('data', (chunk: Buffer) => this.onData(chunk));
    raw.on('error', (err) => this.onSocketError(err));
    raw.on('close', () => this.onSocketClose());
    this.handshakeTimer = setTimeout(
      () => this.fail(new P2PHandshakeError(`no hello within ${options.handshakeTimeoutMs} ms`, this.ref()), GoodbyeReason.HandshakeTimeout),
      options.handshakeTimeoutMs,
    );
    // On TLS the remote's id is already proven: refuse at once rather than after a hello round trip.
    const refusal = options.proven && this.refusal(options.proven.peerId);
    if (refusal) {
      this.fail(...refusal);
      return;
    }
    // Without TLS an inbound connection proves nothing until its hello: answer only once it is admitted,
    // so that a refused dialer gets the goodbye instead of a hello followed by a close.
    if (options.proven || options.direction === 'outbound') this.writeControl({ type: ControlType.Hello, hello: options.localHello });
  }

  /** Why a remote id cannot be admitted on this connection, if it cannot. */
  private refusal(peerId: string): [Error, GoodbyeReason, ('warn' | 'debug')?] | undefined {
    if (peerId === this.options.localHello.peerId) {
      return [new P2PSelfConnectionError('connection to self', this.ref()), GoodbyeReason.Self, 'debug'];
    }
    const expected = this.options.expectedPeerId;
    if (expected && expected !== peerId) {
      return [new P2PIdentityMismatchError(expected, peerId, this.ref()), GoodbyeReason.IdentityMismatch];
    }
    const refused = this.options.admit?.(peerId, this);
    return refused && [refused.error, refused.reason];
  }

  /** The remote peer id once the hello exchange is done. */
  get peerId(): string | undefined {
    return this.remote?.peerId;
  }

  get remoteAddress(): string {
    if (this.lastAddress === 'unknown') this.lastAddress = socketAddress(this.raw);
    return this.lastAddress;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get queuedBytes(): number {
    return this.queue.queuedBytes;
  }

  get pendingRequests(): number {
    return this.pending.size;
  }

  info(): PeerInfo {
    return {
      id: this.remote?.peerId ?? '',
      remoteAddress: this.remoteAddress,
      listenAddress: this.remote?.listenAddress ?? null,
      direction: this.direction,
      connectedAt: this.connectedAt,
      rttMs: this.rttMs,
      secure: this.options.proven !== undefined,
    };
  }

  /**
   * The same PeerInfo for every inbound message on this connection, refreshed
   * when the round trip changes: a handler's `ctx.getPeer()` costs no allocation
   * (and no address formatting) per message. Read-only for callers.
   */
  senderInfo(): PeerInfo {
    if (!this.cachedInfo || this.cachedInfo.rttMs !== this.rttMs) this.cachedInfo = Object.freeze(this.info());
    return this.cachedInfo;
  }

  ref(): PeerRef {
    return { peerId: this.remote?.peerId ?? this.options.proven?.peerId, address: this.remoteAddress };
  }

  /**
   * Resolves once the write queue is below half of maxQueueBytes, so that sends have room
   * again; rejects with P2PConnectionClosedError if the connection closes first.
   */
  whenWritable(): Promise<void> {
    if (this.state !== 'open') {
      return Promise.reject(new P2PConnectionClosedError(`connection is ${this.state === 'handshaking' ? 'not open yet' : 'closed'}`, this.ref()));
    }
    // At least the socket's own high-water mark: below it the socket may never emit 'drain'.
    return this.queue.whenBelow(Math.max(this.options.maxQueueBytes / 2, this.raw.writableHighWaterMark));
  }

  /** Resolves when the underlying socket has closed. */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  // ---- sending -------------------------------------------------------------

  /** Queues an event. Throws P2PConnectionClosedError, P2PFrameTooLargeError or P2PQueueFullError. */
  sendEvent(topic: Buffer, data: unknown, metadata?: Metadata): void {
    const { encoding, bytes } = encodePayload(data);
    this.writeFrame(FLAG_WRAPPED | encoding, 0, withMetadata(topic, metadata), bytes);
  }

  /**
   * Sends a request; the observer receives every reply value. Returns a function
   * that cancels the request (late replies are then ignored).
   */
  request(
    pattern: string,
    topic: Buffer,
    data: unknown,
    timeoutMs: number,
    observer: Pick<PendingRequest, 'next' | 'error' | 'complete'>,
    deadlineMs?: number,
    metadata?: Metadata,
  ): () => void {
    const { encoding, bytes } = encodePayload(data);
    const entry: PendingRequest = { pattern, timeoutMs, timer: undefined, ...this.measured(pattern, observer) };
    const nonce = this.pending.add(entry);
    try {
      this.writeFrame(FLAG_WRAPPED | FLAG_REQUEST | encoding, nonce, withMetadata(topic, metadata), bytes);
    } catch (err) {
      this.pending.take(nonce);
      throw err;
    }
    this.armTimeout(nonce, entry);
    if (deadlineMs !== undefined) {
      entry.deadline = setTimeout(() => {
        if (this.pending.take(nonce)) entry.error(new P2PTimeoutError(pattern, deadlineMs, this.ref(), true));
      }, deadlineMs);
    }
    return () => void this.pending.take(nonce);
  }

  /** The observer, timed into the metrics sink when there is one (and untouched when there is not). */
  private measured(pattern: string, observer: Pick<PendingRequest, 'next' | 'error' | 'complete'>): Pick<PendingRequest, 'next' | 'error' | 'complete'> {
    const sink = this.options.metrics?.();
    if (!sink) return observer;
    const started = process.hrtime.bigint();
    const done = (outcome: RequestOutcome) => sink.request(pattern, Number(process.hrtime.bigint() - started) / 1e9, outcome);
    return {
      next: (value) => observer.next(value),
      error: (err) => {
        done(err instanceof P2PTimeoutError ? 'timeout' : err instanceof P2PRemoteError ? 'remote_error' : 'closed');
        sink.error(err.constructor.name);
        observer.error(err);
      },
      complete: () => {
        done('ok');
        observer.complete();
      },
    };
  }

  private armTimeout(nonce: number, entry: PendingRequest): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      if (this.pending.take(nonce)) entry.error(new P2PTimeoutError(entry.pattern, entry.timeoutMs, this.ref()));
    }, entry.timeoutMs);
  }

  /** Queues a data frame, within maxFrameBytes and maxQueueBytes. */
  private writeFrame(flags: number, nonce: number, topic: Buffer | undefined, payload: Buffer): void {
    if (this.state !== 'open') {
      throw new P2PConnectionClosedError(`connection is ${this.state === 'handshaking' ? 'not open yet' : 'closed'}`, this.ref());
    }
    const size = frameSize(topic, payload.length);
    if (size > this.options.maxFrameBytes) {
      throw new P2PFrameTooLargeError(size, this.options.maxFrameBytes, this.ref());
    }
    // The peer would close the connection on it, and the message would be lost: refuse it here instead.
    const theirs = this.remote!.maxFrameBytes;
    if (size > theirs) throw new P2PFrameTooLargeError(size, theirs, this.ref(), true);
    const queued = this.queue.queuedBytes;
    if (queued + size > this.options.maxQueueBytes) {
      this.options.metrics?.()?.error('P2PQueueFullError');
      throw new P2PQueueFullError(queued, this.options.maxQueueBytes, this.ref());
    }
    this.queue.push(flags, nonce, topic, payload);
    this.options.metrics?.()?.frame('out', frameKind(flags), size);
  }

  /** Queues a network broadcast: data, so it is bounded like any frame (P2PFrameTooLargeError, P2PQueueFullError). */
  sendNetworkBroadcast(body: Buffer): void {
    this.writeFrame(FLAG_CONTROL, 0, undefined, controlBody({ type: ControlType.NetworkBroadcast, body }));
  }

  /** Sends a control frame other than the ones the socket drives itself (peer exchange). */
  sendControl(control: Control): void {
    // Optional traffic: never grow the queue of a peer that is not reading.
    if (this.state === 'open' && this.queue.queuedBytes < this.options.maxQueueBytes) this.writeControl(control);
  }

  /** Control frames are small and protocol-driven; they skip the queue limit. */
  private writeControl(control: Control): void {
    if (this.state === 'closed' || this.raw.destroyed) return;
    const body = controlBody(control);
    this.queue.push(FLAG_CONTROL, 0, undefined, body);
    this.options.metrics?.()?.frame('out', 'control', frameSize(undefined, body.length));
  }

  private replySink(nonce: number, topic: string): ReplySink {
    return createReplySink(
      {
        write: (flags, bytes) => this.writeFrame(FLAG_RESPONSE | flags, nonce, undefined, bytes),
        isOpen: () => this.state === 'open',
        warn: (message) => this.log('warn', message),
        release: () => this.releaseHandler(),
      },
      topic,
    );
  }

  // ---- reading -------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.state === 'closed' || (this.state === 'closing' && !this.drainInbound)) return;
    this.lastReadAt = Date.now();
    const first = !this.sawData;
    this.sawData = true;
    // A TLS ClientHello as the very first bytes: say so, rather than report "bad flags 0x16".
    if (first && !this.options.proven && looksLikeTls(chunk)) {
      this.fail(new P2PHandshakeError('peer started a TLS handshake but this node runs with tls: false', this.ref()), GoodbyeReason.TlsMismatch);
      return;
    }
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.failDecoding(err);
      return;
    }
    this.frameWatch.progress(this.lastReadAt);
  }

  /** A stalled partial frame, or one the node's budget cannot hold: close, and free its memory now. */
  private cutPartialFrame(message: string): void {
    this.drainInbound = false;
    this.fail(new P2PProtocolError(message, this.ref()), GoodbyeReason.ProtocolError);
    this.stopReading();
  }

  /** Nothing more is decoded: the partial frame and held reads are dropped, and leave the budget. */
  private stopReading(): void {
    this.decoder.abort();
    this.frameWatch.stop();
  }

  /** A frame broke the protocol: close the connection, saying why. */
  private failDecoding(err: unknown): void {
    this.fail(err instanceof P2PError ? err : new P2PProtocolError(String(err), this.ref()), GoodbyeReason.ProtocolError);
  }

  private onFrame(flags: number, nonce: number, body: Buffer): void {
    if (this.state === 'closed' || (this.state === 'closing' && !this.drainInbound)) return;
    const message = parseMessage(flags, nonce, body, this.topics);
    this.options.metrics?.()?.frame('in', message.kind, HEADER_BYTES + body.length);
    if (message.kind === 'control') return this.onControl(decodeControl(message.payload));
    if (this.state === 'handshaking') throw new P2PProtocolError('data frame before the hello exchange');
    // A replaced duplicate still delivers what the peer sent before it saw our goodbye, but answers nothing:
    // the peer's pending requests on it fail when it closes, so the peer is told.
    if (this.state === 'closing' && message.kind === 'request') return;
    switch (message.kind) {
      case 'response':
        return this.onResponse(message);
      case 'event':
        return this.dispatchEvent(message.topic!, decodePayload(message.encoding, message.payload), undefined, message.metadata);
      case 'request': {
        const data = decodePayload(message.encoding, message.payload);
        this.acquireHandler();
        const reply = this.replySink(nonce, message.topic!);
        try {
          this.hooks.onRequest(this, message.topic!, data, reply, message.metadata);
        } catch (err) {
          reply.error(err);
        }
        return;
      }
    }
  }

  /**
   * Hands an event to the application, counted against maxConcurrentHandlers. Network
   * broadcasts relayed by this peer come through here too (with `broadcast` set), so
   * they are bounded the same way.
   */
  dispatchEvent(topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): void {
    this.acquireHandler();
    let result: unknown;
    try {
      result = this.hooks.onEvent(this, topic, data, broadcast, metadata);
    } catch (err) {
      // A failing handler is the application's problem, not the peer's: log, keep the link.
      this.log('error', `event handler for "${topic}" failed: ${(err as Error)?.message ?? err}`);
    }
    if (result instanceof Promise) {
      result.then(this.releaseBound, (err: unknown) => {
        this.log('error', `event handler for "${topic}" failed: ${(err as Error)?.message ?? err}`);
        this.releaseHandler();
      });
    } else {
      this.releaseHandler();
    }
  }

  private onResponse(message: Message): void {
    const entry = this.pending.get(message.nonce);
    if (!entry) {
      // A reply that arrives after its timeout or cancellation: harmless, dropped.
      this.log('debug', `reply for unknown nonce ${message.nonce} dropped`);
      return;
    }
    if (message.error) {
      this.pending.take(message.nonce);
      entry.error(new P2PRemoteError(decodePayload(Encoding.Json, message.payload), this.ref()));
      return;
    }
    const bareEnd = message.end && message.encoding === Encoding.Binary && message.payload.length === 0;
    if (message.end) this.pending.take(message.nonce);
    else this.armTimeout(message.nonce, entry);
    if (!bareEnd) entry.next(decodePayload(message.encoding, message.payload));
    if (message.end) entry.complete();
  }

  private onControl(control: Control): void {
    switch (control.type) {
      case ControlType.Hello:
        return this.onHello(control.hello);
      case ControlType.Ping:
        // A peer that pings but never reads must not grow our queue: pongs are dropped then.
        if (this.queue.queuedBytes < this.options.maxQueueBytes) this.writeControl({ type: ControlType.Pong, token: control.token });
        return;
      case ControlType.Pong:
        if (control.token === this.pingToken) this.rttMs = Date.now() - this.pingSentAt;
        return;
      // Both may arrive while a replaced duplicate drains (state 'closing'): like data, they are still read.
      case ControlType.PeerExchange:
        if (this.state === 'handshaking') throw new P2PProtocolError('peer exchange before the hello exchange');
        this.hooks.onPeerExchange(this, control.body);
        return;
      case ControlType.NetworkBroadcast:
        if (this.state === 'handshaking') throw new P2PProtocolError('network broadcast before the hello exchange');
        this.hooks.onNetworkBroadcast(this, control.body);
        return;
      case ControlType.BroadcastIHave:
      case ControlType.BroadcastIWant:
        if (this.state === 'handshaking') throw new P2PProtocolError('broadcast repair before the hello exchange');
        this.hooks.onBroadcastRepair(this, control.type, control.body);
        return;
      case ControlType.Goodbye: {
        const text = `peer said goodbye (${GoodbyeReason[control.reason] ?? control.reason}${control.message ? `: ${control.message}` : ''})`;
        const refused = `refused by peer: ${control.message || GoodbyeReason[control.reason]}`;
        // Without TLS the accepting side answers only after our hello, so it is also where a self-dial is found.
        const error =
          this.state !== 'handshaking'
            ? undefined
            : control.reason === GoodbyeReason.Self
              ? new P2PSelfConnectionError(refused, this.ref())
              : new P2PHandshakeError(refused, this.ref());
        this.closeReason = text;
        this.goodbyeReceived = control.reason;
        this.closeError ??= error;
        this.state = 'closing';
        this.stopTimers();
        // What we queued before the goodbye arrived still goes out; then our FIN.
        void this.queue.whenFlushed().then(() => this.raw.end());
        this.armGrace();
        return;
      }
    }
  }

  private onHello(hello: Hello): void {
    if (this.state !== 'handshaking') throw new P2PProtocolError('second hello');
    clearTimeout(this.handshakeTimer);
    if (hello.version !== PROTOCOL_VERSION) {
      return this.fail(
        new P2PHandshakeError(`protocol version ${hello.version}, expected ${PROTOCOL_VERSION}`, this.ref()),
        GoodbyeReason.Version,
      );
    }
    if (peerIdFromPublicKey(Buffer.from(hello.publicKey, 'hex')) !== hello.peerId) {
      return this.fail(new P2PHandshakeError('hello peer id does not match its public key', this.ref()), GoodbyeReason.ProtocolError);
    }
    const proven = this.options.proven;
    if (proven && !proven.publicKeyRaw.equals(Buffer.from(hello.publicKey, 'hex'))) {
      const message = `hello claims peer id ${hello.peerId} but the TLS certificate proves ${proven.peerId}`;
      return this.fail(new P2PIdentityMismatchError(proven.peerId, hello.peerId, this.ref(), message), GoodbyeReason.IdentityMismatch);
    }
    this.remote = hello;
    const refusal = proven ? undefined : this.refusal(hello.peerId);
    if (refusal) return this.fail(...refusal);
    if (!proven && this.direction === 'inbound') this.writeControl({ type: ControlType.Hello, hello: this.options.localHello });
    this.state = 'open';
    this.startKeepalive();
    this.hooks.onOpened(this);
  }

  private startKeepalive(): void {
    this.pingTimer = setInterval(() => {
      this.pingToken = (this.pingToken + 1) >>> 0;
      this.pingSentAt = Date.now();
      this.writeControl({ type: ControlType.Ping, token: this.pingToken });
      // One pong deadline at a time, from the first ping still unanswered: a ping
      // interval shorter than the pong timeout must not keep pushing it back.
      if (this.pongTimer) return;
      const since = this.pingSentAt;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = undefined;
        if (this.lastReadAt < since) {
          this.fail(new P2PConnectionClosedError(`peer silent for ${this.options.pongTimeoutMs} ms after a ping`, this.ref()), GoodbyeReason.IdleTimeout);
          // A peer that does not answer will not read a graceful close either: drop it as soon as the
          // goodbye has been handed to the kernel (next tick), not after closeGraceMs.
          setImmediate(() => this.raw.destroy());
        }
      }, this.options.pongTimeoutMs);
      this.pongTimer.unref();
    }, this.options.pingIntervalMs);
    this.pingTimer.unref();
  }

  // ---- handler concurrency (inbound backpressure) --------------------------

  private acquireHandler(): void {
    if (++this.activeHandlers >= this.options.maxConcurrentHandlers && !this.paused) {
      // Stop decoding after this frame, and stop reading: TCP flow control then slows the
      // sender instead of our heap growing. Decoded-but-waiting frames stay in their read chunk.
      this.paused = true;
      this.decoder.pause();
      this.frameWatch.pause();
      this.raw.pause();
    }
  }

  private readonly releaseBound = () => this.releaseHandler();

  private releaseHandler(): void {
    this.activeHandlers--;
    if (this.paused && this.activeHandlers < this.options.maxConcurrentHandlers && this.state !== 'closed') this.resumeReading();
  }

  /** Decodes what the pause held back; reads from the socket again once that is all dispatched. */
  private resumeReading(): void {
    this.paused = false;
    try {
      this.decoder.resume();
    } catch (err) {
      this.failDecoding(err);
      return;
    }
    // The held frames may have filled the handlers again; the socket then stays paused.
    if (this.paused) return;
    this.frameWatch.resume();
    this.raw.resume();
  }

  // ---- closing -------------------------------------------------------------

  /**
   * Graceful close: says goodbye, flushes what is queued within `closeGraceMs`,
   * then ends the connection. Pending requests fail at once. `drain`: the peer is
   * healthy, so the frames it sent before it read our goodbye are still read and
   * delivered (a replaced duplicate, a connection the topology lets go).
   */
  close(reason: GoodbyeReason = GoodbyeReason.Normal, message = 'closing', error?: Error, drain = reason === GoodbyeReason.Duplicate): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return this.closed;
    const wasHandshaking = this.state === 'handshaking';
    this.closeReason = message;
    this.closeError ??= error;
    this.writeControl({ type: ControlType.Goodbye, reason, message });
    this.state = 'closing';
    // The peer is healthy and its frames in flight on this connection are real: keep reading them until it closes.
    this.drainInbound = drain && !wasHandshaking;
    if (!this.drainInbound) this.stopReading();
    // Read on so that the peer's FIN is seen (and, for a duplicate, its last frames delivered).
    if (this.paused) this.resumeReading();
    clearTimeout(this.handshakeTimer);
    this.stopTimers();
    this.failPending(wasHandshaking);
    this.armGrace();
    void this.queue.whenFlushed().then(() => this.raw.end());
    return this.closed;
  }

  /** Closes because of an error: logs it with the peer's id and address, says why, and ends the link. */
  fail(error: Error, reason: GoodbyeReason, level: 'warn' | 'debug' = 'warn'): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.options.metrics?.()?.error(error.constructor.name);
    this.log(level, `closing connection: ${error.message}`);
    // Keep reading (onData discards while closing) so the peer's FIN is seen and the close is prompt.
    // The goodbye goes to the peer the error names: it needs the reason, not its own id and address again.
    void this.close(reason, error instanceof P2PError ? error.detail : error.message, error);
  }

  private armGrace(): void {
    if (this.graceTimer) return;
    this.graceTimer = setTimeout(() => this.raw.destroy(), this.options.closeGraceMs);
    this.graceTimer.unref();
  }

  private failPending(handshaking: boolean): void {
    if (handshaking || this.pending.size === 0) return;
    const reason = this.closeReason;
    this.pending.failAll(() => new P2PConnectionClosedError(`connection closed before the reply: ${reason}`, this.ref()));
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  private onSocketError(err: Error): void {
    this.closeError ??= err;
    if (this.state !== 'closed' && this.state !== 'closing') this.closeReason = `socket error: ${err.message}`;
    this.log('warn', `socket error: ${err.message}`);
  }

  private onSocketClose(): void {
    if (this.state === 'closed') return;
    const wasHandshaking = this.state === 'handshaking';
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.graceTimer);
    this.stopTimers();
    this.stopReading();
    const undelivered = this.queue.close(new P2PConnectionClosedError(`connection closed: ${this.closeReason}`, this.ref()));
    if (wasHandshaking) {
      this.closeError ??= new P2PHandshakeError(`connection closed during the handshake: ${this.closeReason}`, this.ref());
    }
    this.failPending(false);
    this.hooks.onClosed(this, this.closeReason, this.closeError, undelivered);
    this.resolveClosed();
  }

  private log(level: 'warn' | 'debug' | 'error', message: string): void {
    const { peerId, address } = this.ref();
    const line = `[peer ${peerId ?? '?'} ${address ?? '?'} ${this.direction}] ${message}`;
    if (level === 'debug') this.options.logger.debug?.(line);
    else this.options.logger[level](line);
  }
}

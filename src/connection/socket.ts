import type { Socket } from 'node:net';
import { socketAddress } from './address.js';
import { encodePayload, frameSize } from '../wire/codec.js';
import { FLAG_CONTROL, FLAG_WRAPPED } from '../wire/constants.js';
import { ControlType, GoodbyeReason, type Control, type Hello } from '../wire/control.js';
import { P2PConnectionClosedError, P2PError, P2PHandshakeError, P2PProtocolError, type PeerRef } from '../common/errors.js';
import { dispatchControl, type ControlRoutes } from './control-dispatch.js';
import { Delivery } from './delivery.js';
import { FrameReader } from './frame-reader.js';
import { HandlerLimit } from './handler-limit.js';
import { FrameRouter } from './frame-router.js';
import { Handshake, identityConflict, type Refusal } from './handshake.js';
import { Keepalive } from './keepalive.js';
import type { MetricsSink } from './metrics.js';
import { OutgoingRequests } from './outgoing-requests.js';
import { Outbox } from './outbox.js';
import type { PartialFrameBudget } from './partial-frames.js';
import type { ProvenPeer } from './secure-channel.js';
import type { BroadcastMeta, Direction, LogEvent, LogFields, P2PLogger, PeerInfo } from '../common/types.js';
import { withMetadata, type Metadata } from '../wire/metadata.js';
import type { ReplySink } from './reply-sink.js';

/** The type byte of these control frames, queued ahead of their body as one frame (src/wire/control.ts's layout). */
const NETWORK_BROADCAST_TYPE = Buffer.of(ControlType.NetworkBroadcast);
const DIRECTORY_RECORDS_TYPE = Buffer.of(ControlType.DirectoryRecords);

export type { Refusal, ReplySink };

/** The limits of one connection; the node's options of the same names (docs/configuration.md). */
export interface SocketLimits {
  /** Largest frame (9-byte header + topic + payload) sent or accepted, announced in the hello (default 4 MiB). */
  maxFrameBytes: number;
  /** Bytes waiting to be written to one peer before sends fail with P2PQueueFullError (default 16 MiB). */
  maxQueueBytes: number;
  /** Handlers running at once for one peer, exactly; past it that peer is not read (default 256). */
  maxConcurrentHandlers: number;
  /** Time for the TLS handshake, and again for the hello exchange, ms (default 5 000). */
  handshakeTimeoutMs: number;
  /** Ping period on every connection, which also measures `rttMs`, ms (default 15 000). */
  pingIntervalMs: number;
  /** A peer silent this long after a ping is dropped at once, ms (default 10 000). */
  pongTimeoutMs: number;
  /** How long a close waits for queued frames to flush, ms (default 2 000). */
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
  /** This node's certificate fingerprint (TLS): tells a loop back to itself from another process with its key. */
  localFingerprint?: string;
  /** The node's admission policy for a remote id (allowedPeers, bans): why it is refused, or undefined. */
  admit?: (peerId: string, socket: P2PSocket) => Refusal | undefined;
  logger: P2PLogger;
  /** Read at each use, so a sink attached after start applies to live connections too. */
  metrics?: () => MetricsSink | undefined;
  /** The node's budget for partial frames, shared by all its connections. */
  partialFrames?: PartialFrameBudget;
}

/** The seed's SocketEventMonitor, split by event; the Peer implements it. */
export interface SocketHooks {
  /** The hello exchange succeeded; the Peer accepts the connection or closes it. */
  onOpened(socket: P2PSocket): void;
  onEvent(socket: P2PSocket, topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown;
  /** What onEvent's promise resolved to, when not undefined. */
  onEventResult?(value: unknown): void;
  onRequest(socket: P2PSocket, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void;
  onClosed(socket: P2PSocket, reason: string, error: Error | undefined, undeliveredBytes: number): void;
  /** A peer-exchange body arrived on an open connection (unparsed: the Peer bounds and judges it). */
  onPeerExchange(socket: P2PSocket, body: Buffer): void;
  /** A network broadcast body arrived; throwing P2PProtocolError closes the connection. */
  onNetworkBroadcast(socket: P2PSocket, body: Buffer): void;
  /** A repair IHAVE or IWANT body arrived; throwing P2PProtocolError closes the connection. */
  onBroadcastRepair(socket: P2PSocket, type: ControlType.BroadcastIHave | ControlType.BroadcastIWant, body: Buffer): void;
  /** A directory digest or page of records arrived; throwing P2PProtocolError closes the connection. */
  onDirectory(socket: P2PSocket, type: ControlType.DirectoryDigest | ControlType.DirectoryRecords, body: Buffer): void;
}

type State = 'handshaking' | 'open' | 'closing' | 'closed';

/**
 * One connection (the seed's Socket): reads frames continually and routes them, writes
 * through a bounded queue, and closes. Each concern is a part in its own file, which sees
 * the connection only through its own host interface: reading (FrameReader), writing
 * (Outbox), the hello exchange (Handshake), pings (Keepalive), handler concurrency and
 * read backpressure (HandlerLimit), frame routing (FrameRouter), events and requests to the
 * application (Delivery), control frames (dispatchControl), and the requests it sent (OutgoingRequests).
 * A failure here closes this connection only.
 */
export class P2PSocket {
  readonly direction: Direction;
  readonly connectedAt = new Date();
  remote: Hello | undefined;

  private state: State = 'handshaking';
  private readonly router: FrameRouter;
  private readonly reader: FrameReader;
  private readonly outbox: Outbox;
  private readonly handshake: Handshake;
  private readonly keepalive: Keepalive;
  private readonly handlers: HandlerLimit;
  private readonly delivery: Delivery;
  private readonly requests: OutgoingRequests;
  private readonly controls: ControlRoutes;
  private graceTimer: NodeJS.Timeout | undefined;
  private cachedInfo: PeerInfo | undefined;
  /** Closing a duplicate: frames the peer sent before our goodbye are still delivered. */
  private drainInbound = false;
  /** Discovery's bucket for this peer's peer exchanges (rate limit): tokens left, when it last counted them (monotonic ms), and whether the last one was ignored. */
  peerExchangeTokens = 0;
  peerExchangeCountedAt: number | undefined;
  peerExchangeOverflow = false;
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
    // The host of every part; each part sees only its own interface of it.
    const host = {
      ref: () => this.ref(),
      state: () => this.state,
      isOpen: () => this.state === 'open',
      closed: () => this.state === 'closed',
      fail: (error: Error, reason: GoodbyeReason, level?: 'warn' | 'debug') => this.fail(error, reason, level),
      log: (level: 'warn' | 'debug' | 'error', message: string, event: LogEvent) => this.log(level, message, event),
      metrics: () => options.metrics?.(),
      // Reading and writing (FrameReader, HandlerLimit, Outbox, Keepalive).
      cut: (message: string) => this.cutPartialFrame(message),
      pause: () => this.reader.pause(),
      decodeHeld: () => this.reader.decodeHeld(),
      resume: () => this.reader.resume(),
      lastReadAt: () => this.reader.lastReadAt,
      writeFrame: (flags: number, nonce: number, topic: Buffer | undefined, payload: Buffer) => this.outbox.frame(flags, nonce, topic, payload),
      writeControl: (control: Control) => this.outbox.control(control),
      backlogged: () => this.outbox.backlogged,
      theirMaxFrameBytes: () => this.remote!.maxFrameBytes,
      destroy: () => this.raw.destroy(),
      // The hello exchange (Handshake).
      admit: (peerId: string) => options.admit?.(peerId, this),
      identified: (hello: Hello) => void (this.remote = hello),
      opened: () => this.opened(),
      // The application (Delivery).
      onEvent: (topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata) => hooks.onEvent(this, topic, data, broadcast, metadata),
      eventResult: (value: unknown) => hooks.onEventResult?.(value),
      onRequest: (topic: string, data: unknown, reply: ReplySink, metadata?: Metadata) => hooks.onRequest(this, topic, data, reply, metadata),
      // Routing frames (FrameRouter).
      reading: () => this.state === 'open' || this.state === 'handshaking' || (this.state === 'closing' && this.drainInbound),
      handshaking: () => this.state === 'handshaking',
      closing: () => this.state === 'closing',
      control: (control: Control) => dispatchControl(control, this.controls),
      response: (flags: number, nonce: number, bytes: Buffer, start: number, end: number) => this.requests.onResponse(flags, nonce, bytes, start, end),
      event: (topic: string, data: unknown, metadata: Metadata | undefined) => this.delivery.event(topic, data, undefined, metadata),
      request: (nonce: number, topic: string, data: unknown, metadata: Metadata | undefined) => this.delivery.request(nonce, topic, data, metadata),
    };
    this.router = new FrameRouter(host);
    this.reader = new FrameReader(raw, { ...host, onFrame: this.router.frame }, { ...options, secure: options.proven !== undefined });
    this.outbox = new Outbox(raw, host, options);
    this.handshake = new Handshake(host, options);
    this.keepalive = new Keepalive(host, options);
    this.handlers = new HandlerLimit(host, options.maxConcurrentHandlers);
    this.delivery = new Delivery(host, this.handlers);
    this.requests = new OutgoingRequests(host);
    this.controls = {
      handshaking: () => this.state === 'handshaking',
      hello: (hello) => this.handshake.onHello(hello),
      ping: (token) => this.keepalive.onPing(token),
      pong: (token) => this.keepalive.onPong(token),
      goodbye: (reason, message) => this.onGoodbye(reason, message),
      peerExchange: (body) => hooks.onPeerExchange(this, body),
      networkBroadcast: (body) => hooks.onNetworkBroadcast(this, body),
      repair: (type, body) => hooks.onBroadcastRepair(this, type, body),
      directory: (type, body) => hooks.onDirectory(this, type, body),
    };
    raw.setNoDelay(true);
    raw.on('data', (chunk: Buffer) => {
      if (this.state === 'closed' || (this.state === 'closing' && !this.drainInbound)) return;
      this.reader.push(chunk);
    });
    raw.on('error', (err) => this.onSocketError(err));
    raw.on('close', () => this.onSocketClose());
    this.handshake.start();
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
    return this.outbox.queue.queuedBytes;
  }

  get pendingRequests(): number {
    return this.requests.size;
  }

  /** Whether anything is under way on it: a request of ours awaiting its reply, or a handler of ours running for the peer. */
  get busy(): boolean {
    return this.requests.size > 0 || this.handlers.running > 0;
  }

  /** When bytes last arrived from the remote (Date.now()): a peer with requests outstanding and nothing read since is silent. */
  get lastReadAt(): number {
    return this.reader.lastReadAt;
  }

  /** The last measured round trip, null until a pong arrives. */
  get rttMs(): number | null {
    return this.keepalive.rttMs;
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
    return this.outbox.whenWritable();
  }

  /** Resolves when the underlying socket has closed. */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  // ---- sending -------------------------------------------------------------

  /** Queues an event. Throws P2PConnectionClosedError, P2PFrameTooLargeError or P2PQueueFullError. */
  sendEvent(topic: Buffer, data: unknown, metadata?: Metadata): void {
    const { encoding, bytes } = encodePayload(data);
    this.outbox.frame(FLAG_WRAPPED | encoding, 0, withMetadata(topic, metadata), bytes);
  }

  /**
   * Sends a request; the observer receives every reply value. Returns a function
   * that cancels the request (late replies are then ignored).
   */
  request(...args: Parameters<OutgoingRequests['send']>): () => void {
    return this.requests.send(...args);
  }

  /** Queues a network broadcast: data, so it is bounded like any frame (P2PFrameTooLargeError, P2PQueueFullError). */
  sendNetworkBroadcast(body: Buffer): void {
    // The type byte goes where a topic would, right after the header: the body is queued as it is (copied into the
    // write queue's slab, or by reference from 4 KiB), not first copied behind its type byte into a buffer of its own.
    this.outbox.frame(FLAG_CONTROL, 0, NETWORK_BROADCAST_TYPE, body);
  }

  /**
   * Throws what sendNetworkBroadcast would for a body of `bodyBytes` queued after `alsoQueued` more
   * bytes, and sends nothing (the origin routes a batch of broadcasts before it signs them).
   */
  checkNetworkBroadcast(bodyBytes: number, alsoQueued = 0): void {
    this.outbox.check(frameSize(undefined, 1 + bodyBytes), alsoQueued);
  }

  /** Queues a page of directory records: data, so it is bounded like any frame (P2PFrameTooLargeError, P2PQueueFullError). */
  sendDirectoryRecords(body: Buffer): void {
    this.outbox.frame(FLAG_CONTROL, 0, DIRECTORY_RECORDS_TYPE, body);
  }

  /** Sends a control frame other than the ones the socket drives itself (peer exchange). */
  sendControl(control: Control): void {
    this.outbox.optional(control);
  }

  // ---- reading -------------------------------------------------------------

  /** A stalled partial frame, or one the node's budget cannot hold: close (the reader frees its memory). */
  private cutPartialFrame(message: string): void {
    this.drainInbound = false;
    this.fail(new P2PProtocolError(message, this.ref()), GoodbyeReason.ProtocolError);
  }

  /**
   * Hands an event to the application, counted against maxConcurrentHandlers. Network
   * broadcasts relayed by this peer come through here too (with `broadcast` set), so
   * they are bounded the same way.
   */
  dispatchEvent(topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): void {
    this.delivery.event(topic, data, broadcast, metadata);
  }

  // ---- opening and closing ------------------------------------------------

  /** The hello exchange is done and the remote admitted. */
  private opened(): void {
    this.state = 'open';
    this.keepalive.start();
    this.hooks.onOpened(this);
  }

  /** The remote said goodbye: what we queued still goes out, then the connection ends. */
  private onGoodbye(reason: GoodbyeReason, message: string): void {
    // Goodbye 13 after the hello exchange: a peer found another node with our id connected to it (two nodes, one key).
    const conflict = reason === GoodbyeReason.IdConflict ? identityConflict(this.options.localHello.peerId, message, this.ref()) : undefined;
    const error = this.state === 'handshaking' ? this.handshake.refusedBy(reason, message) : conflict;
    this.closeReason = `peer said goodbye (${GoodbyeReason[reason] ?? reason}${message ? `: ${message}` : ''})`;
    this.goodbyeReceived = reason;
    this.closeError ??= error;
    this.state = 'closing';
    this.keepalive.stop();
    // What we queued before the goodbye arrived still goes out; then our FIN.
    void this.outbox.queue.whenFlushed().then(() => this.raw.end());
    this.armGrace();
  }

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
    this.outbox.control({ type: ControlType.Goodbye, reason, message });
    this.state = 'closing';
    // The peer is healthy and its frames in flight on this connection are real: keep reading them until it closes.
    this.drainInbound = drain && !wasHandshaking;
    if (!this.drainInbound) this.reader.stop();
    // Read on so that the peer's FIN is seen (and, for a duplicate, its last frames delivered).
    this.handlers.unpause();
    this.handshake.stop();
    this.keepalive.stop();
    if (!wasHandshaking) this.requests.failAll(this.closeReason);
    this.armGrace();
    void this.outbox.queue.whenFlushed().then(() => this.raw.end());
    return this.closed;
  }

  /** Closes because of an error: logs it with the peer's id and address, says why, and ends the link. */
  fail(error: Error, reason: GoodbyeReason, level: 'warn' | 'debug' = 'warn'): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.options.metrics?.()?.error(error.constructor.name);
    this.log(level, `closing connection: ${error.message}`, 'connection-error');
    // Keep reading (the 'data' listener discards while closing) so the peer's FIN is seen and the close is prompt.
    // The goodbye goes to the peer the error names: it needs the reason, not its own id and address again.
    void this.close(reason, error instanceof P2PError ? error.detail : error.message, error);
  }

  private armGrace(): void {
    if (this.graceTimer) return;
    this.graceTimer = setTimeout(() => this.raw.destroy(), this.options.closeGraceMs);
    this.graceTimer.unref();
  }

  private onSocketError(err: Error): void {
    this.closeError ??= err;
    if (this.state !== 'closed' && this.state !== 'closing') this.closeReason = `socket error: ${err.message}`;
    this.log('warn', `socket error: ${err.message}`, 'connection-error');
  }

  private onSocketClose(): void {
    if (this.state === 'closed') return;
    const wasHandshaking = this.state === 'handshaking';
    this.state = 'closed';
    this.handshake.stop();
    clearTimeout(this.graceTimer);
    this.keepalive.stop();
    this.reader.stop();
    const undelivered = this.outbox.queue.close(new P2PConnectionClosedError(`connection closed: ${this.closeReason}`, this.ref()));
    if (wasHandshaking) {
      this.closeError ??= new P2PHandshakeError(`connection closed during the handshake: ${this.closeReason}`, this.ref());
    }
    this.requests.failAll(this.closeReason);
    this.hooks.onClosed(this, this.closeReason, this.closeError, undelivered);
    this.resolveClosed();
  }

  private log(level: 'warn' | 'debug' | 'error', message: string, event: LogEvent): void {
    const { peerId, address } = this.ref();
    const line = `[peer ${peerId ?? '?'} ${address ?? '?'} ${this.direction}] ${message}`;
    const fields: LogFields = { event, peerId, address };
    if (level === 'debug') this.options.logger.debug?.(line, fields);
    else this.options.logger[level](line, fields);
  }
}

import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { formatAddress, mustParseAddress, parseAddress, socketAddress, type PeerAddress } from '../connection/address.js';
import type { KnownPeer } from '../discovery/address-book.js';
import { openChannel, type DialContext } from '../connection/dialer.js';
import { Discovery } from '../discovery/discovery.js';
import type { Metadata } from '../wire/metadata.js';
import { InboundAdmission, ipOf } from '../trust/inbound-admission.js';
import { discoveryOptions, resolvePeerOptions, type PeerOptions, type ResolvedPeerOptions } from './peer-options.js';

export type { PeerOptions };
import { encodeTopic } from '../wire/codec.js';
import { PROTOCOL_VERSION } from '../wire/constants.js';
import { ControlType, encodeControl, GoodbyeReason, type Hello } from '../wire/control.js';
import {
  P2PDialError,
  P2PListenError,
  P2PHandshakeError,
  P2PNotRunningError,
  P2PPeerBannedError,
  P2PPeerNotAllowedError,
  P2PPeerNotConnectedError,
  P2PProtocolError,
  P2PSelfConnectionError,
  type PeerRef,
} from '../common/errors.js';
import type { BanInfo } from '../trust/ban-list.js';
import type { BroadcastStrategy } from '../broadcast/codec.js';
import { BroadcastPipeline, type BroadcastValidatorFn, type NetworkBroadcastStats } from '../broadcast/pipeline.js';
import { Sanctions } from '../trust/sanctions.js';
import { PartialFrameBudget, STALLED_AFTER_MS } from '../connection/partial-frames.js';
import type { MetricsSink } from '../connection/metrics.js';
import { PersistentPeers, type DialOutcome } from '../discovery/reconnect.js';
import { loadIdentity, loadIdentityFile, type Identity } from '../common/identity.js';
import {
  createTlsCredentials,
  PlaintextOnTlsError,
  secureInbound,
  type ProvenPeer,
  type SecuredConnection,
  type TlsCredentials,
} from '../connection/secure-channel.js';
import { P2PSocket, type Refusal, type ReplySink, type SocketHooks, type SocketLimits } from '../connection/socket.js';
import { silentLogger, type BroadcastMeta, type P2PLogger, type PeerEvent, type PeerInfo } from '../common/types.js';
import { encodePayload } from '../wire/codec.js';



/** Receives what remote peers send; the Nest server implements it. */
export interface InboundHandler {
  /** `broadcast` is set when the event is a network-wide broadcast (`peer` is the neighbour that relayed it). */
  onEvent(peer: PeerInfo, topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown;
  onRequest(peer: PeerInfo, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void;
}

export interface RequestOptions {
  /** Sent beside the data; the handler reads it with `ctx.getMetadata()` (string values, at most 4 KiB encoded). */
  metadata?: Metadata;
  /** The longest wait for the first reply value, and between values of a stream (default: the node's `timeoutMs`). */
  timeoutMs?: number;
  /** The longest the whole request may take, however the replies trickle in (default: none). */
  deadlineMs?: number;
}

export interface RequestObserver {
  next(value: unknown): void;
  error(err: Error): void;
  complete(): void;
}

export interface BroadcastOptions {
  /** `neighbors` (default): every connected peer. `network`: every node of the network, relayed. */
  scope?: 'neighbors' | 'network';
  /** For `network`: RainTree (default; about one message per node) or gossip (flooding, for incomplete views). */
  strategy?: BroadcastStrategy;
  /** Sent beside the data to every receiver (for `network`, signed by this node with the rest). */
  metadata?: Metadata;
}

export interface BroadcastResult {
  /** The broadcast's id (network scope). */
  id?: string;
  /** Peers the message was queued for. */
  sent: string[];
  /** Peers it could not be queued for, with the reason. */
  failed: Array<{ peerId: string; error: Error }>;
}

type Settled = { resolve: (outcome: DialOutcome) => void; reject: (err: Error) => void };

/**
 * The node (the seed's Peer): listens for inbound connections, dials outbound
 * ones, indexes live connections by peer id, and acts on them. Emits
 * `peer` with a PeerEvent on every connect and disconnect.
 */
export class Peer extends EventEmitter {
  readonly identity: Identity;
  private readonly opts: ResolvedPeerOptions;
  private credentials: TlsCredentials | undefined;
  private keyFileNote: string | undefined;
  private readonly admission: InboundAdmission;
  /** Inbound connections in their hello exchange, with the TCP socket that holds their pending slot. */
  private readonly handshakes = new Map<P2PSocket, Socket>();
  private readonly logger: P2PLogger;
  private server: Server | undefined;
  private listenAddress: string | null = null;
  private readonly sockets = new Set<P2PSocket>();
  private readonly connections = new Map<string, P2PSocket>();
  private readonly dials = new Map<P2PSocket, Settled>();
  private readonly dialing = new Set<Socket>();
  private handler: InboundHandler | undefined;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private readonly topicCache = new Map<string, Buffer>();
  private readonly persistent: PersistentPeers;
  private readonly discovery: Discovery;
  /** Plaintext: when a newcomer claiming a connected peer's id was last refused, by id. */
  private readonly refusedNewcomers = new Map<string, number>();
  private startedAt = new Date();
  private readonly broadcasts: BroadcastPipeline;
  private readonly sanctions: Sanctions;
  private readonly partialFrames: PartialFrameBudget;
  private metricsSink: MetricsSink | undefined;
  private readonly metricsRef = () => this.metricsSink;
  /** Inbound connections refused because of maxInbound since start. */
  refused = 0;

  constructor(options: PeerOptions = {}) {
    super();
    if (options.privateKey !== undefined && options.privateKeyFile !== undefined) {
      throw new Error('set privateKey or privateKeyFile, not both');
    }
    if (options.privateKeyFile !== undefined) {
      const loaded = loadIdentityFile(options.privateKeyFile);
      this.identity = loaded.identity;
      if (loaded.created) this.keyFileNote = `wrote a new private key to ${options.privateKeyFile}`;
      else if (loaded.widePermissions) this.keyFileNote = `${options.privateKeyFile} is readable by others; chmod 600 it`;
    } else {
      this.identity = loadIdentity(options.privateKey);
    }
    this.logger = options.logger ?? silentLogger;
    this.opts = resolvePeerOptions(options, this.logger);
    // At least one frame of the largest size the node accepts must always fit.
    this.partialFrames = new PartialFrameBudget(
      Math.max(this.opts.maxPartialFrameBytes, this.opts.maxFrameBytes),
      Math.min(STALLED_AFTER_MS, this.opts.frameStallMs),
    );
    this.persistent = new PersistentPeers(
      { dial: (address) => this.dial(address), isConnected: (id) => this.connections.has(id) },
      { baseMs: this.opts.reconnectBaseMs, maxMs: this.opts.reconnectMaxMs },
      this.logger,
    );
    this.discovery = new Discovery(
      {
        selfId: this.identity.peerId,
        logger: this.logger,
        isRunning: () => this.state === 'running',
        connections: () => this.connections,
        ownAddresses: () => [this.listenAddress, this.opts.externalAddress].filter((a): a is string => !!a),
        advertisedAddress: () => this.advertisedAddress(),
        outboundCount: () => this.outboundCount(),
        connect: (address) => this.connect(address),
        isAllowed: (id) => !this.opts.allowedPeers || this.opts.allowedPeers.has(id),
        isBanned: (id) => this.sanctions.bans.peer(id) !== undefined,
        isConfigured: (id) => this.persistent.has(id),
        release: (id, why) => {
          const socket = this.connections.get(id);
          if (!socket) return;
          this.logger.debug?.(`closing the connection to ${id} at ${socket.remoteAddress}: ${why}`);
          // Drained: a network broadcast the peer sent before it reads the goodbye is delivered, not lost (it counts us as having it, so it would not announce it to us either).
          void socket.close(GoodbyeReason.Normal, why, undefined, true);
        },
      },
      discoveryOptions(this.opts),
    );
    this.admission = new InboundAdmission(this.opts);
    this.sanctions = new Sanctions(
      {
        logger: this.logger,
        disconnect: (peerId, message) => void this.connections.get(peerId)?.close(GoodbyeReason.Banned, message),
        whereIs: (peerId) => {
          const socket = this.connections.get(peerId);
          const inboundIp = socket?.direction === 'inbound' ? ipOf(socket.raw) : undefined;
          return { address: socket?.remoteAddress, inboundIp };
        },
      },
      this.opts.banMs,
    );
    const o = this.opts;
    this.broadcasts = new BroadcastPipeline(
      {
        selfId: this.identity.peerId,
        logger: this.logger,
        knownIds: () => this.discovery.knownIds(),
        neighbours: () => [...this.connections].filter(([, socket]) => socket.isOpen).map(([id]) => id),
        reaches: (id, arc) => this.discovery.reaches(id, arc),
        send: (id, body) => this.socketFor(id).sendNetworkBroadcast(body),
        sendIHave: (id, body) => this.socketFor(id).sendControl({ type: ControlType.BroadcastIHave, body }),
        sendIWant: (id, body) => this.socketFor(id).sendControl({ type: ControlType.BroadcastIWant, body }),
        deliver: (from, message, data) => this.deliverBroadcast(from, { id: message.id, origin: message.origin, hops: message.hops, sentAt: Math.floor(message.timestampUs / 1000) }, message.topic, data, message.metadata),
        penalize: (peerId, what, detail, weight) => this.sanctions.penalize(peerId, what, detail, weight),
      },
      this.identity,
      {
        windowMs: o.broadcastCacheTtlMs,
        skewMs: o.broadcastClockSkewMs,
        cacheSize: o.broadcastCacheSize,
        originRate: o.broadcastOriginRate,
        originBurst: o.broadcastOriginBurst,
        originBytesPerSec: o.broadcastOriginBytesPerSec,
        neighbourRate: o.broadcastNeighbourRate,
        neighbourBytesPerSec: o.broadcastNeighbourBytesPerSec,
        maxFrameBytes: o.maxFrameBytes,
        unsigned: options.unsignedBroadcasts === true,
        repairIntervalMs: o.broadcastRepairIntervalMs,
        repairCacheBytes: o.broadcastRepairCacheBytes,
        repairFanout: o.broadcastRepairFanout,
      },
    );
    if (options.dropRelays) {
      this.broadcasts.router.dropRelays = true;
      this.broadcasts.repair.silent = true;
    }
  }

  /** A network broadcast for this node's handlers; `from` is the relaying neighbour, or this node for its own. */
  private deliverBroadcast(from: string, meta: BroadcastMeta, topic: string, data: unknown, metadata?: Metadata): void {
    if (this.state !== 'running') return;
    if (from !== this.id) return void this.connections.get(from)?.dispatchEvent(topic, data, meta, metadata);
    // The originator's own copy has no connection to go through.
    const failed = (err: unknown) => this.logger.error(`network broadcast handler for "${topic}" failed: ${(err as Error)?.message ?? err}`);
    try {
      const result = this.handler?.onEvent(this.selfInfo(), topic, data, meta, metadata);
      if (result instanceof Promise) result.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  get id(): string {
    return this.identity.peerId;
  }

  get isRunning(): boolean {
    return this.state === 'running';
  }

  /** Why the node cannot act now. A node never started is the usual slip in a Nest app: the message says what starts it. */
  private notRunning(): P2PNotRunningError {
    if (this.state !== 'new') return new P2PNotRunningError(`node is ${this.state}`);
    return new P2PNotRunningError(
      'node is new: it was never started. In a Nest app, add app.connectMicroservice({ strategy: app.get(P2PServer) }) ' +
        'and await app.startAllMicroservices() (NestFactory.createMicroservice starts it in listen()); a bare Peer needs start()',
    );
  }

  /** Where this node accepts connections (`host:port`), or null when it does not listen. */
  address(): string | null {
    return this.listenAddress;
  }

  setHandler(handler: InboundHandler): void {
    this.handler = handler;
  }

  /** Reports frames, request durations and errors to `sink` (see nestjs-p2p/metrics); undefined stops it. */
  setMetrics(sink: MetricsSink | undefined): void {
    this.metricsSink = sink;
  }

  /**
   * Listens, then dials the configured peers. They are persistent: a failed dial
   * is logged and retried with backoff, and a lost one is redialed, until close().
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new P2PNotRunningError(`node cannot start: it is ${this.state}`);
    this.state = 'starting';
    this.startedAt = new Date();
    if (this.identity.ephemeral) this.logger.log(`node ${this.id} uses an ephemeral key (set privateKeyFile to keep its id)`);
    if (this.keyFileNote) this.logger.warn(`node ${this.id}: ${this.keyFileNote}`);
    if (this.opts.tls) {
      this.credentials = await createTlsCredentials(this.identity);
    } else {
      this.logger.warn(`node ${this.id} runs with tls: false: connections are neither encrypted nor authenticated; use it only on a trusted network`);
    }
    if (this.opts.listen !== null) await this.startListening(mustParseAddress(this.opts.listen));
    this.state = 'running';
    const where = this.listenAddress ? `listening on ${this.listenAddress}` : 'not listening';
    this.logger.log(`node ${this.id} ${where} (${this.opts.tls ? 'TLS 1.3' : 'plaintext'})`);
    this.discovery.start();
    this.broadcasts.start();
    await Promise.all(this.opts.peers.map((address) => this.persistent.add(address, mustParseAddress(address).peerId)));
  }

  private startListening({ host, port }: PeerAddress): Promise<void> {
    const server = createServer((socket) => this.onInbound(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      // EADDRINUSE, or EADDRNOTAVAIL for an address not on this host: named, typed, and
      // rejected from start(), hence from app.startAllMicroservices().
      const failed = (err: Error) => reject(new P2PListenError(formatAddress(host, port), err));
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        server.on('error', (err) => this.logger.error(`listener error: ${err.message}`));
        const bound = server.address();
        const actual = bound && typeof bound === 'object' ? formatAddress(bound.address, bound.port) : this.opts.listen;
        this.listenAddress = actual;
        resolve();
      });
    });
  }

  private advertisedAddress(): string | null {
    return this.opts.externalAddress ?? this.listenAddress;
  }

  private hello(): Hello {
    return {
      version: PROTOCOL_VERSION,
      peerId: this.id,
      publicKey: this.identity.publicKeyRaw.toString('hex'),
      listenAddress: this.advertisedAddress(),
      maxFrameBytes: this.opts.maxFrameBytes,
    };
  }

  private onInbound(raw: Socket): void {
    // A banned address gets nothing, not even a handshake: that is the cheapest refusal.
    if (this.state !== 'running' || this.sanctions.bans.ip(ipOf(raw))) {
      raw.destroy();
      return;
    }
    const { refused, evicted } = this.admission.accept(raw);
    if (refused) {
      this.refused++;
      this.logger.debug?.(`inbound connection from ${socketAddress(raw)} dropped: ${refused}`);
      raw.destroy();
      return;
    }
    if (evicted) {
      this.logger.debug?.(`inbound handshake from ${socketAddress(evicted)} dropped: ${this.opts.maxPendingInbound} handshakes pending, it was the oldest`);
      evicted.destroy();
    }
    if (this.credentials) this.secureAccepted(raw);
    else this.wrap(raw, 'inbound');
  }

  /** Server side of TLS, then the hello exchange; admission by id and limits comes with it (see `admit`). */
  private secureAccepted(raw: Socket): void {
    const address = socketAddress(raw);
    secureInbound(raw, this.credentials!, this.opts.handshakeTimeoutMs, { address }).then(
      (secured: SecuredConnection) => {
        if (this.state !== 'running') return void secured.socket.destroy();
        if (secured.problem) {
          this.logger.warn(`refusing inbound connection from ${address}: ${secured.problem.message}`);
          return this.goodbyeAndClose(secured.socket, GoodbyeReason.BadCertificate, secured.problem.message);
        }
        this.wrap(secured.socket, 'inbound', undefined, secured.proven, raw);
      },
      (err: Error) => {
        this.logger.warn(`inbound connection from ${address} closed: ${err.message}`);
        if (err instanceof PlaintextOnTlsError) {
          this.goodbyeAndClose(raw, GoodbyeReason.TlsMismatch, 'this node requires TLS');
        }
      },
    );
  }

  private goodbyeAndClose(stream: Socket, reason: GoodbyeReason, message: string): void {
    stream.on('error', () => undefined);
    const frame = encodeControl({ type: ControlType.Goodbye, reason, message });
    stream.end(Buffer.concat(frame.chunks));
    stream.resume(); // read (and drop) until the dialer closes its side
    const timer = setTimeout(() => stream.destroy(), this.opts.closeGraceMs).unref();
    stream.once('close', () => clearTimeout(timer));
  }

  /** Admission once the remote is authenticated, before our hello: `allowedPeers`, bans, then the inbound limits. */
  private readonly admit = (peerId: string, socket: P2PSocket): Refusal | undefined => {
    const ref = socket.ref();
    if (this.opts.allowedPeers && !this.opts.allowedPeers.has(peerId)) {
      return { error: new P2PPeerNotAllowedError(peerId, ref), reason: GoodbyeReason.NotAllowed };
    }
    const banned = this.sanctions.refusal(peerId);
    if (banned) return { error: new P2PPeerBannedError(banned, ref), reason: GoodbyeReason.Banned };
    if (socket.direction === 'outbound') return undefined;
    const open: string[] = [];
    for (const other of this.sockets) if (other !== socket && other.direction === 'inbound' && other.isOpen) open.push(ipOf(other.raw));
    const over = this.admission.refusal(ipOf(socket.raw), open);
    if (!over) return undefined;
    this.refused++;
    return { error: new P2PHandshakeError(over, ref), reason: GoodbyeReason.InboundLimit };
  };

  /** Outbound dials not yet open: they hold a place under maxPeers, so inbound ones cannot take it meanwhile. */
  private pendingOutbound(): number {
    let open = 0;
    for (const socket of this.connections.values()) if (socket.direction === 'outbound') open++;
    return this.outboundCount() - open;
  }

  /** Outbound connections, dials in progress included (maxOutbound). */
  private outboundCount(): number {
    let n = this.dialing.size;
    for (const socket of this.sockets) if (socket.direction === 'outbound') n++;
    return n;
  }

  /** `tcp`: the TCP socket under a TLS one, which holds the pending-handshake slot until the hello is done. */
  private wrap(raw: Socket, direction: 'inbound' | 'outbound', expectedPeerId?: string, proven?: ProvenPeer, tcp: Socket = raw): P2PSocket {
    const socket = new P2PSocket(
      raw,
      { ...this.opts, direction, expectedPeerId, proven, localHello: this.hello(), logger: this.logger, metrics: this.metricsRef, admit: this.admit, partialFrames: this.partialFrames },
      this.hooks,
    );
    this.sockets.add(socket);
    if (direction === 'inbound') this.handshakes.set(socket, tcp);
    return socket;
  }

  /**
   * Dials `host:port` or `<peerId>@host:port` and resolves with the peer once the
   * hello exchange is done. Already connected to that id: resolves with it.
   */
  connect(address: string): Promise<PeerInfo> {
    return this.dial(address).then((outcome) => outcome.info);
  }

  /** connect(), also telling whether this dial opened the connection (the persistent peers' reconnect log needs it). */
  /** What openChannel needs from the node, read at each dial (the credentials exist once started). */
  private dialContext(): DialContext {
    return {
      dialTimeoutMs: this.opts.dialTimeoutMs,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      credentials: this.credentials,
      inFlight: this.dialing,
      isRunning: () => this.state === 'running',
      refuseCertificate: (socket, problem, ref) => {
        this.logger.warn(`dial to ${ref.address} refused: ${problem.message}`);
        this.goodbyeAndClose(socket, GoodbyeReason.BadCertificate, problem.message);
      },
    };
  }

  private dial(address: string): Promise<DialOutcome> {
    if (this.state !== 'running') return Promise.reject(this.notRunning());
    let target: PeerAddress;
    try {
      target = mustParseAddress(address);
    } catch (err) {
      return Promise.reject(new P2PDialError((err as Error).message, { address }));
    }
    if (target.peerId) {
      const existing = this.connections.get(target.peerId);
      if (existing) return Promise.resolve({ info: existing.info(), opened: false });
      if (target.peerId === this.id) return Promise.reject(new P2PSelfConnectionError('cannot dial self', { address }));
      const banned = this.sanctions.refusal(target.peerId);
      if (banned) return Promise.reject(new P2PPeerBannedError(banned, { address, peerId: target.peerId }));
    }
    if (this.outboundCount() >= this.opts.maxOutbound) {
      return Promise.reject(new P2PDialError(`maxOutbound ${this.opts.maxOutbound} reached`, { address, peerId: target.peerId }));
    }
    return openChannel(target, this.dialContext()).then(
      (channel) =>
        new Promise<DialOutcome>((resolve, reject) => {
          this.dials.set(this.wrap(channel.socket, 'outbound', target.peerId, channel.proven), { resolve, reject });
        }),
    );
  }

  private readonly hooks: SocketHooks = {
    onOpened: (socket) => this.onOpened(socket),
    onEvent: (socket, topic, data, broadcast, metadata) => this.handler?.onEvent(socket.senderInfo(), topic, data, broadcast, metadata),
    onRequest: (socket, topic, data, reply, metadata) => {
      if (!this.handler) return reply.error({ status: 'error', message: 'node has no handlers' });
      this.handler.onRequest(socket.senderInfo(), topic, data, reply, metadata);
    },
    onClosed: (socket, reason, error, undeliveredBytes) => this.onClosed(socket, reason, error, undeliveredBytes),
    onPeerExchange: (socket, body) => this.discovery.onMessage(socket, body),
    onNetworkBroadcast: (socket, body) => this.broadcasts.receive(socket.peerId!, body),
    onBroadcastRepair: (socket, type, body) =>
      type === ControlType.BroadcastIHave ? this.broadcasts.onIHave(socket.peerId!, body) : this.broadcasts.onIWant(socket.peerId!, body),
  };

  private onOpened(socket: P2PSocket): void {
    const tcp = this.handshakes.get(socket);
    if (tcp) this.admission.settle(tcp);
    this.handshakes.delete(socket);
    const remoteId = socket.peerId!;
    const existing = this.connections.get(remoteId);
    let opened = false;
    if (existing && existing !== socket && existing.isOpen) {
      // Two connections to one peer. Same direction: the newer is a duplicate.
      // Opposite directions (a simultaneous dial): both ends keep the one dialed by the lower id.
      // Without TLS an id is only claimed, never proven: a newcomer claiming a live peer's id is refused, never let in.
      const dialerOfNew = socket.direction === 'outbound' ? this.id : remoteId;
      const keepNew = this.opts.tls && existing.direction !== socket.direction && dialerOfNew === (this.id < remoteId ? this.id : remoteId);
      if (!keepNew) {
        this.logger.debug?.(`duplicate connection to ${remoteId} from ${socket.remoteAddress} closed`);
        if (!this.opts.tls) this.refusedNewcomers.set(remoteId, Date.now());
        void socket.close(GoodbyeReason.Duplicate, 'already connected');
        this.dials.get(socket)?.resolve({ info: existing.info(), opened: false });
        this.dials.delete(socket);
        return;
      }
      void existing.close(GoodbyeReason.Duplicate, 'replaced by the connection dialed by the lower peer id');
      this.connections.set(remoteId, socket);
    } else if (existing && existing !== socket) {
      // The old connection is closing already: the new one simply takes its place.
      this.connections.set(remoteId, socket);
    } else if (socket.direction === 'inbound' && this.connections.size + this.pendingOutbound() >= this.opts.maxPeers && !this.persistent.has(remoteId)) {
      // Full: tell the dialer who else it can dial (it may know nobody else), keep it as a candidate, then close.
      this.discovery.onRefused(socket);
      void socket.close(GoodbyeReason.InboundLimit, `at maxPeers ${this.opts.maxPeers}; dial the peers just sent`);
      return;
    } else {
      this.connections.set(remoteId, socket);
      this.logger.log(`connected to ${remoteId} at ${socket.remoteAddress} (${socket.direction})`);
      this.emitPeer({ type: 'connected', peer: socket.info() });
      this.discovery.onConnected(socket);
      opened = true;
    }
    this.dials.get(socket)?.resolve({ info: socket.info(), opened });
    this.dials.delete(socket);
  }

  /**
   * Plaintext, simultaneous dial: each end kept the connection whose hello it read first
   * and refused the other, so both closed. The lower id redials at once (the higher waits),
   * so that exactly one connection results without ever trusting an unproven newcomer.
   */
  private redialAfterMutualRefusal(socket: P2PSocket, id: string): void {
    const refusedAt = this.refusedNewcomers.get(id);
    this.refusedNewcomers.delete(id);
    const address = socket.remote?.listenAddress;
    if (this.opts.tls || refusedAt === undefined || Date.now() - refusedAt > this.opts.handshakeTimeoutMs) return;
    if (socket.goodbyeReceived !== GoodbyeReason.Duplicate || this.id > id || !address) return;
    this.connect(`${id}@${address}`).catch((err: Error) => this.logger.debug?.(`redial of ${id} after a simultaneous dial failed: ${err.message}`));
  }

  private onClosed(socket: P2PSocket, reason: string, error: Error | undefined, undeliveredBytes: number): void {
    this.sockets.delete(socket);
    this.handshakes.delete(socket);
    const dial = this.dials.get(socket);
    if (dial) {
      this.dials.delete(socket);
      dial.reject(error ?? new P2PDialError(`connection closed: ${reason}`, socket.ref()));
    }
    const id = socket.peerId;
    // A protocol violation is the remote's doing (a frame too large or malformed, a bad broadcast): it costs score.
    if (id && error instanceof P2PProtocolError) {
      this.sanctions.penalize(id, 'protocol-error', error.message);
    }
    if (id && this.connections.get(id) === socket) {
      this.connections.delete(id);
      if (undeliveredBytes > 0) {
        this.logger.warn(`${undeliveredBytes} queued bytes to ${id} at ${socket.remoteAddress} were not delivered: ${reason}`);
      }
      this.logger.log(`disconnected from ${id} at ${socket.remoteAddress}: ${reason}`);
      this.emitPeer({ type: 'disconnected', peer: socket.info(), reason, error, undeliveredBytes });
      if (this.state === 'running') {
        this.redialAfterMutualRefusal(socket, id);
        const refusedFull = socket.direction === 'outbound' && socket.goodbyeReceived === GoodbyeReason.InboundLimit;
        this.persistent.onDisconnected(id, refusedFull);
        this.discovery.onDisconnected(id, refusedFull);
      }
    }
  }

  /** Peers proven by past connections, then peer-exchange candidates (`verified: false`). */
  knownPeers(): KnownPeer[] {
    return this.discovery.knownPeers();
  }

  /** The ids network broadcasts are routed over (RainTree): connected or recently connected, never hearsay. */
  routingView(): string[] {
    return this.discovery.routingView();
  }

  private emitPeer(event: PeerEvent): void {
    this.emit('peer', event);
  }

  /** Live connections, one per peer id. */
  peers(): PeerInfo[] {
    return [...this.connections.values()].map((socket) => socket.info());
  }

  /**
   * The live connection to a peer, for diagnostics and tests.
   * @internal
   */
  connection(peerId: string): P2PSocket | undefined {
    return this.connections.get(peerId);
  }

  async disconnect(peerId: string): Promise<void> {
    const socket = this.connections.get(peerId);
    if (!socket) throw new P2PPeerNotConnectedError(peerId);
    await socket.close(GoodbyeReason.Normal, 'disconnected by the application');
  }

  private socketFor(peerId: string): P2PSocket {
    if (this.state !== 'running') throw this.notRunning();
    const socket = this.connections.get(peerId);
    if (!socket) throw new P2PPeerNotConnectedError(peerId);
    return socket;
  }

  private topic(pattern: string): Buffer {
    let topic = this.topicCache.get(pattern);
    if (!topic) {
      topic = encodeTopic(pattern);
      // Patterns are few in practice; the cap keeps a caller with dynamic patterns from growing it forever.
      if (this.topicCache.size >= 1024) this.topicCache.clear();
      this.topicCache.set(pattern, topic);
    }
    return topic;
  }

  /** Fire-and-forget: returns once the event is queued. Throws a typed error when it cannot be. */
  /** Resolves when the peer's write queue has room again (see P2PSocket.whenWritable). */
  whenWritable(peerId: string): Promise<void> {
    try {
      return this.socketFor(peerId).whenWritable();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  send(peerId: string, pattern: string, data: unknown, options: { metadata?: Metadata } = {}): void {
    this.socketFor(peerId).sendEvent(this.topic(pattern), data, options.metadata);
  }

  /** Sends a request; the observer gets each reply value. Returns a cancel function. */
  request(peerId: string, pattern: string, data: unknown, observer: RequestObserver, options: RequestOptions = {}): () => void {
    const socket = this.socketFor(peerId);
    return socket.request(pattern, this.topic(pattern), data, options.timeoutMs ?? this.opts.timeoutMs, observer, options.deadlineMs, options.metadata);
  }

  /** The reply timeout requests use when they set none (`timeoutMs`). */
  get defaultTimeoutMs(): number {
    return this.opts.timeoutMs;
  }

  /**
   * Neighbour scope (default): queues the event for every connected peer. Network
   * scope: sends it on its way to every node of the network (RainTree or gossip);
   * `sent` then names the peers this node handed it to. Either way the result
   * says which peers failed.
   */
  broadcast(pattern: string, data: unknown, options: BroadcastOptions = {}): BroadcastResult {
    if (this.state !== 'running') throw this.notRunning();
    const topic = this.topic(pattern);
    if (options.scope === 'network') {
      const { encoding, bytes } = encodePayload(data);
      return this.broadcasts.originate(pattern, encoding, bytes, options.strategy ?? 'raintree', options.metadata);
    }
    const result: BroadcastResult = { sent: [], failed: [] };
    for (const [peerId, socket] of this.connections) {
      try {
        socket.sendEvent(topic, data, options.metadata);
        result.sent.push(peerId);
      } catch (err) {
        result.failed.push({ peerId, error: err as Error });
      }
    }
    return result;
  }

  /** This node described as a peer: the sender of its own network broadcasts, as its handlers see it. */
  private selfInfo(): PeerInfo {
    const address = this.advertisedAddress();
    return {
      id: this.id,
      remoteAddress: address ?? 'local',
      listenAddress: address,
      direction: 'outbound',
      connectedAt: this.startedAt,
      rttMs: 0,
      secure: this.opts.tls,
    };
  }

  /** Bytes allocated right now for frames that span reads, across all connections (bounded by maxPartialFrameBytes). */
  get partialFrameBytes(): number {
    return this.partialFrames.total;
  }

  /** Counters of network-wide broadcasts seen by this node. */
  networkBroadcastStats(): NetworkBroadcastStats {
    const stats = this.broadcasts.stats;
    return { ...stats, dropped: { ...stats.dropped } };
  }

  /**
   * Decides, for one topic, whether a network broadcast from another node is
   * delivered and relayed ('accept'), dropped ('ignore'), or dropped with a
   * penalty to the neighbour that relayed it ('reject'). It runs after the
   * origin signature and budgets are checked. undefined removes it.
   */
  setBroadcastValidator(topic: string, validator: BroadcastValidatorFn | undefined): void {
    this.broadcasts.setValidator(topic, validator);
  }

  /** Bans in force: by peer id, and for inbound peers by IP. */
  bans(): BanInfo[] {
    return this.sanctions.bans.list();
  }

  /** Bans a peer id (default `banMs`), closing its connection; an inbound peer's IP is banned with it. */
  ban(peerId: string, options: { durationMs?: number; reason?: string } = {}): BanInfo {
    return this.sanctions.ban(peerId, options.reason ?? 'banned by the application', options.durationMs);
  }

  /** Lifts the ban on a peer id (and its IP), or on an IP. Returns false when there was none. */
  unban(peerIdOrIp: string): boolean {
    return this.sanctions.unban(peerIdOrIp);
  }

  /** A neighbour's score (0 is neutral; at -100 it is banned), for diagnostics. */
  peerScore(peerId: string): number {
    return this.sanctions.scores.score(peerId);
  }

  /** Bans since start, automatic and by hand. */
  get bansTotal(): number {
    return this.sanctions.bansTotal;
  }

  /**
   * Stops listening, says goodbye to every peer, flushes their queues within
   * `closeGraceMs`, and closes every socket. Leaves no timer or handle behind.
   */
  async close(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.persistent.stop();
    this.discovery.stop();
    this.broadcasts.stop();
    for (const raw of this.dialing) raw.destroy(new P2PNotRunningError('node closed while dialing'));
    this.dialing.clear();
    for (const raw of this.admission.pendingSockets()) raw.destroy();
    const serverClosed = this.server
      ? new Promise<void>((resolve) => this.server!.close(() => resolve()))
      : Promise.resolve();
    await Promise.all([...this.sockets].map((socket) => socket.close(GoodbyeReason.Normal, 'node shutting down')));
    await serverClosed;
    this.server = undefined;
    this.state = 'closed';
    this.logger.log(`node ${this.id} closed`);
  }
}

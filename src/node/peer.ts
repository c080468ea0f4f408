import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { mustParseAddress } from '../connection/address.js';
import type { KnownPeer } from '../discovery/address-book.js';
import type { Discovery } from '../discovery/discovery.js';
import type { Metadata } from '../wire/metadata.js';
import { resolvePeerOptions, type PeerOptions, type ResolvedPeerOptions } from './peer-options.js';
import { ControlType, GoodbyeReason } from '../wire/control.js';
import { P2PIdentityConflictError, P2PNotRunningError, P2PPeerNotConnectedError, P2PProtocolError, P2PReservedPatternError } from '../common/errors.js';
import type { Identity } from '../common/identity.js';
import type { BanInfo } from '../trust/ban-list.js';
import type { BroadcastValidatorFn, NetworkBroadcastStats } from '../broadcast/pipeline.js';
import type { Sanctions } from '../trust/sanctions.js';
import type { PartialFrameBudget } from '../connection/partial-frames.js';
import type { MetricsSink } from '../connection/metrics.js';
import type { PersistentPeers } from '../discovery/reconnect.js';
import type { PeerStore } from '../discovery/peer-store.js';
import { KeyFileLock } from '../common/key-lock.js';
import { createTlsCredentials, type ProvenPeer, type TlsCredentials } from '../connection/secure-channel.js';
import { P2PSocket, type SocketHooks } from '../connection/socket.js';
import { silentLogger, type Direction, type P2PLogger, type PeerInfo } from '../common/types.js';
import type { Broadcasts, BroadcastOptions, BroadcastResult } from './broadcasts.js';
import type { Subscribers } from './subscribers.js';
import type { Connections } from './connections.js';
import type { Dials } from './dials.js';
import type { Inbound } from './inbound.js';
import type { InboundHandler, Messaging, RequestObserver, RequestOptions } from './messaging.js';
import { LocalPeer } from './self.js';
import type { HandlerLookup, PatternRequests } from './pattern-requests.js';
import type { EventFanout } from './event-fanout.js';
import { wireParts } from './peer-parts.js';
import type { DirectoryPart } from './directory-part.js';
import type { DirectoryChange, DirectoryStats, HandlerInfo, PatternCount } from '../directory/directory.js';
import { isReserved } from '../directory/record.js';

export type { PeerOptions };

export type { BroadcastOptions, BroadcastResult, InboundHandler, RequestObserver, RequestOptions };
export type { DirectoryChange, DirectoryStats, HandlerInfo, PatternCount };

/**
 * The node (the seed's Peer): listens for inbound connections, dials outbound
 * ones, indexes live connections by peer id, and acts on them. Emits
 * `peer` with a PeerEvent on every connect and disconnect, and `directory` with a
 * DirectoryChange whenever a node's record of handled patterns is added, replaced or
 * removed (docs/directory.md).
 *
 * It holds its collaborators and does little itself: `LocalPeer` (its identity and hello),
 * `Inbound` (listening and admission), `Dials` (outbound dials), `Connections` (the connection
 * index), `Messaging` (sends, requests, the handler), `Broadcasts`, `Discovery` and
 * `PersistentPeers` (whom to dial), `Sanctions` (scores and bans), and the directory, pattern
 * requests and event fanout; peer-parts.ts builds them and wires each one's host to the others.
 */
export class Peer extends EventEmitter {
  /** This node's Ed25519 identity; its peer id is `id`. */
  readonly identity: Identity;
  private readonly opts: ResolvedPeerOptions;
  private readonly self: LocalPeer;
  private credentials: TlsCredentials | undefined;
  private readonly logger: P2PLogger;
  private readonly index: Connections;
  private readonly dials: Dials;
  private readonly inbound: Inbound;
  private readonly messaging: Messaging;
  private readonly patternRequests: PatternRequests;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private readonly persistent: PersistentPeers;
  private readonly discovery: Discovery;
  private readonly broadcasts: Broadcasts;
  /** Who subscribes to a topic (events for subscribers are routed over them), from the directory. */
  private readonly subscribers: Subscribers;
  private readonly fanout: EventFanout;
  private readonly directory: DirectoryPart;
  private readonly sanctions: Sanctions;
  private readonly partialFrames: PartialFrameBudget;
  /** Proven peers remembered across restarts (peerStoreFile), if set. */
  private readonly store: PeerStore | undefined;
  private metricsSink: MetricsSink | undefined;
  private readonly metricsRef = () => this.metricsSink;
  /** Inbound connections refused by the inbound limits (rate per IP, maxInbound, maxInboundPerIp) since start. */
  refused = 0;

  constructor(options: PeerOptions = {}) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.opts = resolvePeerOptions(options, this.logger);
    this.self = new LocalPeer(options, this.opts);
    this.identity = this.self.identity;
    // The parts and their wiring: src/node/peer-parts.ts. The node keeps each as a field of its own.
    const parts = wireParts(
      {
        identity: this.identity,
        opts: this.opts,
        self: this.self,
        logger: this.logger,
        isRunning: () => this.state === 'running',
        credentials: () => this.credentials,
        notRunning: () => this.notRunning(),
        connect: (address) => this.connect(address),
        wrap: (stream, direction, id, proven) => this.wrap(stream, direction, id, proven),
        reportConflict: (error) => this.reportConflict(error),
        countRefused: () => void this.refused++,
        emitPeer: (event) => this.emit('peer', event),
        emitDirectory: (change) => this.emit('directory', change),
        onDirectory: (listener) => {
          this.on('directory', listener);
          return () => void this.off('directory', listener);
        },
        metrics: this.metricsRef,
      },
      options,
    );
    this.partialFrames = parts.partialFrames;
    this.index = parts.index;
    this.messaging = parts.messaging;
    this.patternRequests = parts.patternRequests;
    this.dials = parts.dials;
    this.inbound = parts.inbound;
    this.persistent = parts.persistent;
    this.discovery = parts.discovery;
    this.store = parts.store;
    this.sanctions = parts.sanctions;
    this.broadcasts = parts.broadcasts;
    this.directory = parts.directory;
    this.subscribers = parts.subscribers;
    this.fanout = parts.fanout;
  }

  /** This node's peer id (the hex of its public key's hash), as peers know it. */
  get id(): string {
    return this.identity.peerId;
  }

  /** True between a successful start() and close(). */
  get isRunning(): boolean {
    return this.state === 'running';
  }

  /** The lock on the key file while the node runs (none for a key given inline or generated). */
  private keyLock: KeyFileLock | undefined;

  /** When each address where two nodes with this node's id met was last reported (bounded: one a hold-off period). */
  private readonly conflictsReported = new Map<string, number>();

  /** Two nodes with one key: one error per address and `idConflictRetryMs` (the address is not redialed meanwhile). */
  private reportConflict(error: P2PIdentityConflictError): void {
    const key = error.address ?? '';
    const now = Date.now();
    if (now - (this.conflictsReported.get(key) ?? -Infinity) < this.opts.idConflictRetryMs) return;
    if (this.conflictsReported.size >= 256) this.conflictsReported.delete(this.conflictsReported.keys().next().value!);
    this.conflictsReported.set(key, now);
    this.logger.error(`${error.message} (${error.p2pCode}; not redialing ${error.address ?? 'it'} for ${this.opts.idConflictRetryMs} ms)`, {
      event: 'id-conflict',
      peerId: error.sharedId,
      address: error.address,
    });
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
    return this.self.listenAddress;
  }

  /** Sets what receives the events and requests peers send (the Nest server sets it). */
  setHandler(handler: InboundHandler): void {
    this.messaging.handler = handler;
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
    this.self.startedAt = new Date();
    // Before anything is announced: a second node with this key file on this host stops here.
    if (this.self.keyFile !== undefined) this.keyLock = KeyFileLock.acquire(this.self.keyFile, this.id);
    try {
      await this.startRunning();
    } catch (err) {
      this.keyLock?.release();
      throw err;
    }
  }

  private async startRunning(): Promise<void> {
    if (this.identity.ephemeral) this.logger.log(`node ${this.id} uses an ephemeral key (set privateKeyFile to keep its id)`, { event: 'config' });
    if (this.self.keyFileNote) this.logger.warn(`node ${this.id}: ${this.self.keyFileNote}`, { event: 'config' });
    if (this.opts.tls) {
      this.credentials = await createTlsCredentials(this.identity);
    } else {
      this.logger.warn(`node ${this.id} runs with tls: false: connections are neither encrypted nor authenticated; use it only on a trusted network`, { event: 'config' });
    }
    if (this.opts.listen !== null) this.self.listenAddress = await this.inbound.listen(this.opts.listen);
    await this.store?.open(); // after listen: stored addresses are judged by the address policy, which knows ours then
    this.state = 'running';
    const where = this.self.listenAddress ? `listening on ${this.self.listenAddress}` : 'not listening';
    this.logger.log(`node ${this.id} ${where} (${this.opts.tls ? 'TLS 1.3' : 'plaintext'})`, { event: 'listening' });
    this.discovery.start();
    this.broadcasts.pipeline.start();
    this.directory.start();
    await Promise.all(this.opts.peers.map((address) => this.persistent.add(address, mustParseAddress(address).peerId)));
  }

  /** Every connection starts here: a P2PSocket on a dialed or accepted stream, in its hello exchange. */
  private wrap(stream: Socket, direction: Direction, expectedPeerId?: string, proven?: ProvenPeer): P2PSocket {
    const socket = new P2PSocket(
      stream,
      { ...this.opts, direction, expectedPeerId, proven, localFingerprint: this.credentials?.fingerprint, localHello: this.self.hello(), logger: this.logger, metrics: this.metricsRef, admit: this.inbound.admit, partialFrames: this.partialFrames },
      this.hooks,
    );
    this.index.add(socket);
    return socket;
  }

  private readonly hooks: SocketHooks = {
    onOpened: (socket) => {
      this.inbound.opened(socket);
      const outcome = this.index.opened(socket);
      if (outcome) this.dials.opened(socket, outcome);
    },
    // The library's own topics ($p2p.) never reach the application's handlers.
    onEvent: (socket, topic, data, broadcast, metadata) => (isReserved(topic) ? undefined : this.messaging.onEvent(socket, topic, data, broadcast, metadata)),
    onEventResult: (value) => this.messaging.handler?.onEventResult?.(value),
    onRequest: (socket, topic, data, reply, metadata) => this.messaging.onRequest(socket, topic, data, reply, metadata),
    onClosed: (socket, reason, error, undeliveredBytes) => {
      this.inbound.closed(socket);
      this.dials.closed(socket, reason, error);
      // A protocol violation is the remote's doing (a frame too large or malformed, a bad broadcast): it costs score.
      // Penalized before the index forgets the connection, so that a ban it triggers still knows the peer's IP.
      if (socket.peerId && error instanceof P2PProtocolError) this.sanctions.penalize(socket.peerId, 'protocol-error', error.message);
      this.index.closed(socket, reason, error, undeliveredBytes);
    },
    onPeerExchange: (socket, body) => this.discovery.onMessage(socket, body),
    onNetworkBroadcast: (socket, body) => this.broadcasts.pipeline.receive(socket.peerId!, body),
    onBroadcastRepair: (socket, type, body) =>
      type === ControlType.BroadcastIHave ? this.broadcasts.pipeline.onIHave(socket.peerId!, body) : this.broadcasts.pipeline.onIWant(socket.peerId!, body),
    onDirectory: (socket, type, body) => this.directory.onControl(socket.peerId!, type, body),
  };

  /**
   * Dials `host:port` or `<peerId>@host:port` and resolves with the peer once the
   * hello exchange is done. Already connected to that id: resolves with it.
   */
  connect(address: string): Promise<PeerInfo> {
    return this.dials.dial(address).then((outcome) => outcome.info);
  }

  /** Peers proven by past connections, then peer-exchange candidates (`verified: false`). */
  knownPeers(): KnownPeer[] {
    return this.discovery.knownPeers();
  }

  /**
   * What each connected neighbour's last peer exchange said it is connected to: neighbour id to the ids it
   * named (sorted). Hearsay, for diagnostics (the CLI's admin `/topology`); bounded by maxPeers × 64 ids.
   */
  neighbourViews(): Map<string, readonly string[]> {
    return this.discovery.neighbourViews();
  }

  /** The ids network broadcasts are routed over (RainTree): connected or recently connected, never hearsay. */
  routingView(): string[] {
    return this.discovery.routingView();
  }

  /** Live connections, one per peer id. */
  peers(): PeerInfo[] {
    return [...this.index.byId.values()].map((socket) => socket.info());
  }

  /**
   * The live connection to a peer, for diagnostics and tests.
   * @internal
   */
  connection(peerId: string): P2PSocket | undefined {
    return this.index.byId.get(peerId);
  }

  /** Closes the connection to a peer with a goodbye; throws P2PPeerNotConnectedError when there is none. */
  async disconnect(peerId: string): Promise<void> {
    const socket = this.index.byId.get(peerId);
    if (!socket) throw new P2PPeerNotConnectedError(peerId);
    await socket.close(GoodbyeReason.Normal, 'disconnected by the application');
  }

  /** Resolves when the peer's write queue has room again (see P2PSocket.whenWritable). */
  whenWritable(peerId: string): Promise<void> {
    return this.messaging.whenWritable(peerId);
  }

  /** Fire-and-forget: returns once the event is queued. Throws a typed error when it cannot be. */
  send(peerId: string, pattern: string, data: unknown, options: { metadata?: Metadata } = {}): void {
    this.messaging.send(peerId, pattern, data, options.metadata);
  }

  /** Sends a request; the observer gets each reply value. Returns a cancel function. */
  request(peerId: string, pattern: string, data: unknown, observer: RequestObserver, options: RequestOptions = {}): () => void {
    return this.messaging.request(peerId, pattern, data, observer, options);
  }

  /**
   * Sends a request to a pattern rather than to a peer: exactly one node with a matching
   * `@MessagePattern` gets it (this node's own handler counts as one), as a request to a NATS
   * queue group does. The handler is chosen by cost (measured answer time, requests in flight),
   * a failing one is passed over until it answers again, and one that is not a neighbour is
   * dialed directly. While no node handles `subject` the request waits for one, until its
   * timeout, then fails with P2PNoHandlerError. At most once: never re-sent once it may have run
   * (a handler that dies mid-request fails it with P2PConnectionClosedError). See
   * docs/pattern-requests.md. Returns a cancel function.
   */
  requestPattern(subject: string, data: unknown, observer: RequestObserver, options: RequestOptions = {}): () => void {
    return this.patternRequests.request(subject, data, observer, options);
  }

  /**
   * Where requests to a pattern look their handlers up (the directory of handlers when there is
   * one; a table kept by hand in tests).
   * @internal
   */
  setHandlerLookup(lookup: HandlerLookup | undefined): void {
    this.patternRequests.setLookup(lookup);
  }

  /**
   * Requests to a pattern, for diagnostics and tests (the handler choice and what is in flight).
   * @internal
   */
  get patternRouting(): PatternRequests {
    return this.patternRequests;
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
    if (isReserved(pattern)) throw new P2PReservedPatternError(`cannot broadcast on "${pattern}": the $p2p. prefix is reserved for the library`);
    return this.broadcasts.send(pattern, this.messaging.topic(pattern), data, options);
  }

  /** Bytes allocated right now for frames that span reads, across all connections (bounded by maxPartialFrameBytes). */
  get partialFrameBytes(): number {
    return this.partialFrames.total;
  }

  /** Counters of network-wide broadcasts seen by this node. */
  networkBroadcastStats(): NetworkBroadcastStats {
    return this.broadcasts.stats();
  }

  /**
   * Decides, for one topic, whether a network broadcast from another node is
   * delivered and relayed ('accept'), dropped ('ignore'), or dropped with a
   * penalty to the neighbour that relayed it ('reject'). It runs after the
   * origin signature and budgets are checked. undefined removes it.
   */
  setBroadcastValidator(topic: string, validator: BroadcastValidatorFn | undefined): void {
    if (isReserved(topic)) throw new P2PReservedPatternError(`cannot set a validator on "${topic}": the $p2p. prefix is reserved for the library`);
    this.broadcasts.pipeline.setValidator(topic, validator);
  }

  /**
   * Sets the patterns this node handles, replacing its directory record (a new `seq`), and
   * publishes the record to the network when the node runs (at start otherwise). Publishes are
   * spaced by `1 / directoryUpdateRate` s: a burst of changes goes out as the latest record.
   * Throws P2PReservedPatternError for a `$p2p.` pattern, P2PConfigError past
   * `directoryMaxPatterns`, `directoryMaxPatternBytes` or `directoryMaxPatternTokens`. The Nest server calls it from its handlers.
   */
  setHandledPatterns(patterns: { requests: readonly string[]; events: readonly string[] }): void {
    this.directory.setHandledPatterns(patterns);
  }

  /**
   * The patterns in this node's directory with how many nodes handle each, as a request and as an
   * event handler (the first `limit` distinct patterns, default 200): what the metric
   * `p2p_handlers_known` shows.
   */
  patternCounts(limit = 200): PatternCount[] {
    return this.directory.patternCounts(limit);
  }

  /**
   * The nodes whose directory record has a pattern of `kind` matching `subject` (exactly, or by a
   * `*` / `>` wildcard; an object pattern as Nest normalises it matches only itself), this node
   * included when its own patterns match, sorted by id. Leaving and expired records are left out.
   * A local lookup: every node holds every record (docs/directory.md).
   */
  handlers(subject: string, kind: 'request' | 'event'): HandlerInfo[] {
    return this.directory.handlers(subject, kind);
  }

  /** What the directory holds, and the records it refused by reason (docs/directory.md). */
  directoryStats(): DirectoryStats {
    return this.directory.stats();
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
    // The tombstone first, while the node still runs: it is queued before the goodbyes and flushed with them.
    this.directory.close(this.state === 'running');
    // Network broadcasts are signed in batches before the event loop turns: the waiting one goes now, before the goodbyes.
    this.broadcasts.pipeline.flush();
    this.state = 'closing';
    this.persistent.stop();
    this.discovery.stop();
    this.patternRequests.stop();
    this.broadcasts.pipeline.stop();
    this.dials.stop();
    const serverClosed = this.inbound.close();
    // The store's snapshot first, while its connections are open (they are written as seen now).
    await Promise.all([this.store?.close(), ...[...this.index.all].map((socket) => socket.close(GoodbyeReason.Normal, 'node shutting down'))]);
    await serverClosed;
    this.keyLock?.release();
    this.state = 'closed';
    this.logger.log(`node ${this.id} closed`, { event: 'closed' });
  }
}

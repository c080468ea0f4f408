import { DEFAULTS } from '../common/defaults.js';
import type { DiscoveryOptions } from '../discovery/discovery.js';
import type { SocketLimits } from '../connection/socket.js';
import type { P2PLogger } from '../common/types.js';

/** What a node is configured with; every key is optional (defaults in DEFAULTS, src/common/defaults.ts; the table is docs/configuration.md). */
export interface PeerOptions extends Partial<SocketLimits> {
  /** `host:port` to listen on (port 0: any free port); null or omitted: do not listen. */
  listen?: string | null;
  /** The `host:port` other peers should dial, when it differs from `listen` (NAT, containers). */
  externalAddress?: string;
  /** Peers to dial at start: `host:port` or `<peerId>@host:port`. */
  peers?: string[];
  /** Authenticated inbound connections; extra ones get a goodbye saying why, then are closed. */
  maxInbound?: number;
  /** Inbound connections still in their handshake; past it the oldest is dropped. */
  maxPendingInbound?: number;
  /** Authenticated inbound connections from one IP. */
  maxInboundPerIp?: number;
  /**
   * Authenticated inbound connections from one third of the ring as this node splits it (its
   * ring-distance bucket), once the node holds 8 connections; configured peers are not counted.
   * Bounds what ids ground into a node's thirds can take of its connections (eclipse).
   */
  maxInboundPerThird?: number;
  /** New inbound connections a second from one IP (burst: twice that). */
  inboundRatePerIp?: number;
  /**
   * Hold dialers from loopback (127.0.0.0/8, ::1) to maxInboundPerIp and inboundRatePerIp too (default false:
   * every process of this host dials from there, so their IP tells them apart from nothing; maxInbound and
   * maxPendingInbound hold them).
   */
  perIpLimitsOnLoopback?: boolean;
  /**
   * Leading bits of an IPv4 address that name its netgroup (Bitcoin's /16 buckets; 0: one group for all). Peers of one
   * netgroup take at most a third of a node's connections (half with two netgroups) while that costs it no degree, so
   * ids that all run in one place hold at most that, however many (docs/configuration.md). Loopback is one group unless perIpLimitsOnLoopback.
   */
  netgroupPrefixV4?: number;
  /** The same for IPv6 (default 32; 0: one group for all). */
  netgroupPrefixV6?: number;
  /** Outbound connections; `connect()` past it fails with P2PDialError. */
  maxOutbound?: number;
  /**
   * Connections in all (inbound and outbound) past which the node dials no more
   * for its RainTree topology and refuses inbound ones (after telling the dialer
   * its peers). For a bounded degree set it to max(8, 2·⌈log3 N⌉ + 2).
   */
  maxPeers?: number;
  /**
   * Own event patterns (fewest nodes first) by which the node chooses its ring neighbours: in each third it dials a
   * node with the same pattern when there is one, so that events for subscribers meet fewer carriers (docs/events.md).
   * 0: the facing node whatever its patterns. Default 4.
   */
  eventCoverPatterns?: number;
  /**
   * The least neighbours the node keeps among the nodes sharing each of those patterns (gossipsub's D_lo), dialing
   * ones drawn at random beside its ring covers when the covers give fewer, below maxPeers, and at most this many
   * beside the covers for all patterns together: in a small topic the
   * covers may link a subscriber only to subscribers that drop relays, and it would hear of an event from nobody
   * (docs/events.md). 0: the covers alone. Default 6.
   */
  eventPatternLinks?: number;
  /**
   * Arcs an event for subscribers leaves this node in when it emits one without subscribing itself: its ring cut at
   * subscribers, each arc carried to a subscriber on its own, so one dropping relay cannot lose it for every
   * subscriber (docs/events.md). 1: one path. Default 3.
   */
  eventOriginPaths?: number;
  /**
   * Subscribers of a topic this node emits events to without subscribing that it keeps as neighbours, dialed when
   * fewer are (gossipsub's fanout, whose size is gossipsub's D), through the limits of the dials to pattern handlers
   * (handlerDialRate, the address policy) but apart from theirs: at most this many connections open or dialing for
   * the fanout, all topics together, beside the quarter of maxOutbound requests keep. Closed after handlerIdleMs
   * without an event: so that carriers dropping its events cannot keep them from every subscriber, and every
   * subscriber of a topic of up to 6 hears of its events directly (docs/events.md). 0: none. Default 6.
   */
  eventFanout?: number;
  /** Bytes allocated for frames that span reads, across all connections; past it the largest stalled one is closed. */
  maxPartialFrameBytes?: number;
  /** Default reply timeout of a request, ms. */
  timeoutMs?: number;
  /** TCP connect timeout, ms. */
  dialTimeoutMs?: number;
  /** A connection dialed only to reach a pattern's handler (`requestPattern`) is closed after this long without a request on it, ms. */
  handlerIdleMs?: number;
  /** New connections a second this node may dial to reach pattern handlers (`requestPattern`); at most a quarter of maxOutbound are open or dialing for them at once (default 10). */
  handlerDialRate?: number;
  /** First redial delay after a persistent peer is lost (doubles per failure, with jitter). */
  reconnectBaseMs?: number;
  /** Longest redial delay; a connection that ends sooner than this counts as a refusal, redialed with growing delays. */
  reconnectMaxMs?: number;
  /** An address where this node met another node with its own peer id (two nodes, one key) is not redialed for this long, ms (default 300 000). */
  idConflictRetryMs?: number;
  /** Ed25519 private key, PEM (PKCS#8) or 64 hex characters; generated when omitted. */
  privateKey?: string;
  /** File holding the private key; created (mode 0600) with a new key when missing. */
  privateKeyFile?: string;
  /** TLS 1.3 with mutual authentication by peer id (default true). false: plaintext, for trusted networks only. */
  tls?: boolean;
  /** When set, only these peer ids may connect or be connected to. */
  allowedPeers?: string[];
  /** Share the addresses of connected peers, learn others', and dial them up to maxOutbound (default true). */
  peerExchange?: boolean;
  /** How often peer exchange is sent to every peer, and known peers are dialed; every second (at most this) while a node or a neighbour is below 8 connections and one has news for the other. */
  pexIntervalMs?: number;
  /** Most peers remembered: proven ones and peer-exchange candidates together. */
  maxKnownPeers?: number;
  /**
   * File where the node keeps the peers it proved by a connection (their last good address and last-seen
   * time), written within 5 s of a change, every 30 s and at close; at start it redials the freshest of
   * them through discovery, so a restarted node finds its old neighbours without configured peers.
   * Omitted: nothing is stored.
   */
  peerStoreFile?: string;
  /** Most peers the peer store keeps (the most recently seen). */
  peerStoreMaxPeers?: number;
  /** Dial loopback and private addresses learned from peers even when this node announces neither (default false). */
  pexAllowPrivate?: boolean;
  /** Dial host names learned from peers (default false: IP addresses only). */
  pexAllowHostnames?: boolean;
  /** Network broadcast ids remembered, so each is delivered once. */
  broadcastCacheSize?: number;
  /** How long a network broadcast id is remembered, and how old a broadcast may be. */
  broadcastCacheTtlMs?: number;
  /** How far in the future a network broadcast may be dated (clock skew). */
  broadcastClockSkewMs?: number;
  /** Network broadcasts a second one origin may start (this node included). */
  broadcastOriginRate?: number;
  /** Network broadcasts one origin may start at once. */
  broadcastOriginBurst?: number;
  /** Bytes a second of one origin's network broadcasts. */
  broadcastOriginBytesPerSec?: number;
  /** Network broadcast frames a second one neighbour may send (copies included). */
  broadcastNeighbourRate?: number;
  /** Bytes a second of network broadcast frames one neighbour may send. */
  broadcastNeighbourBytesPerSec?: number;
  /**
   * New network broadcasts a second one neighbour may hand over from origins this node has no evidence
   * are network members (not a neighbour, past neighbour or another neighbour's peer-exchange candidate);
   * burst 5 s worth, a gossip one costs 5. Past it they are dropped unverified (`unknownOrigin`).
   */
  broadcastUnknownOriginRate?: number;
  /**
   * Most of this node's network broadcasts signed as one batch (one Ed25519 signature over a Merkle
   * root): those started in one synchronous run, never waiting for more; 1: each signed alone.
   */
  broadcastBatchMax?: number;
  /** Batches a node remembers as verified (origin, root, signature), so that the rest of a batch skips Ed25519; 0: none. */
  broadcastVerifiedBatches?: number;
  /** How long a misbehaving peer is banned. */
  banMs?: number;
  /** The longest a node a relay left out waits to hear of a broadcast: ids are announced to neighbours half an interval to one interval after they arrive, so that it asks for them (0: no repair). */
  broadcastRepairIntervalMs?: number;
  /** Bytes of recent network broadcasts kept to answer repair requests. */
  broadcastRepairCacheBytes?: number;
  /** Neighbours each recent network broadcast id is announced to, drawn at random among those not known to have it. */
  broadcastRepairFanout?: number;
  /** Patterns in one directory record (this node's own, and each accepted from others), requests and events together. */
  directoryMaxPatterns?: number;
  /** UTF-8 bytes of one pattern in a directory record. */
  directoryMaxPatternBytes?: number;
  /** `.`-separated tokens of one wildcard pattern in a directory record (each is a node of the subject index). */
  directoryMaxPatternTokens?: number;
  /** Bytes the directory's distinct patterns and their wildcard index may be counted at; past it, a record bringing new patterns is refused (`full`). */
  directoryMaxPatternMemory?: number;
  /** Directory records held; when full, records of neighbours and known peers are kept first. */
  directoryMaxRecords?: number;
  /** Record updates a second accepted from one node (a node spaces its own publishes by as much). */
  directoryUpdateRate?: number;
  /** Record updates accepted from one node at once. */
  directoryUpdateBurst?: number;
  /** How long a directory record lives after it is issued; its node re-publishes it every third of that. */
  directoryTtlMs?: number;
  /** How often the directory's digest is exchanged with one random neighbour, so that missed records heal. */
  directorySyncIntervalMs?: number;
  /**
   * Benchmark only: network broadcasts are neither signed nor verified, so that
   * `npm run bench` can compare. Every node of the network must agree. Never in production.
   * @internal
   */
  unsignedBroadcasts?: boolean;
  /**
   * Tests only: this node accepts network broadcasts and never forwards them,
   * announces nothing and answers no repair request (a hostile or broken relay).
   * @internal
   */
  dropRelays?: boolean;
  /** Where the node logs, each line with its LogFields (P2PModule passes Nest's `Logger('P2P')`, fields dropped); omitted: nowhere. */
  logger?: P2PLogger;
}

/** Options with every default applied. */
export type ResolvedPeerOptions = Required<Omit<PeerOptions, 'privateKey' | 'privateKeyFile' | 'peerStoreFile' | 'externalAddress' | 'listen' | 'allowedPeers' | 'unsignedBroadcasts' | 'dropRelays'>> & {
  listen: string | null;
  externalAddress?: string;
  peerStoreFile?: string;
  allowedPeers?: ReadonlySet<string>;
};

export function resolvePeerOptions(options: PeerOptions, logger: P2PLogger): ResolvedPeerOptions {
  // The key stays with the identity; only limits and behaviour travel on (they are spread into each socket's options).
  const { privateKey: _key, privateKeyFile: _file, ...rest } = options;
  const given = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)) as PeerOptions;
  return {
    ...DEFAULTS,
    peers: [],
    tls: true,
    peerExchange: true,
    pexAllowPrivate: false,
    pexAllowHostnames: false,
    perIpLimitsOnLoopback: false,
    ...given,
    listen: given.listen ?? null,
    allowedPeers: given.allowedPeers ? new Set(given.allowedPeers) : undefined,
    logger,
  };
}

/** The node's discovery settings, from its resolved options. */
export function discoveryOptions(o: ResolvedPeerOptions): DiscoveryOptions {
  return {
    enabled: o.peerExchange,
    intervalMs: o.pexIntervalMs,
    maxKnownPeers: o.maxKnownPeers,
    maxOutbound: o.maxOutbound,
    maxPeers: o.maxPeers,
    backoff: { baseMs: o.reconnectBaseMs, maxMs: o.reconnectMaxMs },
    allowPrivate: o.pexAllowPrivate,
    allowHostnames: o.pexAllowHostnames,
    topicFloor: o.eventPatternLinks,
    netgroups: { netgroupPrefixV4: o.netgroupPrefixV4, netgroupPrefixV6: o.netgroupPrefixV6, perIpLimitsOnLoopback: o.perIpLimitsOnLoopback },
  };
}

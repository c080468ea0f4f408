/** Every limit and interval of a node, with its default: PeerOptions and the Nest config document each key (docs/configuration.md). */
export const DEFAULTS = {
  /** Authenticated inbound connections; extra ones get a goodbye and are closed. */
  maxInbound: 40,
  /** Inbound connections still in their TLS handshake or hello exchange; past it the oldest is dropped. */
  maxPendingInbound: 16,
  /** Authenticated inbound connections from one IP address. */
  maxInboundPerIp: 8,
  /** Leading bits of an IPv4 address that name its netgroup: peers of one take at most a third of a node's connections (docs/security.md, Netgroups). */
  netgroupPrefixV4: 16,
  /** The same for IPv6. */
  netgroupPrefixV6: 32,
  /**
   * Authenticated inbound connections from one third of the ring as this node splits it (its ring-distance
   * bucket, as a Kademlia k-bucket), once it holds its least degree (8): ids ground into a node's thirds
   * cannot take its connections (docs/security.md, Eclipse). An honest network dials a node about once per
   * third (the facing member); configured peers are not counted.
   */
  maxInboundPerThird: 4,
  /** New inbound connections a second from one IP address (burst: twice that). */
  inboundRatePerIp: 10,
  /**
   * Outbound connections. A node dials one neighbour per third of the ring it must cover, about
   * 2·log3 N of them (21 at 100 000 nodes): 24 is the degree bound max(8, 2·⌈log3 N⌉ + 2) there. 10 left
   * 15 % of those thirds uncovered at 100 000 nodes in the simulator (1.37 N data frames a broadcast).
   */
  maxOutbound: 24,
  /** Connections in all past which a node dials no more for its RainTree topology and refuses inbound ones. */
  maxPeers: 50,
  /**
   * This node's own event patterns (fewest subscribers first) by which it chooses its ring neighbours: in each third of
   * the ring it dials a node with one of these patterns when the third holds one, so that events for subscribers find a
   * subscriber inside the thirds that hold one instead of a node that carries them (docs/events.md). 0: the facing
   * node, whatever its patterns.
   */
  eventCoverPatterns: 4,
  /**
   * The least neighbours a node keeps among the nodes sharing each of those patterns (gossipsub's D_lo), dialing ones
   * drawn at random beside its covers when they give fewer: in a small topic a subscriber whose only subscribing
   * neighbours drop relays would hear of an event from nobody (docs/events.md). 0: the covers alone.
   */
  eventPatternLinks: 6,
  /**
   * Arcs an event for subscribers leaves its origin in when the origin does not subscribe itself: the ring cut at
   * subscribers into this many, each carried to a subscriber on its own (an event for one subscriber: two first hops),
   * so that one dropping relay does not lose it for all; repair among the subscribers brings it to the rest (docs/events.md).
   */
  eventOriginPaths: 3,
  /**
   * Subscribers of a topic this node emits events to without subscribing that it keeps as neighbours (gossipsub's
   * fanout, of gossipsub's size D): so that carriers dropping its events cannot keep them from every subscriber, and a
   * topic of up to 6 subscribers hears of them from it directly (docs/events.md). Also the most connections open or
   * dialing for the fanout, all topics together, beside the dials requests keep. 0: none.
   */
  eventFanout: 6,
  /** Largest frame (9-byte header + topic + payload) sent or accepted, bytes: 4 MiB. */
  maxFrameBytes: 4 * 1024 * 1024,
  /** Bytes waiting to be written to one peer before sends fail with P2PQueueFullError: 16 MiB. */
  maxQueueBytes: 16 * 1024 * 1024,
  /** Handlers running at once for one peer; past it that peer is not read (TCP backpressure). */
  maxConcurrentHandlers: 256,
  /** Reply timeout of a request (between reply frames of a stream), ms. */
  timeoutMs: 10_000,
  /** A connection dialed only to reach a pattern's handler (`requestPattern`) is closed after this long without a request on it, ms. */
  handlerIdleMs: 60_000,
  /** New connections a second this node may dial to reach pattern handlers (`requestPattern`); a request that finds none connected waits for the next. */
  handlerDialRate: 10,
  /** TCP connect timeout, ms. */
  dialTimeoutMs: 3_000,
  /** Time for the TLS handshake, and again for the hello exchange, ms. */
  handshakeTimeoutMs: 5_000,
  /** Ping period on every connection (also measures `rttMs`), ms. */
  pingIntervalMs: 15_000,
  /** A peer silent this long after a ping is dropped, ms. */
  pongTimeoutMs: 10_000,
  /** How long a close waits for queued frames to flush, ms. */
  closeGraceMs: 2_000,
  /** A frame that spans reads is cut when none of its bytes arrive for this long, ms. */
  frameStallMs: 10_000,
  /** 16 frames of the default maxFrameBytes: room for many honest large frames at once, well under 40 inbound × 4 MiB. */
  maxPartialFrameBytes: 64 * 1024 * 1024,
  /** First redial delay of a lost or unreachable configured peer, ms; doubles per failure, with jitter. */
  reconnectBaseMs: 500,
  /** Longest redial delay, ms. */
  reconnectMaxMs: 30_000,
  /**
   * How long an address where this node met another node with its own peer id (two nodes, one
   * key) is not redialed, ms: long enough that the error is logged a few times an hour, not a storm.
   */
  idConflictRetryMs: 300_000,
  /** How often peer exchange is sent to every peer and known peers are dialed, ms; every second (at most this) while the network around a node forms (src/discovery/pex-pace.ts). */
  pexIntervalMs: 30_000,
  /** Most peers remembered: proven ones and peer-exchange candidates together. */
  maxKnownPeers: 1_000,
  /**
   * Most peers a node's peer store keeps (peerStoreFile), the most recently seen: several times the least
   * degree (8), so that a restarted node finds enough of its old neighbours though some have left.
   */
  peerStoreMaxPeers: 64,
  /** Network broadcast ids remembered, so that each is delivered once. */
  broadcastCacheSize: 20_000,
  /** The replay window: how old a network broadcast may be, and how long its id is remembered, ms. */
  broadcastCacheTtlMs: 120_000,
  /** How far in the future a network broadcast may be dated (clock skew), ms. */
  broadcastClockSkewMs: 5_000,
  /**
   * Network broadcasts a second one origin may start, this node included (receivers allow each origin
   * twice the burst): an application emitting 1 000 network events a second passes, now that a batch of
   * them costs one signature check per node (docs/broadcast.md, Batched signatures).
   */
  broadcastOriginRate: 1_000,
  /** Network broadcasts one origin may start at once: a loop of 1 000, with room for the directory's own. */
  broadcastOriginBurst: 2_000,
  /**
   * Most of this node's network broadcasts signed together: those started in one synchronous run (a loop)
   * share one Ed25519 signature over a Merkle root, and each carries a proof of up to log2 of this many
   * 32-byte hashes; 1: each signed alone. No broadcast waits for a batch to fill.
   */
  broadcastBatchMax: 64,
  /** Batches (origin, root, signature) a node remembers as verified, so that a batch's other messages skip Ed25519. */
  broadcastVerifiedBatches: 1_024,
  /** Bytes a second of one origin's network broadcasts: 1 MiB. */
  broadcastOriginBytesPerSec: 1024 * 1024,
  /**
   * Network broadcast frames a second one neighbour may send, copies included (burst: twice that). Above
   * what an origin may send at its own budget (twice broadcastOriginBurst), so that a neighbour flooding
   * its own broadcasts meets its origin budget, and is banned for it, before its neighbour budget.
   */
  broadcastNeighbourRate: 5_000,
  /** Bytes a second of network broadcast frames one neighbour may send: 16 MiB. */
  broadcastNeighbourBytesPerSec: 16 * 1024 * 1024,
  /**
   * New network broadcasts a second one neighbour may hand over from origins this node has no evidence
   * are members (burst: 5 s worth; a gossip one costs 5): a node that just joined and the origins of a
   * network larger than maxKnownPeers pass, one link's throwaway keys do not (docs/security.md).
   */
  broadcastUnknownOriginRate: 20,
  /** How long a misbehaving peer is banned, ms (10 minutes). */
  banMs: 600_000,
  /** How late, at most, a node a relay left out hears of a broadcast, so that it asks for it, ms; 0: no repair. */
  broadcastRepairIntervalMs: 500,
  /** Bytes of recent network broadcasts kept to answer repair requests: 16 MiB. */
  broadcastRepairCacheBytes: 16 * 1024 * 1024,
  /** gossipsub's D_lazy: fewer IHAVE frames than data frames, yet every left-out node is told (docs/broadcast.md, Repair). */
  broadcastRepairFanout: 6,
  /** Patterns in one directory record, requests and events together (docs/directory.md). */
  directoryMaxPatterns: 256,
  /** UTF-8 bytes of one pattern in a directory record. */
  directoryMaxPatternBytes: 256,
  /** `.`-separated tokens of one wildcard pattern in a directory record: each costs a node of the subject index (docs/directory.md, Bounds). */
  directoryMaxPatternTokens: 16,
  /** Bytes the directory's distinct patterns and their wildcard index may be counted at: 16 MiB (docs/directory.md, Memory). */
  directoryMaxPatternMemory: 16 * 1024 * 1024,
  /** Directory records held (one per node): 100 000 nodes at about 130 bytes each (docs/directory.md, Memory). */
  directoryMaxRecords: 100_000,
  /** Record updates a second accepted from one node (one per 2 s); a node spaces its own by as much. */
  directoryUpdateRate: 0.5,
  /** Record updates accepted from one node at once. */
  directoryUpdateBurst: 3,
  /** How long a record lives after it is issued, ms (30 min); its node re-publishes it every third of that. */
  directoryTtlMs: 30 * 60_000,
  /** How often the directory's digest is exchanged with one random neighbour (anti-entropy), ms. */
  directorySyncIntervalMs: 30_000,
} as const;

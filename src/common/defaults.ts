/** Every limit and interval of a node, with its default: PeerOptions and the Nest config document each key (docs/configuration.md). */
export const DEFAULTS = {
  maxInbound: 40,
  maxPendingInbound: 16,
  maxInboundPerIp: 8,
  inboundRatePerIp: 10,
  /**
   * A node dials one neighbour per third of the ring it must cover, about 2·log3 N of them (21 at
   * 100 000 nodes): 24 is the degree bound max(8, 2·⌈log3 N⌉ + 2) there. 10 left 15 % of those
   * thirds uncovered at 100 000 nodes in the simulator (1.37 N data frames a broadcast).
   */
  maxOutbound: 24,
  /** Connections in all past which a node dials no more for its RainTree topology and refuses inbound ones. */
  maxPeers: 50,
  maxFrameBytes: 4 * 1024 * 1024,
  maxQueueBytes: 16 * 1024 * 1024,
  maxConcurrentHandlers: 256,
  timeoutMs: 10_000,
  dialTimeoutMs: 3_000,
  handshakeTimeoutMs: 5_000,
  pingIntervalMs: 15_000,
  pongTimeoutMs: 10_000,
  closeGraceMs: 2_000,
  frameStallMs: 10_000,
  /** 16 frames of the default maxFrameBytes: room for many honest large frames at once, well under 40 inbound × 4 MiB. */
  maxPartialFrameBytes: 64 * 1024 * 1024,
  reconnectBaseMs: 500,
  reconnectMaxMs: 30_000,
  pexIntervalMs: 30_000,
  maxKnownPeers: 1_000,
  broadcastCacheSize: 20_000,
  broadcastCacheTtlMs: 120_000,
  broadcastClockSkewMs: 5_000,
  broadcastOriginRate: 100,
  broadcastOriginBurst: 200,
  broadcastOriginBytesPerSec: 1024 * 1024,
  broadcastNeighbourRate: 1_000,
  broadcastNeighbourBytesPerSec: 16 * 1024 * 1024,
  banMs: 600_000,
  broadcastRepairIntervalMs: 500,
  broadcastRepairCacheBytes: 16 * 1024 * 1024,
  /** gossipsub's D_lazy: fewer IHAVE frames than data frames, yet every left-out node is told (docs/broadcast.md, Repair). */
  broadcastRepairFanout: 6,
} as const;

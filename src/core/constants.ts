/** Wire constants. Names follow the seed (Pocket p2p v0.0.1-pre-alpha.1). */

/** `flags u8 | nonce u32 BE | body length u32 BE`. */
export const HEADER_BYTES = 9;
export const RequestNonceLength = 4;
export const BodyLengthBytes = 4;

/** Bits 0–1 of the flags byte: how the payload is encoded. */
export enum Encoding {
  Binary = 0,
  Utf8 = 1,
  Json = 2,
  Protobuf = 3,
}
export const ENCODING_MASK = 0x03;

export const FLAG_ERROR = 0x04;
export const FLAG_REQUEST = 0x08;
export const FLAG_WRAPPED = 0x10;
export const FLAG_RESPONSE = 0x20;
export const FLAG_END = 0x40;
export const FLAG_CONTROL = 0x80;

/** Version spoken in the hello frame; a peer with another version is refused. */
/** 2: network broadcasts are signed by their origin (docs/wire-format.md). 3: RainTree arcs split the id space, and repair (IHAVE/IWANT). 4: the origin signs its strategy (RainTree or gossip). */
export const PROTOCOL_VERSION = 4;

/** u16 BE topic length prefix of a wrapped body. */
export const TOPIC_LENGTH_BYTES = 2;
/** Bit 15 of the topic length marks a metadata section (metadata.ts), so a topic has at most 15 bits of length. */
export const MAX_TOPIC_BYTES = 0x7fff;

export const MAX_NONCE = 0xffffffff;

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

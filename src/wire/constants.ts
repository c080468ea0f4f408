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
/** 2: network broadcasts are signed by their origin (docs/wire-format.md). 3: RainTree arcs split the id space, and repair (IHAVE/IWANT). 4: the origin signs its strategy (RainTree or gossip). 5: events for subscribers. 6: the origin signs batches of broadcasts (one signature over a Merkle root; each message carries its proof). */
export const PROTOCOL_VERSION = 6;

/** u16 BE topic length prefix of a wrapped body. */
export const TOPIC_LENGTH_BYTES = 2;
/** Bit 15 of the topic length marks a metadata section (src/wire/metadata.ts), so a topic has at most 15 bits of length. */
export const MAX_TOPIC_BYTES = 0x7fff;

export const MAX_NONCE = 0xffffffff;

import { isUtf8 } from 'node:buffer';
import { FLAG_CONTROL } from './constants.js';
import { encodeFrame } from './codec.js';
import { P2PProtocolError } from '../common/errors.js';

/**
 * Control frames (flags 0x80, nonce 0): the first body byte is the type.
 * Bodies are documented in docs/wire-format.md.
 */
export enum ControlType {
  Hello = 1,
  Ping = 2,
  Pong = 3,
  Goodbye = 4,
  /** Addresses of peers the sender knows (peer exchange); parsed and bounded by src/discovery/peer-exchange.ts. */
  PeerExchange = 5,
  /** A network-wide broadcast being routed (src/broadcast/pipeline.ts receives it, src/broadcast/router.ts relays it). */
  NetworkBroadcast = 6,
  /** Ids of recent network broadcasts the sender has (repair, src/broadcast/repair.ts). */
  BroadcastIHave = 7,
  /** Ids of network broadcasts the sender misses and asks for (repair). */
  BroadcastIWant = 8,
  /** The sender's directory digest: record counts and hashes per bucket of ids (anti-entropy, src/directory/sync.ts). */
  DirectoryDigest = 9,
  /** A page of directory records, sent for the buckets a digest showed to differ (src/directory/sync.ts). */
  DirectoryRecords = 10,
}

/** Why a connection was closed; sent in a goodbye so the other side can report it. */
export enum GoodbyeReason {
  /** An orderly close: disconnect(), or the node shutting down. */
  Normal = 0,
  /** The other side broke the wire protocol (a malformed or oversized frame, a stalled one). */
  ProtocolError = 1,
  /** The two nodes are connected already: this connection is the extra one. */
  Duplicate = 2,
  /** The node dialed itself. */
  Self = 3,
  /** The two nodes speak different protocol versions. */
  Version = 4,
  /** The node is full: at `maxInbound`, `maxInboundPerIp`, `maxPeers` or its share of inbound peers; sent after the hello exchange and a peer exchange naming up to 8 of its peers. */
  InboundLimit = 5,
  /** No hello within `handshakeTimeoutMs`. */
  HandshakeTimeout = 6,
  /** The remote is not the peer id that was dialed, or its hello contradicts its TLS certificate. */
  IdentityMismatch = 7,
  /** No pong within `pongTimeoutMs` of a ping. */
  IdleTimeout = 8,
  /** The remote id is not in this node's `allowedPeers`. */
  NotAllowed = 9,
  /** One side runs with TLS and the other without. */
  TlsMismatch = 10,
  /** The remote's TLS certificate was not acceptable (key type, signature, validity). */
  BadCertificate = 11,
  /** The peer is banned (misbehaviour, or by the application) for a while; the message says until when. */
  Banned = 12,
  /** Another node with the dialer's peer id, at another address, is connected already: two nodes share one key. */
  IdConflict = 13,
}

export interface Hello {
  version: number;
  peerId: string;
  /** Raw Ed25519 public key, hex. */
  publicKey: string;
  /** The address other peers can dial this node at, or null when it does not listen. */
  listenAddress: string | null;
  /** The largest frame this node accepts: a sender refuses larger ones at the call instead of losing them. */
  maxFrameBytes: number;
}

export type Control =
  | { type: ControlType.Hello; hello: Hello }
  | { type: ControlType.Ping; token: number }
  | { type: ControlType.Pong; token: number }
  | { type: ControlType.Goodbye; reason: GoodbyeReason; message: string }
  | { type: ControlType.PeerExchange; body: Buffer }
  | { type: ControlType.NetworkBroadcast; body: Buffer }
  | { type: ControlType.BroadcastIHave | ControlType.BroadcastIWant; body: Buffer }
  | { type: ControlType.DirectoryDigest | ControlType.DirectoryRecords; body: Buffer };

const MAX_HELLO_BYTES = 1024;
const MAX_GOODBYE_MESSAGE_BYTES = 256;

/** A whole control frame (for a connection that has no write queue, such as a refusal). */
export function encodeControl(control: Control): { chunks: Buffer[]; size: number } {
  return encodeFrame(FLAG_CONTROL, 0, undefined, controlBody(control));
}

/** The body of a control frame: its type byte, then what the type carries. */
export function controlBody(control: Control): Buffer {
  let body: Buffer;
  switch (control.type) {
    case ControlType.Hello:
      body = Buffer.concat([Buffer.of(control.type), Buffer.from(JSON.stringify(control.hello), 'utf8')]);
      break;
    case ControlType.Ping:
    case ControlType.Pong:
      body = Buffer.allocUnsafe(5);
      body[0] = control.type;
      body.writeUInt32BE(control.token >>> 0, 1);
      break;
    case ControlType.Goodbye: {
      const text = Buffer.from(control.message, 'utf8').subarray(0, MAX_GOODBYE_MESSAGE_BYTES);
      body = Buffer.concat([Buffer.of(control.type, control.reason), text]);
      break;
    }
    case ControlType.PeerExchange:
    case ControlType.NetworkBroadcast:
    case ControlType.BroadcastIHave:
    case ControlType.BroadcastIWant:
    case ControlType.DirectoryDigest:
    case ControlType.DirectoryRecords:
      body = Buffer.concat([Buffer.of(control.type), control.body]);
      break;
  }
  return body;
}

/** Parses a control frame's body. Throws P2PProtocolError on anything malformed or unknown. */
export function decodeControl(body: Buffer): Control {
  const type = body[0];
  const rest = body.subarray(1);
  switch (type) {
    case ControlType.Hello:
      return { type, hello: parseHello(rest) };
    case ControlType.Ping:
    case ControlType.Pong:
      if (rest.length !== 4) throw new P2PProtocolError('malformed ping/pong');
      return { type, token: rest.readUInt32BE(0) };
    case ControlType.Goodbye: {
      if (rest.length < 1) throw new P2PProtocolError('malformed goodbye');
      const text = rest.subarray(1);
      return {
        type,
        reason: rest[0] as GoodbyeReason,
        message: isUtf8(text) ? escapeControlCharacters(text.toString('utf8')) : '',
      };
    }
    case ControlType.PeerExchange:
      // Copied: the frame body is a view into the read buffer, and the content is judged later, with bounds.
      return { type, body: Buffer.from(rest) };
    case ControlType.NetworkBroadcast:
    case ControlType.BroadcastIHave:
    case ControlType.BroadcastIWant:
    case ControlType.DirectoryDigest:
    case ControlType.DirectoryRecords:
      return { type, body: rest }; // a view: parsed (and copied where kept) at once by the receiver
    default:
      throw new P2PProtocolError(`unknown control frame type ${type}`);
  }
}

/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Remote text as it may reach a log line: each control character written as a `\uXXXX` escape, so
 * that a goodbye saying "bye\n[Nest] ... ERROR ..." cannot forge a line in the peer's log.
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A listen address is printable ASCII without spaces (host names, IPv4, [IPv6], port): nothing else reaches a log. */
const LISTEN_ADDRESS = /^[\x21-\x7e]{1,300}$/;

const HEX40 = /^[0-9a-f]{40}$/;
/** The smallest maxFrameBytes a node may announce (the config's lower bound). */
const MIN_FRAME_BYTES = 64;
const HEX64 = /^[0-9a-f]{64}$/;

function parseHello(bytes: Buffer): Hello {
  if (bytes.length > MAX_HELLO_BYTES || !isUtf8(bytes)) throw new P2PProtocolError('malformed hello');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new P2PProtocolError('malformed hello: not JSON');
  }
  const h = value as Partial<Hello> | null;
  if (
    !h ||
    typeof h !== 'object' ||
    !Number.isInteger(h.version) ||
    typeof h.peerId !== 'string' ||
    !HEX40.test(h.peerId) ||
    typeof h.publicKey !== 'string' ||
    !HEX64.test(h.publicKey) ||
    !(h.listenAddress === null || (typeof h.listenAddress === 'string' && LISTEN_ADDRESS.test(h.listenAddress))) ||
    !Number.isInteger(h.maxFrameBytes) ||
    h.maxFrameBytes! < MIN_FRAME_BYTES
  ) {
    throw new P2PProtocolError('malformed hello: missing or invalid fields');
  }
  return { version: h.version!, peerId: h.peerId, publicKey: h.publicKey, listenAddress: h.listenAddress ?? null, maxFrameBytes: h.maxFrameBytes! };
}

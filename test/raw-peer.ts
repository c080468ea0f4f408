import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { decodeNetworkMessage, encodeNetworkMessage, type NetworkMessage } from '../src/broadcast/codec.js';
import { OriginKeys } from '../src/broadcast/signature.js';
import { loadIdentity, type Identity } from '../src/common/identity.js';
import { ALPN_PROTOCOL, createTlsCredentials, type TlsCredentials } from '../src/connection/secure-channel.js';
import { encodeFrame, encodeTopic, FrameDecoder } from '../src/wire/codec.js';
import { Encoding, FLAG_WRAPPED, PROTOCOL_VERSION } from '../src/wire/constants.js';
import { ControlType, decodeControl, encodeControl, type Control, type Hello } from '../src/wire/control.js';

export interface RawPeerOptions {
  identity?: Identity;
  /** Send a valid hello at once (default true). */
  hello?: boolean;
  /** Speak TLS 1.3 (default false). */
  tls?: boolean;
  /** The certificate to present over TLS (default: one for `identity`). */
  credentials?: TlsCredentials;
  /** Local address to dial from (e.g. 127.0.0.2, to be told apart from honest local peers). */
  localAddress?: string;
}

const keys = new OriginKeys();

/**
 * A hand-driven peer for hostile-input tests: speaks the handshake with a real
 * key (or a borrowed identity), then lets the test write arbitrary bytes.
 */
export class RawPeer {
  readonly controls: Control[] = [];
  closed = false;
  private readonly closedPromise: Promise<void>;

  private constructor(
    readonly socket: Socket,
    readonly identity: Identity,
  ) {
    const decoder = new FrameDecoder(64 * 1024 * 1024, (flags, _nonce, body) => {
      if (flags & 0x80) this.controls.push(decodeControl(Buffer.from(body)));
    });
    socket.on('data', (chunk) => {
      try {
        decoder.push(chunk);
      } catch {
        /* the node under test is allowed to send anything; we only watch controls */
      }
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  static async open(address: string, options: RawPeerOptions = {}): Promise<RawPeer> {
    const [host, port] = splitAddress(address);
    const identity = options.identity ?? loadIdentity();
    let socket: Socket;
    if (options.tls) {
      const credentials = options.credentials ?? (await createTlsCredentials(identity));
      socket = tlsConnect({
        socket: connect({ host, port, localAddress: options.localAddress }),
        secureContext: credentials.context,
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        ALPNProtocols: [ALPN_PROTOCOL],
      });
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    } else {
      socket = connect({ host, port, localAddress: options.localAddress });
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    }
    const peer = new RawPeer(socket, identity);
    if (options.hello !== false) peer.sendHello();
    return peer;
  }

  /** Sends this peer's hello; `overrides` forge fields for negative tests. */
  sendHello(overrides: Partial<Hello> = {}): void {
    const frame = encodeControl({
      type: ControlType.Hello,
      hello: {
        version: PROTOCOL_VERSION,
        peerId: this.identity.peerId,
        publicKey: this.identity.publicKeyRaw.toString('hex'),
        listenAddress: null,
        maxFrameBytes: 64 * 1024 * 1024,
        ...overrides,
      },
    });
    for (const chunk of frame.chunks) this.socket.write(chunk);
  }

  /** Sends a network broadcast frame (control type 6) carrying `message` as is. */
  sendBroadcast(message: NetworkMessage): void {
    this.write(Buffer.concat(encodeControl({ type: ControlType.NetworkBroadcast, body: encodeNetworkMessage(message) }).chunks));
  }

  /** Sends a neighbour event on `topic` (any text: the node must treat it as untrusted), UTF-8 data. */
  sendEvent(topic: string, data = 'x'): void {
    const frame = encodeFrame(FLAG_WRAPPED | Encoding.Utf8, 0, encodeTopic(topic), Buffer.from(data, 'utf8'));
    for (const chunk of frame.chunks) this.socket.write(chunk);
  }

  /** The network broadcasts the node has sent this peer so far, decoded. */
  broadcasts(): NetworkMessage[] {
    return this.controls
      .filter((c): c is Extract<Control, { type: ControlType.NetworkBroadcast }> => c.type === ControlType.NetworkBroadcast)
      .map((c) => decodeNetworkMessage(c.body, keys));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  goodbye(): Extract<Control, { type: ControlType.Goodbye }> | undefined {
    return this.controls.find((c): c is Extract<Control, { type: ControlType.Goodbye }> => c.type === ControlType.Goodbye);
  }

  /** Resolves when the node has closed the connection, or rejects after `ms`. */
  whenClosed(ms = 3000): Promise<void> {
    return Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error('connection still open')), ms).unref()),
    ]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}

export function header(flags: number, nonce: number, length: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = flags;
  b.writeUInt32BE(nonce, 1);
  b.writeUInt32BE(length >>> 0, 5);
  return b;
}

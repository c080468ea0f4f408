/**
 * The hello exchange of one connection: which side says hello first, the deadline for the
 * remote's hello, the checks on it (version, id against key and TLS certificate, self,
 * expected id, the node's admission), and what a goodbye before it is done means. Its host
 * (HandshakeHost) writes the frames, closes the connection on a failed check, and opens it
 * once the remote passes.
 */

import { P2PHandshakeError, P2PIdentityConflictError, P2PIdentityMismatchError, P2PSelfConnectionError, type PeerRef } from '../common/errors.js';
import { peerIdFromPublicKey } from '../common/identity.js';
import type { Direction } from '../common/types.js';
import { PROTOCOL_VERSION } from '../wire/constants.js';
import { ControlType, GoodbyeReason, type Control, type Hello } from '../wire/control.js';
import type { ProvenPeer } from './secure-channel.js';

/** Why a remote id is not admitted: the error its dialer or log gets, and the goodbye reason. */
export interface Refusal {
  error: Error;
  reason: GoodbyeReason;
}

/** What the hello exchange needs from its connection. */
export interface HandshakeHost {
  /** The remote as known so far, for errors. */
  ref(): PeerRef;
  writeControl(control: Control): void;
  /** The node's admission policy for a remote id (allowedPeers, bans). */
  admit(peerId: string): Refusal | undefined;
  /** Closes the connection with a goodbye giving `reason`. */
  fail(error: Error, reason: GoodbyeReason, level?: 'warn' | 'debug'): void;
  /** The remote's hello is genuine: from now on errors name it. Admission comes next. */
  identified(hello: Hello): void;
  /** The remote is admitted: the connection is open. */
  opened(): void;
}

/** The connection's options the hello exchange reads (a subset of SocketOptions). */
export interface HandshakeOptions {
  direction: Direction;
  localHello: Hello;
  /** For outbound connections to `<peerId>@host:port`: the id the remote must prove. */
  expectedPeerId?: string;
  /** Set on a TLS connection: the identity the remote's certificate proved. */
  proven?: ProvenPeer;
  /** This node's own certificate fingerprint (TLS): a remote with this node's id and another certificate is another process. */
  localFingerprint?: string;
  handshakeTimeoutMs: number;
}

type Failure = [Error, GoodbyeReason, ('warn' | 'debug')?];

export class Handshake {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: HandshakeHost,
    private readonly options: HandshakeOptions,
  ) {}

  /** Arms the deadline, refuses a TLS-proven id at once, and says hello when this side speaks first. */
  start(): void {
    const { handshakeTimeoutMs, proven, direction } = this.options;
    this.timer = setTimeout(
      () => this.host.fail(new P2PHandshakeError(`no hello within ${handshakeTimeoutMs} ms`, this.host.ref()), GoodbyeReason.HandshakeTimeout),
      handshakeTimeoutMs,
    );
    // On TLS the remote's id is already proven: refuse at once rather than after a hello round trip.
    const refusal = proven && this.refusal(proven.peerId);
    if (refusal) {
      this.host.fail(...refusal);
      return;
    }
    // Without TLS an inbound connection proves nothing until its hello: answer only once it is admitted,
    // so that a refused dialer gets the goodbye instead of a hello followed by a close.
    if (proven || direction === 'outbound') this.sayHello();
  }

  /** The remote's hello (its first: the host refuses a second one). */
  onHello(hello: Hello): void {
    clearTimeout(this.timer);
    const invalid = this.check(hello);
    if (invalid) return this.host.fail(...invalid);
    this.host.identified(hello);
    const proven = this.options.proven;
    const refusal = proven ? undefined : this.refusal(hello.peerId, hello);
    if (refusal) return this.host.fail(...refusal);
    if (!proven && this.options.direction === 'inbound') this.sayHello();
    this.host.opened();
  }

  /** The remote said goodbye before the hello exchange was done: why this connection failed. */
  refusedBy(reason: GoodbyeReason, message: string): Error {
    const refused = `refused by peer: ${message || GoodbyeReason[reason]}`;
    if (reason === GoodbyeReason.IdConflict) return identityConflict(this.options.localHello.peerId, message, this.host.ref());
    // Without TLS the accepting side answers only after our hello, so it is also where a self-dial is found.
    return reason === GoodbyeReason.Self ? new P2PSelfConnectionError(refused, this.host.ref()) : new P2PHandshakeError(refused, this.host.ref());
  }

  /** No hello is awaited any more: the connection is closing. */
  stop(): void {
    clearTimeout(this.timer);
  }

  private sayHello(): void {
    this.host.writeControl({ type: ControlType.Hello, hello: this.options.localHello });
  }

  /** Whether the hello is genuine: our protocol version, an id that is its key's, the key TLS proved. */
  private check(hello: Hello): Failure | undefined {
    if (hello.version !== PROTOCOL_VERSION) {
      return [new P2PHandshakeError(`protocol version ${hello.version}, expected ${PROTOCOL_VERSION}`, this.host.ref()), GoodbyeReason.Version];
    }
    if (peerIdFromPublicKey(Buffer.from(hello.publicKey, 'hex')) !== hello.peerId) {
      return [new P2PHandshakeError('hello peer id does not match its public key', this.host.ref()), GoodbyeReason.ProtocolError];
    }
    const proven = this.options.proven;
    if (proven && !proven.publicKeyRaw.equals(Buffer.from(hello.publicKey, 'hex'))) {
      const message = `hello claims peer id ${hello.peerId} but the TLS certificate proves ${proven.peerId}`;
      return [new P2PIdentityMismatchError(proven.peerId, hello.peerId, this.host.ref(), message), GoodbyeReason.IdentityMismatch];
    }
    return undefined;
  }

  /** Why a remote id cannot be admitted on this connection, if it cannot. */
  private refusal(peerId: string, hello?: Hello): Failure | undefined {
    if (peerId === this.options.localHello.peerId) {
      // Our own id: this node itself (a loop back to our own listener), or another process started with our key,
      // told apart by the certificate (new at every start) or, without TLS, by the address it announces.
      const { proven, localFingerprint, localHello } = this.options;
      const other = proven?.fingerprint && localFingerprint ? proven.fingerprint !== localFingerprint : !!hello?.listenAddress && !!localHello.listenAddress && hello.listenAddress !== localHello.listenAddress;
      if (other) {
        const address = hello?.listenAddress ?? this.host.ref().address;
        const how = `a node at ${address ?? 'an unknown address'} proves this node's own id`;
        const error = new P2PIdentityConflictError(peerId, address ?? undefined, this.host.ref(), how);
        // The dialer reports it (once, then it holds off); the side dialed only notes it.
        return [error, GoodbyeReason.IdConflict, this.options.direction === 'outbound' ? 'debug' : 'warn'];
      }
      return [new P2PSelfConnectionError('connection to self', this.host.ref()), GoodbyeReason.Self, 'debug'];
    }
    const expected = this.options.expectedPeerId;
    if (expected && expected !== peerId) {
      return [new P2PIdentityMismatchError(expected, peerId, this.host.ref()), GoodbyeReason.IdentityMismatch];
    }
    const refused = this.host.admit(peerId);
    return refused && [refused.error, refused.reason];
  }
}

/** The error a dialer gets when a peer refused it with goodbye 13: another node with its id is connected there. */
export function identityConflict(ownId: string, message: string, peer: PeerRef): P2PIdentityConflictError {
  // The refusing peer names where it has the other node ("… connected already from HOST:PORT"), or it is the other node itself.
  const other = /from (\S+)$/.exec(message)?.[1];
  return new P2PIdentityConflictError(ownId, other, peer, `${peer.address ?? 'a peer'} refused this node: ${message || 'another node with this id is connected'}`);
}

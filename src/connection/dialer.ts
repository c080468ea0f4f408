import { createConnection, type Socket } from 'node:net';
import { formatAddress, type PeerAddress } from './address.js';
import { P2PDialError, P2PError, P2PNotRunningError, type PeerRef } from '../common/errors.js';
import { secureOutbound, type ProvenPeer, type TlsCredentials } from './secure-channel.js';

/** A dialed connection, ready for the hello exchange: TCP, or TLS with the id the remote proved. */
export interface Channel {
  socket: Socket;
  proven?: ProvenPeer;
  ref: PeerRef;
}

export interface DialContext {
  dialTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** TLS credentials; undefined: plaintext. */
  credentials: TlsCredentials | undefined;
  /** The local address to dial from, if not the one the system picks. */
  localAddress?: string;
  /** Sockets still connecting or in their TLS handshake: they count against maxOutbound, and close() destroys them. */
  inFlight: Set<Socket>;
  isRunning(): boolean;
  /** The remote's certificate was refused: say why to it and close (the dial then fails with `problem`). */
  refuseCertificate(socket: Socket, problem: Error, ref: PeerRef): void;
}

/**
 * The dialing side of a connection, up to the hello: TCP connect within dialTimeoutMs
 * (a timeout is ETIMEDOUT, as Node's own), then the client side of TLS 1.3. Every failure
 * is a typed error naming the address.
 */
export function openChannel(target: PeerAddress, ctx: DialContext): Promise<Channel> {
  const ref: PeerRef = { address: formatAddress(target.host, target.port), peerId: target.peerId };
  const closedWhileDialing = () => new P2PNotRunningError('node closed while dialing', ref);
  return new Promise<Channel>((resolve, reject) => {
    const raw = createConnection({ host: target.host, port: target.port, localAddress: ctx.localAddress });
    ctx.inFlight.add(raw);
    const timer = setTimeout(() => {
      raw.destroy(new P2PDialError(`no connection within ${ctx.dialTimeoutMs} ms`, ref, { systemCode: 'ETIMEDOUT' }));
    }, ctx.dialTimeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      ctx.inFlight.delete(raw);
      reject(err instanceof P2PError ? err : new P2PDialError(err.message, ref, { cause: err }));
    };
    raw.once('error', onError);
    raw.once('connect', () => {
      clearTimeout(timer);
      raw.off('error', onError);
      if (!ctx.isRunning()) {
        ctx.inFlight.delete(raw);
        raw.destroy();
        return reject(closedWhileDialing());
      }
      if (!ctx.credentials) {
        ctx.inFlight.delete(raw);
        return resolve({ socket: raw, ref });
      }
      // Still in flight (maxOutbound, close()) until the TLS handshake is over.
      secureOutbound(raw, ctx.credentials, ctx.handshakeTimeoutMs, ref).then(
        (secured) => {
          ctx.inFlight.delete(raw);
          if (!ctx.isRunning()) {
            secured.socket.destroy();
            return reject(closedWhileDialing());
          }
          if (secured.problem) {
            ctx.refuseCertificate(secured.socket, secured.problem, ref);
            return reject(secured.problem);
          }
          resolve({ socket: secured.socket, proven: secured.proven, ref });
        },
        (err: Error) => {
          ctx.inFlight.delete(raw);
          reject(ctx.isRunning() ? err : closedWhileDialing());
        },
      );
    });
  });
}

// tsyringe, which @peculiar/x509 loads, needs the Reflect metadata API in place first.
import 'reflect-metadata';
import { X509CertificateGenerator } from '@peculiar/x509';
import { webcrypto, X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { P2PHandshakeError, P2PProtocolError, type PeerRef } from '../common/errors.js';
import { peerIdFromPublicKey, rawPublicKey, type Identity } from '../common/identity.js';

/**
 * The secure channel: TLS 1.3 with both sides presenting a self-signed
 * certificate for their Ed25519 identity key. There is no CA; instead each side
 * derives the remote peer id from the key in the certificate, and TLS's
 * CertificateVerify proves the remote holds that key. Everything here is
 * node:tls; the certificate is only built with @peculiar/x509.
 */

/** ALPN id: keeps a TLS client of another protocol from being mistaken for a peer. */
export const ALPN_PROTOCOL = 'nestjs-p2p/1';

/** Our certificate and key, ready for node:tls. */
export interface TlsCredentials {
  /** The key and certificate, for node:tls (TLS 1.3 only). */
  context: SecureContext;
  /** The self-signed certificate, PEM: its key is the node's Ed25519 key, its subject CN the peer id. */
  certificatePem: string;
  /** SHA-256 fingerprint of that certificate: new at every start, so it tells this node from another process with its key. */
  fingerprint: string;
}

/** What the TLS handshake proved about the remote end. */
export interface ProvenPeer {
  peerId: string;
  publicKeyRaw: Buffer;
  /** SHA-256 fingerprint of the remote's certificate (see TlsCredentials.fingerprint). */
  fingerprint?: string;
}

/**
 * A finished TLS handshake. `problem` is set when the remote's certificate was
 * not acceptable: the channel is still usable to tell the remote why.
 */
export type SecuredConnection =
  | { socket: TLSSocket; proven: ProvenPeer; problem?: undefined }
  | { socket: TLSSocket; proven?: undefined; problem: P2PHandshakeError };

const ED25519 = { name: 'Ed25519' } as const;
// Certificates are regenerated at every start, so a long validity costs nothing and never expires under a running node.
const VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
const CLOCK_SKEW_MS = 3600 * 1000;

/** Builds a self-signed certificate for the node's identity key. */
export async function createTlsCredentials(
  identity: Identity,
  validity: { notBefore?: Date; notAfter?: Date } = {},
): Promise<TlsCredentials> {
  const subtle = webcrypto.subtle;
  const keyPem = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const privateKey = await subtle.importKey('pkcs8', identity.privateKey.export({ format: 'der', type: 'pkcs8' }), ED25519, false, ['sign']);
  const publicKey = await subtle.importKey('spki', identity.publicKey.export({ format: 'der', type: 'spki' }), ED25519, true, ['verify']);
  const now = Date.now();
  const cert = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: `CN=${identity.peerId}`,
      notBefore: validity.notBefore ?? new Date(now - CLOCK_SKEW_MS),
      notAfter: validity.notAfter ?? new Date(now + VALIDITY_MS),
      keys: { privateKey, publicKey },
      signingAlgorithm: ED25519,
    },
    webcrypto as unknown as Parameters<typeof X509CertificateGenerator.createSelfSigned>[1],
  );
  const certificatePem = cert.toString('pem');
  const fingerprint = new X509Certificate(certificatePem).fingerprint256;
  return { context: createSecureContext({ key: keyPem, cert: certificatePem, ...TLS_VERSIONS }), certificatePem, fingerprint };
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // a positive DER integer
  return Buffer.from(bytes).toString('hex');
}

const TLS_VERSIONS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

/**
 * Checks the certificate the remote presented and derives its peer id.
 * Chain validation is off (there is no CA), so this is the whole check: present,
 * Ed25519, self-signed by that key, within its validity period, and ALPN agreed.
 */
export function verifyPeerCertificate(socket: TLSSocket, ref: PeerRef): ProvenPeer {
  if (socket.alpnProtocol !== ALPN_PROTOCOL) {
    throw new P2PHandshakeError(`TLS peer did not negotiate ${ALPN_PROTOCOL}`, ref);
  }
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new P2PHandshakeError('TLS peer presented no certificate', ref);
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new P2PHandshakeError(`TLS peer certificate has a ${key.asymmetricKeyType} key, not Ed25519`, ref);
  }
  if (!cert.verify(key)) throw new P2PHandshakeError('TLS peer certificate is not self-signed by its key', ref);
  const now = Date.now();
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
    throw new P2PHandshakeError(`TLS peer certificate is outside its validity (${cert.validFrom} to ${cert.validTo})`, ref);
  }
  const publicKeyRaw = rawPublicKey(key);
  return { peerId: peerIdFromPublicKey(publicKeyRaw), publicKeyRaw, fingerprint: cert.fingerprint256 };
}

/** A TLS record starts with content type 22 (handshake) or 21 (alert), then major version 3. */
export function looksLikeTls(bytes: Buffer): boolean {
  return bytes.length >= 2 && (bytes[0] === 0x16 || bytes[0] === 0x15) && bytes[1] === 0x03;
}

/** Raised when an inbound connection speaks plaintext to a TLS node: the caller answers it in plaintext. */
export class PlaintextOnTlsError extends P2PProtocolError {}

/**
 * Runs the server side of the handshake on an accepted TCP socket. The first
 * bytes are peeked so that a plaintext peer gets a clear refusal rather than a
 * TLS alert it cannot read.
 */
export function secureInbound(raw: Socket, credentials: TlsCredentials, timeoutMs: number, ref: PeerRef): Promise<SecuredConnection> {
  return handshake(raw, timeoutMs, ref, (done) => {
    raw.once('data', (first: Buffer) => {
      raw.pause();
      if (first[0] !== 0x16) {
        done.fail(new PlaintextOnTlsError('peer sent plaintext to a TLS node (is it running with tls: false?)', ref));
        return;
      }
      raw.unshift(first);
      const socket = new TLSSocket(raw, {
        isServer: true,
        secureContext: credentials.context,
        requestCert: true,
        rejectUnauthorized: false,
        ALPNProtocols: [ALPN_PROTOCOL],
      });
      done.watch(socket, 'secure');
    });
  });
}

/** Runs the client side of the handshake on a connected TCP socket. */
export function secureOutbound(raw: Socket, credentials: TlsCredentials, timeoutMs: number, ref: PeerRef): Promise<SecuredConnection> {
  return handshake(raw, timeoutMs, ref, (done) => {
    const socket = tlsConnect({
      socket: raw,
      secureContext: credentials.context,
      rejectUnauthorized: false,
      // Identity is the peer id in the certificate, not a host name.
      checkServerIdentity: () => undefined,
      ALPNProtocols: [ALPN_PROTOCOL],
      ...TLS_VERSIONS,
    });
    done.watch(socket, 'secureConnect');
  });
}

interface HandshakeControl {
  /** Follows a TLS socket until it is secure, fails or closes. */
  watch(socket: TLSSocket, secureEvent: 'secure' | 'secureConnect'): void;
  fail(err: Error): void;
}

/** One settle-once promise around a handshake, bounded by `timeoutMs`; the sockets are destroyed on failure. */
function handshake(
  raw: Socket,
  timeoutMs: number,
  ref: PeerRef,
  start: (control: HandshakeControl) => void,
): Promise<SecuredConnection> {
  return new Promise((resolve, reject) => {
    let tls: TLSSocket | undefined;
    let settled = false;
    const finish = (err: Error | undefined, value?: SecuredConnection) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      raw.off('close', onRawClose);
      if (err) {
        // A plaintext peer is answered in plaintext by the caller, so its socket stays open.
        if (!(err instanceof PlaintextOnTlsError)) (tls ?? raw).destroy();
        reject(err);
      } else {
        resolve(value!);
      }
    };
    const timer = setTimeout(() => finish(new P2PHandshakeError(`no TLS handshake within ${timeoutMs} ms`, ref)), timeoutMs);
    const onRawClose = () => finish(new P2PHandshakeError('connection closed before the TLS handshake completed', ref));
    raw.on('error', () => undefined); // surfaces as 'close'; the TLS socket reports the cause
    raw.once('close', onRawClose);
    start({
      fail: (err) => finish(err),
      watch(socket, secureEvent) {
        tls = socket;
        const onError = (err: Error & { code?: string }) =>
          finish(new P2PHandshakeError(`TLS handshake failed: ${err.message}${hint(err)}`, ref, { cause: err }));
        const onClose = () =>
          finish(new P2PHandshakeError('connection closed during the TLS handshake (is the peer running with tls: false?)', ref));
        socket.once('error', onError);
        socket.once('close', onClose);
        socket.once(secureEvent, () => {
          socket.off('error', onError);
          socket.off('close', onClose);
          // Errors after this point belong to the connection's owner; this keeps one from escaping in between.
          socket.on('error', () => undefined);
          if (settled) return;
          try {
            finish(undefined, { socket, proven: verifyPeerCertificate(socket, ref) });
          } catch (err) {
            finish(undefined, { socket, problem: err as P2PHandshakeError });
          }
        });
      },
    });
  });
}

function hint(err: { code?: string }): string {
  return err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || err.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG'
    ? ' (is the peer running with tls: false?)'
    : '';
}

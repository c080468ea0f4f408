import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';

/**
 * A node's identity: an Ed25519 key pair. The peer id is the hex of the first
 * 20 bytes of SHA-256 of the raw public key (the seed's address derivation).
 */
export interface Identity {
  /** The node's peer id: 40 hex characters, what other nodes and `<peerId>@host:port` name it by. */
  peerId: string;
  /** The Ed25519 private key: signs network broadcasts and the TLS certificate. */
  privateKey: KeyObject;
  /** The Ed25519 public key, as a node:crypto KeyObject. */
  publicKey: KeyObject;
  /** Raw 32-byte public key. */
  publicKeyRaw: Buffer;
  /** True when the key was generated for this run only. */
  ephemeral: boolean;
}

// PKCS#8 prefix of an Ed25519 private key (RFC 8410): lets a 32-byte hex seed load through node:crypto.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The peer id of a raw 32-byte Ed25519 public key: hex of the first 20 bytes of its SHA-256. */
export function peerIdFromPublicKey(raw: Buffer): string {
  return createHash('sha256').update(raw).digest().subarray(0, 20).toString('hex');
}

export function rawPublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

/** Loads a key from PEM (PKCS#8) or a 64-hex-char seed, or generates one when `key` is undefined. */
export function loadIdentity(key?: string): Identity {
  let privateKey: KeyObject;
  let ephemeral = false;
  if (key === undefined) {
    // Generated encoded and loaded afresh, not kept as the generator's KeyObject: node:crypto (seen on Node
    // 20.20) can deadlock when a GC during a key's JWK export collects the finished KeyGenJob that shares
    // that key's mutex (the job's destructor locks it while the export holds it): a CI test process hung
    // for good in ExportJWK → GC → ~KeyGenJob → pthread_mutex_lock. As JWK, not PKCS#8 DER: OpenSSL 3's
    // decoder made loading DER cost 0.8 ms a key here, the JWK's raw key 0.06 ms (tests make 20 000 throwaway keys).
    // @types/node has no 'jwk' overload for ed25519 key generation; Node returns the JWK objects.
    const jwk = (generateKeyPairSync('ed25519', { privateKeyEncoding: { format: 'jwk' }, publicKeyEncoding: { format: 'jwk' } } as never) as unknown as { privateKey: JsonWebKey }).privateKey;
    privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
    ephemeral = true;
  } else if (/^[0-9a-fA-F]{64}$/.test(key.trim())) {
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(key.trim(), 'hex')]);
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } else {
    privateKey = createPrivateKey(key);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`privateKey must be an Ed25519 key, got ${privateKey.asymmetricKeyType}`);
  }
  const publicKey = createPublicKey(privateKey);
  const publicKeyRaw = rawPublicKey(publicKey);
  return { peerId: peerIdFromPublicKey(publicKeyRaw), privateKey, publicKey, publicKeyRaw, ephemeral };
}

/** What loadIdentityFile found or made. */
export interface KeyFileResult {
  /** The key in the file, as an identity (never ephemeral). */
  identity: Identity;
  /** The file did not exist and a new key was written to it. */
  created: boolean;
  /** The file is readable or writable by group or others. */
  widePermissions: boolean;
}

/**
 * Loads the key in `path` (PEM or 64 hex characters), or generates one and
 * writes it there as PKCS#8 PEM with mode 0600, so the node keeps its peer id
 * across restarts. The write uses `wx`: two nodes started on one missing file
 * cannot overwrite each other's key.
 */
export function loadIdentityFile(path: string): KeyFileResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const identity = loadIdentity();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const pem = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    try {
      writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600); // the umask may have narrowed the mode, never widened it; this makes it exact
      return { identity: { ...identity, ephemeral: false }, created: true, widePermissions: false };
    } catch (writeErr) {
      if ((writeErr as NodeJS.ErrnoException).code !== 'EEXIST') throw writeErr;
      text = readFileSync(path, 'utf8'); // another process created it first: use its key
    }
  }
  const widePermissions = process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0;
  let identity: Identity;
  try {
    identity = loadIdentity(text.trim());
  } catch (err) {
    // OpenSSL's own message ("error:1E08010C:DECODER routines::unsupported") names neither the file nor what it wants.
    throw new Error(`key file ${path} is not an Ed25519 private key: expected a PKCS#8 PEM or 64 hex characters (${(err as Error).message})`, { cause: err });
  }
  return { identity, created: false, widePermissions };
}

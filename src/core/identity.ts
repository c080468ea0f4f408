import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/**
 * A node's identity: an Ed25519 key pair. The peer id is the hex of the first
 * 20 bytes of SHA-256 of the raw public key (the seed's address derivation).
 */
export interface Identity {
  peerId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Raw 32-byte public key. */
  publicKeyRaw: Buffer;
  /** True when the key was generated for this run only. */
  ephemeral: boolean;
}

// PKCS#8 prefix of an Ed25519 private key (RFC 8410): lets a 32-byte hex seed load through node:crypto.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

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
    privateKey = generateKeyPairSync('ed25519').privateKey;
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

/** Raw Ed25519 public keys as node:crypto takes them, and the keys no signer may use. */

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): prepended to a raw 32-byte key, node:crypto loads it. */
export const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Encodings of the Ed25519 points of small order (libsodium's blocklist, compared
 * without the sign bit): with such a "public key" anyone can make signatures that
 * verify, so no origin may use one.
 */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

export function isSmallOrderKey(raw: Buffer): boolean {
  return SMALL_ORDER.some((point) => point.compare(raw, 0, 31, 0, 31) === 0 && (point[31]! & 0x7f) === (raw[31]! & 0x7f));
}

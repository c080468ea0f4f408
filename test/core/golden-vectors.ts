/** Golden frames, also listed in docs/wire-format.md. Hex is the whole frame. */
export const GOLDEN = [
  {
    name: 'event "ping", json {"a":1}',
    hex: '12' + '00000000' + '0000000d' + '0004' + '70696e67' + '7b2261223a317d',
    flags: 0x12, nonce: 0, kind: 'event', topic: 'ping', value: { a: 1 },
  },
  {
    name: 'request "sum", binary 01 02 03, nonce 1',
    hex: '18' + '00000001' + '00000008' + '0003' + '73756d' + '010203',
    flags: 0x18, nonce: 1, kind: 'request', topic: 'sum', value: Buffer.from([1, 2, 3]),
  },
  {
    name: 'event "t", utf8 "hé"',
    hex: '11' + '00000000' + '00000006' + '0001' + '74' + '68c3a9',
    flags: 0x11, nonce: 0, kind: 'event', topic: 't', value: 'hé',
  },
  {
    name: 'event "pb", protobuf bytes 08 96 01',
    hex: '13' + '00000000' + '00000007' + '0002' + '7062' + '089601',
    flags: 0x13, nonce: 0, kind: 'event', topic: 'pb', value: Buffer.from([0x08, 0x96, 0x01]),
  },
  {
    name: 'response, utf8 "ok", end of stream, nonce 1',
    hex: '61' + '00000001' + '00000002' + '6f6b',
    flags: 0x61, nonce: 1, kind: 'response', value: 'ok',
  },
  {
    name: 'response, json 7, more to come, nonce 4294967295',
    hex: '22' + 'ffffffff' + '00000001' + '37',
    flags: 0x22, nonce: 0xffffffff, kind: 'response', value: 7,
  },
  {
    name: 'bare end of a reply stream, nonce 2',
    hex: '60' + '00000002' + '00000000',
    flags: 0x60, nonce: 2, kind: 'response', value: undefined,
  },
  {
    name: 'error reply {"status":"error","message":"x"}, nonce 3',
    hex: '66' + '00000003' + '00000020' + Buffer.from('{"status":"error","message":"x"}').toString('hex'),
    flags: 0x66, nonce: 3, kind: 'response', value: { status: 'error', message: 'x' },
  },
  {
    name: 'control ping, token 1',
    hex: '80' + '00000000' + '00000005' + '02' + '00000001',
    flags: 0x80, nonce: 0, kind: 'control', value: undefined,
  },
  {
    name: 'control goodbye, reason 5 (inbound limit), "full"',
    hex: '80' + '00000000' + '00000006' + '04' + '05' + '66756c6c',
    flags: 0x80, nonce: 0, kind: 'control', value: undefined,
  },
] as const;

/**
 * A signed network broadcast (control type 6, protocol version 2), also in docs/wire-format.md.
 * Key: the 32-byte seed 11…11; RainTree, 0 hops, the whole ring; timestamp 1 764 000 000 000 000 µs;
 * json {"a":1} on "news". Ed25519 is deterministic, so signing again gives the same bytes.
 */
export const SIGNED_BROADCAST = {
  seed: '11'.repeat(32),
  peerId: '10ba682c8ad13513971e8b56881aab8bd702bb80',
  id: '1cebd3f001d2c8593be5e0ee2826dbf8',
  hex:
    '80' + '00000000' + '000000a9' + '06' +
    // relay part: strategy 0 (RainTree), hops 0, arc from, arc to, digest count, digest xor
    '00' + '00' + '0000000000000000000000000000000000000000' + '0000000000000000000000000000000000000000' + '00000000' + '00000000' +
    // signature
    'afc963c64d73a3a7b1c0f47511504cbd42b13709303ad42c074227e93eec7a13e314a0952785cbf1e10171e3b21531400e4d820e4a0b2f7e26b6844f2d1f6101' +
    // signed part: origin public key, timestamp µs, encoding 2 (json), topic length, topic, payload
    'd04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737' + '0006445941624000' + '02' + '0004' + '6e657773' + '7b2261223a317d',
} as const;

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
 * A signed network broadcast (control type 6, protocol version 6: a batch of one), also in docs/wire-format.md.
 * Key: the 32-byte seed 11…11; RainTree, 0 hops, the whole ring; timestamp 1 764 000 000 000 000 µs;
 * json {"a":1} on "news". Ed25519 is deterministic, so signing again gives the same bytes.
 */
export const SIGNED_BROADCAST = {
  seed: '11'.repeat(32),
  peerId: '10ba682c8ad13513971e8b56881aab8bd702bb80',
  id: '1cebd3f001d2c8593be5e0ee2826dbf8',
  hex:
    '80' + '00000000' + '000000ad' + '06' +
    // relay part: strategy 0 (RainTree), hops 0, arc from, arc to, digest count, digest xor
    '00' + '00' + '0000000000000000000000000000000000000000' + '0000000000000000000000000000000000000000' + '00000000' + '00000000' +
    // signature over the batch: prefix, leaf count 1, root (for one leaf, the leaf hash)
    '282f3e4895f88475565bd00bde43030dae80ea5d2141b4a758e8686540db4466f5e2c91cd94d5ff6002ece05f792d5eb9707e9948f7f8a0d0b0d9592e5030d04' +
    // proof: leaf count 1, leaf index 0, no sibling
    '0001' + '0000' +
    // signed part: origin public key, timestamp µs, encoding 2 (json), topic length, topic, payload
    'd04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737' + '0006445941624000' + '02' + '0004' + '6e657773' + '7b2261223a317d',
} as const;

/**
 * The third broadcast of a batch of three by the same key: json {"a":1}, {"a":2}, {"a":3} on "news"
 * at 1 764 000 000 000 000, +1 and +2 µs, signed together (docs/wire-format.md). Its leaf is the odd
 * one of the first level, carried up as it is, so its proof has one sibling: the hash over the first two leaves.
 */
export const BATCHED_BROADCAST = {
  seed: '11'.repeat(32),
  id: '475c78a5242a71208e0f30b412dea3b9',
  hex:
    '80' + '00000000' + '000000cd' + '06' +
    '00' + '00' + '0000000000000000000000000000000000000000' + '0000000000000000000000000000000000000000' + '00000000' + '00000000' +
    // signature over the batch: prefix, leaf count 3, root
    '23cbd79a256f33e52158f1be2ec721f0a5f9a4b3cc208bf3c7a0a75c761c683b518fdadaf63112b25c7123dc10c8ee9ae774c552d6eed2671d9b0a728a95f60d' +
    // proof: leaf count 3, leaf index 2, one sibling
    '0003' + '0002' + '085f983560ef5a24856f9b817559b6264b1427eda48724726ae96c75fbe56df4' +
    'd04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737' + '0006445941624002' + '02' + '0004' + '6e657773' + '7b2261223a337d',
} as const;

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { echo, startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';
import { decodeNetworkMessage, createNetworkMessage, encodeNetworkMessage } from '../../src/broadcast/codec.js';
import { OriginKeys } from '../../src/broadcast/signature.js';
import { P2PProtocolError } from '../../src/common/errors.js';
import { loadIdentity } from '../../src/common/identity.js';
import { parsePeerExchange } from '../../src/discovery/peer-exchange.js';
import { type Peer } from '../../src/node/peer.js';
import { decodePayload, encodeFrame, encodeTopic, FrameDecoder, parseMessage } from '../../src/wire/codec.js';
import { Encoding } from '../../src/wire/constants.js';
import { ControlType, decodeControl, encodeControl, GoodbyeReason } from '../../src/wire/control.js';
import { GOLDEN } from './golden-vectors.js';

/**
 * Decoder fuzzing: random and mutated frames through everything a socket runs
 * on received bytes. Each input either decodes or ends in a P2PProtocolError;
 * no other exception may escape. CI runs ≥ 100 000 frames; P2P_FUZZ_FRAMES raises it.
 */
const keys = new OriginKeys();
const FRAMES = Number(process.env.P2P_FUZZ_FRAMES ?? 100_000);
const PER_RUN = 50;
const MAX_FRAME = 64 * 1024;

/** What P2PSocket does with one frame's bytes, minus the socket. */
function decodeFrame(flags: number, nonce: number, body: Buffer): void {
  const message = parseMessage(flags, nonce, body);
  if (message.kind === 'control') {
    const control = decodeControl(message.payload);
    if (control.type === ControlType.NetworkBroadcast) decodeNetworkMessage(control.body, keys);
    if (control.type === ControlType.PeerExchange) parsePeerExchange(control.body, () => false);
    return;
  }
  // A response is decoded only for a pending request; with none pending (as here and for a raw peer) it is dropped unread.
  if (message.kind !== 'response') decodePayload(message.encoding, message.payload);
}

/** Feeds a byte stream in the given chunks; returns how it ended. */
function run(stream: Buffer, cuts: number[]): { frames: number; error?: unknown } {
  let frames = 0;
  const decoder = new FrameDecoder(MAX_FRAME, (flags, nonce, body) => {
    frames++;
    decodeFrame(flags, nonce, body);
  });
  let at = 0;
  try {
    for (const cut of [...cuts.map((c) => c % (stream.length + 1)).sort((a, b) => a - b), stream.length]) {
      if (cut < at) continue;
      decoder.push(stream.subarray(at, cut));
      at = cut;
    }
  } catch (error) {
    return { frames, error };
  }
  return { frames };
}

const seeds: Buffer[] = [
  ...GOLDEN.map((g) => Buffer.from(g.hex, 'hex')),
  Buffer.concat(encodeControl({ type: ControlType.Hello, hello: { version: 2, peerId: 'a'.repeat(40), publicKey: 'b'.repeat(64), listenAddress: null, maxFrameBytes: 65536 } }).chunks),
  Buffer.concat(encodeControl({ type: ControlType.PeerExchange, body: Buffer.from('{"peers":[{"id":"' + 'c'.repeat(40) + '","address":"127.0.0.1:1"}]}') }).chunks),
  Buffer.concat(encodeFrame(0x12, 0, encodeTopic('topic'), Buffer.from('{"x":[1,2,3]}')).chunks),
  Buffer.concat(
    encodeControl({
      type: ControlType.NetworkBroadcast,
      body: encodeNetworkMessage(
        createNetworkMessage(loadIdentity('11'.repeat(32)), { timestampUs: 1_764_000_000_000_000, encoding: Encoding.Json, topic: 'news', payload: Buffer.from('{"a":1}'), strategy: 'raintree' }),
      ),
    }).chunks,
  ),
];

/** A frame built from a seed by flipping, inserting, deleting or overwriting bytes. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.constantFrom('flip', 'insert', 'delete', 'set'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
  )
  .map(([seed, edits]) => {
    const bytes = [...seed];
    for (const [op, pos, value] of edits) {
      const i = pos % (bytes.length + 1);
      if (op === 'flip' && i < bytes.length) bytes[i] = bytes[i]! ^ (1 << (value % 8));
      else if (op === 'insert') bytes.splice(i, 0, value);
      else if (op === 'delete' && i < bytes.length) bytes.splice(i, 1);
      else if (op === 'set' && i < bytes.length) bytes[i] = value;
    }
    return Buffer.from(bytes);
  });

/** A random header (any flags, nonce, plausible or absurd length) and random body bytes. */
const random = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.nat(), fc.oneof(fc.nat({ max: 64 }), fc.nat()), fc.uint8Array({ maxLength: 64 }))
  .map(([flags, nonce, length, body]) => {
    const header = Buffer.alloc(9);
    header[0] = flags;
    header.writeUInt32BE(nonce >>> 0, 1);
    header.writeUInt32BE(length >>> 0, 5);
    return Buffer.concat([header, Buffer.from(body)]);
  });

describe(`decoder fuzz (${FRAMES} frames)`, () => {
  it('decodes or raises P2PProtocolError for every random and mutated frame, never anything else', () => {
    let total = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(mutated, random), { minLength: PER_RUN, maxLength: PER_RUN }), fc.array(fc.nat(), { maxLength: 8 }), (frames, cuts) => {
        for (const frame of frames) {
          // Each frame alone, as the first bytes of a connection, split at random points.
          const { error } = run(frame, cuts);
          total++;
          if (error !== undefined) {
            rejected++;
            if (!(error instanceof P2PProtocolError)) throw error;
          }
        }
      }),
      { numRuns: Math.ceil(FRAMES / PER_RUN) },
    );
    expect(total).toBeGreaterThanOrEqual(FRAMES);
    // Both paths are exercised: most mutations are caught, some are still valid frames.
    expect(rejected).toBeGreaterThan(total / 10);
    expect(rejected).toBeLessThan(total);
  }, 120_000);
});

describe('fuzzed input over real sockets', () => {
  const open: Peer[] = [];
  const raws: RawPeer[] = [];
  afterEach(async () => {
    raws.splice(0).forEach((r) => r.destroy());
    await Promise.all(open.splice(0).map((p) => p.close()));
  });

  it('closes every connection that sends a malformed frame with a protocol-error goodbye, while a good peer keeps being served', async () => {
    // The same frame limit as the pure decoder above, so "malformed" means the same to both.
    const node = await startEchoPeer({ maxInbound: 100, maxInboundPerIp: 100, inboundRatePerIp: 1000, maxPendingInbound: 100, maxFrameBytes: MAX_FRAME, maxQueueBytes: 4 * MAX_FRAME }, open);
    const good = await startEchoPeer({}, open);
    await good.connect(`${node.id}@${node.address()}`);
    // Malformed inputs only: what the pure decoder rejects, the node must reject the same way.
    const inputs = fc
      .sample(fc.oneof(mutated, random), { numRuns: 2000, seed: 7 })
      .filter((frame) => run(frame, []).error !== undefined)
      .slice(0, 200);
    expect(inputs.length).toBe(200);
    let served = 0;
    let serving = true;
    const goodTraffic = (async () => {
      while (serving) {
        if ((await echo(good, node.id, served)) !== served) throw new Error('wrong echo');
        served++;
      }
    })().catch((err: unknown) => err);
    for (let i = 0; i < inputs.length; i += 20) {
      const batch = await Promise.all(inputs.slice(i, i + 20).map((frame) => RawPeer.open(node.address()!, { tls: true })));
      raws.push(...batch);
      await waitFor(() => node.peers().length === 1 + batch.length, 5000, 'the raw peers to finish their hello');
      batch.forEach((r, k) => r.write(inputs[i + k]!));
      await Promise.all(batch.map((r) => r.whenClosed(5000)));
      for (const r of batch) expect(r.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    }
    serving = false;
    expect(await goodTraffic).toBeUndefined(); // no request of the good peer failed
    expect(served).toBeGreaterThan(0);
    // The raw side sees its close first; the node's own bookkeeping follows within a tick or two.
    await waitFor(() => node.peers().length === 1, 5000, 'the node to drop the closed connections');
    expect(node.peers().map((p) => p.id)).toEqual([good.id]);
  }, 60_000);
});

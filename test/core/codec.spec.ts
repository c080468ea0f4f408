import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { P2PFrameTooLargeError, P2PProtocolError } from '../../src/common/errors.js';
import { decodePayload, decodePayloadAt, encodeFrame, encodePayload, encodeTopic, FIRST_PARTIAL_BYTES, FrameDecoder, parseMessage, ProtobufPayload, readWrapped, TopicCache } from '../../src/wire/codec.js';
import { HEADER_BYTES } from '../../src/wire/constants.js';
import { ControlType, decodeControl, encodeControl, GoodbyeReason } from '../../src/wire/control.js';
import { GOLDEN } from './golden-vectors.js';

type Frame = { flags: number; nonce: number; body: Buffer };

function decodeAll(chunks: Buffer[], max = 1 << 20): Frame[] {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(max, (flags, nonce, body) => frames.push({ flags, nonce, body: Buffer.from(body) }));
  for (const chunk of chunks) decoder.push(chunk);
  return frames;
}

function hexFrame(flags: number, nonce: number, body: Buffer): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head[0] = flags;
  head.writeUInt32BE(nonce, 1);
  head.writeUInt32BE(body.length, 5);
  return Buffer.concat([head, body]);
}

describe('codec: golden vectors (docs/wire-format.md)', () => {
  for (const g of GOLDEN) {
    it(`decodes ${g.name}`, () => {
      const [frame] = decodeAll([Buffer.from(g.hex, 'hex')]);
      expect(frame).toBeDefined();
      expect(frame!.flags).toBe(g.flags);
      expect(frame!.nonce).toBe(g.nonce);
      const msg = parseMessage(frame!.flags, frame!.nonce, frame!.body);
      expect(msg.kind).toBe(g.kind);
      if ('topic' in g) expect(msg.topic).toBe(g.topic);
      if (g.kind !== 'control' && !(msg.end && msg.payload.length === 0 && msg.encoding === 0)) {
        expect(decodePayload(msg.encoding, msg.payload)).toEqual(g.value);
      }
    });

    it(`encodes ${g.name}`, () => {
      let encoded: Buffer;
      if (g.kind === 'control') {
        const body = Buffer.from(g.hex, 'hex').subarray(HEADER_BYTES);
        encoded = Buffer.concat(encodeControl(decodeControl(body)).chunks);
      } else {
        const payload =
          g.flags & 0x04 || (g.flags & 0x03) === 2
            ? Buffer.from(JSON.stringify(g.value) ?? '', 'utf8')
            : (g.flags & 0x03) === 3
              ? encodePayload(new ProtobufPayload(g.value as Buffer)).bytes
              : encodePayload(g.value).bytes;
        const topic = 'topic' in g ? encodeTopic(g.topic) : undefined;
        encoded = Buffer.concat(encodeFrame(g.flags, g.nonce, topic, payload).chunks);
      }
      expect(encoded.toString('hex')).toBe(g.hex);
    });
  }

  it('encodes payload types to their encodings', () => {
    expect(encodePayload(Buffer.from('a')).encoding).toBe(0);
    expect(encodePayload(new Uint8Array([1])).encoding).toBe(0);
    expect(encodePayload('a').encoding).toBe(1);
    expect(encodePayload({ a: 1 }).encoding).toBe(2);
    expect(encodePayload(undefined)).toEqual({ encoding: 2, bytes: Buffer.alloc(0) });
    expect(encodePayload(new ProtobufPayload(new Uint8Array([9]))).encoding).toBe(3);
    expect(decodePayload(2, Buffer.alloc(0))).toBeUndefined();
  });

  it('round-trips every control frame', () => {
    const hello = { version: 2, peerId: 'a'.repeat(40), publicKey: 'b'.repeat(64), listenAddress: '127.0.0.1:1', maxFrameBytes: 4 * 1024 * 1024 };
    for (const control of [
      { type: ControlType.Hello, hello },
      { type: ControlType.Ping, token: 7 },
      { type: ControlType.Pong, token: 0xffffffff },
      { type: ControlType.Goodbye, reason: GoodbyeReason.Duplicate, message: 'already connected' },
    ] as const) {
      const [frame] = decodeAll(encodeControl(control).chunks);
      expect(decodeControl(frame!.body)).toEqual(control);
    }
  });
});

describe('codec: malformed input is a typed protocol error', () => {
  const topic = Buffer.from('0001' + '74', 'hex');
  const cases: Array<[string, Buffer]> = [
    ['request and response both set', hexFrame(0x38, 1, topic)],
    ['control frame with other flags', hexFrame(0x81, 0, Buffer.from([2, 0, 0, 0, 1]))],
    ['control frame with a nonce', hexFrame(0x80, 5, Buffer.from([2, 0, 0, 0, 1]))],
    ['control frame without a type', hexFrame(0x80, 0, Buffer.alloc(0))],
    ['response without a nonce', hexFrame(0x20, 0, Buffer.from('x'))],
    ['response with a topic', hexFrame(0x30, 1, topic)],
    ['error reply not in json', hexFrame(0x64, 1, Buffer.from('x'))],
    ['error bit on an event', hexFrame(0x14, 0, topic)],
    ['end bit on a request', hexFrame(0x58, 1, topic)],
    ['event without a topic', hexFrame(0x02, 0, Buffer.from('{}'))],
    ['request without a topic', hexFrame(0x08, 1, Buffer.from('{}'))],
    ['request without a nonce', hexFrame(0x18, 0, topic)],
    ['event with a nonce', hexFrame(0x10, 9, topic)],
    ['wrapped body shorter than its topic length', hexFrame(0x10, 0, Buffer.from([0]))],
  ];
  for (const [name, bytes] of cases) {
    it(name, () => {
      expect(() => decodeAll([bytes])).toThrow(P2PProtocolError);
    });
  }

  it('rejects an oversized length from the header alone, before allocating', () => {
    const header = Buffer.from('12' + '00000000' + 'ffffffff', 'hex');
    const before = process.memoryUsage().arrayBuffers;
    expect(() => decodeAll([header], 4 * 1024 * 1024)).toThrow(P2PFrameTooLargeError);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024);
    // Split header: same check on the slow path.
    expect(() => decodeAll([header.subarray(0, 4), header.subarray(4)], 1024)).toThrow(P2PFrameTooLargeError);
  });

  it('rejects malformed topics and payloads when parsed', () => {
    expect(() => parseMessage(0x10, 0, Buffer.from('0000', 'hex'))).toThrow(/empty topic/);
    expect(() => parseMessage(0x10, 0, Buffer.from('000574', 'hex'))).toThrow(/past the body/);
    expect(() => parseMessage(0x10, 0, Buffer.from('0001ff', 'hex'))).toThrow(/not UTF-8/);
    expect(() => decodePayload(1, Buffer.from([0xff, 0xfe]))).toThrow(P2PProtocolError);
    expect(() => decodePayload(2, Buffer.from('{nope'))).toThrow(P2PProtocolError);
    expect(() => decodeControl(Buffer.from([11]))).toThrow(/unknown control/);
    expect(() => decodeControl(Buffer.from([1, 0x7b]))).toThrow(/hello/);
    expect(() => encodeTopic('')).toThrow(P2PProtocolError);
    expect(() => encodeTopic('x'.repeat(70_000))).toThrow(P2PProtocolError);
  });

  it('reads a payload in place within a larger read, and tells a U+FFFD that was sent from bytes that are not UTF-8', () => {
    const read = Buffer.concat([Buffer.from('zz'), Buffer.from('h\u00e9llo \ufffd'), Buffer.from('zz')]);
    const end = read.length - 2;
    expect(decodePayloadAt(1, read, 2, end)).toBe('h\u00e9llo \ufffd');
    expect(decodePayloadAt(0, read, 2, end)).toEqual(read.subarray(2, end));
    expect(decodePayloadAt(2, Buffer.from('x{"a":1}x'), 1, 8)).toEqual({ a: 1 });
    expect(decodePayloadAt(2, Buffer.from('xx'), 1, 1)).toBeUndefined();
    // Bytes that are not UTF-8, each of which a decoder turns into U+FFFD: a lone continuation, an encoded surrogate, an overlong slash.
    for (const bad of [[0x61, 0x80], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      expect(() => decodePayloadAt(1, Buffer.from([0x20, ...bad, 0x20]), 1, bad.length + 1)).toThrow(/not UTF-8/);
    }
  });

  it('reads a wrapped body in place into one reusable view, through the topic cache', () => {
    const topics = new TopicCache();
    const view = { topic: '', metadata: undefined as Record<string, string> | undefined, payloadStart: 0 };
    const body = Buffer.concat([Buffer.from('pad'), encodeTopic('orders.new'), Buffer.from('payload')]);
    expect(readWrapped(body, 3, body.length, topics, view)).toBe(view);
    expect(view).toEqual({ topic: 'orders.new', metadata: undefined, payloadStart: body.length - 7 });
    expect(() => readWrapped(Buffer.from('ff0005ab', 'hex'), 1, 4, topics, view)).toThrow(/past the body/);
  });
});

describe('codec: streaming decoder', () => {
  const frameArb = fc
    .record({
      kind: fc.constantFrom('event', 'request', 'response'),
      nonce: fc.integer({ min: 1, max: 0xffffffff }),
      topic: fc.string({ minLength: 1, maxLength: 40 }),
      payload: fc.uint8Array({ maxLength: 3000 }),
    })
    .map(({ kind, nonce, topic, payload }) => {
      const flags = kind === 'event' ? 0x10 : kind === 'request' ? 0x18 : 0x20;
      const t = kind === 'response' ? undefined : encodeTopic(topic);
      const n = kind === 'event' ? 0 : nonce;
      return { flags, nonce: n, bytes: Buffer.concat(encodeFrame(flags, n, t, Buffer.from(payload)).chunks) };
    });

  it('decodes any sequence of frames split at any chunk boundaries', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const all = Buffer.concat(frames.map((f) => f.bytes));
        const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, all.length]) {
          chunks.push(all.subarray(prev, p));
          prev = p;
        }
        const decoded = decodeAll(chunks);
        expect(decoded.length).toBe(frames.length);
        decoded.forEach((d, i) => {
          expect(d.flags).toBe(frames[i]!.flags);
          expect(d.nonce).toBe(frames[i]!.nonce);
          expect(d.body.length + HEADER_BYTES).toBe(frames[i]!.bytes.length);
          expect(d.body.equals(frames[i]!.bytes.subarray(HEADER_BYTES))).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('passes a frame inside one chunk on as a view, without copying', () => {
    const bytes = Buffer.concat(encodeFrame(0x10, 0, encodeTopic('t'), Buffer.alloc(100, 7)).chunks);
    let body: Buffer | undefined;
    new FrameDecoder(1 << 20, (_f, _n, b) => (body = b)).push(bytes);
    expect(body!.buffer).toBe(bytes.buffer);
  });

  it('pauses after the frame it is passing on, holds later chunks, and resumes in order', () => {
    const frames = Array.from({ length: 10 }, (_, i) => Buffer.concat(encodeFrame(0x12, 0, encodeTopic('t'), Buffer.from(`{"i":${i}}`)).chunks));
    const stream = Buffer.concat(frames);
    const seen: number[] = [];
    const decoder = new FrameDecoder(1 << 20, (flags, nonce, body) => {
      seen.push((JSON.parse(parseMessage(flags, nonce, body).payload.toString()) as { i: number }).i);
      if (seen.length % 3 === 0) decoder.pause();
    });
    // The first chunk ends inside frame 5; the second holds the rest.
    const cut = frames[0]!.length * 5 + 4;
    decoder.push(stream.subarray(0, cut));
    expect(seen).toEqual([0, 1, 2]);
    expect(decoder.buffered).toBe(cut - frames[0]!.length * 3);
    decoder.push(stream.subarray(cut));
    expect(seen).toHaveLength(3); // held while paused
    expect(decoder.buffered).toBe(stream.length - frames[0]!.length * 3);
    decoder.resume();
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    decoder.resume();
    decoder.resume();
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(decoder.buffered).toBe(0);
  });

  it('allocates for a partial frame as its bytes arrive, not what its header announces', () => {
    const payload = Buffer.alloc(4 * 1024 * 1024 - 64);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const bytes = Buffer.concat(encodeFrame(0x10, 0, encodeTopic('t'), payload).chunks);
    const allocations: number[] = [];
    let body: Buffer | undefined;
    const decoder = new FrameDecoder(8 << 20, (_f, _n, b) => (body = b), (allocated) => allocations.push(allocated));
    decoder.push(bytes.subarray(0, 100)); // the header and a few bytes of a 4 MiB frame
    expect(allocations).toEqual([FIRST_PARTIAL_BYTES]);
    expect(decoder.partial).toBe(true);
    expect(decoder.partialProgress()).toEqual({ received: 100, length: bytes.length });
    for (let at = 100; at < bytes.length; at += 16 * 1024) decoder.push(bytes.subarray(at, Math.min(at + 16 * 1024, bytes.length)));
    // Doubling, capped at the body's length; then 0 when the frame is complete.
    const bodyLength = bytes.length - HEADER_BYTES;
    expect(allocations).toEqual([64, 128, 256, 512, 1024, 2048].map((k) => k * 1024).concat([bodyLength, 0]));
    expect(body!.length).toBe(bodyLength);
    expect(body!.equals(bytes.subarray(HEADER_BYTES))).toBe(true);
    expect(decoder.partial).toBe(false);
    expect(decoder.buffered).toBe(0);
  });

  it('allocates a small frame that spans chunks once, at its own size', () => {
    const bytes = Buffer.concat(encodeFrame(0x10, 0, encodeTopic('t'), Buffer.alloc(1000, 3)).chunks);
    const allocations: number[] = [];
    const decoder = new FrameDecoder(1 << 20, () => undefined, (allocated) => allocations.push(allocated));
    for (let at = 0; at < bytes.length; at += 7) decoder.push(bytes.subarray(at, at + 7));
    expect(allocations).toEqual([bytes.length - HEADER_BYTES, 0]);
  });

  it('drops everything on abort(), from inside onPartial too, and ignores later input', () => {
    const frame = (n: number) => Buffer.concat(encodeFrame(0x10, 0, encodeTopic('t'), Buffer.alloc(n, 1)).chunks);
    const seen: number[] = [];
    const allocations: number[] = [];
    const decoder = new FrameDecoder(
      1 << 22,
      (_f, _n, body) => seen.push(body.length),
      (allocated) => {
        allocations.push(allocated);
        if (allocated > FIRST_PARTIAL_BYTES) decoder.abort(); // refuses the first growth
      },
    );
    const big = frame(200_000);
    decoder.push(big.subarray(0, 1000));
    expect(decoder.buffered).toBe(1000 - HEADER_BYTES);
    decoder.push(Buffer.concat([big.subarray(1000), frame(10)]));
    expect(allocations).toEqual([FIRST_PARTIAL_BYTES, big.length - HEADER_BYTES, 0]); // the rest came at once: grown to fit it
    expect(decoder.partial).toBe(false);
    expect(decoder.buffered).toBe(0);
    decoder.push(frame(10));
    expect(seen).toEqual([]);
  });

  it('reports a bad header met after a resume as a protocol error', () => {
    const good = Buffer.concat(encodeFrame(0x12, 0, encodeTopic('t'), Buffer.from('1')).chunks);
    const bad = Buffer.from('ff0000000000000000', 'hex');
    const decoder = new FrameDecoder(1 << 20, () => decoder.pause());
    decoder.push(Buffer.concat([good, bad]));
    expect(() => decoder.resume()).toThrow(P2PProtocolError);
  });

  it('sends a large payload as a second chunk instead of copying it', () => {
    const payload = Buffer.alloc(100_000, 1);
    const { chunks, size } = encodeFrame(0x10, 0, encodeTopic('t'), payload);
    expect(chunks).toHaveLength(2);
    expect(chunks[1]).toBe(payload);
    expect(size).toBe(HEADER_BYTES + 3 + payload.length);
  });
});

describe('codec: topic cache', () => {
  const body = (topic: Buffer, payload = 'p') => {
    const b = Buffer.alloc(2 + topic.length + payload.length);
    b.writeUInt16BE(topic.length, 0);
    topic.copy(b, 2);
    b.write(payload, 2 + topic.length);
    return b;
  };
  const FLAGS = 0x10 | 1; // wrapped event, utf8

  it('returns the same topic as an uncached parse, for hits, same-length misses and evictions', () => {
    const cache = new TopicCache(4);
    const topics = ['alpha', 'bravo', 'alpha', 'charl', 'delta', 'echo1', 'foxtr', 'alpha', 'bravo', 'ünïcode', 'alpha'];
    for (const topic of topics) {
      const frame = body(Buffer.from(topic));
      expect(parseMessage(FLAGS, 0, frame, cache).topic).toBe(topic);
      expect(parseMessage(FLAGS, 0, frame).topic).toBe(topic);
    }
  });

  it('still refuses a topic that is not UTF-8 once valid topics of the same length are cached', () => {
    const cache = new TopicCache();
    parseMessage(FLAGS, 0, body(Buffer.from('ab')), cache);
    expect(() => parseMessage(FLAGS, 0, body(Buffer.from([0xc3, 0x28])), cache)).toThrow(P2PProtocolError);
    expect(() => parseMessage(FLAGS, 0, body(Buffer.from([0xc3, 0x28])), cache)).toThrow(/topic is not UTF-8/);
  });

  it('keeps a copy of the topic bytes, not a view of the frame', () => {
    const cache = new TopicCache();
    const frame = body(Buffer.from('topic'));
    parseMessage(FLAGS, 0, frame, cache);
    frame.write('xxxxx', 2); // the read buffer is reused for other data
    expect(parseMessage(FLAGS, 0, body(Buffer.from('topic')), cache).topic).toBe('topic');
    expect(parseMessage(FLAGS, 0, body(Buffer.from('xxxxx')), cache).topic).toBe('xxxxx');
  });
});

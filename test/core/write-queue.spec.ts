// The write queue over a real TCP connection on 127.0.0.1: small frames share slabs, large
// payloads are queued by reference, a reader that stops makes the queue hold frames, and every
// frame arrives whole and in order once it reads again.
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteQueue } from '../../src/connection/write-queue.js';
import { encodeTopic, FrameDecoder } from '../../src/wire/codec.js';
import { FLAG_WRAPPED } from '../../src/wire/constants.js';

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
});

async function pair(): Promise<{ writer: Socket; reader: Socket }> {
  server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const writer = connect(port, '127.0.0.1');
  const [reader] = (await accepted) as [Socket];
  await once(writer, 'connect');
  sockets.push(writer, reader);
  return { writer, reader };
}

/** Payload i: its index in the first 4 bytes, then filler; sizes cycle around the copy threshold and above a slab. */
const SIZES = [0, 5, 64, 4095, 4096, 4097, 70_000, 300];
function payload(i: number): Buffer {
  const b = Buffer.alloc(Math.max(4, SIZES[i % SIZES.length]!), i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

describe('WriteQueue', () => {
  it('delivers 20 000 mixed frames whole and in order after the reader was stalled', async () => {
    const { writer, reader } = await pair();
    reader.pause();
    const queue = new WriteQueue(writer);
    const topic = encodeTopic('t'); // the wrapped-body prefix: u16 length and the topic
    const count = 20_000;
    for (let i = 0; i < count; i++) queue.push(FLAG_WRAPPED, 0, topic, payload(i));
    // The kernel holds a few MB at most: the rest must still be queued, counted in queuedBytes.
    await new Promise((r) => setTimeout(r, 50));
    expect(queue.queuedBytes).toBeGreaterThan(10 * 2 ** 20);

    let next = 0;
    const problems: string[] = [];
    const decoder = new FrameDecoder(1 << 20, (flags, _nonce, body) => {
      const data = body.subarray(2 + body.readUInt16BE(0));
      const expected = payload(next);
      if (flags !== FLAG_WRAPPED || !data.equals(expected)) problems.push(`frame ${next}`);
      next++;
    });
    reader.on('data', (chunk: Buffer) => decoder.push(chunk));
    reader.resume();
    const deadline = Date.now() + 10_000;
    while (next < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(problems).toEqual([]);
    expect(next).toBe(count);
    await queue.whenFlushed();
    expect(queue.queuedBytes).toBe(0);
  });

  it('drops what is queued on close and reports the bytes', async () => {
    const { writer, reader } = await pair();
    reader.pause();
    const queue = new WriteQueue(writer);
    for (let i = 0; i < 2_000; i++) queue.push(FLAG_WRAPPED, 0, Buffer.from('t'), payload(6)); // 70 000 bytes each
    await new Promise((r) => setTimeout(r, 20));
    const dropped = queue.close();
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThanOrEqual(2_000 * (9 + 3 + 70_000));
    await expect(queue.whenFlushed()).resolves.toBeUndefined();
  });
});

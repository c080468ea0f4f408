import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PeerOptions } from '../../src/node/peer-options.js';
import { Peer } from '../../src/node/peer.js';
import { encodeFrame, encodeTopic } from '../../src/wire/codec.js';
import { HEADER_BYTES } from '../../src/wire/constants.js';
import { GoodbyeReason } from '../../src/wire/control.js';
import { echo, MODES, startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 13, "Partial frames": a frame that spans reads costs the node the bytes that arrived
 * (not what its header announced), is cut when it stops arriving for frameStallMs, and all of
 * them together stay within maxPartialFrameBytes, largest stalled first.
 */
const open: Peer[] = [];
const raws: RawPeer[] = [];
let tls = true;
const KiB = 1024;
const MiB = 1024 * KiB;

afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

/** A node that records the size of every event it gets, echoes requests, and can hold 'hold' events until released. */
async function victim(options: PeerOptions): Promise<{ node: Peer; events: number[]; release: () => void }> {
  const events: number[] = [];
  let release = () => undefined as void;
  const node = new Peer({ listen: '127.0.0.1:0', tls, ...options });
  open.push(node);
  node.setHandler({
    onEvent: (_peer, topic, data) => {
      events.push((data as Buffer).length);
      if (topic === 'hold') return new Promise<void>((resolve) => (release = resolve));
      return undefined;
    },
    onRequest: (_peer, _topic, data, reply) => (reply.next(data), reply.complete()),
  });
  await node.start();
  return { node, events, release: () => release() };
}

async function raw(node: Peer): Promise<RawPeer> {
  const r = await RawPeer.open(node.address()!, { tls });
  raws.push(r);
  return r;
}

/** An event frame of exactly `length` bytes on the wire (binary payload). */
function eventFrame(length: number, topic = 'note'): Buffer {
  const t = encodeTopic(topic);
  return Buffer.concat(encodeFrame(0x10, 0, t, Buffer.alloc(length - HEADER_BYTES - t.length, 7)).chunks); // t: the u16 length and the topic
}

/** Writes `bytes` in `chunk`-sized writes, waiting for drain; stops early if the node closes the connection. */
async function send(r: RawPeer, bytes: Buffer, chunk = 64 * KiB): Promise<void> {
  for (let at = 0; at < bytes.length && !r.closed; at += chunk) {
    if (r.socket.write(bytes.subarray(at, Math.min(at + chunk, bytes.length)))) continue;
    await new Promise<void>((resolve) => {
      const done = () => (r.socket.off('drain', done).off('close', done), resolve());
      r.socket.on('drain', done).on('close', done);
    });
  }
}

/** A full GC, so that memory figures are what is held, not garbage (TLS records) awaiting collection. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(MODES)('partial frames over real sockets ($mode)', (mode) => {
  beforeAll(() => {
    tls = mode.tls;
  });

  it('40 peers each holding a 4 MiB frame minus its last byte: memory bounded, every one cut, an honest peer served', async () => {
    const N = 40;
    const frameStallMs = 300;
    const maxPartialFrameBytes = 64 * MiB; // the default, named for the assertions
    // All 40 dial from 127.0.0.1: the per-IP limits are raised as for any loopback network.
    const { node } = await victim({ maxInbound: N + 10, maxInboundPerIp: N + 10, maxPendingInbound: N + 10, inboundRatePerIp: 1000, frameStallMs });
    const honest = await startEchoPeer({ tls }, open);
    await honest.connect(`${node.id}@${node.address()}`);
    const attackers: RawPeer[] = [];
    for (let i = 0; i < N; i += 10) attackers.push(...(await Promise.all(Array.from({ length: 10 }, () => raw(node)))));
    await waitFor(() => node.peers().length === N + 1, 10_000, 'the raw peers to finish their hello');
    const frame = eventFrame(4 * MiB); // one buffer for all: the writers' side adds no copies in plaintext
    gc();
    const before = process.memoryUsage();
    let peakArrayBuffers = 0;
    let peakRss = 0;
    let peakBudget = 0;
    const sampler = setInterval(() => {
      gc();
      const m = process.memoryUsage();
      peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers - before.arrayBuffers);
      peakRss = Math.max(peakRss, m.rss - before.rss);
      peakBudget = Math.max(peakBudget, node.partialFrameBytes);
    }, 25);
    let served = 0;
    let serving = true;
    const honestTraffic = (async () => {
      while (serving) {
        if ((await echo(honest, node.id, served)) !== served) throw new Error('wrong echo');
        served++;
      }
    })().catch((err: unknown) => err);
    const cutAfter = await Promise.all(
      attackers.map(async (r) => {
        await send(r, frame.subarray(0, frame.length - 1));
        const lastByteAt = Date.now();
        await r.whenClosed(frameStallMs + 5_000);
        return Date.now() - lastByteAt;
      }),
    );
    clearInterval(sampler);
    serving = false;
    expect(await honestTraffic).toBeUndefined();
    expect(served).toBeGreaterThan(0);
    for (const r of attackers) {
      expect(r.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
      expect(r.goodbye()?.message).toMatch(/frame stalled: \d+ of 4194304 bytes received|over maxPartialFrameBytes/);
    }
    const stalled = attackers.filter((r) => /frame stalled/.test(r.goodbye()!.message)).length;
    // Cut within frameStallMs of the last byte, plus a margin for 40 connections on a small machine.
    expect(Math.max(...cutAfter)).toBeLessThan(frameStallMs + 1_500);
    // Without the fix: 40 × 4 MiB = 160 MiB allocated at the headers, held for as long as the peers liked.
    expect(peakBudget).toBeLessThanOrEqual(maxPartialFrameBytes);
    // Live memory of the whole process (the raw peers' side included), after a GC at each sample.
    // In plaintext the raw peers all write one shared buffer, so this is about the node's own memory
    // (160 MiB at the headers before the fix). Over TLS each raw peer's encrypted copy of its 4 MiB also
    // lives in this process until sent, so there only the node's own accounting above is asserted.
    // The margin covers the echo traffic and buffers a GC has not reached yet: 24.5 MiB was seen once in CI.
    if (!tls) expect(peakArrayBuffers).toBeLessThan(maxPartialFrameBytes + 32 * MiB);
    await waitFor(() => node.peers().length === 1, 5_000, 'the node to drop the attackers');
    expect(node.partialFrameBytes).toBe(0); // released, by the node's own accounting
    // The attackers' own sockets are gone too (their buffers are in this process), and TLS frees its records a tick after a close.
    attackers.forEach((r) => r.destroy());
    // Closed sockets let go of their buffers over a few ticks; collect until they have (or time out).
    let afterGc = Infinity;
    await waitFor(() => {
      gc();
      afterGc = process.memoryUsage().arrayBuffers - before.arrayBuffers;
      return afterGc < 24 * MiB;
    }, 5_000, 'the partial frames to be collected');
    expect(await echo(honest, node.id, 'still served')).toBe('still served');
    console.info(
      `[partial frames ${mode.mode}] ${N} × (4 MiB − 1 B): peak budget ${(peakBudget / MiB).toFixed(1)} MiB, ` +
        `peak arrayBuffers +${(peakArrayBuffers / MiB).toFixed(1)} MiB, peak rss +${(peakRss / MiB).toFixed(1)} MiB, ` +
        `cut by stall ${stalled}, by budget ${N - stalled}, slowest cut ${Math.max(...cutAfter)} ms after the last byte, ` +
        `honest echoes ${served}, arrayBuffers after +${(afterGc / MiB).toFixed(1)} MiB`,
    );
  }, 60_000);

  it('does not cut a slow but steady sender of a large frame', async () => {
    const frameStallMs = 300;
    const { node, events } = await victim({ frameStallMs });
    const r = await raw(node);
    await waitFor(() => node.peers().length === 1);
    const frame = eventFrame(256 * KiB);
    for (let at = 0; at < frame.length; at += 16 * KiB) {
      r.write(frame.subarray(at, at + 16 * KiB));
      await sleep(frameStallMs / 3); // 16 chunks over ~1.6 s: five stall periods in all, never one without a byte
    }
    await waitFor(() => events.length === 1, 2_000, 'the frame');
    expect(events[0]).toBe(256 * KiB - HEADER_BYTES - 2 - 4);
    expect(r.closed).toBe(false);
    expect(node.partialFrameBytes).toBe(0);
  });

  it('does not count a stall the node caused (maxConcurrentHandlers), and cuts one after it reads again', async () => {
    const frameStallMs = 300;
    const { node, events, release } = await victim({ frameStallMs, maxConcurrentHandlers: 1 });
    const r = await raw(node);
    await waitFor(() => node.peers().length === 1);
    const frame = eventFrame(100 * KiB);
    // The held event fills the handlers: the node stops decoding right after it, mid-chunk.
    r.write(Buffer.concat([eventFrame(64, 'hold'), frame.subarray(0, 40 * KiB)]));
    await waitFor(() => events.length === 1);
    r.write(frame.subarray(40 * KiB, 80 * KiB));
    await sleep(4 * frameStallMs);
    expect(r.closed).toBe(false);
    release();
    await sleep(frameStallMs / 3); // the peer's clock starts again when the node reads again
    r.write(frame.subarray(80 * KiB));
    await waitFor(() => events.length === 2, 2_000, 'the frame');
    expect(r.closed).toBe(false);
    // Now a stall that is the peer's own.
    r.write(frame.subarray(0, 50 * KiB));
    const started = Date.now();
    await r.whenClosed(frameStallMs + 2_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(frameStallMs - 20);
    expect(r.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(r.goodbye()?.message).toMatch(/frame stalled: \d+ of 102400 bytes received, none for \d+ ms \(frameStallMs 300\)/);
    await waitFor(() => node.partialFrameBytes === 0);
  });

  it('past maxPartialFrameBytes closes the largest stalled frame first; the others live until they too are the largest over it', async () => {
    const { node, events } = await victim({ maxFrameBytes: 512 * KiB, maxPartialFrameBytes: 1 * MiB, frameStallMs: 10_000 });
    const [r1, r2, r3, r4, r5] = [await raw(node), await raw(node), await raw(node), await raw(node), await raw(node)];
    await waitFor(() => node.peers().length === 5);
    const frame = eventFrame(400 * KiB);
    const body = frame.length - HEADER_BYTES;
    // Allocations double from 64 KiB and stop at the body: 300 KiB in → the whole body, 150 → 256 KiB, 100 → 128 KiB.
    await send(r1!, frame.subarray(0, 300 * KiB));
    await send(r2!, frame.subarray(0, 150 * KiB));
    await send(r3!, frame.subarray(0, 100 * KiB));
    await waitFor(() => node.partialFrameBytes === body + 384 * KiB, 2_000, 'three partial frames');
    await sleep(1_100); // all three are stalled now (no byte for a second)
    // A frame still arriving takes the total over 1 MiB: the largest stalled one goes, not the newcomer.
    await send(r4!, frame);
    await r1!.whenClosed();
    expect(r1!.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(r1!.goodbye()?.message).toMatch(/over maxPartialFrameBytes \(1048576\): this connection holds the largest stalled one/);
    await waitFor(() => events.length === 1, 2_000, "the newcomer's frame");
    expect(node.partialFrameBytes).toBe(384 * KiB);
    // r2 and r3 grow within the budget and live on.
    await send(r2!, frame.subarray(150 * KiB, 300 * KiB));
    await send(r3!, frame.subarray(100 * KiB, 300 * KiB));
    await waitFor(() => node.partialFrameBytes === 2 * body, 2_000, 'two grown partial frames');
    expect([r2!.closed, r3!.closed]).toEqual([false, false]);
    await sleep(1_100);
    // Over it again: one of the two (equal) stalled frames goes, the other and the newcomer stay.
    await send(r5!, frame);
    await waitFor(() => r2!.closed || r3!.closed, 3_000, 'one stalled frame to be closed');
    await waitFor(() => events.length === 2, 2_000, "the second newcomer's frame");
    expect([r2!.closed, r3!.closed].filter(Boolean)).toHaveLength(1);
    expect(r5!.closed).toBe(false);
    expect(node.partialFrameBytes).toBe(body);
    expect(node.peers()).toHaveLength(3);
  }, 20_000);
});

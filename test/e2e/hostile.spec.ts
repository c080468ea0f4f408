import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNetworkMessage, encodeNetworkMessage } from '../../src/broadcast/codec.js';
import { GoodbyeReason, P2PConnectionClosedError, P2PPeerNotConnectedError, P2PQueueFullError, type Peer } from '../../src/index.js';
import { encodeFrame, encodeTopic } from '../../src/wire/codec.js';
import { Encoding } from '../../src/wire/constants.js';
import { ControlType, encodeControl } from '../../src/wire/control.js';
import { MODES, waitFor } from '../helpers.js';
import { connectAndWait, startNode, type TestNode } from '../nest-helpers.js';
import { header, RawPeer } from '../raw-peer.js';

const nodes: TestNode[] = [];
const raws: RawPeer[] = [];
let tls = true;
async function node(options = {}): Promise<TestNode> {
  const n = await startNode({ tls, ...options });
  nodes.push(n);
  return n;
}
async function raw(address: string, options?: Parameters<typeof RawPeer.open>[1]): Promise<RawPeer> {
  const r = await RawPeer.open(address, { tls, ...options });
  raws.push(r);
  return r;
}

afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(nodes.splice(0).map((n) => n.app.close()));
});

/** The node still serves a well-behaved peer after the bad input. */
async function stillServes(n: TestNode): Promise<void> {
  const good = await node();
  await connectAndWait(good, n);
  expect(await good.service.request(n.id, 'echo', 'ok')).toBe('ok');
}

describe.each(MODES)('hostile and faulty input over real sockets ($mode)', (mode) => {
  beforeAll(() => {
    tls = mode.tls;
  });

  it('closes a connection whose header announces more than maxFrameBytes, before allocating', async () => {
    const b = await node({ maxFrameBytes: 64 * 1024 });
    const r = await raw(b.address);
    await waitFor(() => b.service.peers().length === 1);
    const before = process.memoryUsage().arrayBuffers;
    r.write(header(0x12, 0, 0xfffffff0)); // ~4 GiB announced, nothing follows
    await r.whenClosed();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    expect(r.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(r.goodbye()?.message).toMatch(/exceeds maxFrameBytes/);
    await waitFor(() => b.service.peers().length === 0);
    await stillServes(b);
  });

  it('closes a connection that sends a frame with request and response bits both set', async () => {
    const b = await node();
    const r = await raw(b.address);
    r.write(header(0x38, 1, 3));
    r.write(Buffer.from('000174', 'hex'));
    await r.whenClosed();
    expect(r.goodbye()?.message).toMatch(/request and response/);
    await stillServes(b);
  });

  it('closes a connection that sends a malformed topic or bad json', async () => {
    const b = await node();
    const r1 = await raw(b.address);
    r1.write(Buffer.concat([header(0x10, 0, 3), Buffer.from('0009ff', 'hex')]));
    await r1.whenClosed();
    expect(r1.goodbye()?.message).toMatch(/topic/);
    const r2 = await raw(b.address);
    const bad = encodeFrame(0x12, 0, encodeTopic('note'), Buffer.from('{not json'));
    r2.write(Buffer.concat(bad.chunks));
    await r2.whenClosed();
    expect(r2.goodbye()?.message).toMatch(/json/);
    await stillServes(b);
  });

  it('closes a connection that sends data before its hello, and one that never says hello', async () => {
    const b = await node({ handshakeTimeoutMs: 200 });
    const early = await raw(b.address, { hello: false });
    early.write(Buffer.concat(encodeFrame(0x12, 0, encodeTopic('note'), Buffer.from('1')).chunks));
    await early.whenClosed();
    expect(early.goodbye()?.message).toMatch(/before the hello/);
    const mute = await raw(b.address, { hello: false });
    await mute.whenClosed(2000);
    expect(mute.goodbye()?.reason).toBe(GoodbyeReason.HandshakeTimeout);
    await stillServes(b);
  });

  it('closes a connection that sends a malformed network broadcast', async () => {
    const b = await node();
    const short = await raw(b.address);
    short.write(Buffer.concat(encodeControl({ type: ControlType.NetworkBroadcast, body: Buffer.alloc(10) }).chunks));
    await short.whenClosed();
    expect(short.goodbye()?.message).toMatch(/malformed network broadcast: too short/);
    const badStrategy = await raw(b.address);
    const body = Buffer.alloc(200);
    body[0] = 9; // no such strategy
    badStrategy.write(Buffer.concat(encodeControl({ type: ControlType.NetworkBroadcast, body }).chunks));
    await badStrategy.whenClosed();
    expect(badStrategy.goodbye()?.message).toMatch(/unknown strategy/);
    await stillServes(b);
  });

  it('refuses a duplicate connection from an already-connected peer id', async () => {
    const a = await node();
    const b = await node();
    await connectAndWait(a, b);
    // A second connection, in the same direction, claiming A's identity.
    const dup = await raw(b.address, { identity: a.node.identity });
    await dup.whenClosed();
    expect(dup.goodbye()?.reason).toBe(GoodbyeReason.Duplicate);
    expect(b.service.peers()).toHaveLength(1);
    expect(await a.service.request(b.id, 'echo', 'kept')).toBe('kept');
  });

  it('still delivers what a replaced duplicate sent before it saw the goodbye: an event and a network broadcast', async () => {
    const a = await node();
    const b = await node();
    await connectAndWait(a, b);
    // A second connection with A's identity is closed as a duplicate as soon as its hello is read;
    // the frames written right behind the hello reach B while that connection is closing.
    const dup = await raw(b.address, { identity: a.node.identity });
    const relayed = createNetworkMessage(a.node.identity, {
      timestampUs: Date.now() * 1000,
      strategy: 'gossip',
      encoding: Encoding.Json,
      topic: 'note',
      payload: Buffer.from('"broadcast on the duplicate"'),
    });
    dup.write(Buffer.concat(encodeFrame(0x12, 0, encodeTopic('note'), Buffer.from('"event on the duplicate"')).chunks));
    dup.write(Buffer.concat(encodeControl({ type: ControlType.NetworkBroadcast, body: encodeNetworkMessage(relayed) }).chunks));
    await dup.whenClosed();
    expect(dup.goodbye()?.reason).toBe(GoodbyeReason.Duplicate);
    const heard = () => b.controller.received.filter((r) => r.from === a.id).map((r) => r.data);
    await waitFor(() => heard().length === 2, 2000, 'both frames');
    expect(heard()).toEqual(['event on the duplicate', 'broadcast on the duplicate']);
    expect(b.service.networkBroadcastStats().delivered).toBe(1);
    expect(await a.service.request(b.id, 'echo', 'kept')).toBe('kept');
  });

  it('enforces maxInbound, refusing extra connections cleanly', async () => {
    const b = await node({ maxInbound: 2 });
    const [p1, p2, p3] = await Promise.all([node(), node(), node()]);
    await connectAndWait(p1!, b);
    await connectAndWait(p2!, b);
    // As at maxPeers, the hello exchange finishes, the dialer is told b's peers, then refused with goodbye 5 (issue 23).
    const refused = new Promise<string>((resolve) => p3!.service.events$.subscribe((e) => e.type === 'disconnected' && resolve(e.reason)));
    await p3!.service.connect(b.address);
    expect(await refused).toMatch(/InboundLimit: inbound limit of 2 reached/);
    expect(b.service.peers()).toHaveLength(2);
    // Raw floods are refused too, and never counted as peers.
    const extra = await Promise.all(Array.from({ length: 10 }, () => raw(b.address)));
    await Promise.all(extra.map((r) => r.whenClosed()));
    expect(extra.every((r) => r.goodbye()?.reason === GoodbyeReason.InboundLimit)).toBe(true);
    expect(b.service.peers()).toHaveLength(2);
    expect(await p1!.service.request(b.id, 'echo', 1)).toBe(1);
  });

  it('rejects sends with P2PQueueFullError against a peer that stops reading, memory bounded', async () => {
    const maxQueueBytes = 1024 * 1024;
    const a = await node({ maxQueueBytes, maxFrameBytes: 128 * 1024, closeGraceMs: 200 });
    const b = await node({ closeGraceMs: 200 });
    const c = await node();
    await connectAndWait(a, b);
    await connectAndWait(a, c);
    // B stops reading from A: its kernel buffers fill, then A's queue.
    b.node.connection(a.id)!.raw.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    const before = process.memoryUsage();
    let accepted = 0;
    let error: unknown;
    for (let i = 0; i < 2000 && !error; i++) {
      try {
        await a.service.send(b.id, 'note', chunk);
        accepted++;
      } catch (err) {
        error = err;
      }
      if (i % 8 === 7) await new Promise((r) => setImmediate(r)); // let the kernel take what it will
    }
    expect(error).toBeInstanceOf(P2PQueueFullError);
    expect((error as P2PQueueFullError).peerId).toBe(b.id);
    const conn = (a.node as Peer).connection(b.id)!;
    expect(conn.queuedBytes).toBeLessThanOrEqual(maxQueueBytes);
    // What was accepted is what the queue plus the kernel's socket buffers hold: far from 2000 chunks.
    expect(accepted).toBeLessThan(2000);
    const grown = process.memoryUsage().arrayBuffers - before.arrayBuffers;
    expect(grown).toBeLessThan(maxQueueBytes + accepted * chunk.length + 8 * 1024 * 1024);
    // Other peers are unaffected.
    expect(await a.service.request(c.id, 'echo', 'fine')).toBe('fine');
    await expect(a.service.send(b.id, 'note', chunk)).rejects.toBeInstanceOf(P2PQueueFullError);

    // whenWritable: pending while B does not read, resolved once B reads again, then sends have room.
    let writable = false;
    const waiting = a.service.whenWritable(b.id).then(() => (writable = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(writable).toBe(false);
    b.node.connection(a.id)!.raw.resume();
    await waiting;
    expect(conn.queuedBytes).toBeLessThan(maxQueueBytes / 2);
    await expect(a.service.send(b.id, 'note', chunk)).resolves.toBeUndefined();
  });

  it('whenWritable rejects with a typed error when the peer is not connected or the connection closes while waiting', async () => {
    const maxQueueBytes = 512 * 1024;
    const a = await node({ maxQueueBytes, maxFrameBytes: 128 * 1024, closeGraceMs: 100 });
    const b = await node({ closeGraceMs: 100 });
    await expect(a.service.whenWritable('ab'.repeat(20))).rejects.toBeInstanceOf(P2PPeerNotConnectedError);
    await connectAndWait(a, b);
    await expect(a.service.whenWritable(b.id)).resolves.toBeUndefined(); // room already
    b.node.connection(a.id)!.raw.pause();
    const chunk = Buffer.alloc(64 * 1024, 2);
    for (let i = 0; i < 500; i++) {
      const full = await a.service.send(b.id, 'note', chunk).then(
        () => false,
        (err: unknown) => err instanceof P2PQueueFullError,
      );
      if (full) break;
      if (i % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    const waiting = a.service.whenWritable(b.id);
    const outcome = waiting.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    // B vanishes (its socket is destroyed, unread data and all): A's connection fails, the wait with it.
    b.node.connection(a.id)!.raw.destroy();
    const err = await outcome;
    expect(err).toBeInstanceOf(P2PConnectionClosedError);
    expect((err as P2PConnectionClosedError).peerId).toBe(b.id);
  });
});

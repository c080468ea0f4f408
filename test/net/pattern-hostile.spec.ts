import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { loadIdentity } from '../../src/common/identity.js';
import { signRecord } from '../../src/directory/record.js';
import type { Peer } from '../../src/node/peer.js';
import { ControlType, encodeControl } from '../../src/wire/control.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import type { RawPeer } from '../raw-peer.js';

// Directory records are someone else's word: Sybil records that name a victim's address, or a
// listener that accepts and says nothing, must cost a node a bounded number of dials.
const { mesh, raw } = broadcastMeshes();
const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function digest(hostile: RawPeer): void {
  const body = Buffer.alloc(1 + 256 * 12);
  for (let b = 0; b < 256; b++) {
    body.writeUInt32BE(1, 1 + b * 12);
    body.writeUInt32BE(0xdeadbeef, 5 + b * 12);
  }
  hostile.write(Buffer.concat(encodeControl({ type: ControlType.DirectoryDigest, body }).chunks));
}

/** Sends `count` records of fresh ids, each claiming `>` at `address`. */
function sybils(hostile: RawPeer, count: number, address: string): void {
  const now = Date.now();
  const records = Array.from({ length: count }, () => {
    const y = loadIdentity();
    return signRecord(y, { publicKey: y.publicKeyRaw, seq: now, issuedAt: now, leaving: false, address, requests: ['>'], events: [] });
  });
  digest(hostile);
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeUInt16BE(records.length);
  for (const r of records) {
    const l = Buffer.alloc(2);
    l.writeUInt16BE(r.length);
    parts.push(l, r);
  }
  hostile.write(Buffer.concat(encodeControl({ type: ControlType.DirectoryRecords, body: Buffer.concat(parts) }).chunks));
}

const ask = (c: Peer, subject: string, timeoutMs = 2000) =>
  new Promise<{ ok: boolean; ms: number; error?: Error }>((resolve) => {
    const t0 = Date.now();
    c.requestPattern(subject, 'hi', { next: () => {}, error: (error: Error) => resolve({ ok: false, ms: Date.now() - t0, error }), complete: () => resolve({ ok: true, ms: Date.now() - t0 }) }, { timeoutMs });
  });

async function listen(onConnection: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer(onConnection);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

describe('requests to a pattern against false directory records', () => {
  it('60 Sybil handlers of ">" at a victim address: a handful of connections, not one per record', async () => {
    let connections = 0;
    const port = await listen((s) => {
      connections++;
      s.destroy();
    });
    const [c, s] = (await mesh(true, 2)) as [Peer, Peer];
    s.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
    await waitFor(() => c.handlers('orders.reserve', 'request').length === 1, 3000, 'honest handler');
    const hostile = await raw(true, c);
    sybils(hostile, 60, `127.0.0.1:${port}`);
    await waitFor(() => c.handlers('orders.reserve', 'request').length === 61, 3000, 'sybil records');
    // A request that chose a Sybil dials it once; the failed address rules out every record at it, and the honest handler answers.
    for (let i = 0; i < 10; i++) expect((await ask(c, 'orders.reserve')).ok).toBe(true);
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => ask(c, `any.subject.${i}`)));
    expect(results.every((r) => !r.ok)).toBe(true);
    // Before: 60 connections for the 10 sequential requests, 60 more for the 64 concurrent ones.
    expect(connections).toBeLessThanOrEqual(3);
  }, 30_000);

  it('40 records at a listener that accepts and says nothing: requests end within their timeout, outbound dials stay free', async () => {
    const held: net.Socket[] = [];
    const port = await listen((s) => void held.push(s));
    const [c] = (await mesh(true, 2)) as [Peer, Peer];
    const hostile = await raw(true, c);
    sybils(hostile, 40, `127.0.0.1:${port}`);
    await waitFor(() => c.handlers('a.b', 'request').length >= 40, 3000, 'sybil records');
    const pending = Array.from({ length: 40 }, (_, i) => ask(c, `a.b${i}`, 2000));
    await new Promise((r) => setTimeout(r, 300));
    const fresh = await startEchoPeer({ tls: true }, []);
    try {
      // Before: "maxOutbound 24 reached" while the tarpit held the dials.
      await expect(c.connect(`${fresh.id}@${fresh.address()}`)).resolves.toBeDefined();
      const results = await Promise.all(pending);
      // Before: none had ended after 40 s, and the listener had 94 connections.
      expect(results.every((r) => !r.ok)).toBe(true);
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(2000 + 1500);
      expect(results[0]!.error?.constructor.name).toMatch(/P2PNoHandlerError|P2PTimeoutError/);
      expect(held.length).toBeLessThanOrEqual(3);
    } finally {
      await fresh.close();
      for (const h of held) h.destroy();
    }
  }, 30_000);

  it('a record whose address the address policy refuses (a host name) is never dialed', async () => {
    let connections = 0;
    const port = await listen((s) => {
      connections++;
      s.destroy();
    });
    const [c] = (await mesh(true, 2)) as [Peer, Peer];
    const hostile = await raw(true, c);
    sybils(hostile, 5, `localhost:${port}`);
    await waitFor(() => c.handlers('x.y', 'request').length >= 5, 3000, 'sybil records');
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => ask(c, `x.y${i}`, 500)));
    expect(results.map((r) => r.error?.constructor.name)).toEqual(Array(5).fill('P2PNoHandlerError'));
    expect(connections).toBe(0);
  }, 30_000);

  it('refuses the reserved $p2p. subjects', async () => {
    const [c] = (await mesh(true, 1)) as [Peer];
    expect(() => c.requestPattern('$p2p.directory', 1, { next: () => {}, error: () => {}, complete: () => {} })).toThrow(/reserved/);
  });
});

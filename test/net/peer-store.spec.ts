import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Peer, type PeerOptions } from '../../src/node/peer.js';
import { captureLogger, waitFor, type CapturedLogger } from '../helpers.js';
import { addressOf, spawnNode, startNode, statsOf, stopNodes, type NodeProcess } from '../net-processes.js';

// A node that remembers its peers (issue 23). A node killed and restarted with the same key and no
// configured peer dialed nobody: it waited for others to find it (about 12 s, at their redial backoff,
// and never when they had moved on). With peerStoreFile it writes the peers it proved by a connection
// and redials the freshest of them at start, through discovery (maxOutbound, bans, allowedPeers, the
// address policy). A store that is not its own is a warning and an empty store, never a failed start.

const open: Peer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const warnings = (logger: CapturedLogger) => logger.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message);

function storeFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-store-'));
  dirs.push(dir);
  return join(dir, 'peers.json');
}

async function start(options: PeerOptions): Promise<Peer> {
  const peer = new Peer({ listen: '127.0.0.1:0', ...options });
  open.push(peer);
  await peer.start();
  return peer;
}

async function stop(peer: Peer): Promise<void> {
  await peer.close();
  open.splice(open.indexOf(peer), 1);
}

interface StoreFile {
  version: number;
  id: string;
  peers: Array<{ id: string; address: string; seenAt: number; own: boolean }>;
}
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as StoreFile;
const fakeId = () => randomBytes(20).toString('hex');

describe('peer store (peerStoreFile)', () => {
  it('a node restarted with its store and no configured peer redials a previous neighbour at once', async () => {
    const file = storeFile();
    const privateKey = randomBytes(32).toString('hex');
    const a1 = await start({ privateKey, peerStoreFile: file });
    // Its neighbours dialed it (A configures no one): the case where nothing else brings them back.
    const b = await start({});
    const c = await start({});
    await b.connect(a1.address()!);
    await c.connect(a1.address()!);
    await waitFor(() => a1.peers().length === 2, 5000, 'A to hold B and C');
    await stop(a1);
    const stored = read(file);
    expect(stored.id).toBe(a1.id);
    expect(stored.peers.map((p) => p.id).sort()).toEqual([b.id, c.id].sort());
    // Proven only by their own dial: dialable again, not trusted as A's own choice.
    expect(stored.peers.every((p) => !p.own)).toBe(true);

    // Another port, so that B's and C's redials of the old address find nothing: only A's store brings them back.
    const logger = captureLogger();
    const startedAt = Date.now();
    const a2 = await start({ privateKey, peerStoreFile: file, logger });
    let first: { direction: string } | undefined;
    await waitFor(() => (first = a2.peers().find((p) => p.id === b.id || p.id === c.id)) !== undefined, 5000, 'A to redial a stored peer');
    const ms = Date.now() - startedAt;
    expect(first!.direction).toBe('outbound'); // A dialed it: B and C look for A at its old port
    console.log(`restart with a peer store: first previous neighbour connected ${ms} ms after start() began`);
    expect(ms).toBeLessThan(3000);
    await waitFor(() => a2.peers().length === 2, 5000, 'A to redial both');
    expect(logger.lines.some((l) => l.level === 'log' && /redials 2 of 2 peers stored/.test(l.message))).toBe(true);
    expect(warnings(logger)).toEqual([]);
  });

  it('a garbage store file: one warning, the node starts, and the file is rewritten as its own', async () => {
    const file = storeFile();
    writeFileSync(file, '{"version":1,"id":"abc", "peers": [ {"id": tr');
    const logger = captureLogger();
    const a = await start({ peerStoreFile: file, logger });
    expect(a.isRunning).toBe(true);
    expect(warnings(logger)).toHaveLength(1);
    expect(warnings(logger)[0]).toMatch(/peer store .* ignored \(not JSON/);
    expect(a.knownPeers()).toEqual([]);
    await stop(a);
    expect(read(file)).toMatchObject({ version: 1, id: a.id, peers: [] });
  });

  it('a store of another node, or of another version, is ignored with a warning: its peers are not dialed', async () => {
    const file = storeFile();
    const b = await start({});
    const x = await start({ peerStoreFile: file, peers: [b.address()!] });
    await waitFor(() => x.peers().length === 1, 5000, 'X to connect to B');
    await stop(x);
    expect(read(file).peers.map((p) => p.id)).toEqual([b.id]);
    expect(read(file).peers[0]!.own).toBe(true); // configured: X's own choice

    const logger = captureLogger();
    const y = await start({ peerStoreFile: file, logger });
    expect(warnings(logger)).toHaveLength(1);
    expect(warnings(logger)[0]).toContain(`belongs to node ${x.id}`);
    expect(y.knownPeers()).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(y.peers()).toEqual([]);
    await stop(y);

    const raw = { ...read(file), version: 2 };
    writeFileSync(file, JSON.stringify(raw));
    const logger2 = captureLogger();
    const z = await start({ peerStoreFile: file, logger: logger2 });
    expect(warnings(logger2)[0]).toMatch(/version 2, expected 1/);
    expect(z.knownPeers()).toEqual([]);
  });

  it('keeps at most peerStoreMaxPeers, the most recently seen; malformed entries are skipped with a warning', async () => {
    const file = storeFile();
    const privateKey = randomBytes(32).toString('hex');
    const probe = new Peer({ privateKey });
    const now = Date.now();
    // Ten stored peers at closed ports (dials fail; they stay known), seen one minute apart, and two bad entries.
    const peers = Array.from({ length: 10 }, (_, i) => ({ id: fakeId(), address: `127.0.0.1:${1 + i}`, seenAt: now - i * 60_000, own: false }));
    const bad = [{ id: 'nope', address: '127.0.0.1:1', seenAt: now, own: false }, { id: fakeId(), address: 'not an address', seenAt: now, own: false }];
    writeFileSync(file, JSON.stringify({ version: 1, id: probe.id, peers: [...peers, ...bad] }));
    const logger = captureLogger();
    const a = await start({ privateKey, peerStoreFile: file, peerStoreMaxPeers: 4, logger });
    const known = a.knownPeers().filter((k) => k.verified).map((k) => k.id);
    expect(known.sort()).toEqual(peers.slice(0, 4).map((p) => p.id).sort());
    expect(warnings(logger)).toEqual(['peer store ' + file + ': ignored 2 malformed entries']);

    // Written back bounded too, with live neighbours: 6 connected now, 4 kept, all of them live ones (seen now).
    const live = await Promise.all(Array.from({ length: 6 }, () => start({})));
    for (const n of live) await n.connect(a.address()!);
    await waitFor(() => a.peers().length >= 6, 5000, 'A to hold its six neighbours');
    await stop(a);
    const written = read(file).peers;
    expect(written).toHaveLength(4);
    const liveIds = new Set(live.map((n) => n.id));
    expect(written.every((p) => liveIds.has(p.id))).toBe(true);
  });

  it('bans are not stored: a peer banned when the store is written is left out of it', async () => {
    const file = storeFile();
    const a = await start({ peerStoreFile: file });
    const b = await start({});
    const c = await start({});
    await b.connect(a.address()!);
    await c.connect(a.address()!);
    await waitFor(() => a.peers().length === 2, 5000, 'A to hold B and C');
    a.ban(b.id, { reason: 'test' });
    await stop(a);
    expect(read(file).peers.map((p) => p.id)).toEqual([c.id]);
  });
});

describe('peer store, real processes', () => {
  const procs: NodeProcess[] = [];
  afterEach(async () => {
    await stopNodes(procs.splice(0));
  });

  it('a node killed (SIGKILL) and restarted on another port with its key and store, no --peer: back with its neighbours at once', async () => {
    const file = storeFile();
    const privateKey = randomBytes(32).toString('hex');
    const [a1, b, c] = await Promise.all([spawnNode(0), spawnNode(1), spawnNode(2)]);
    procs.push(a1!, b!, c!);
    await startNode(a1!, { privateKey, peerStoreFile: file });
    // B and C configure A at its first address: after the restart their redials find nothing there.
    await Promise.all([startNode(b!, { peers: [addressOf(a1!)] }), startNode(c!, { peers: [addressOf(a1!)] })]);
    // The store is written within 5 s of a change (PEER_STORE_CHECK_MS), not only at close.
    const storedIds = () => {
      try {
        return read(file).peers.map((p) => p.id).sort();
      } catch {
        return [];
      }
    };
    await waitFor(() => storedIds().length === 2, 10_000, "A's store to hold B and C");
    expect(storedIds()).toEqual([b!.id, c!.id].sort());
    a1!.child.kill('SIGKILL');
    await new Promise((r) => a1!.child.once('exit', r));

    const a2 = await spawnNode(3);
    procs.push(a2);
    const startedAt = Date.now();
    await startNode(a2, { privateKey, peerStoreFile: file });
    expect(a2.id).toBe(a1!.id);
    let ms = -1;
    for (let i = 0; i < 100 && ms < 0; i++) {
      const { peers } = await statsOf(a2);
      if (peers.some((p) => p.id === b!.id || p.id === c!.id)) ms = Date.now() - startedAt;
      else await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`killed and restarted with a peer store: first previous neighbour connected ${ms} ms after start was asked (process)`);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(3000);
  });
});

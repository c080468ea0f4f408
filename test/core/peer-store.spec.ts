import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryHost } from '../../src/discovery/discovery.js';
import { PeerStore, type StoredPeer } from '../../src/discovery/peer-store.js';
import type { P2PSocket } from '../../src/connection/socket.js';
import type { P2PLogger } from '../../src/common/types.js';
import { silentLogger } from '../../src/common/types.js';

// The peer store's file and what a restored store may do (issue 23): the file round-trips through a
// temporary file and a rename; restored peers are dialable proven peers, in no routing view until
// they connect, and only those the node had learned of from others count as its own choice again.

const id = (digit: string) => digit.repeat(40);
const SELF = id('1');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-store-core-'));
  dirs.push(dir);
  return join(dir, 'sub', 'peers.json'); // a folder that does not exist yet: created at the first write
}

function discovery(banned = new Set<string>(), allowed = (_: string) => true): Discovery {
  const host: DiscoveryHost = {
    selfId: SELF,
    logger: silentLogger,
    isRunning: () => false,
    connections: () => new Map() as unknown as ReadonlyMap<string, P2PSocket>,
    ownAddresses: () => [],
    advertisedAddress: () => '127.0.0.1:1000',
    outboundCount: () => 0,
    connect: () => new Promise(() => undefined),
    isAllowed: allowed,
    isBanned: (x) => banned.has(x),
    isConfigured: () => false,
    release: () => undefined,
  };
  return new Discovery(host, {
    enabled: true,
    intervalMs: 1000,
    maxKnownPeers: 100,
    maxOutbound: 10,
    maxPeers: 50,
    backoff: { baseMs: 100, maxMs: 1000 },
    allowPrivate: false,
    allowHostnames: false,
  });
}

const stored = (digit: string, own: boolean, address = `127.0.0.1:${2000 + digit.charCodeAt(0)}`): StoredPeer => ({ id: id(digit), address, seenAt: 1_000, own });

describe('Discovery.restore / stored', () => {
  it('restores proven, dialable peers; only those flagged own are trusted as its choice; none enters the routing view', () => {
    const d = discovery();
    expect(d.restore([stored('a', true), stored('b', false)])).toBe(2);
    expect(d.knownPeers().map((k) => [k.id, k.verified])).toEqual([
      [id('b'), true],
      [id('a'), true],
    ]);
    expect(d.isTrusted(id('a'))).toBe(true);
    expect(d.isTrusted(id('b'))).toBe(false);
    expect(d.routingView()).toEqual([SELF]);
  });

  it('leaves out itself, disallowed ids, and addresses the address policy refuses now', () => {
    const d = discovery(new Set(), (x) => x !== id('c'));
    const n = d.restore([stored('1', true), stored('c', true), stored('d', true, 'example.com:4000'), stored('e', true, '0.0.0.0:4000'), stored('f', false)]);
    expect(n).toBe(1);
    expect(d.knownPeers().map((k) => k.id)).toEqual([id('f')]);
  });

  it('writes no banned peer, and keeps the trust flag', () => {
    const d = discovery(new Set([id('b')]));
    d.restore([stored('a', true), stored('b', true), stored('c', false)]);
    expect(d.stored().map((p) => [p.id, p.own]).sort()).toEqual([
      [id('a'), true],
      [id('c'), false],
    ]);
  });
});

describe('PeerStore file', () => {
  function logger(): P2PLogger & { warnings: string[] } {
    const warnings: string[] = [];
    return { warnings, log: () => undefined, error: (m) => warnings.push(m), warn: (m) => warnings.push(m) };
  }

  it('round-trips through a temporary file and a rename, freshest first, bounded', async () => {
    const file = tempFile();
    const peers = Array.from({ length: 6 }, (_, i) => ({ ...stored(String.fromCharCode(97 + i), i % 2 === 0), seenAt: 1000 + i }));
    const log = logger();
    const store = new PeerStore({ selfId: SELF, logger: log, snapshot: () => peers, restore: () => 0 }, { file, maxPeers: 4 });
    await store.save();
    expect(readdirSync(join(file, '..'))).toEqual(['peers.json']); // no temporary file left
    const body = JSON.parse(readFileSync(file, 'utf8')) as { version: number; id: string; peers: StoredPeer[] };
    expect(body.version).toBe(1);
    expect(body.id).toBe(SELF);
    expect(body.peers.map((p) => p.seenAt)).toEqual([1005, 1004, 1003, 1002]);
    expect(await store.load()).toEqual(body.peers);
    expect(log.warnings).toEqual([]);
  });

  it('a missing file is an empty store without a warning; an oversized or non-object one a warning', async () => {
    const file = tempFile();
    const log = logger();
    const store = new PeerStore({ selfId: SELF, logger: log, snapshot: () => [], restore: () => 0 }, { file, maxPeers: 2 });
    expect(await store.load()).toEqual([]);
    expect(log.warnings).toEqual([]);
    await store.save();
    writeFileSync(file, JSON.stringify({ version: 1, id: SELF, peers: [], pad: 'x'.repeat(10_000) }));
    expect(await store.load()).toEqual([]);
    writeFileSync(file, '[1,2,3]');
    expect(await store.load()).toEqual([]);
    expect(log.warnings).toHaveLength(2);
    expect(log.warnings[0]).toMatch(/bytes, more than 2 peers take/);
    expect(log.warnings[1]).toMatch(/not a peer store/);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { P2PReservedPatternError } from '../../src/common/errors.js';
import type { DirectoryChange } from '../../src/directory/directory.js';
import { Peer } from '../../src/node/peer.js';
import type { PeerOptions } from '../../src/node/peer-options.js';
import { waitFor } from '../helpers.js';

/**
 * Issue 24, item 1: the directory of handlers over real sockets. Every node holds every node's
 * signed record of handled patterns; a lookup is local (docs/directory.md).
 */

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function node(options: PeerOptions = {}): Promise<Peer> {
  const peer = new Peer({ listen: '127.0.0.1:0', peerExchange: false, ...options });
  open.push(peer);
  await peer.start();
  return peer;
}

/** `n` nodes in a line (each dials the previous): records must be relayed, not only sent to neighbours. */
async function line(n: number, options: PeerOptions = {}): Promise<Peer[]> {
  const nodes: Peer[] = [];
  for (let i = 0; i < n; i++) {
    const p = await node(options);
    if (i > 0) await p.connect(`${nodes[i - 1]!.id}@${nodes[i - 1]!.address()}`);
    nodes.push(p);
  }
  return nodes;
}

const ids = (infos: Array<{ id: string }>) => infos.map((h) => h.id);

describe('directory of handlers (5 nodes in a line, TLS)', () => {
  it('a record set on one node is found by every other within 2 s, by exact pattern, wildcard and object pattern', async () => {
    const nodes = await line(5);
    const server = nodes[2]!;
    const changes: DirectoryChange[] = [];
    nodes[4]!.on('directory', (c: DirectoryChange) => changes.push(c));
    server.setHandledPatterns({ requests: ['math.*', '{"cmd":"sum"}', 'orders.>'], events: ['notification'] });
    await waitFor(() => nodes.every((p) => p.handlers('math.sum', 'request').length === 1), 2000, 'every node to find math.sum');
    for (const p of nodes) {
      expect(p.handlers('math.sum', 'request')).toEqual([{ id: server.id, address: server.address(), self: p === server }]);
      expect(ids(p.handlers('{"cmd":"sum"}', 'request'))).toEqual([server.id]);
      expect(ids(p.handlers('orders.eu.created', 'request'))).toEqual([server.id]);
      expect(ids(p.handlers('notification', 'event'))).toEqual([server.id]);
      // Kinds are apart, and a wildcard needs its token.
      expect(p.handlers('notification', 'request')).toEqual([]);
      expect(p.handlers('math', 'request')).toEqual([]);
      expect(p.handlers('{"cmd":"other"}', 'request')).toEqual([]);
    }
    expect(changes).toContainEqual({ id: server.id, change: 'added' });

    // Handlers change: the record is replaced everywhere.
    const before = changes.length;
    server.setHandledPatterns({ requests: ['math.sum'], events: [] });
    await waitFor(() => nodes.every((p) => p.handlers('orders.x', 'request').length === 0 && p.handlers('math.sum', 'request').length === 1), 3000, 'the replaced record');
    expect(changes.slice(before)).toContainEqual({ id: server.id, change: 'replaced' });
    expect(nodes[0]!.directoryStats().records).toBe(1);
    expect(nodes[0]!.directoryStats().patterns).toBe(1);
  });

  it('two handlers of one pattern are both listed, sorted by id; a node closing cleanly disappears (tombstone)', async () => {
    const nodes = await line(4);
    nodes[1]!.setHandledPatterns({ requests: ['echo'], events: [] });
    nodes[3]!.setHandledPatterns({ requests: ['echo'], events: [] });
    const both = [nodes[1]!.id, nodes[3]!.id].sort();
    await waitFor(() => nodes.every((p) => p.handlers('echo', 'request').length === 2), 2000, 'both handlers');
    expect(ids(nodes[0]!.handlers('echo', 'request'))).toEqual(both);
    const removed: DirectoryChange[] = [];
    nodes[0]!.on('directory', (c: DirectoryChange) => removed.push(c));
    // Node 3 is a leaf: its tombstone must travel through node 2 before its goodbye.
    await nodes[3]!.close();
    await waitFor(() => ids(nodes[0]!.handlers('echo', 'request')).join() === nodes[1]!.id, 2000, 'the closed node to disappear');
    expect(removed).toContainEqual({ id: nodes[3]!.id, change: 'removed' });
  });

  it('a restart with the same key and new handlers supersedes the old record', async () => {
    const [a, b] = await line(2);
    const key = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const first = await node({ privateKey: key });
    first.setHandledPatterns({ requests: ['old.pattern'], events: [] });
    await first.connect(`${b!.id}@${b!.address()}`);
    await waitFor(() => a!.handlers('old.pattern', 'request').length === 1, 2000, 'the first record');
    // Killed without a goodbye: its record stays until a newer one (or its TTL).
    first.connection(b!.id)?.raw.destroy();
    open.splice(open.indexOf(first), 1);
    void first.close();
    const second = await node({ privateKey: key });
    expect(second.id).toBe(first.id);
    second.setHandledPatterns({ requests: ['new.pattern'], events: [] });
    await second.connect(`${b!.id}@${b!.address()}`);
    await waitFor(() => a!.handlers('new.pattern', 'request').length === 1 && a!.handlers('old.pattern', 'request').length === 0, 2000, 'the new record');
    expect(ids(a!.handlers('new.pattern', 'request'))).toEqual([second.id]);
  });

  it('a late joiner gets every record by anti-entropy (digest, then pages), without any record being re-broadcast', async () => {
    const nodes = await line(4);
    nodes.forEach((p, i) => p.setHandledPatterns({ requests: [`svc.${i}`, 'shared.*'], events: [`evt.${i}`] }));
    await waitFor(() => nodes.every((p) => p.handlers('shared.x', 'request').length === 4), 2000, 'the records');
    const originated = nodes.map((p) => p.networkBroadcastStats().originated);
    const late = await node();
    await late.connect(`${nodes[0]!.id}@${nodes[0]!.address()}`);
    await waitFor(() => late.handlers('shared.x', 'request').length === 4, 2000, 'the late joiner to hold every record');
    for (let i = 0; i < 4; i++) expect(late.handlers(`evt.${i}`, 'event').map((h) => h.id)).toEqual([nodes[i]!.id]);
    expect(nodes.map((p) => p.networkBroadcastStats().originated)).toEqual(originated);
    expect(late.directoryStats().records).toBe(4);
    expect(Object.values(late.directoryStats().refused).every((n) => n === 0)).toBe(true);
  });

  it('a joiner dialing 3 nodes at once pulls the directory from one of them: each record received about once, not 3 times', async () => {
    const nodes = await line(3);
    nodes.forEach((p, i) => p.setHandledPatterns({ requests: [`svc.${i}`], events: [] }));
    // Setup waits, generous for a loaded CI machine (2 s timed out there once); the assertions are counts, not times.
    await waitFor(() => nodes.every((p) => p.directoryStats().records === 3), 8000, 'the records');
    const late = await node();
    await Promise.all(nodes.map((p) => late.connect(`${p.id}@${p.address()}`)));
    await waitFor(() => late.directoryStats().records === 3, 8000, 'the late joiner to hold every record');
    await new Promise((r) => setTimeout(r, 300));
    const { sync } = late.directoryStats();
    expect(sync.digestsReceived).toBe(3);
    // One neighbour paged it (one page of 3); the two others, told not to (no PULL flag), sent nothing.
    expect(sync.recordsReceived).toBe(3);
    expect(sync.pagesReceived).toBe(1);
  });

  it('periodic anti-entropy heals an update a relay dropped (the relay forwards nothing and answers no repair)', async () => {
    const a = await node({ directorySyncIntervalMs: 400 });
    const relay = await node({ directorySyncIntervalMs: 400, dropRelays: true });
    const c = await node({ directorySyncIntervalMs: 400 });
    await relay.connect(`${a.id}@${a.address()}`);
    await c.connect(`${relay.id}@${relay.address()}`);
    await waitFor(() => c.peers().length === 1 && a.peers().length === 1, 2000, 'the line');
    a.setHandledPatterns({ requests: ['healed.*'], events: [] });
    await waitFor(() => relay.handlers('healed.x', 'request').length === 1, 2000, 'the relay to hold the record');
    // Not by broadcast: the relay drops it. By the relay's and C's digests, within a few intervals.
    await waitFor(() => c.handlers('healed.x', 'request').length === 1, 4000, 'anti-entropy to heal C');
    expect(c.networkBroadcastStats().delivered).toBe(0);
  });

  it('the record of a node that vanished without a goodbye expires after directoryTtlMs; live nodes re-publish theirs', async () => {
    const options = { directoryTtlMs: 1500, directoryUpdateRate: 10 };
    const [a, b] = await line(2, options);
    const gone = await node(options);
    await gone.connect(`${b!.id}@${b!.address()}`);
    b!.setHandledPatterns({ requests: ['live'], events: [] });
    gone.setHandledPatterns({ requests: ['gone'], events: [] });
    await waitFor(() => a!.handlers('gone', 'request').length === 1 && a!.handlers('live', 'request').length === 1, 2000, 'both records');
    // Vanishes: its connection cut, no tombstone (its node is then never heard from again).
    gone.connection(b!.id)!.raw.destroy();
    open.splice(open.indexOf(gone), 1);
    const removed: DirectoryChange[] = [];
    a!.on('directory', (c: DirectoryChange) => removed.push(c));
    await waitFor(() => a!.handlers('gone', 'request').length === 0, 3000, 'the record to expire');
    // Lookups leave it out at once; the sweep (a tenth of the TTL) removes it and says so.
    await waitFor(() => removed.some((c) => c.id === gone.id && c.change === 'removed'), 1000, 'the removal');
    expect(a!.handlers('live', 'request').map((h) => h.id)).toEqual([b!.id]);
    expect(a!.directoryStats().expired).toBeGreaterThanOrEqual(1);
    await gone.close();
  });

  it('reserved patterns are refused with a typed error and never reach handlers', async () => {
    const [a] = await line(1);
    expect(() => a!.setHandledPatterns({ requests: ['$p2p.directory'], events: [] })).toThrow(P2PReservedPatternError);
    expect(() => a!.broadcast('$p2p.directory', Buffer.alloc(1), { scope: 'network' })).toThrow(P2PReservedPatternError);
    expect(() => a!.setBroadcastValidator('$p2p.directory', () => 'accept')).toThrow(P2PReservedPatternError);
  });
});

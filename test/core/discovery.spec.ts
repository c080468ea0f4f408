import { describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryHost } from '../../src/discovery/discovery.js';
import type { P2PSocket } from '../../src/connection/socket.js';
import { silentLogger } from '../../src/common/types.js';

/** Ids by their first hex digit: the ring's thirds start at 0x555… and 0xaaa…. */
const id = (digit: string) => digit.padEnd(40, '0');
const SELF = id('1'); // alone in the first third
const NEAR = id('6'); // the second third's first member: the one facing SELF
const FAR = id('7');
const FARTHER = id('8');
const OTHER = id('b'); // in the third third

interface FakeSocket {
  peerId: string;
  direction: 'inbound' | 'outbound';
  connectedAt: Date;
  isOpen: boolean;
}

function node(maxPeers = 1, inUse: (id: string) => boolean = () => false): { discovery: Discovery; connections: Map<string, FakeSocket>; released: string[] } {
  const connections = new Map<string, FakeSocket>();
  const released: string[] = [];
  const host: DiscoveryHost = {
    selfId: SELF,
    logger: silentLogger,
    isRunning: () => true,
    connections: () => connections as unknown as ReadonlyMap<string, P2PSocket>,
    ownAddresses: () => [],
    advertisedAddress: () => '127.0.0.1:1000',
    outboundCount: () => [...connections.values()].filter((s) => s.direction === 'outbound').length,
    connect: () => new Promise(() => undefined),
    isAllowed: () => true,
    isBanned: () => false,
    isConfigured: () => false,
    release: (peer) => void released.push(peer),
    inUse,
  };
  // The least degree is min(8, maxPeers): with maxPeers 1, a second connection may be let go.
  const discovery = new Discovery(host, {
    enabled: true,
    intervalMs: 100,
    maxKnownPeers: 100,
    maxOutbound: 10,
    maxPeers,
    backoff: { baseMs: 100, maxMs: 1000 },
    allowPrivate: true,
    allowHostnames: false,
  });
  return { discovery, connections, released };
}

const outbound = (peerId: string, ageMs: number): FakeSocket => ({ peerId, direction: 'outbound', connectedAt: new Date(Date.now() - ageMs), isOpen: true });

describe('discovery: which connections the topology lets go', () => {
  it('a connection that has just opened does not make an older one redundant (a full peer sends its peers, then goodbye)', () => {
    const { discovery, connections, released } = node();
    // FAR covers the second third, dialed by discovery a while ago.
    connections.set(FAR, outbound(FAR, 10_000));
    (discovery as unknown as { dialed: Set<string> }).dialed.add(FAR);
    // NEAR faces SELF better, and its connection has just opened: it may be refused in a moment.
    connections.set(NEAR, outbound(NEAR, 0));
    discovery.fill();
    expect(released).toEqual([]);
  });

  it('once the new connection has lasted two peer-exchange intervals, the older one is let go', () => {
    const { discovery, connections, released } = node();
    connections.set(FAR, outbound(FAR, 10_000));
    (discovery as unknown as { dialed: Set<string> }).dialed.add(FAR);
    connections.set(NEAR, outbound(NEAR, 250));
    discovery.fill();
    expect(released).toEqual([FAR]);
  });

  it('a redundant connection that requests to a pattern use now is kept (it is let go once they have ended)', () => {
    let busy = true;
    const { discovery, connections, released } = node(1, (peer) => busy && peer === FAR);
    connections.set(FAR, outbound(FAR, 10_000));
    (discovery as unknown as { dialed: Set<string> }).dialed.add(FAR);
    connections.set(NEAR, outbound(NEAR, 250));
    discovery.fill();
    expect(released).toEqual([]);
    busy = false;
    discovery.fill();
    expect(released).toEqual([FAR]);
  });

  it('a connection that has just opened does not count toward the least degree either, and no more go than keep it', () => {
    const { discovery, connections, released } = node(2);
    const dialed = (discovery as unknown as { dialed: Set<string> }).dialed;
    // NEAR (not dialed by discovery: kept) covers the second third; FAR and FARTHER, dialed there too, are redundant.
    connections.set(NEAR, outbound(NEAR, 10_000));
    connections.set(FAR, outbound(FAR, 10_000));
    dialed.add(FAR);
    connections.set(OTHER, outbound(OTHER, 0));
    // 2 connections that lasted, at the least degree 2: the new one to OTHER does not make room.
    discovery.fill();
    expect(released).toEqual([]);
    connections.set(FARTHER, outbound(FARTHER, 10_000));
    dialed.add(FARTHER);
    // 3 that lasted: one may go, not both redundant ones.
    discovery.fill();
    expect(released).toEqual([FAR]);
  });
});

/** A known peer discovery may dial (proven by an earlier connection). */
const know = (discovery: Discovery, peer: string, port: number) => discovery.book.proven(peer, `127.0.0.1:${port}`);
const released = (peer: string, ageMs: number): FakeSocket => ({ ...outbound(peer, ageMs), isOpen: false });

describe('discovery: making room at maxPeers', () => {
  it('at maxPeers, with a third uncovered, a redundant connection is let go even at the least degree', () => {
    const { discovery, connections, released: gone } = node(2);
    connections.set(NEAR, outbound(NEAR, 10_000)); // kept: not dialed by discovery
    connections.set(FAR, outbound(FAR, 10_000)); // dialed by discovery, the second third again: redundant
    (discovery as unknown as { dialed: Set<string> }).dialed.add(FAR);
    know(discovery, OTHER, 1001); // the third third: known, and no connection there
    discovery.fill();
    expect(gone).toEqual([FAR]);
  });

  it('not for a third whose member refused us for being full: that would trade connections in a loop', () => {
    const { discovery, connections, released: gone } = node(2);
    connections.set(NEAR, outbound(NEAR, 10_000));
    connections.set(FAR, outbound(FAR, 10_000));
    (discovery as unknown as { dialed: Set<string> }).dialed.add(FAR);
    know(discovery, OTHER, 1001);
    discovery.book.disconnected(OTHER, true);
    // Its wait is over: only the refusal holds it back.
    (discovery.book as unknown as { peers: Map<string, { nextDialAt: number }> }).peers.get(OTHER)!.nextDialAt = 0;
    discovery.fill();
    expect(gone).toEqual([]);
  });

  it('a connection already closing counts toward no degree, so a second one is not let go in its place', () => {
    const { discovery, connections, released: gone } = node(3);
    const dialed = (discovery as unknown as { dialed: Set<string> }).dialed;
    connections.set(FARTHER, outbound(FARTHER, 10_000)); // redundant, listed before FAR
    dialed.add(FARTHER);
    connections.set(NEAR, outbound(NEAR, 10_000)); // kept: covers the second third
    connections.set(FAR, released(FAR, 10_000)); // let go a moment ago, still draining
    dialed.add(FAR);
    connections.set(OTHER, outbound(OTHER, 10_000));
    // Open and lasting: FARTHER, NEAR, OTHER, the least degree 3.
    discovery.fill();
    expect(gone).toEqual([]);
  });

  it('a dialer refused for being full is kept as a candidate, so that the full node knows of it', () => {
    const { discovery } = node(1);
    const sent: unknown[] = [];
    const dialer = {
      peerId: OTHER,
      remoteAddress: '127.0.0.1:50000',
      remote: { listenAddress: '127.0.0.1:1001' },
      raw: { remoteAddress: '127.0.0.1' },
      lastPeerExchangeSentAt: 0,
      sendControl: (frame: unknown) => void sent.push(frame),
    };
    discovery.onRefused(dialer as unknown as P2PSocket);
    expect(discovery.knownPeers()).toEqual([expect.objectContaining({ id: OTHER, address: '127.0.0.1:1001', verified: false })]);
    expect(discovery.knownIds()).toContain(OTHER);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, type PeerEvent } from '../../src/common/types.js';
import { Peer } from '../../src/node/peer.js';
import { echo, freePort, startEchoPeer, waitFor } from '../helpers.js';

// A configured peer is never refused at maxPeers, and its redial does not wait for a place: before, a node full of other
// connections that reconnected its configured peer held maxPeers + 1 (one node of the 20-node sparse mesh at 9 of 8).
// Now the configured peer takes the place of a connection not configured, and maxPeers holds.
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const BASE = { logger: silentLogger, peerExchange: false, reconnectBaseMs: 100, reconnectMaxMs: 300 };

function goodbyes(node: Peer): string[] {
  const reasons: string[] = [];
  node.on('peer', (e: PeerEvent) => {
    if (e.type === 'disconnected') reasons.push(e.reason);
  });
  return reasons;
}

describe('maxPeers with a configured peer', () => {
  it('a configured peer redialed while the node is full takes the place of an inbound one: the bound holds, the other inbound peer is still served', async () => {
    // S is full (maxPeers 1, held by D), so A's first dial of its configured S is refused and A redials it with backoff.
    const s = await startEchoPeer({ ...BASE, maxPeers: 1 }, open);
    const d = await startEchoPeer(BASE, open);
    await d.connect(s.address()!);
    const a = await startEchoPeer({ ...BASE, maxPeers: 2, peers: [s.address()!] }, open);
    const b = await startEchoPeer(BASE, open);
    const c = await startEchoPeer(BASE, open);
    const bSaw = goodbyes(b);
    const cSaw = goodbyes(c);
    await b.connect(a.address()!);
    await c.connect(a.address()!);
    await waitFor(() => a.peers().length === 2, 3000, 'A full with B and C');
    expect(a.peers().some((p) => p.id === s.id)).toBe(false);
    // S has room again: A's next redial reaches it, past A's bound.
    await d.disconnect(s.id);
    await waitFor(() => a.peers().some((p) => p.id === s.id), 5000, 'A reconnects its configured peer');
    await waitFor(() => a.peers().length === 2, 3000, 'A back at maxPeers');
    const ids = a.peers().map((p) => p.id);
    expect(ids).toContain(s.id);
    // The newest inbound one (C) was let go, as a refusal: goodbye 5, which names maxPeers.
    expect(ids).toContain(b.id);
    expect(ids).not.toContain(c.id);
    expect(cSaw.some((r) => /maxPeers 2/.test(r))).toBe(true);
    expect(bSaw).toEqual([]);
    expect(await echo(a, b.id, 'still served')).toBe('still served');
    expect(await echo(a, s.id, 'configured')).toBe('configured');
    // It stays at the bound: C's redials (it has A as no configured peer here) do not come back past it.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(a.peers().length).toBe(2);
  }, 15_000);

  it('a configured peer that dials in while the node is full is let in and takes the place of another', async () => {
    const port = await freePort();
    const s = new Peer({ ...BASE, listen: `127.0.0.1:${port}` });
    s.setHandler({ onEvent: () => undefined, onRequest: (_p, _t, data, reply) => (reply.next(data), reply.complete()) });
    open.push(s);
    // A knows S by id and address, but S is not listening yet: A's dials fail and wait.
    const a = await startEchoPeer({ ...BASE, maxPeers: 2, peers: [`${s.id}@127.0.0.1:${port}`], reconnectBaseMs: 5000, reconnectMaxMs: 10_000 }, open);
    const b = await startEchoPeer(BASE, open);
    const c = await startEchoPeer(BASE, open);
    await b.connect(a.address()!);
    await c.connect(a.address()!);
    await waitFor(() => a.peers().length === 2, 3000, 'A full with B and C');
    await s.start();
    await s.connect(a.address()!);
    await waitFor(() => a.peers().some((p) => p.id === s.id) && a.peers().length === 2, 3000, 'S in, one other out');
    expect(a.peers().map((p) => p.id)).toContain(b.id);
    expect(await echo(s, a.id, 'in')).toBe('in');
  }, 15_000);

  it('an unconfigured dialer at maxPeers is still refused', async () => {
    const a = await startEchoPeer({ ...BASE, maxPeers: 1 }, open);
    const b = await startEchoPeer(BASE, open);
    const c = await startEchoPeer(BASE, open);
    const cSaw = goodbyes(c);
    await b.connect(a.address()!);
    // Its hello is answered, then it is told A's peers and refused (goodbye 5).
    await c.connect(a.address()!).catch(() => undefined);
    await waitFor(() => cSaw.some((r) => /maxPeers 1/.test(r)), 3000, 'C refused at maxPeers');
    expect(a.peers().map((p) => p.id)).toEqual([b.id]);
  }, 10_000);
});

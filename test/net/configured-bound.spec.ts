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

  it('a configured peer known by host:port only, connected for the first time past the bound, takes a place too', async () => {
    const port = await freePort();
    // Not listening yet: A's first dials fail, so A has never learned S's id when S first connects past its bound.
    const a = await startEchoPeer({ ...BASE, maxPeers: 2, peers: [`127.0.0.1:${port}`] }, open);
    const b = await startEchoPeer(BASE, open);
    const c = await startEchoPeer(BASE, open);
    await b.connect(a.address()!);
    await c.connect(a.address()!);
    await waitFor(() => a.peers().length === 2, 3000, 'A full with B and C');
    const s = await startEchoPeer({ ...BASE, listen: `127.0.0.1:${port}` }, open);
    await waitFor(() => a.peers().some((p) => p.id === s.id), 5000, 'A reaches its configured peer');
    await waitFor(() => a.peers().length === 2, 3000, 'A back at maxPeers');
    expect(a.peers().map((p) => p.id).sort()).toEqual([b.id, s.id].sort());
  }, 15_000);

  it('a connection with a request under way is not the one let go, and its request completes; goodbye 1, not 5, for the one that is', async () => {
    const s = await startEchoPeer({ ...BASE, maxPeers: 1 }, open);
    const d = await startEchoPeer(BASE, open);
    await d.connect(s.address()!);
    const a = await startEchoPeer({ ...BASE, maxPeers: 2, peers: [s.address()!] }, open);
    let finish: () => void = () => undefined;
    a.setHandler({
      onEvent: () => undefined,
      onRequest: (_p, topic, data, reply) => {
        if (topic !== 'slow') return void (reply.next(data), reply.complete());
        finish = () => (reply.next('done'), reply.complete());
      },
    });
    const b = await startEchoPeer(BASE, open);
    const c = await startEchoPeer(BASE, open);
    const bSaw = goodbyes(b);
    await b.connect(a.address()!);
    await c.connect(a.address()!);
    await waitFor(() => a.peers().length === 2, 3000, 'A full with B and C');
    // C, the newest inbound one, has a request running at A: B goes instead.
    const slow = new Promise((resolve, reject) => c.request(a.id, 'slow', 'x', { next: resolve, error: reject, complete: () => undefined }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await d.disconnect(s.id);
    await waitFor(() => a.peers().some((p) => p.id === s.id) && a.peers().length === 2, 5000, 'S in, one other out');
    expect(a.peers().map((p) => p.id)).toContain(c.id);
    expect(bSaw.some((r) => /configured peer takes this place/.test(r))).toBe(true);
    finish();
    expect(await slow).toBe('done');
  }, 15_000);

  it('a configured peer that comes back again within reconnectMaxMs takes no second place: the node stays past the bound instead', async () => {
    const s = await startEchoPeer({ ...BASE, maxPeers: 1 }, open);
    const d = await startEchoPeer(BASE, open);
    await d.connect(s.address()!);
    const a = await startEchoPeer({ ...BASE, maxPeers: 2, peers: [s.address()!], reconnectMaxMs: 20_000 }, open);
    const b = await startEchoPeer(BASE, open);
    const c = await startEchoPeer(BASE, open);
    const e = await startEchoPeer(BASE, open);
    await b.connect(a.address()!);
    await c.connect(a.address()!);
    await waitFor(() => a.peers().length === 2, 3000, 'A full with B and C');
    await d.disconnect(s.id);
    await waitFor(() => a.peers().some((p) => p.id === s.id) && a.peers().length === 2, 5000, 'S in, C out');
    // S leaves; E takes its place; S comes back: no second eviction within reconnectMaxMs.
    await a.disconnect(s.id);
    await waitFor(() => a.peers().length === 1, 3000, 'S gone');
    await e.connect(a.address()!);
    await waitFor(() => a.peers().some((p) => p.id === s.id), 8000, 'S back');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(a.peers().map((p) => p.id).sort()).toEqual([b.id, e.id, s.id].sort());
  }, 20_000);

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

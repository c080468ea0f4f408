import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { PEX_DIALS_PER_INTERVAL, PEX_MAX_CANDIDATES_PER_SOURCE } from '../../src/discovery/pex-candidates.js';
import { type PeerOptions } from '../../src/node/peer-options.js';
import { Peer } from '../../src/node/peer.js';
import { ControlType, encodeControl } from '../../src/wire/control.js';
import { RING_ROOT, inArc, thirdsOf } from '../../src/ring/raintree.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

// The inputs of issue 13's peer-exchange findings, replayed from a hand-driven peer on 127.0.0.1.

const open: Peer[] = [];
const raws: RawPeer[] = [];
const servers: Server[] = [];
const held: Socket[] = [];
afterEach(async () => {
  held.splice(0).forEach((s) => s.destroy());
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((res) => s.close(res))));
});

const start = (options: PeerOptions = {}): Promise<Peer> => startEchoPeer(options, open);
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const pex = (peers: Array<{ id: string; address: string }>) => Buffer.concat(encodeControl({ type: ControlType.PeerExchange, body: Buffer.from(JSON.stringify({ peers })) }).chunks);
let fresh = 1;
const freshId = () => (fresh++).toString(16).padStart(40, 'a');

/** A non-p2p service that counts the connections it gets and drops each at once (or, `drop` false, holds it silently). */
async function foreignService(drop = true): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    if (drop) socket.destroy();
    else held.push(socket.on('error', () => undefined));
  });
  servers.push(server);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

async function attacker(node: Peer): Promise<RawPeer> {
  const before = node.peers().length;
  const r = await RawPeer.open(node.address()!, { tls: true });
  raws.push(r);
  await waitFor(() => node.peers().length === before + 1);
  return r;
}

describe('peer exchange is a hint, not a fact (issue 13)', () => {
  it(`dial anywhere: 8 lists of 64 fresh ids aimed at 20 foreign ports make at most ${PEX_DIALS_PER_INTERVAL} dials in 9 s, one per port`, async () => {
    const targets = await Promise.all(Array.from({ length: 20 }, () => foreignService()));
    const node = await start({}); // defaults: pexIntervalMs 30 s, listening on 127.0.0.1 (so loopback is allowed)
    const r = await attacker(node);
    for (let m = 0; m < 8; m++) {
      const peers = Array.from({ length: 64 }, (_, i) => {
        const { port } = targets[i % targets.length]!;
        const spelling = [`127.0.0.1:${port}`, `localhost:${port}`, `[::ffff:127.0.0.1]:${port}`][(i + m) % 3]!;
        return { id: freshId(), address: spelling };
      });
      r.write(pex(peers));
      await sleep(1100); // one PEX a second is read
    }
    const counts = targets.map((t) => t.accepted());
    const total = counts.reduce((a, b) => a + b, 0);
    // The finding: 80 connections in 8 s to one service. Now: the spellings of one address merge into one candidate,
    // host names are refused, one neighbour has at most 16 candidates waiting, each address is dialed at most once per
    // pexIntervalMs, and all candidates together at most PEX_DIALS_PER_INTERVAL times per pexIntervalMs.
    expect(total).toBeLessThanOrEqual(PEX_DIALS_PER_INTERVAL);
    expect(total).toBeGreaterThan(0); // candidates are still tried
    expect(Math.max(...counts)).toBe(1);
    const candidates = node.knownPeers().filter((k) => !k.verified);
    expect(candidates.length).toBeLessThanOrEqual(PEX_MAX_CANDIDATES_PER_SOURCE);
    expect(new Set(candidates.map((c) => c.address)).size).toBe(candidates.length);
    expect(candidates.every((c) => c.address.startsWith('127.0.0.1:'))).toBe(true);
    expect(r.closed).toBe(false);
  }, 20_000);

  it('address hijack: a poisoned address for a proven peer is ignored, and the peer is redialed where it really is', async () => {
    const foreign = await foreignService();
    const privateKey = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const honestOptions: PeerOptions = { peerExchange: false, privateKey };
    let honest = await start(honestOptions);
    const honestAddress = honest.address()!;
    const node = await start({ pexIntervalMs: 200, reconnectBaseMs: 1000 });
    await node.connect(`${honest.id}@${honestAddress}`);
    const r = await attacker(node);
    const poison = () => r.write(pex([{ id: honest.id, address: `127.0.0.1:${foreign.port}` }]));
    const entry = () => node.knownPeers().filter((k) => k.id === honest.id);

    poison();
    await sleep(300);
    expect(entry()).toEqual([expect.objectContaining({ address: honestAddress, verified: true })]);

    // The honest peer goes away; the poison comes again while it is gone; it comes back on its address.
    await honest.close();
    await waitFor(() => !node.peers().some((p) => p.id === honest.id));
    poison();
    await sleep(150);
    expect(entry()).toEqual([expect.objectContaining({ address: honestAddress, verified: true })]);
    honest = await start({ ...honestOptions, listen: honestAddress });
    await waitFor(() => node.peers().some((p) => p.id === honest.id), 8000, 'the honest peer to be redialed');
    expect(foreign.accepted()).toBe(0);
  }, 20_000);

  it('routing view bloat: 16 lists of fake ids leave the RainTree view unchanged and cost a 6-node mesh at most one frame per candidate left', async () => {
    const n = 6;
    const heard = new Map<string, number>();
    const mesh: Peer[] = [];
    for (let i = 0; i < n; i++) {
      const p = await start({ pexIntervalMs: 100 });
      p.setHandler({ onEvent: (_peer, _topic, _data, b) => void (b && heard.set(`${p.id}/${b.id}`, (heard.get(`${p.id}/${b.id}`) ?? 0) + 1)), onRequest: () => undefined });
      mesh.push(p);
    }
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await mesh[i]!.connect(`${mesh[j]!.id}@${mesh[j]!.address()}`);
    await waitFor(() => mesh.every((p) => p.peers().length === n - 1));
    const victim = mesh[3]!;
    const ids = mesh.map((p) => p.id).sort();

    /** Broadcasts from `from`; returns the relays it took and the copies refused for too many arcs, once all 6 have it exactly once. */
    const measure = async (from: Peer) => {
      const total = (k: 'sent' | 'tooManyArcs') => mesh.reduce((a, p) => a + p.networkBroadcastStats()[k], 0);
      const before = { sent: total('sent'), fallbacks: total('tooManyArcs') };
      const { id } = from.broadcast('net.news', 'hello', { scope: 'network' });
      await waitFor(() => mesh.every((p) => heard.get(`${p.id}/${id}`) === 1), 3000, 'every node to hear it');
      await sleep(200);
      expect(mesh.map((p) => heard.get(`${p.id}/${id}`))).toEqual(Array(n).fill(1));
      return { sent: total('sent') - before.sent, fallbacks: total('tooManyArcs') - before.fallbacks };
    };
    expect(victim.routingView()).toEqual(ids);
    const baseline = [await measure(mesh[0]!), await measure(victim)];
    expect(baseline).toEqual([{ sent: n - 1, fallbacks: 0 }, { sent: n - 1, fallbacks: 0 }]);

    const r = await attacker(victim);
    for (let m = 0; m < 16; m++) {
      // Closed low ports on 127.0.0.1: every candidate dial fails at once.
      r.write(pex(Array.from({ length: 64 }, (_, i) => ({ id: freshId(), address: `127.0.0.1:${m * 64 + i + 1}` }))));
      await sleep(120);
    }
    r.destroy();
    await waitFor(() => victim.peers().length === n - 1);
    await sleep(300);

    // The finding: the book filled to 1 000 fake ids, all in the view; 21 relays per broadcast and gossip fallbacks.
    expect(victim.routingView()).toEqual(ids);
    expect(victim.knownPeers().filter((k) => !k.verified).length).toBeLessThanOrEqual(PEX_MAX_CANDIDATES_PER_SOURCE);
    // Candidates still waiting for their dial count as known ids for routing (issue 15: a missed id costs a third,
    // a made-up one a frame): each can cost at most one proxied frame per broadcast, never a flood.
    for (const after of [await measure(mesh[0]!), await measure(victim)]) {
      expect(after.fallbacks).toBe(0);
      expect(after.sent).toBeLessThanOrEqual(n - 1 + PEX_MAX_CANDIDATES_PER_SOURCE);
    }
  }, 20_000);

  it('made-up ids along a node\'s path, named by a neighbour that stays connected, attract no frames: about n − 1 relays a broadcast in a 6-node mesh', async () => {
    const n = 6;
    const heard = new Map<string, number>();
    const mesh: Peer[] = [];
    for (let i = 0; i < n; i++) {
      // Peer exchange every 30 s (the default): the candidates stay undialed while the test measures.
      const p = await start({});
      p.setHandler({ onEvent: (_peer, _topic, _data, b) => void (b && heard.set(`${p.id}/${b.id}`, (heard.get(`${p.id}/${b.id}`) ?? 0) + 1)), onRequest: () => undefined });
      mesh.push(p);
    }
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await mesh[i]!.connect(`${mesh[j]!.id}@${mesh[j]!.address()}`);
    await waitFor(() => mesh.every((p) => p.peers().length === n - 1));
    const victim = mesh[3]!;
    const r = await attacker(victim);
    // 16 made-up ids, one in each of the victim's sibling thirds at levels 2 to 9 (where no honest node is): each splits
    // its path once more, and none has a neighbour inside, so only a neighbour that says it reaches it could take it.
    const path: string[] = [];
    let current = RING_ROOT;
    for (let level = 0; level < 10; level++) {
      const thirds = thirdsOf(current);
      const own = thirds.find((t) => inArc(victim.id, t))!;
      if (level >= 2) for (const t of thirds) if (t !== own) path.push(t.from);
      current = own;
    }
    // Each at its own address: a port that accepts and never answers, so a dial would hang, not fail.
    const holes = await Promise.all(path.map(() => foreignService(false)));
    r.write(pex(path.map((id, i) => ({ id, address: `127.0.0.1:${holes[i]!.port}` }))));
    await waitFor(() => victim.knownPeers().filter((k) => !k.verified).length === path.length, 3000, 'the candidates');

    const total = () => mesh.reduce((a, p) => a + p.networkBroadcastStats().sent, 0);
    const relays: number[] = [];
    let toAttacker = 0;
    for (let b = 0; b < 5; b++) {
      const from = mesh[b % n]!;
      const before = total();
      const gotBefore = r.broadcasts().length;
      const { id } = from.broadcast('net.news', { b }, { scope: 'network' });
      await waitFor(() => mesh.every((p) => heard.get(`${p.id}/${id}`) === 1), 3000, 'every node to hear it');
      await sleep(200);
      relays.push(total() - before);
      toAttacker += r.broadcasts().length - gotBefore;
    }
    report(`made-up ids along the path: relays per broadcast ${relays.join(' ')} (mean ${(relays.reduce((a, x) => a + x, 0) / relays.length).toFixed(1)}); frames handed to the liar ${toAttacker} in ${relays.length} broadcasts`);
    // The liar (a seventh neighbour of the victim) may be handed the arc holding itself, at most once a broadcast.
    expect(toAttacker).toBeLessThanOrEqual(relays.length);
    for (const sent of relays) expect(sent).toBeLessThanOrEqual(n);
  }, 30_000);

  it('host names and special ranges are refused per the policy; pexAllowPrivate and pexAllowHostnames open them', async () => {
    const special = ['10.0.0.1:4000', '192.168.1.1:4000', '169.254.1.1:4000', '224.0.0.1:4000', '255.255.255.255:4000', '[fe80::1]:4000', '[ff02::1]:4000', 'localhost:4000', 'example.com:4000'];
    const send = async (node: Peer) => {
      const r = await attacker(node);
      r.write(pex([...special, '8.8.8.8:4000', '127.0.0.1:4000'].map((address) => ({ id: freshId(), address }))));
      await waitFor(() => node.knownPeers().length > 0);
      await sleep(100);
      return node.knownPeers().map((k) => k.address).sort();
    };
    // maxOutbound 0: learn, never dial. A node on 127.0.0.1 takes loopback (local networks keep working) and public IPs.
    expect(await send(await start({ maxOutbound: 0 }))).toEqual(['127.0.0.1:4000', '8.8.8.8:4000']);
    const open = await send(await start({ maxOutbound: 0, pexAllowPrivate: true, pexAllowHostnames: true }));
    expect(open).toEqual(['10.0.0.1:4000', '127.0.0.1:4000', '192.168.1.1:4000', '8.8.8.8:4000', 'example.com:4000', 'localhost:4000']);
  });
});

import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PEX_DIALS_PER_INTERVAL } from '../../src/discovery/pex-candidates.js';
import { type Peer } from '../../src/node/peer.js';
import { parsePeerExchange } from '../../src/discovery/peer-exchange.js';
import { ControlType } from '../../src/wire/control.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Review of the forming pace (src/discovery/pex-pace.ts): a node below its least degree dials 4
 * candidates a second that a neighbour of its own choosing named. What that neighbour names of its
 * inbound peers is only their own word (the address they announce in their hello), so an outsider
 * that dials an honest node V, announcing a third party's address, has every node below 8 that chose
 * V dial that address. Here the outsider opens 16 connections to V, each announcing one port of a
 * foreign (non-p2p) service on 127.0.0.1, and counts what W, a node with V as its configured peer
 * and defaults otherwise (pexIntervalMs 30 s), dials there. The same holds for the address a peer
 * announced when it dialed in itself: W redials it while below 8, in every forming round.
 */
const open: Peer[] = [];
const raws: RawPeer[] = [];
const servers: Server[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((res) => s.close(res))));
});
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** A non-p2p service that counts the connections it gets and drops each at once. */
async function foreignService(): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  servers.push(server);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

describe('peer exchange relayed by an honest neighbour is no reflector', () => {
  it(`16 inbound peers of V announcing foreign ports make W (below 8, V its configured peer) dial there at most ${PEX_DIALS_PER_INTERVAL} times in 6 s`, async () => {
    const targets = await Promise.all(Array.from({ length: 16 }, () => foreignService()));
    const v = await startEchoPeer({}, open);
    const w = await startEchoPeer({ peers: [`${v.id}@${v.address()}`] }, open);
    await waitFor(() => w.peers().length === 1, 3000, 'W to connect to V');
    for (const t of targets) {
      const raw = await RawPeer.open(v.address()!, { tls: true, hello: false, localAddress: '127.0.0.2' });
      raw.sendHello({ listenAddress: `127.0.0.1:${t.port}` });
      raws.push(raw);
    }
    await waitFor(() => v.peers().length === 17, 3000, 'V to admit the 16');
    await sleep(6000);
    const counts = targets.map((t) => t.accepted());
    const total = counts.reduce((a, b) => a + b, 0);
    report(`reflection through V: W dialed the foreign ports ${total} times in 6 s (${counts.join(' ')}); W has ${w.peers().length} peers`);
    // V names them: W learned of them (else this test shows nothing).
    expect(w.knownPeers().filter((k) => !k.verified).length + total).toBeGreaterThan(0);
    // The pace before the forming rounds: at most PEX_DIALS_PER_INTERVAL dials to addresses that answer as no node, a pexIntervalMs.
    expect(total).toBeLessThanOrEqual(PEX_DIALS_PER_INTERVAL);
  }, 20_000);
});

describe('addresses peers that dialed in announced are no reflector', () => {
  it('16 peers that dial W once, each announcing a foreign port, and leave: W below 8 redials those ports at most 4 times in 8 s', async () => {
    const targets = await Promise.all(Array.from({ length: 16 }, () => foreignService()));
    const w = await startEchoPeer({}, open);
    for (const t of targets) {
      const raw = await RawPeer.open(w.address()!, { tls: true, hello: false, localAddress: '127.0.0.2' });
      raw.sendHello({ listenAddress: `127.0.0.1:${t.port}` });
      await waitFor(() => w.peers().length === 1, 3000, 'W to admit it');
      raw.destroy();
      await waitFor(() => w.peers().length === 0, 3000, 'it to be gone');
    }
    await sleep(8000);
    const counts = targets.map((t) => t.accepted());
    const total = counts.reduce((a, b) => a + b, 0);
    report(`redials of announced addresses: W dialed the foreign ports ${total} times in 8 s (${counts.join(' ')})`);
    expect(total).toBeLessThanOrEqual(PEX_DIALS_PER_INTERVAL);
  }, 30_000);
});

describe('forming rounds an outsider can cause', () => {
  it('connecting and dropping 4 times a second keeps a node below 8 telling its neighbours, at most once a second each', async () => {
    const v = await startEchoPeer({}, open);
    const neighbours: RawPeer[] = [];
    for (let i = 0; i < 3; i++) {
      const raw = await RawPeer.open(v.address()!, { tls: true, hello: false });
      raw.sendHello({ listenAddress: `127.0.0.1:${40_000 + i}` });
      neighbours.push(raw);
      raws.push(raw);
    }
    await waitFor(() => v.peers().length === 3, 3000, 'the neighbours to be admitted');
    await sleep(1200);
    const before = neighbours.map((r) => r.controls.filter((c) => c.type === ControlType.PeerExchange).length);
    const SECONDS = 5;
    let churned = 0;
    const until = Date.now() + SECONDS * 1000;
    while (Date.now() < until) {
      const raw = await RawPeer.open(v.address()!, { tls: true, hello: false, localAddress: '127.0.0.2' });
      raws.push(raw);
      raw.sendHello({ listenAddress: `127.0.0.2:${41_000 + churned}` });
      await waitFor(() => v.peers().length === 4, 3000, 'the churner to be admitted');
      churned++;
      await sleep(125);
      raw.destroy();
      await waitFor(() => v.peers().length === 3, 3000, 'the churner to be gone');
      await sleep(125);
    }
    const sent = neighbours.map((r, i) => r.controls.filter((c) => c.type === ControlType.PeerExchange).length - before[i]!);
    const entries = neighbours[0]!.controls
      .filter((c): c is Extract<typeof c, { type: ControlType.PeerExchange }> => c.type === ControlType.PeerExchange)
      .map((c) => parsePeerExchange(c.body, () => false).entries.length);
    report(`churn: ${churned} connect-and-drops in ${SECONDS} s; V sent its 3 neighbours ${sent.join(' ')} peer exchanges (entries each: ${entries.join(' ')})`);
    expect(churned).toBeGreaterThan(SECONDS);
    // One a second per neighbour at most (the gap), however fast the churn: no amplification past the forming pace.
    for (const n of sent) expect(n).toBeLessThanOrEqual(SECONDS + 1);
  }, 20_000);
});

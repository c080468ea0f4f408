import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from '../../src/node/peer.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

const open: Peer[] = [];
const sockets: Socket[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const fdCount = () => readdirSync('/proc/self/fd').length;

/** Keeps a good peer asking for the whole test; resolves with how many replies it got, or rejects. */
function keepServing(good: Peer, node: Peer): { stop: () => Promise<number> } {
  let serving = true;
  let served = 0;
  const loop = (async () => {
    while (serving) {
      if ((await echo(good, node.id, served)) !== served) throw new Error('wrong echo');
      served++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    stop: async () => {
      serving = false;
      await loop;
      return served;
    },
  };
}

describe('abuse over real sockets', () => {
  it('slowloris: 200 connections that send nothing or a byte a second are closed after handshakeTimeoutMs; fds return to baseline', async () => {
    // Pending and per-IP limits lifted: this is about the handshake timeout alone (admission.spec.ts tests those limits).
    const node = await startEchoPeer({ handshakeTimeoutMs: 500, maxInbound: 300, maxPendingInbound: 300, inboundRatePerIp: 10_000 }, open);
    const good = await startEchoPeer({}, open);
    await good.connect(`${node.id}@${node.address()}`);
    const baseline = fdCount();
    const traffic = keepServing(good, node);
    const [host, port] = node.address()!.split(':') as [string, string];
    const started = Date.now();
    const closedAt: number[] = [];
    const dribblers: NodeJS.Timeout[] = [];
    for (let i = 0; i < 200; i++) {
      const s = connect({ host, port: Number(port) });
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closedAt.push(Date.now() - started));
      if (i % 2 === 1) {
        // A TLS record header, one byte a second: looks like a handshake that never finishes.
        const bytes = [0x16, 0x03, 0x01, 0x02, 0x00];
        let k = 0;
        s.on('connect', () => s.write(Buffer.of(bytes[k++]!)));
        const t = setInterval(() => k < bytes.length && !s.destroyed && s.write(Buffer.of(bytes[k++]!)), 1000);
        dribblers.push(t);
      }
    }
    await waitFor(() => closedAt.length === 200, 5000, 'all 200 slow connections to be closed');
    dribblers.forEach(clearInterval);
    expect(Math.min(...closedAt)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...closedAt)).toBeLessThan(500 + 2000);
    expect(await traffic.stop()).toBeGreaterThan(10);
    // The node let go of every socket: descriptors are back where they were before the flood.
    await waitFor(() => fdCount() <= baseline + 2, 3000, `fd count to return to ${baseline}`);
    expect(node.peers().map((p) => p.id)).toEqual([good.id]);
  }, 20_000);

  it('connection flood: 1000 attempts against maxInbound 40 never get more than 40 in, and a good peer keeps working', async () => {
    const maxInbound = 40;
    // Per-IP limits lifted: every attempt comes from 127.0.0.1, and this is about maxInbound alone.
    const node = await startEchoPeer({ maxInbound, maxPendingInbound: 1000, maxInboundPerIp: 1000, inboundRatePerIp: 100_000 }, open);
    const good = await startEchoPeer({}, open);
    await good.connect(`${node.id}@${node.address()}`);
    const traffic = keepServing(good, node);
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, node.peers().length)), 2);
    let refusedByGoodbye = 0;
    let failed = 0;
    for (let i = 0; i < 1000; i += 100) {
      const batch = await Promise.allSettled(Array.from({ length: 100 }, () => RawPeer.open(node.address()!, { tls: true })));
      for (const r of batch) {
        if (r.status === 'fulfilled') raws.push(r.value);
        else failed++;
      }
    }
    // Each connection either was admitted, refused with a goodbye saying why, or cut at the TCP level once too many refusals were in flight.
    await waitFor(() => raws.every((r) => r.closed || node.peers().some((p) => p.id === r.identity.peerId)), 10_000, 'every flood connection to be settled');
    clearInterval(sampler);
    refusedByGoodbye = raws.filter((r) => r.closed && r.goodbye()?.message.includes('inbound limit')).length;
    const admitted = raws.filter((r) => !r.closed).length;
    expect(most).toBeLessThanOrEqual(maxInbound);
    expect(node.peers().length).toBeLessThanOrEqual(maxInbound);
    expect(admitted).toBe(maxInbound - 1); // the good peer holds one slot
    // Every attempt is accounted for: admitted, or refused by the node (with a goodbye, or cut once too many refusals were in flight).
    expect(node.refused).toBe(1000 - admitted);
    expect(refusedByGoodbye).toBeGreaterThan(0);
    if (process.env.P2P_TEST_STATS) process.stdout.write(`flood: ${admitted} admitted, ${refusedByGoodbye} refused with a goodbye, ${1000 - admitted - refusedByGoodbye} cut (${failed} before their TLS handshake ended)\n`);
    expect(await traffic.stop()).toBeGreaterThan(10);
    expect(node.peers().some((p) => p.id === good.id)).toBe(true);
  }, 60_000);
});

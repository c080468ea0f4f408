import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerExchange } from '../../src/discovery/peer-exchange.js';
import { type Peer } from '../../src/node/peer.js';
import { ControlType, GoodbyeReason, type Control } from '../../src/wire/control.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Review of the refusals that come after the hello exchange (maxInbound, maxInboundPerIp; issue 23):
 * what one IP past its caps gets from a node, and what it costs the node. 127.0.0.2… stand for other
 * hosts (perIpLimitsOnLoopback: true). Run with P2P_TEST_STATS=1 to print the figures.
 */
const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const exchanges = (raw: RawPeer) => raw.controls.filter((c): c is Extract<Control, { type: ControlType.PeerExchange }> => c.type === ControlType.PeerExchange);
const named = (raw: RawPeer) => exchanges(raw).flatMap((c) => parsePeerExchange(c.body, () => false).entries.map((e) => e.id));

describe('refusals after the hello exchange', () => {
  it('one IP past maxInboundPerIp that redials flat out gets no more handshakes than inboundRatePerIp allows (burst 2×)', async () => {
    const node = await startEchoPeer({ perIpLimitsOnLoopback: true }, open); // defaults: 8 per IP, 10 new a second
    const held = await Promise.all(Array.from({ length: 8 }, () => RawPeer.open(node.address()!, { tls: true, localAddress: '127.0.0.2' })));
    raws.push(...held);
    await waitFor(() => node.peers().length === 8, 3000, 'the 8 the IP may hold');
    await sleep(2100); // the rate bucket refills to its burst
    // 3 s of redials, 20 at a time: each one that gets through the rate limit runs TLS and the hello, then is refused.
    let handshakes = 0;
    let refusedWithPeers = 0;
    const cpu = process.cpuUsage();
    const until = Date.now() + 3000;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (Date.now() < until) {
          const raw = await RawPeer.open(node.address()!, { tls: true, localAddress: '127.0.0.2' }).catch(() => undefined);
          if (!raw) continue; // dropped before TLS: the rate limit
          raws.push(raw);
          handshakes++;
          await raw.whenClosed(3000).catch(() => undefined);
          if (raw.goodbye()?.reason === GoodbyeReason.InboundLimit) refusedWithPeers++;
          raw.destroy();
        }
      }),
    );
    const used = process.cpuUsage(cpu);
    report(
      `one IP at its cap, 3 s of redials: ${handshakes} TLS handshakes completed (${refusedWithPeers} refused after the hello), ${node.refused} refusals in all; ` +
        `CPU of both ends ${((used.user + used.system) / 1000).toFixed(0)} ms`,
    );
    // Burst 20 plus 10 a second for 3 s, with slack for timing: the rate limit, before any TLS, bounds the handshakes.
    expect(handshakes).toBeLessThanOrEqual(20 + 10 * 3 + 5);
    expect(refusedWithPeers).toBe(handshakes);
    expect(node.peers()).toHaveLength(8);
  }, 20_000);

  it('a node at maxInbound tells each refused dialer at most 8 of its peers; redialing maps them all, as one admitted connection would at once', async () => {
    const N = 24;
    const node = await startEchoPeer({ maxInbound: N, perIpLimitsOnLoopback: true, inboundRatePerIp: 1000 }, open);
    for (let i = 0; i < N; i++) {
      const raw = await RawPeer.open(node.address()!, { tls: true, hello: false, localAddress: `127.0.1.${i + 1}` });
      raw.sendHello({ listenAddress: `127.0.1.${i + 1}:4000` });
      raws.push(raw);
    }
    await waitFor(() => node.peers().length === N, 3000, 'the node to be full');
    const learned = new Set<string>();
    let refusals = 0;
    let most = 0;
    while (learned.size < N && refusals < 200) {
      const raw = await RawPeer.open(node.address()!, { tls: true, localAddress: '127.0.0.3' });
      raws.push(raw);
      await raw.whenClosed(3000);
      refusals++;
      const ids = named(raw);
      most = Math.max(most, ids.length);
      for (const id of ids) learned.add(id);
      raw.destroy();
    }
    report(`harvest: ${learned.size} of ${N} peers learned in ${refusals} refusals (at most ${most} a refusal)`);
    expect(most).toBeLessThanOrEqual(8);
    expect(learned.size).toBe(N);
    expect(refusals).toBeGreaterThanOrEqual(Math.ceil(N / 8));
  }, 30_000);
});

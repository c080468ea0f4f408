import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Peer } from '../../src/node/peer.js';
import { GoodbyeReason } from '../../src/wire/control.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 13, "inbound lock-out": sockets that never finish a handshake have their own small
 * cap (the oldest is dropped when it is full), and one IP is limited in rate and in slots.
 * Attackers dial from 127.0.0.2 and 127.0.0.3; honest peers from 127.0.0.1.
 */
const open: Peer[] = [];
const sockets: Socket[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe('inbound admission', () => {
  it('40 idle sockets from one address, reopened as they close, do not keep out honest dials from elsewhere', async () => {
    // Defaults (maxInbound 40, 16 pending, 10 new/s per IP), with loopback held to the per-IP limits as another host would be.
    const node = await startEchoPeer({ perIpLimitsOnLoopback: true }, open);
    const [host, port] = node.address()!.split(':') as [string, string];
    let attacking = true;
    let opened = 0;
    const idle = () => {
      if (!attacking || opened >= 2000) return;
      opened++;
      const s = connect({ host, port: Number(port), localAddress: '127.0.0.2' });
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => setTimeout(idle, 5)); // reopen whenever the node drops one
    };
    for (let i = 0; i < 40; i++) idle();
    await new Promise((r) => setTimeout(r, 300));
    const honest: Peer[] = [];
    for (let i = 0; i < 6; i++) {
      const peer = await startEchoPeer({}, open);
      await peer.connect(`${node.id}@${node.address()}`);
      honest.push(peer);
    }
    attacking = false;
    for (const peer of honest) expect(await echo(peer, node.id, 'in')).toBe('in');
    expect(node.peers()).toHaveLength(6);
    expect(node.refused).toBeGreaterThan(0); // the reopening loop ran into the rate limit
    if (process.env.P2P_TEST_STATS) process.stdout.write(`idle flood: ${opened} sockets opened, ${node.refused} refused at once\n`);
  });

  it('pending handshakes are capped: past maxPendingInbound the oldest is dropped', async () => {
    const node = await startEchoPeer({ maxPendingInbound: 4, inboundRatePerIp: 1000 }, open);
    const [host, port] = node.address()!.split(':') as [string, string];
    const closed: number[] = [];
    for (let i = 0; i < 6; i++) {
      const s = connect({ host, port: Number(port), localAddress: '127.0.0.2' });
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closed.push(i));
      await new Promise((r) => s.once('connect', r));
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => closed.length === 2, 2000, 'the two oldest to be dropped');
    expect(closed.sort()).toEqual([0, 1]);
  });

  it('one IP gets at most maxInboundPerIp authenticated slots; other addresses are still admitted', async () => {
    const node = await startEchoPeer({ maxInboundPerIp: 3, inboundRatePerIp: 1000, perIpLimitsOnLoopback: true }, open);
    const attempts = await Promise.all(Array.from({ length: 5 }, () => RawPeer.open(node.address()!, { tls: true, localAddress: '127.0.0.3' })));
    raws.push(...attempts);
    await waitFor(() => attempts.filter((r) => r.closed).length === 2, 3000, 'two of five to be refused');
    for (const r of attempts.filter((r) => r.closed)) {
      expect(r.goodbye()?.reason).toBe(GoodbyeReason.InboundLimit);
      expect(r.goodbye()?.message).toMatch(/inbound limit of 3 per IP reached for 127\.0\.0\.3/);
      expect(r.goodbye()?.message).not.toMatch(/\(peer /); // the peer is not told its own id and address back
    }
    const good = await startEchoPeer({}, open);
    await good.connect(`${node.id}@${node.address()}`);
    expect(await echo(good, node.id, 'ok')).toBe('ok');
    expect(node.peers()).toHaveLength(4);
  });

  it('loopback dialers are held to maxInbound, not to the per-IP limits, by default: they are every process of this host (issue 23)', async () => {
    const node = await startEchoPeer({ maxInboundPerIp: 3, inboundRatePerIp: 1 }, open);
    const attempts = await Promise.all(Array.from({ length: 6 }, () => RawPeer.open(node.address()!, { tls: true, localAddress: '127.0.0.3' })));
    raws.push(...attempts);
    await waitFor(() => node.peers().length === 6, 3000, 'all six to be admitted');
    expect(attempts.some((r) => r.closed)).toBe(false);
    expect(node.refused).toBe(0);
  });

  it('new connections from one IP are rate-limited', async () => {
    const node = await startEchoPeer({ inboundRatePerIp: 5, perIpLimitsOnLoopback: true }, open); // burst 10
    const [host, port] = node.address()!.split(':') as [string, string];
    let closedEarly = 0;
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        const s = connect({ host, port: Number(port), localAddress: '127.0.0.4' });
        sockets.push(s);
        s.on('error', () => undefined);
        const started = Date.now();
        await new Promise((r) => s.once('close', r).once('connect', () => setTimeout(r, 300)));
        if (s.destroyed && Date.now() - started < 300) closedEarly++;
      }),
    );
    expect(closedEarly).toBeGreaterThanOrEqual(30 - 10 - 2); // all but the burst (and what refilled meanwhile)
    expect(node.refused).toBe(closedEarly);
  });
});

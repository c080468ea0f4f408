import { afterEach, describe, expect, it } from 'vitest';
import { Peer } from '../../src/node/peer.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';

/**
 * Review of issue 22 (netgroups, src/trust/netgroup.ts): honest networks on sites of unequal size, each site its own
 * /16 (loopback grouped by prefix, perIpLimitsOnLoopback), default settings otherwise, each node knowing one earlier
 * node (as test/net/netgroups.spec.ts, which has 14 + 2). Does every node reach its least degree (8), and does every
 * network broadcast reach every node? Run with P2P_TEST_STATS=1 for the figures.
 */
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function sites(sizes: number[]): Promise<{ missed: number; degrees: number[]; formed: boolean }> {
  const total = sizes.reduce((a, b) => a + b, 0);
  const at = (i: number) => {
    let site = 0;
    let j = i;
    while (j >= sizes[site]!) j -= sizes[site++]!;
    return `127.${50 + 10 * site}.0.${j + 1}:0`;
  };
  const nodes: Peer[] = [];
  for (let i = 0; i < total; i++) {
    const seed = i > 0 ? nodes[(i * 7) % i]! : undefined;
    nodes.push(await startEchoPeer({ listen: at(i), perIpLimitsOnLoopback: true, peers: seed ? [`${seed.id}@${seed.address()}`] : [] }, open));
  }
  const started = Date.now();
  const formed = await waitFor(() => nodes.every((n) => n.peers().length >= 8), 30_000, 'every node at its least degree').then(
    () => true,
    () => false,
  );
  const formedMs = Date.now() - started;
  // Count what each node logs and how often connections open and close after formation (a settled network: none).
  let churn = 0;
  for (const n of nodes) n.on('peer', () => void churn++);
  const seen = nodes.map(() => new Set<string>());
  nodes.forEach((n, i) => n.setHandler({ onEvent: (_f, _t, _d, meta) => void (meta && seen[i]!.add(meta.id)), onRequest: () => undefined }));
  const ids: string[] = [];
  const origin = (k: number) => (k * 5) % nodes.length;
  for (let k = 0; k < 5; k++) ids.push(nodes[origin(k)]!.broadcast('news', { k }, { scope: 'network' }).id!);
  await waitFor(() => ids.every((id, k) => nodes.every((_n, i) => i === origin(k) || seen[i]!.has(id))), 10_000, 'every broadcast at every node').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 3000));
  const missed = ids.reduce((sum, id, k) => sum + nodes.filter((_n, i) => i !== origin(k) && !seen[i]!.has(id)).length, 0);
  const degrees = nodes.map((n) => n.peers().length);
  // Per node, the share of its connections from its own site.
  const siteOf = (address: string) => address.split('.')[1];
  const ownShare = nodes.map((n) => {
    const mine = siteOf(n.address()!);
    const ps = n.peers();
    const byId = new Map(nodes.map((m) => [m.id, m] as const));
    return ps.filter((p) => byId.get(p.id) && siteOf(byId.get(p.id)!.address()!) === mine).length / Math.max(1, ps.length);
  });
  report(
    `sites (${sizes.join(' + ')}): formed ${formed} within ${formedMs} ms; degrees ${degrees.join(' ')}; own-site share ${ownShare.map((s) => s.toFixed(2)).join(' ')}; ` +
      `connects+disconnects in the 3 s after broadcasts+ ${churn}; broadcasts missed ${missed} of ${ids.length * (nodes.length - 1)}`,
  );
  return { missed, degrees, formed };
}

describe('review 22: honest networks on sites of unequal size form and deliver with default settings (TLS off)', () => {
  it('20 nodes in one /16 and 2 in another', async () => {
    const r = await sites([20, 2]);
    expect(r.formed).toBe(true);
    expect(r.missed).toBe(0);
  }, 90_000);

  it('12 + 2 + 2 in three /16s', async () => {
    const r = await sites([12, 2, 2]);
    expect(r.formed).toBe(true);
    expect(r.missed).toBe(0);
  }, 90_000);

  it('8 + 1 in two /16s (a lone node at a second site)', async () => {
    const r = await sites([8, 1]);
    expect(r.formed).toBe(true);
    expect(r.missed).toBe(0);
  }, 90_000);
});

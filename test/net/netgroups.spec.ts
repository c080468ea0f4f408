import { afterEach, describe, expect, it } from 'vitest';
import { Peer } from '../../src/node/peer.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';

/**
 * Netgroups (src/trust/netgroup.ts) must not cost honest networks their formation: two sites of unequal size, each
 * its own /16 (loopback grouped by prefix, perIpLimitsOnLoopback), default settings otherwise, each node knowing one
 * earlier node. The large site cannot be held to a half of its nodes' connections (the small site has too few places),
 * and is not: it is held only while that costs a node no degree.
 */
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe('netgroups: an honest network on two sites of unequal size forms and delivers with default settings (TLS)', () => {
  it('14 nodes in one /16 and 2 in another: every node reaches its least degree (8), and every network broadcast reaches every node', async () => {
    const SITE_A = 14;
    const SITE_B = 2;
    const at = (i: number) => (i < SITE_A ? `127.50.0.${i + 1}:0` : `127.60.0.${i - SITE_A + 1}:0`);
    const nodes: Peer[] = [];
    for (let i = 0; i < SITE_A + SITE_B; i++) {
      // Each knows one earlier node (a fixed choice, so that a failure runs again as it was).
      const seed = i > 0 ? nodes[(i * 7) % i]! : undefined;
      nodes.push(await startEchoPeer({ listen: at(i), perIpLimitsOnLoopback: true, peers: seed ? [`${seed.id}@${seed.address()}`] : [] }, open));
    }
    const started = Date.now();
    await waitFor(() => nodes.every((n) => n.peers().length >= 8), 30_000, 'every node at its least degree');
    const formedMs = Date.now() - started;
    const seen = nodes.map(() => new Set<string>());
    nodes.forEach((n, i) => n.setHandler({ onEvent: (_f, _t, _d, meta) => void (meta && seen[i]!.add(meta.id)), onRequest: () => undefined }));
    const ids: string[] = [];
    for (let k = 0; k < 5; k++) ids.push(nodes[(k * 5) % nodes.length]!.broadcast('news', { k }, { scope: 'network' }).id!);
    const origin = (k: number) => (k * 5) % nodes.length;
    await waitFor(() => ids.every((id, k) => nodes.every((_n, i) => i === origin(k) || seen[i]!.has(id))), 10_000, 'every broadcast at every node').catch(() => undefined);
    const missed = ids.reduce((sum, id, k) => sum + nodes.filter((_n, i) => i !== origin(k) && !seen[i]!.has(id)).length, 0);
    const degrees = nodes.map((n) => n.peers().length);
    report(`two sites (${SITE_A} + ${SITE_B}): least degree within ${formedMs} ms; degrees ${degrees.join(' ')}; broadcasts missed ${missed} of ${ids.length * (nodes.length - 1)}`);
    expect(missed).toBe(0);
  }, 60_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { DIRECTORY_TOPIC } from '../../src/directory/record.js';
import type { Peer } from '../../src/node/peer.js';
import { RING_ROOT } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { record } from '../directory-wire.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Review of issue 24's black hole with many keys: neighbours that each claim every request pattern
 * and never answer. Each costs requests only until the choice pauses it (src/directory/handler-choice.ts).
 */
const { mesh } = broadcastMeshes();
const opened: RawPeer[] = [];
afterEach(() => opened.splice(0).forEach((r) => r.destroy()));
const K = 10;

const ask = (c: Peer, subject: string, timeoutMs: number) =>
  new Promise<{ ok: boolean; ms: number; error?: Error }>((resolve) => {
    const t0 = Date.now();
    c.requestPattern(subject, 'hi', { next: () => {}, error: (error: Error) => resolve({ ok: false, ms: Date.now() - t0, error }), complete: () => resolve({ ok: true, ms: Date.now() - t0 }) }, { timeoutMs });
  });

describe('requests to a pattern against black holes with many keys (TLS)', () => {
  it(`${K} connected neighbours, each its own key and address, claiming ">" and never answering: about three timeouts each in the first seconds, then the honest handler answers`, async () => {
    const [c, h] = (await mesh(true, 2)) as [Peer, Peer];
    h.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
    await waitFor(() => c.handlers('orders.reserve', 'request').length === 1, 3000, 'the honest handler');
    for (let i = 0; i < K; i++) {
      const r = await RawPeer.open(c.address()!, { tls: true, localAddress: `127.0.0.${20 + i}` });
      opened.push(r);
      await waitFor(() => c.peers().some((p) => p.id === r.identity.peerId), 3000, 'the black hole to be admitted');
      const m = createNetworkMessage(r.identity, { timestampUs: Date.now() * 1000, encoding: Encoding.Binary, topic: DIRECTORY_TOPIC, payload: record(r.identity, { requests: ['>'] }), strategy: 'raintree' });
      r.sendBroadcast({ ...m, arc: RING_ROOT });
    }
    await waitFor(() => c.handlers('orders.reserve', 'request').length === K + 1, 3000, 'the black holes\' records');
    const first: boolean[] = [];
    for (let i = 0; i < 60; i++) first.push((await ask(c, 'orders.reserve', 300)).ok);
    const burst = await Promise.all(Array.from({ length: 64 }, () => ask(c, 'orders.reserve', 300)));
    const failures = first.filter((ok) => !ok).length;
    if (process.env.P2P_TEST_STATS) console.log(`black holes: ${K}; of 60 requests in a row ${failures} timed out (${first.map((ok) => (ok ? '.' : 'X')).join('')}); then 64 at once: ${burst.filter((r) => !r.ok).length} failed`);
    // Each black hole costs a request when first chosen, and one a probe (after 0.3, 0.6, 1.2 … s: retryAfterMs is the timeout here).
    expect(failures).toBeLessThanOrEqual(4 * K);
    expect(first.slice(-10).filter((ok) => ok).length).toBeGreaterThanOrEqual(8);
    expect(burst.filter((r) => r.ok).length).toBeGreaterThanOrEqual(60);
  }, 60_000);
});

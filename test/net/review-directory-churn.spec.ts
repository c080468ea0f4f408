import { describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import type { Peer } from '../../src/node/peer.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { echo, waitFor } from '../helpers.js';
import { DEFAULTS } from '../../src/common/defaults.js';
import { UNVOUCHED_UPDATE_BURST_SECONDS } from '../../src/directory/directory.js';
import { digest, page, record } from '../directory-wire.js';

/**
 * Review of issue 24's hostile input with many keys: one link rewrites the records of many throwaway
 * keys through anti-entropy pages. Each key stays within its own update rate (0.5/s, burst 3), so no
 * record is refused and nobody is penalised; what bounds the whole is a budget per neighbour.
 */

const { mesh, raw } = broadcastMeshes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEYS = 1000;
const VERSIONS = 4; // the first record, then the 3 updates each key's burst allows at once
const PAGE = 200;

describe('directory: record churn from many throwaway keys through one link (TLS)', () => {
  it(`${KEYS} keys subscribing to ">" and rewriting their records within their own rate, by page: V takes at most its neighbour budget of updates (20/s, burst 100), honest records still flow`, async () => {
    const nodes = await mesh(true, 3);
    const v = nodes[0]!;
    const hostile = await raw(true, v);
    const keys = Array.from({ length: KEYS }, () => loadIdentity());
    const now = Date.now();
    // Pre-signed versions: seq rises, issuedAt stays (within the TTL), so the attacker only replays bytes.
    const versions = Array.from({ length: VERSIONS }, (_, j) => keys.map((k) => record(k, { seq: now + j, issuedAt: now, events: ['>'], requests: ['>'] })));
    const idle: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await echo(nodes[1]!, v.id, 'x');
      idle.push(performance.now() - t);
    }
    const accepted0 = v.directoryStats().accepted;
    digest(hostile, 64); // announces 16 384 records: room for every version in one session
    const started = Date.now();
    for (const version of versions) for (let i = 0; i < KEYS; i += PAGE) page(hostile, version.slice(i, i + PAGE));
    const during: number[] = [];
    await waitFor(() => v.directoryStats().sync.recordsReceived >= KEYS * VERSIONS || hostile.closed, 30_000, 'the pages').catch(() => undefined);
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await echo(nodes[1]!, v.id, 'x');
      during.push(performance.now() - t);
    }
    const seconds = (Date.now() - started) / 1000;
    const accepted = v.directoryStats().accepted - accepted0;
    const updates = accepted - Math.min(accepted, KEYS);
    if (process.env.P2P_TEST_STATS) {
      console.log(
        `churn: ${KEYS * VERSIONS} records from ${KEYS} keys in ${seconds.toFixed(1)} s; V accepted ${accepted} (${updates} updates), refused ${JSON.stringify(v.directoryStats().refused)}, ` +
          `score ${v.peerScore(hostile.identity.peerId)}, subscribers of "x" ${v.handlers('x', 'event').length}; echo idle ${idle.map((x) => x.toFixed(1))} ms, after ${during.map((x) => x.toFixed(1))} ms`,
      );
    }
    // The first version of each key is bounded by the neighbour's unvouched quota; the updates by its budget
    // (before: all 3 000, a signature check each, and the attacker's score untouched).
    const rate = DEFAULTS.broadcastUnknownOriginRate;
    expect(updates).toBeLessThanOrEqual(rate * (UNVOUCHED_UPDATE_BURST_SECONDS + seconds + 1));
    expect(v.directoryStats().refused.neighbourBudget).toBeGreaterThan(0);
    // Honest updates still flow: one by a neighbour of V reaches it.
    nodes[1]!.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
    await waitFor(() => v.handlers('orders.reserve', 'request').some((h) => h.id === nodes[1]!.id), 3000, 'the honest record');
    await sleep(100);
  }, 60_000);
});

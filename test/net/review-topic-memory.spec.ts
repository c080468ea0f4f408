import { describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { digest, page, record } from '../directory-wire.js';

/**
 * Review of issue 24's hostile input with many keys: one link fills its share of V's directory with
 * throwaway keys subscribing to every subject (`>` and `*.>`, so that two patterns match each topic),
 * then a member sends events to subscribers on a new topic each (within its origin budget; an event
 * on a topic may come from anyone). Every node that routes them looks the topic's subscribers up.
 * Before: 74 ms and 1.22 MiB kept per new topic at 20 000 subscribers (a lookup and string sort of
 * every id, and a list of new id strings kept for each of up to 4 096 topics: 5 GiB). Now each
 * pattern keeps its sorted ids (shared by the topics it matches), a topic of several patterns is a
 * merge, and the kept topic lists are bounded in ids, not only in topics.
 */

const { mesh, raw } = broadcastMeshes();
const KEYS = 20_000;
const TOPICS = 150; // within the origin's own burst (200 network broadcasts): the loop sends them at once
const PAGE = 400;
const heapMiB = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

describe('events on many topics with 20 000 throwaway subscribers of every subject (TLS)', () => {
  it(`${TOPICS} new topics: V's memory does not grow with each (a topic's list is a merge of kept lists, not kept apart)`, async () => {
    const nodes = await mesh(true, 2);
    const v = nodes[0]!;
    const hostile = await raw(true, v);
    const now = Date.now();
    const keys = Array.from({ length: KEYS }, () => loadIdentity());
    const records = keys.map((k) => record(k, { seq: now, issuedAt: now, events: ['*.>', '>'] }));
    digest(hostile, Math.ceil(KEYS / 256) + 1);
    for (let i = 0; i < KEYS; i += PAGE) page(hostile, records.slice(i, i + PAGE));
    await waitFor(() => v.directoryStats().accepted >= KEYS, 60_000, 'the throwaway subscribers');
    v.broadcast('t.warm', 1, { scope: 'subscribers' });
    const before = heapMiB();
    const t0 = performance.now();
    const counts: number[] = [];
    for (let i = 0; i < TOPICS; i++) counts.push(v.broadcast(`t.${i}`, 1, { scope: 'subscribers' }).subscribers!);
    const ms = (performance.now() - t0) / TOPICS;
    const grown = heapMiB() - before;
    if (process.env.P2P_TEST_STATS) console.log(`topic memory: ${TOPICS} topics, ${ms.toFixed(1)} ms a topic, heap +${grown.toFixed(0)} MiB (+${(grown / TOPICS).toFixed(3)} MiB a topic)`);
    expect(counts.every((n) => n === KEYS)).toBe(true);
    // Before: +1.22 MiB a topic (366 MiB for 300 topics, 183 MiB for these 150). The bound leaves room for garbage not yet collected.
    expect(grown).toBeLessThan(100);
  }, 180_000);
});

import { describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { loadIdentity } from '../../src/common/identity.js';
import type { Peer } from '../../src/node/peer.js';
import { RING_ROOT } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';

/**
 * Review of issue 22's throwaway-key bound for events to subscribers only (strategy `subscribers`,
 * issue 24): one link sends 2 000 events signed by 10 fresh keys with no directory record, on a
 * topic every honest node subscribes to (so that each accepted event costs the mesh the most). They
 * come out of the link's unknown-origin budget as network broadcasts do: at most ×2 honest frames per
 * attacker frame, the link throttled within 2 s, honest events delivered everywhere once.
 */

const { mesh, raw, heardOf } = broadcastMeshes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const N = 6;
const KEYS = 10;
const PER_KEY = 200;
const RATE = 900;

const honestFrames = (nodes: Peer[]) => nodes.reduce((a, p) => a + p.networkBroadcastStats().sent + p.networkBroadcastStats().repair.sent, 0);

describe('events to subscribers from throwaway keys through one link (TLS)', () => {
  it(`${KEYS * PER_KEY} events from ${KEYS} keys with no record: at most ×2 honest frames per attacker frame, the link throttled within 2 s, honest events delivered`, async () => {
    const nodes = await mesh(true, N);
    for (const p of nodes) p.setHandledPatterns({ requests: [], events: ['flood', 'honest'] });
    await waitFor(() => nodes.every((p) => p.handlers('flood', 'event').length === N), 5000, 'the records');
    const v = nodes[0]!;
    const hostile = await raw(true, v);
    const keys = Array.from({ length: KEYS }, () => loadIdentity());
    const before = honestFrames(nodes);
    const started = Date.now();
    let pumped = 0;
    let throttledAfter = Infinity;
    const honest: string[] = [];
    while (pumped < KEYS * PER_KEY && Date.now() - started < 10_000) {
      const due = Math.min(Math.floor(((Date.now() - started) / 1000) * RATE) + 18, KEYS * PER_KEY);
      for (; pumped < due; pumped++) {
        const m = createNetworkMessage(keys[pumped % KEYS]!, { timestampUs: Date.now() * 1000 + pumped, strategy: 'subscribers', encoding: Encoding.Json, topic: 'flood', payload: Buffer.from('{}') });
        hostile.sendBroadcast({ ...m, arc: RING_ROOT });
      }
      if (pumped % 300 < 20 && honest.length < 10) honest.push(nodes[1 + (honest.length % (N - 1))]!.broadcast('honest', { k: honest.length }, { scope: 'subscribers' }).id!);
      if (throttledAfter === Infinity && v.peerScore(hostile.identity.peerId) < 0) throttledAfter = Date.now() - started;
      await sleep(20);
    }
    await sleep(1000);
    const frames = honestFrames(nodes) - before - honest.length * (N - 1) * 2; // honest events' own frames, generously
    const dropped = v.networkBroadcastStats().dropped;
    if (process.env.P2P_TEST_STATS) {
      console.log(`subscriber flood: ${pumped} attacker frames; honest frames ${frames} (×${(frames / pumped).toFixed(2)}); V dropped ${JSON.stringify(dropped)}; throttled after ${throttledAfter} ms`);
    }
    expect(dropped.unknownOrigin).toBeGreaterThan(0);
    expect(frames / pumped).toBeLessThanOrEqual(2);
    expect(throttledAfter).toBeLessThanOrEqual(2000);
    await waitFor(() => honest.every((id) => heardOf(id).length === N), 3000, 'the honest events').catch(() => undefined);
    for (const id of honest) expect(heardOf(id)).toEqual(nodes.map((p) => p.id).sort());
  }, 60_000);
});

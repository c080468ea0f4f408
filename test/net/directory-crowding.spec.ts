import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import type { Peer } from '../../src/node/peer.js';
import type { PeerOptions } from '../../src/node/peer-options.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { digest, page, record } from '../directory-wire.js';

/**
 * Hostile review of the directory, M2 (docs/directory.md, Bounds): records of throwaway keys, sent by a
 * hand-driven peer with one link to node V, once filled `directoryMaxRecords`, so that V refused the records
 * of honest nodes it had no other evidence of (nodes behind a neighbour). Now one neighbour's unvouched records
 * fill at most half of the directory, never evict a record, and records with evidence evict them first.
 */

const { mesh, raw } = broadcastMeshes();
const extra: Peer[] = [];
afterEach(async () => {
  await Promise.all(extra.splice(0).map((p) => p.close()));
});
const found = (p: Peer, subject: string) => p.handlers(subject, 'request').length === 1;
const junkAt = (p: Peer) => Array.from({ length: 25 }, (_, i) => found(p, `junk.${i}`)).filter(Boolean).length;

describe('directory: throwaway keys behind one link (M2)', () => {
  it('25 throwaway records (what one digest may announce at this size) from a 1-link attacker fill at most half of directoryMaxRecords (12); honest records stay, nodes behind a neighbour and new neighbours are found', async () => {
    const options: PeerOptions = { tls: true, peerExchange: false, directoryMaxRecords: 12, directorySyncIntervalMs: 2000 };
    const nodes = await mesh(true, 3, options);
    const [v, w, x] = nodes as [Peer, Peer, Peer];
    nodes.forEach((p, i) => p.setHandledPatterns({ requests: [`honest.${i}`], events: [] }));
    await waitFor(() => nodes.every((p) => [0, 1, 2].every((i) => found(p, `honest.${i}`))), 3000, 'the honest records');

    const hostile = await raw(true, v);
    const throwaway = Array.from({ length: 25 }, (_, i) => {
      const key = loadIdentity();
      return record(key, { requests: [`junk.${i}`], address: '6.6.6.6:666' });
    });
    digest(hostile, 4);
    page(hostile, throwaway);
    await waitFor(() => v.directoryStats().sync.recordsReceived >= 25, 5000, 'V judged the flood');
    const flooded = v.directoryStats();
    // Before the fix: 12 records, 9 of them the attacker's (the directory full).
    expect(flooded.unvouched).toBe(6);
    expect(flooded.records).toBe(9);
    expect(flooded.refused.full).toBe(19);
    expect(junkAt(v)).toBe(6);
    expect(hostile.closed).toBe(false); // `full` is no misbehaviour: an honest relay may carry them

    // Two honest nodes join behind W (V has no evidence of them but W's word): V finds them.
    const late = [await startEchoPeer(options, extra), await startEchoPeer(options, extra)];
    for (const [i, p] of late.entries()) {
      p.setHandledPatterns({ requests: [`late.${i}`], events: [] });
      await p.connect(`${w.id}@${w.address()}`);
    }
    await waitFor(() => found(v, 'late.0') && found(v, 'late.1'), 5000, 'V finds the nodes behind W');
    // Two honest nodes connect to V itself (evidence: a neighbour): the directory is full, they evict throwaway records.
    const near = [await startEchoPeer(options, extra), await startEchoPeer(options, extra)];
    for (const [i, p] of near.entries()) {
      p.setHandledPatterns({ requests: [`near.${i}`], events: [] });
      await p.connect(`${v.id}@${v.address()}`);
    }
    await waitFor(() => found(v, 'near.0') && found(v, 'near.1'), 5000, 'V finds its new neighbours');
    const after = v.directoryStats();
    expect(after.records).toBe(12);
    expect(junkAt(v)).toBe(5); // 9 + 2 behind W + 2 neighbours = 13: one throwaway record evicted
    expect(after.unvouched).toBe(5 + 2); // the throwaway records, and W's two (V has no evidence of them but W's word)
    // Every honest record stays: at V, and at X (which got the flood second-hand through V).
    // X may get W's late records by anti-entropy rather than by their broadcast: two sync intervals.
    const honest = ['honest.0', 'honest.1', 'honest.2', 'late.0', 'late.1'];
    await waitFor(() => honest.every((s) => found(x, s)), 5000, 'X to hold every honest record').catch(() => undefined);
    for (const p of [v, x]) for (const s of honest) expect(found(p, s), `${s} at ${p === v ? 'V' : 'X'}`).toBe(true);
  }, 30_000);
});

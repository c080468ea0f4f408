import { afterEach, describe, expect, it } from 'vitest';
import { P2PConfigError } from '../../src/common/errors.js';
import { MAX_RECORD_BYTES } from '../../src/directory/record.js';
import type { Peer } from '../../src/node/peer.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { startEchoPeer, waitFor } from '../helpers.js';

/**
 * Hostile review of the directory, L5 (docs/directory.md, Anti-entropy): a record over 64 KiB (256 patterns of
 * 256 bytes make 66 KiB) did not fit an anti-entropy page, and pages skipped it without a word: a joiner never got
 * it by anti-entropy. A record is now at most MAX_RECORD_BYTES, one page, refused bigger at setHandledPatterns.
 */

const { mesh } = broadcastMeshes();
const extra: Peer[] = [];
afterEach(async () => {
  await Promise.all(extra.splice(0).map((p) => p.close()));
});
const long = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}.${i}.`.padEnd(256, 'x'));

describe('directory: records and anti-entropy pages (L5)', () => {
  it('256 patterns of 256 bytes (a 66 KiB record) are refused at setHandledPatterns with a P2PConfigError; the node keeps its record', async () => {
    const [a] = (await mesh(true, 1)) as [Peer];
    a.setHandledPatterns({ requests: ['small'], events: [] });
    let error: unknown;
    try {
      a.setHandledPatterns({ requests: long('big', 256), events: [] });
    } catch (err) {
      error = err;
    }
    // Before the fix: accepted, and the record then travelled by broadcast only, never in a page.
    expect(error).toBeInstanceOf(P2PConfigError);
    expect((error as P2PConfigError).problems.join('\n')).toContain(`over ${MAX_RECORD_BYTES} (one anti-entropy page)`);
    expect(a.handlers('small', 'request')).toHaveLength(1);
  });

  it('the largest record allowed (252 patterns of 256 bytes) reaches a late joiner by an anti-entropy page', async () => {
    const options = { tls: true, peerExchange: false, broadcastRepairIntervalMs: 200 };
    const [a, b] = (await mesh(true, 2)) as [Peer, Peer];
    a.setHandledPatterns({ requests: long('big', 252), events: [] });
    await waitFor(() => b.handlers('big.251.'.padEnd(256, 'x'), 'request').length === 1, 3000, 'B has the record');
    const joiner = await startEchoPeer(options, extra);
    await joiner.connect(`${b.id}@${b.address()}`);
    await waitFor(() => joiner.handlers('big.0.'.padEnd(256, 'x'), 'request').length === 1, 5000, 'the joiner gets it from B');
    expect(joiner.directoryStats().sync.recordsReceived).toBe(1); // A's: B has no handlers, and A published before the joiner came
    expect(joiner.directoryStats().refused.malformed).toBe(0);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { P2PServer } from '../../src/index.js';
import { startNode, type TestNode } from '../nest-helpers.js';
import { RawPeer } from '../raw-peer.js';
import { waitFor } from '../helpers.js';

/**
 * Hostile review of the directory work, L3: the "no @EventPattern handler" hint, logged once per pattern, had a
 * cap of 1 024 patterns that one neighbour could use up with made-up topics (so that nobody else's was logged),
 * and it wrote the sender's topic raw (control characters, line breaks: forged log lines). A hand-driven peer
 * sends both; the topic is escaped, one sender gets 8 lines and a last one, and an honest neighbour's is still logged.
 */

const nodes: TestNode[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(nodes.splice(0).map((n) => n.app.close().catch(() => undefined)));
});

describe('P2PServer: events with no handler from a hostile neighbour (L3)', () => {
  it('topics are escaped, one sender cannot use up the cap, and an honest sender\'s pattern is still logged', async () => {
    const s = await startNode({ peerExchange: false });
    const honest = await startNode({ peerExchange: false });
    nodes.push(s, honest);
    const logger = (s.app.get(P2PServer) as unknown as { logger: { log: (m: string) => void } }).logger;
    const log = vi.spyOn(logger, 'log');
    const hostile = await RawPeer.open(s.address, { tls: true });
    raws.push(hostile);
    await waitFor(() => s.service.peers().some((p) => p.id === hostile.identity.peerId), 3000, 'the raw peer admitted');
    hostile.sendEvent('evil\n[Nest] 1  - ERROR forged line\u001b[31m');
    for (let i = 0; i < 2000; i++) hostile.sendEvent(`junk.${i}`);
    const fromHostile = () => log.mock.calls.map(([m]) => String(m)).filter((m) => m.includes('evil') || m.includes('junk') || m.includes(hostile.identity.peerId));
    await waitFor(() => fromHostile().some((m) => m.includes('no longer logged')), 5000, 'the sender\'s last line');
    // An honest neighbour's pattern without a handler, after the flood.
    await honest.service.connect(`${s.id}@${s.address}`);
    await honest.service.send(s.id, 'honest.unhandled', 1);
    await waitFor(() => log.mock.calls.some(([m]) => String(m).includes('honest.unhandled')), 3000, 'the honest pattern logged');
    const lines = fromHostile();
    // Before the fix: 1 024 lines from the hostile sender (then nobody's), the first with a raw line break and escape.
    expect(lines).toHaveLength(9);
    expect(lines.every((m) => !/[\u0000-\u001f]/.test(m))).toBe(true);
    expect(lines[0]).toContain('evil\\u000a[Nest]');
    expect(lines[8]).toContain(`${hostile.identity.peerId} sent events of more patterns`);
  });
});

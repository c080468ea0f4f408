import { afterEach, describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { Peer } from '../../src/node/peer.js';
import { RING_ROOT } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

// Review of issue 22: remote text reaches log lines escaped (remote-text.spec.ts: goodbyes, hellos). A broadcast's
// topic is remote text too, and the reason of a ban quotes it: a broadcast with a newline in its topic and a garbage
// signature (−100, a ban at once) forged a line in the victim's log, through the "banned peer" warning.
const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe('review 22: a broadcast topic in a log line', () => {
  it('a forged broadcast whose topic holds a newline gets its sender banned, and the ban line forges nothing', async () => {
    const lines: string[] = [];
    const push = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
    const node = new Peer({ listen: '127.0.0.1:0', peerExchange: false, logger: { log: push('log'), warn: push('warn'), error: push('error'), debug: push('debug') } });
    open.push(node);
    await node.start();
    const raw = await RawPeer.open(node.address()!, { tls: true });
    raws.push(raw);
    await waitFor(() => node.peers().length === 1, 5000, 'the connection');
    const topic = 'x\n[Nest] 1  - 12/07/2026, 02:00:00   ERROR [P2P] forged\u2028line';
    const m = createNetworkMessage(raw.identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic, payload: Buffer.from('1') });
    raw.sendBroadcast({ ...m, arc: RING_ROOT, signature: Buffer.alloc(m.signature.length, 7) });
    await waitFor(() => lines.some((l) => l.includes('banned peer')), 5000, 'the ban to be logged');
    const logged = lines.find((l) => l.includes('banned peer'))!;
    expect(logged).toContain('x\\u000a[Nest] 1');
    for (const line of lines) expect(line).not.toMatch(/[\n\r\u2028\u2029]/);
  });
});

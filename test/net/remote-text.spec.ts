import { afterEach, describe, expect, it } from 'vitest';
import { Peer } from '../../src/node/peer.js';
import { ControlType, encodeControl, GoodbyeReason } from '../../src/wire/control.js';
import { waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

// Issue 22: a goodbye text with a newline forged a line in the peer's log. Remote text reaches a
// log line with its control characters escaped, and a hello's listen address must be printable.
const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function victim(lines: string[]): Promise<Peer> {
  const push = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  const node = new Peer({ listen: '127.0.0.1:0', peerExchange: false, logger: { log: push('log'), warn: push('warn'), error: push('error'), debug: push('debug') } });
  open.push(node);
  await node.start();
  return node;
}

describe('remote text in log lines', () => {
  it('a goodbye text with a newline and a line separator cannot forge a log line', async () => {
    const lines: string[] = [];
    const node = await victim(lines);
    const raw = await RawPeer.open(node.address()!, { tls: true });
    raws.push(raw);
    await waitFor(() => node.peers().length === 1, 5000, 'the connection');
    const forged = 'bye\n[Nest] 1  - 12/06/2026, 10:00:00   ERROR [P2P] forged\u2028and another';
    raw.write(Buffer.concat(encodeControl({ type: ControlType.Goodbye, reason: GoodbyeReason.Normal, message: forged }).chunks));
    await waitFor(() => lines.some((l) => l.includes('peer said goodbye')), 5000, 'the goodbye to be logged');
    const logged = lines.find((l) => l.includes('peer said goodbye'))!;
    expect(logged).toContain('bye\\u000a[Nest] 1');
    expect(logged).toContain('forged\\u2028and another');
    for (const line of lines) expect(line).not.toMatch(/[\n\r\u2028\u2029]/);
  });

  it('a hello whose listen address holds a newline is malformed: goodbye 1, no connection', async () => {
    const lines: string[] = [];
    const node = await victim(lines);
    const raw = await RawPeer.open(node.address()!, { tls: true, hello: false });
    raws.push(raw);
    raw.sendHello({ listenAddress: '127.0.0.1:1\nERROR forged' });
    await raw.whenClosed(3000);
    expect(raw.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(node.peers()).toEqual([]);
    for (const line of lines) expect(line).not.toMatch(/[\n\r\u2028\u2029]/);
  });
});

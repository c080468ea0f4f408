import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/types.js';
import { MAX_PINGS_PER_SECOND } from '../../src/connection/keepalive.js';
import { Peer } from '../../src/node/peer.js';
import { ControlType, encodeControl, GoodbyeReason } from '../../src/wire/control.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

// Issue 22: about 1 M pings a second from one peer were all answered, at 49-88 % of a core, and
// the peer was never cut off. Past MAX_PINGS_PER_SECOND a ping is a protocol violation.
const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const ping = (token: number): Buffer => Buffer.concat(encodeControl({ type: ControlType.Ping, token }).chunks);

describe('a ping flood', () => {
  it('is cut off within a second with goodbye 1, costs the flooder score, and honest peers are still served', async () => {
    const victim = await startEchoPeer({ logger: silentLogger }, open);
    const honest = await startEchoPeer({ peers: [victim.address()!], logger: silentLogger, pingIntervalMs: 10 }, open);
    const flooder = await RawPeer.open(victim.address()!, { tls: true });
    raws.push(flooder);
    await waitFor(() => victim.peers().length === 2, 5000, 'both peers');
    const started = Date.now();
    // 20 000 pings in batches of 1 000, at most 2 s: fifty times the burst a node allows.
    for (let batch = 0; batch < 20 && !flooder.closed && Date.now() - started < 2_000; batch++) {
      flooder.write(Buffer.concat(Array.from({ length: 1_000 }, (_, i) => ping(batch * 1_000 + i))));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await flooder.whenClosed(1_000);
    const cutAfterMs = Date.now() - started;
    console.log(`[ping flood] cut off after ${cutAfterMs} ms; goodbye ${GoodbyeReason[flooder.goodbye()?.reason ?? -1]}: ${flooder.goodbye()?.message}`);
    expect(cutAfterMs).toBeLessThan(1_000);
    expect(flooder.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(flooder.goodbye()?.message).toContain(`more than ${MAX_PINGS_PER_SECOND} pings a second`);
    // Scored when the victim's side of the connection has closed too.
    await waitFor(() => victim.peerScore(flooder.identity.peerId) < 0, 3000, 'the flooder to lose score');
    // The honest neighbour pings every 10 ms, the fastest the configuration allows, and keeps its connection.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(victim.peers().map((p) => p.id)).toEqual([honest.id]);
    expect(await echo(victim, honest.id, 'still served')).toBe('still served');
  }, 20_000);
});

import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { digest, page, record } from '../directory-wire.js';

/**
 * Review of issue 24's publisher fanout (event-fanout.ts) as a reflector: a hostile peer hands publisher P signed
 * records of 12 throwaway keys that subscribe to the topic P emits to, each at another port of a victim host that
 * accepts and hangs up (no hello). P emits an event every 100 ms for 3.5 s. What reaches the victim is bounded by
 * the fanout's pace (one look a second per topic, `eventFanout` dials a look) and the failed-address hold-off, not by
 * the events: at most eventFanout (6) connections a look, 4 looks (its dials are counted apart from the dials
 * requests make, and up to their own limit, all topics together).
 */
const { node, raw } = broadcastMeshes();
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('a publisher’s fanout pointed at a victim’s ports', () => {
  it('dials the victim at most eventFanout times a second per topic, however many events it sends', async () => {
    let accepted = 0;
    const ports: string[] = [];
    for (let i = 0; i < 12; i++) {
      const server = createServer((s) => {
        accepted++;
        s.on('error', () => undefined);
        s.destroy();
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const a = server.address();
      ports.push(`127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`);
    }
    const P = await node(false, { maxInboundPerIp: 20 });
    const hostile = await raw(false, P);
    const now = Date.now();
    digest(hostile, 1);
    page(
      hostile,
      ports.map((address) => record(loadIdentity(), { seq: now, issuedAt: now, events: ['alerts.disk'], address })),
    );
    await waitFor(() => P.handlers('alerts.disk', 'event').length === 12, 5000, 'the records');
    let events = 0;
    const started = Date.now();
    while (Date.now() - started < 3500) {
      P.broadcast('alerts.disk', { n: events++ }, { scope: 'subscribers' });
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));
    if (process.env.P2P_TEST_STATS) console.log(`fanout reflection: ${events} events, ${accepted} connections at the victim`);
    expect(events).toBeGreaterThanOrEqual(20);
    expect(accepted).toBeGreaterThanOrEqual(6);
    expect(accepted).toBeLessThanOrEqual(24);
  }, 30_000);
});

import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import type { Peer } from '../../src/node/peer.js';
import type { PeerOptions } from '../../src/node/peer-options.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { digest, page, record } from '../directory-wire.js';

/**
 * Review of issue 24's publisher fanout (event-fanout.ts), with a hostile peer and valid throwaway keys: its records
 * say six keys subscribe to the two topics publisher P emits to (three each), at addresses that accept TCP and then
 * say nothing. P's fanout dialed all six at its first event to each topic, through the dials to pattern handlers,
 * whose limit (a quarter of maxOutbound: 6 by default) it then held for the hello timeout (5 s); a request to a
 * pattern whose handler is not P's neighbour was refused a dial and failed after its 2 s timeout, where with
 * `eventFanout: 0` it was answered. Six honest subscribers of two topics that accept held the same 6 slots for as long
 * as events flow (handlerIdleMs after the last), with the same failed request: no attacker needed. Then the fanout dialed only while
 * the dials to handlers held fewer than half of that limit; now it has a limit of its own (eventFanout, 6, all topics together), counted
 * apart from the dials requests make, which keep all of theirs. Here the records name eight subscribers, four per topic.
 */
const { node, raw } = broadcastMeshes();
const servers: Server[] = [];
const held: Socket[] = [];
afterEach(async () => {
  held.splice(0).forEach((s) => s.destroy());
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A listener that accepts connections and never says a word (a stalling subscriber). */
async function stalling(): Promise<string> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    held.push(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

const ask = (p: Peer, subject: string, timeoutMs: number) =>
  new Promise<{ ok: boolean; error?: Error }>((resolve) => {
    p.requestPattern(subject, 'hi', { next: () => {}, error: (error: Error) => resolve({ ok: false, error }), complete: () => resolve({ ok: true }) }, { timeoutMs });
  });

describe('a publisher’s fanout to stalling subscribers and the dials requests need', () => {
  const run = async (options: PeerOptions) => {
    // P ── C ── H: H handles "orders.reserve" and is not P's neighbour.
    const P = await node(false, { maxInboundPerIp: 20, ...options });
    const C = await node(false, { maxInboundPerIp: 20 });
    const H = await node(false, { maxInboundPerIp: 20 });
    await P.connect(`${C.id}@${C.address()}`);
    await C.connect(`${H.id}@${H.address()}`);
    H.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
    await waitFor(() => P.handlers('orders.reserve', 'request').length === 1, 8000, 'P to know the handler');
    // The hostile peer hands P six signed records of throwaway keys: three subscribe to each topic, each at a stalling address.
    const hostile = await raw(false, P);
    const now = Date.now();
    const records: Buffer[] = [];
    for (const topic of ['alerts.one', 'alerts.two']) {
      for (let i = 0; i < 4; i++) records.push(record(loadIdentity(), { seq: now, issuedAt: now, events: [topic], address: await stalling() }));
    }
    digest(hostile, 2);
    page(hostile, records);
    await waitFor(() => P.handlers('alerts.one', 'event').length === 4 && P.handlers('alerts.two', 'event').length === 4, 5000, 'the records');
    P.broadcast('alerts.one', { n: 1 }, { scope: 'subscribers' });
    P.broadcast('alerts.two', { n: 1 }, { scope: 'subscribers' });
    await new Promise((r) => setTimeout(r, 300)); // the fanout's dials reach the listeners
    const stalled = held.length;
    const answer = await ask(P, 'orders.reserve', 2000);
    return { stalled, answer };
  };

  it('with the default fanout, a request to a handler that is not a neighbour is still dialed and answered', async () => {
    const { stalled, answer } = await run({});
    // First: 6 stalled dials (the whole shared limit of 6) and the request failed with P2PNoHandlerError after 2 s.
    // The fanout's own limit holds: 6 of the 8 stalling subscribers are dialed, none past it.
    expect(stalled).toBe(6);
    expect(answer.error).toBeUndefined();
    expect(answer.ok).toBe(true);
  }, 30_000);

  it('honest subscribers that accept: a publisher to two topics keeps at most eventFanout (6) of them, and a request still dials its handler', async () => {
    // P ── C ── H as above; eight honest subscribers, four of each topic, connected to C only.
    const P = await node(false, { maxInboundPerIp: 20 });
    const C = await node(false, { maxInboundPerIp: 20 });
    const H = await node(false, { maxInboundPerIp: 20 });
    await P.connect(`${C.id}@${C.address()}`);
    await C.connect(`${H.id}@${H.address()}`);
    const subscribers: Peer[] = [];
    for (const topic of ['alerts.one', 'alerts.two']) {
      for (let i = 0; i < 4; i++) {
        const s = await node(false, { maxInboundPerIp: 20 });
        await s.connect(`${C.id}@${C.address()}`);
        s.setHandledPatterns({ requests: [], events: [topic] });
        subscribers.push(s);
      }
    }
    H.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
    await waitFor(
      () => P.handlers('orders.reserve', 'request').length === 1 && P.handlers('alerts.one', 'event').length === 4 && P.handlers('alerts.two', 'event').length === 4,
      8000,
      'P to know the handler and the subscribers',
    );
    const fanned = () => P.peers().filter((p) => subscribers.some((s) => s.id === p.id)).length;
    // Events flow to both topics, as a publisher's would; the fanout looks once a second per topic.
    for (let round = 0; round < 3; round++) {
      P.broadcast('alerts.one', { round }, { scope: 'subscribers' });
      P.broadcast('alerts.two', { round }, { scope: 'subscribers' });
      await new Promise((r) => setTimeout(r, 1050));
    }
    const held = fanned();
    const answer = await ask(P, 'orders.reserve', 2000);
    if (process.env.P2P_TEST_STATS) console.log(`fanout slots, honest: ${held} subscribers held, request ${answer.ok ? 'answered' : answer.error?.message}`);
    // First: 6 held (the whole shared limit) for as long as events flow, and the request failed after 2 s.
    expect(held).toBe(6);
    expect(answer.ok).toBe(true);
  }, 40_000);

  it('with eventFanout 0 (the reference), nothing is dialed for events and the request is answered', async () => {
    const { stalled, answer } = await run({ eventFanout: 0 });
    expect(stalled).toBe(0);
    expect(answer.ok).toBe(true);
  }, 30_000);
});

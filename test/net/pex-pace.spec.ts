import { afterEach, describe, expect, it } from 'vitest';
import { parsePeerExchange } from '../../src/discovery/peer-exchange.js';
import { type Peer } from '../../src/node/peer.js';
import { ControlType, type Control } from '../../src/wire/control.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 23: peer exchange runs every pexIntervalMs (30 s by default) in a steady network, and
 * sooner (a round a second) while a node or its neighbour is below the least degree and has news
 * for the other: a network started with defaults formed in 45-58 s, paced by the interval.
 * A hand-driven neighbour (RawPeer) watches what a node with default settings sends it.
 */
const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const exchanges = (raw: RawPeer) => raw.controls.filter((c): c is Extract<Control, { type: ControlType.PeerExchange }> => c.type === ControlType.PeerExchange);
const named = (raw: RawPeer) => exchanges(raw).flatMap((c) => parsePeerExchange(c.body, () => false).entries.map((e) => e.id));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the pace of peer exchange with default settings (pexIntervalMs 30 s)', () => {
  it('a node below its least degree tells its neighbours of a new peer within a forming round, not at the next interval', async () => {
    const a = await startEchoPeer({}, open);
    const raw = await RawPeer.open(a.address()!, { tls: true });
    raws.push(raw);
    await waitFor(() => a.peers().length === 1, 3000, 'the raw neighbour to be admitted');
    const b = await startEchoPeer({ peers: [`${a.id}@${a.address()}`] }, open);
    const started = Date.now();
    await waitFor(() => named(raw).includes(b.id), 3000, 'a peer exchange naming the new peer');
    expect(Date.now() - started).toBeLessThan(2500); // a forming round (1 s), not pexIntervalMs (30 s)
  });

  it('a steady network below the least degree (3 nodes, all connected) sends no peer exchange between intervals', async () => {
    const a = await startEchoPeer({}, open);
    const b = await startEchoPeer({ peers: [`${a.id}@${a.address()}`] }, open);
    const c = await startEchoPeer({ peers: [`${a.id}@${a.address()}`] }, open);
    await waitFor(() => [a, b, c].every((n) => n.peers().length === 2), 5000, 'the three to connect to each other');
    const raw = await RawPeer.open(a.address()!, { tls: true });
    raws.push(raw);
    await waitFor(() => a.peers().length === 3 && exchanges(raw).length === 1, 3000, 'the peer exchange sent on connect');
    expect(new Set(named(raw))).toEqual(new Set([b.id, c.id]));
    await sleep(4000); // four forming rounds' worth
    expect(exchanges(raw)).toHaveLength(1);
  }, 15_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from '../../src/node/peer.js';
import type { PeerOptions } from '../../src/node/peer-options.js';
import { coverNeeds } from '../../src/discovery/ring-topology.js';
import { inArc } from '../../src/ring/raintree.js';
import { captureLogger, startEchoPeer, waitFor } from '../helpers.js';

/**
 * Review of the floor of neighbours per event pattern (eventPatternLinks, src/discovery/ring-topology.ts topicFloor),
 * with a hostile peer's valid throwaway keys: 7 of them subscribe to each of victim V's 4 event patterns (V's record
 * says which), listen, and connect to X, an honest node V dialed itself. X's peer exchange names them with their
 * addresses, so V learned of them from others (trusted) and knows where to dial them; the floor then wants 6
 * neighbours per pattern, drawn at random among them, and keeps them (never redundant). Up to 24 of them, before the
 * floor was bounded by 6 beside the covers for all patterns together: they held every outbound place.
 */
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const PATTERNS = ['rare.a', 'rare.b', 'rare.c', 'rare.d'];
const PER_PATTERN = 7;
const HONEST = 8;
const base = { tls: false, pexIntervalMs: 500, broadcastRepairIntervalMs: 200, maxInboundPerIp: 60 } satisfies PeerOptions;

const ask = (p: Peer, subject: string, timeoutMs: number) =>
  new Promise<{ ok: boolean; error?: Error }>((resolve) => {
    p.requestPattern(subject, 'hi', { next: () => {}, error: (error: Error) => resolve({ ok: false, error }), complete: () => resolve({ ok: true }) }, { timeoutMs });
  });

/**
 * V ── X ── 28 throwaway subscribers; V ── C ── H, where H handles "orders.reserve" and is not V's neighbour (C and H
 * exchange no peers: V reaches H only by a request's dial). `churn`: each throwaway key closes V's connection as soon as
 * it opens (accept, then drop), so that V's floor is never met.
 */
async function attack(options: PeerOptions, churn = false) {
  const logger = captureLogger();
  const V = await startEchoPeer({ ...base, logger, ...options }, open);
  const X = await startEchoPeer({ ...base }, open);
  const C = await startEchoPeer({ ...base, peerExchange: false }, open);
  const H = await startEchoPeer({ ...base, peerExchange: false }, open);
  await C.connect(`${H.id}@${H.address()}`);
  // Honest nodes beside X, so that V is past its least degree (8) without the throwaway keys, as in a network.
  for (let i = 0; i < HONEST; i++) await (await startEchoPeer({ ...base }, open)).connect(`${X.id}@${X.address()}`);
  H.setHandledPatterns({ requests: ['orders.reserve'], events: [] });
  V.setHandledPatterns({ requests: [], events: PATTERNS });
  const sybils: Peer[] = [];
  for (const pattern of PATTERNS) {
    for (let i = 0; i < PER_PATTERN; i++) {
      const s = await startEchoPeer({ ...base, peerExchange: false }, open);
      s.setHandledPatterns({ requests: [], events: [pattern] });
      if (churn) s.on('peer', (e: { type: string; peer: { id: string } }) => void (e.type === 'connected' && e.peer.id === V.id && s.disconnect(V.id).catch(() => undefined)));
      await s.connect(`${X.id}@${X.address()}`);
      sybils.push(s);
    }
  }
  await V.connect(`${C.id}@${C.address()}`);
  await V.connect(`${X.id}@${X.address()}`);
  await waitFor(() => PATTERNS.every((p) => V.handlers(p, 'event').length >= PER_PATTERN) && V.handlers('orders.reserve', 'request').length === 1, 15_000, 'V to hold every record');
  const sybilIds = new Set(sybils.map((s) => s.id));
  // Dials of V's that met a throwaway key (its connected events), and the most V held at once, sampled over 10 s.
  let dials = 0;
  const perKey = new Map<string, number>();
  V.on('peer', (e: { type: string; peer: { id: string; direction: string } }) => {
    if (e.type !== 'connected' || e.peer.direction !== 'outbound' || !sybilIds.has(e.peer.id)) return;
    dials++;
    perKey.set(e.peer.id, (perKey.get(e.peer.id) ?? 0) + 1);
  });
  let mostOutbound = 0;
  let mostPeers = 0;
  let mostSybils = 0;
  // The thirds V needs a neighbour in, at their most while it was sampled (what it knows moves, and so do they).
  let mostNeeds = 0;
  const started = Date.now();
  for (let t = 0; t < 40; t++) {
    await new Promise((r) => setTimeout(r, 250));
    const peers = V.peers();
    mostOutbound = Math.max(mostOutbound, peers.filter((p) => p.direction === 'outbound').length);
    mostPeers = Math.max(mostPeers, peers.length);
    mostSybils = Math.max(mostSybils, peers.filter((p) => sybilIds.has(p.id)).length);
    mostNeeds = Math.max(mostNeeds, coverNeeds(V.id, [...new Set([V.id, ...peers.map((p) => p.id), ...V.knownPeers().map((k) => k.id)])].sort()).length);
  }
  const seconds = (Date.now() - started) / 1000;
  const outbound = V.peers().filter((p) => p.direction === 'outbound').length;
  // The ring's guarantee: a neighbour in every third that holds a node V knows (the covers are not crowded out).
  const uncovered = () => {
    const peers = V.peers().map((p) => p.id);
    const known = [...new Set([V.id, ...peers, ...V.knownPeers().map((k) => k.id)])].sort();
    return coverNeeds(V.id, known).filter((need) => !peers.some((id) => inArc(id, need.arc))).length;
  };
  await waitFor(() => uncovered() === 0, 5000, 'a neighbour in every third').catch(() => undefined);
  const thirdsUncovered = uncovered();
  const needs = coverNeeds(V.id, [...new Set([V.id, ...V.peers().map((p) => p.id), ...V.knownPeers().map((k) => k.id)])].sort()).length;
  const answer = await ask(V, 'orders.reserve', 2000);
  const warnings = logger.lines.filter((l) => (l.level === 'warn' || l.level === 'error') && !l.message.includes('runs with tls: false')).map((l) => l.message);
  if (process.env.P2P_TEST_STATS) {
    console.log(
      `floor sybils${churn ? ' (churn)' : ''} ${JSON.stringify(options)}: ${dials} dials to throwaway keys in ${seconds.toFixed(1)} s (${(dials / seconds).toFixed(1)}/s, at most ${Math.max(0, ...perKey.values())} to one key); ` +
        `held at most ${mostSybils} of them, ${mostOutbound} outbound, ${mostPeers} peers; outbound at the end ${outbound}; ${thirdsUncovered} of ${needs} thirds uncovered; request ${answer.ok ? 'answered' : answer.error?.message}; warnings ${JSON.stringify(warnings)}`,
    );
  }
  const mostPerKey = Math.max(0, ...perKey.values());
  return { dials, seconds, mostOutbound, mostPeers, mostSybils, mostPerKey, thirdsUncovered, needs: Math.max(needs, mostNeeds), answer, warnings };
}

describe('the floor of neighbours per event pattern against throwaway subscribers of a node’s patterns', () => {
  it('the floor holds at most 6 of them beside the covers (eventPatternLinks, all patterns together), and a request to a handler is dialed and answered', async () => {
    const r = await attack({});
    // Before the cap (6 per pattern of 4): 22 throwaway keys held, all 24 outbound places taken, and the request failed
    // after 2 s with "maxOutbound reached" (eventPatternLinks 0: 4-6 held, 9-10 outbound, answered). With it: 11-14
    // held (the covers prefer pattern members: at most one per third, 7-8 thirds), 14-17 outbound, 0 thirds uncovered, answered.
    // A cover being swapped holds its old connection until the next plan that has seen the new one last (two intervals).
    expect(r.mostSybils).toBeLessThanOrEqual(6 + r.needs + 2);
    // Places are left under maxOutbound (24) for requests. Not bounded by the floor alone: V also dials its own choices
    // while honest nodes that found it through X dial in (the eclipse share), 14-17 in all here (17 at CI's load).
    expect(r.mostOutbound).toBeLessThan(24);
    expect(r.mostPeers).toBeLessThanOrEqual(50);
    expect(r.thirdsUncovered).toBe(0);
    expect(r.answer.error).toBeUndefined();
    expect(r.answer.ok).toBe(true);
    expect(r.warnings).toEqual([]);
  }, 90_000);

  it('with eventPatternLinks 0 (the reference), fewer are held and the request is answered', async () => {
    const r = await attack({ eventPatternLinks: 0 });
    expect(r.mostSybils).toBeLessThanOrEqual(12);
    expect(r.answer.ok).toBe(true);
    expect(r.warnings).toEqual([]);
  }, 90_000);

  it('keys that accept and drop at once are redialed no faster than each one’s backoff allows, as without the floor', async () => {
    // Each drop counts as a refusal (address-book.ts): a key's redials wait half to all of 0.5, 1, 2, 4, 8 s (reconnectBaseMs
    // doubling up to reconnectMaxMs), so at most 6 dials of one key in 10 s whoever picks it. Measured: 134-159 dials of
    // the 28 keys in 10 s (13-16/s, at most 5-6 to one key) with the floor and 137 without (the covers prefer pattern
    // members too), none held for long; it falls to 28 per reconnectMaxMs (30 s) once every key's backoff is at its most.
    // Thirds that only those keys hold go uncovered meanwhile (2 here), as without the floor: not asserted.
    const r = await attack({}, true);
    expect(r.mostPerKey).toBeLessThanOrEqual(6);
    expect(r.dials).toBeLessThanOrEqual(PATTERNS.length * PER_PATTERN * 6);
    expect(r.mostPeers).toBeLessThanOrEqual(50);
    expect(r.answer.ok).toBe(true);
    expect(r.warnings).toEqual([]);
  }, 90_000);
});

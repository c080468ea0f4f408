import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity, type Identity } from '../../src/common/identity.js';
import { coverNeeds } from '../../src/discovery/ring-topology.js';
import { Peer } from '../../src/node/peer.js';
import { inArc, type Arc } from '../../src/ring/raintree.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';

/**
 * Review of issue 22 after issue 23 (fast formation: a node below 8 connections dials 4 a second of the
 * peers an outbound neighbour of its own choosing names). Ids ground into the thirds of a node V that
 * has not started yet dial V's seed S instead (real nodes, each on its own loopback address, accepting
 * only V): S names its inbound peers in its peer exchange, and for V, whose configured peer S is, that
 * is a source the ids do not control. Does V, forming fast, fill its places with them?
 * Run with P2P_TEST_STATS=1.
 */
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh key whose id lies in `arc` (bounded: the arcs used here hold at least 1/81 of the ring). */
function groundInto(arc: Arc): Identity {
  for (let i = 0; i < 20_000; i++) {
    const identity = loadIdentity();
    if (inArc(identity.peerId, arc)) return identity;
  }
  throw new Error('no key ground into the arc');
}

describe('review 22: ids ground into a joining node\'s thirds wait at its seed (TLS, default limits)', () => {
  const HONEST = 12;
  const ATTACKERS = 16;

  // OPEN (it.fails): on 2026-12-07, 3 runs: 6–8 of the 16 got into the seed (its own share), and V dialed 3 of them
  // within 0.4–0.8 s, holding 3 of its 8 connections (0.375) until the end (6 s): V stops at its least degree, and an
  // outbound connection counts as its own choice whoever it leads to. docs/security.md (Eclipse, What remains) says
  // an id an outbound neighbour names may be V's choice at its rank, one per third; at 8 connections that passes a
  // third. A fix: an outbound connection to an id only one neighbour's peer exchange vouches for counts on neither
  // side of the share, and V keeps dialing ids several sources name until those are at most a third (discovery.ts).
  // A run where only 2 reach V (0.25) would make this expected failure pass: rerun before concluding.
  it.fails('the joining node, forming at the fast pace, gives them at most a third of its connections', async () => {
    const options = { tls: true, pexIntervalMs: 200, reconnectBaseMs: 100, reconnectMaxMs: 1000 };
    const seed = await startEchoPeer(options, open);
    const honest: Peer[] = [seed];
    for (let i = 1; i < HONEST; i++) honest.push(await startEchoPeer({ ...options, peers: [`${honest[i - 1]!.id}@${honest[i - 1]!.address()}`] }, open));
    await waitFor(() => honest.every((p) => p.peers().length >= 8), 20_000, 'the honest network');
    const vIdentity = loadIdentity();
    const key = vIdentity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const needs = coverNeeds(vIdentity.peerId, [vIdentity.peerId, ...honest.map((p) => p.id)].sort());
    const attackerIds = new Set<string>();
    for (let i = 0; i < ATTACKERS; i++) {
      const identity = groundInto(needs[i % needs.length]!.arc);
      const privateKey = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      attackerIds.add(identity.peerId);
      // Each dials the seed, announces where it listens, sends no peer exchange, and then accepts only V.
      await startEchoPeer({ ...options, privateKey, listen: `127.0.0.${2 + i}:0`, peers: [`${seed.id}@${seed.address()}`], peerExchange: false }, open);
    }
    await sleep(1000);
    const atSeed = seed.peers().filter((p) => attackerIds.has(p.id)).length;
    const v = await startEchoPeer({ ...options, privateKey: key, peers: [`${seed.id}@${seed.address()}`] }, open);
    let most = 0;
    let mostAt = '';
    for (let t = 0; t < 60; t++) {
      await sleep(100);
      const peers = v.peers();
      const attacker = peers.filter((p) => attackerIds.has(p.id)).length;
      if (peers.length >= 8 && attacker / peers.length > most) [most, mostAt] = [attacker / peers.length, `${attacker}/${peers.length} at ${(t + 1) * 100} ms`];
    }
    const peers = v.peers();
    const end = peers.filter((p) => attackerIds.has(p.id));
    report(
      `fast formation: ${atSeed} attackers connected to the seed; V's most ${most.toFixed(2)} (${mostAt}); at the end ${end.length}/${peers.length}, ` +
        `${end.filter((p) => p.direction === 'outbound').length} dialed by V`,
    );
    expect(most).toBeLessThanOrEqual(1 / 3);
  }, 90_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { coverNeeds } from '../../src/discovery/ring-topology.js';
import { Peer } from '../../src/node/peer.js';
import { groundInto, startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';

/**
 * Review of issue 22 after issue 23 (fast formation: a node below 8 connections dials 4 a second of the
 * peers an outbound neighbour of its own choosing names). Ids ground into the thirds of a node V that
 * has not started yet (a node's id is known before it restarts) dial V's seed S instead (real nodes,
 * each on its own loopback address): S names its inbound peers in its peer exchange, and for V, whose
 * configured peer S is, that is a source the ids do not control. Does V, forming fast, fill its places
 * with them?
 * Run with P2P_TEST_STATS=1.
 */
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** 16 ids ground into V's thirds dial V's seed first; then V joins through the seed. Returns the attackers' largest share of V's connections (from 8 on). */
async function joinPastAttackers(pex: boolean): Promise<number> {
  const HONEST = 12;
  const ATTACKERS = 16;
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
    // Each dials the seed and announces where it listens; with `pex` it runs peer exchange as any node does.
    await startEchoPeer({ ...options, privateKey, listen: `127.0.0.${2 + i}:0`, peers: [`${seed.id}@${seed.address()}`], peerExchange: pex }, open);
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
    `fast formation (attackers' peer exchange ${pex ? 'on' : 'off'}): ${atSeed} attackers connected to the seed; V's most ${most.toFixed(2)} (${mostAt}); at the end ${end.length}/${peers.length}, ` +
      `${end.filter((p) => p.direction === 'outbound').length} dialed by V`,
  );
  return most;
}

describe('review 22: ids ground into a joining node\'s thirds wait at its seed (TLS, default limits)', () => {
  // Without peer exchange (they only wait at the seed for V to dial them), 3–8 of the 16 got into the seed and V
  // dialed 1–3 of them: 0.13–0.375 of its 8 connections over 4 runs (3 of 8 in three), too variable for a test.
  // OPEN (it.fails): attackers that run peer exchange learn V's address from the seed and dial V.
  // A seed that configures no peer takes every id (15–16 of the 16 got in), and the seed is V's outbound neighbour of
  // its own choosing, so its peer exchange 'vouches' for them: never refused by V's share and not counted in it
  // (connections.ts refusal()). 3 runs: 0.64–0.88 of V's connections at most (6 of 9, 9 of 14, 7 of 8), 1–2 of
  // them dialed by V; at the end (6 s) 6 of 11, 9 of 14, 10 of 16.
  // Tried on 2026-12-07 (branch review22-fixes, not kept), both with the test as `it`: vouching only by two outbound
  // neighbours of V's choosing: 0.75 (6/8), 3 of them dialed by V (V dials the ids S named, and once dialed they name
  // their fellows, a second voucher); vouching only by two connections V made itself (configured, connect()): 0.73
  // (8/11), 5 of 9 at the end dialed by V. Vouching is not the main path: the share refuses the inbound ones, V dials
  // for the share, and its dials pick among what S named, about half of them ground ids, which are also the facing
  // members of V's thirds. A fix must make V's own choice need more than one source (two neighbours that are not
  // each other's introduction), or cap its dials per third while forming, as maxInboundPerThird caps inbound ones.
  it.fails('attackers with peer exchange: the joining node gives them at most a third of its connections', async () => {
    expect(await joinPastAttackers(true)).toBeLessThanOrEqual(1 / 3);
  }, 90_000);
});

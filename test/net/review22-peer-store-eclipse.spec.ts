import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import { coverNeeds } from '../../src/discovery/ring-topology.js';
import { Peer } from '../../src/node/peer.js';
import { groundInto, startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';

/**
 * Review of issue 22 after issue 23 (peer store, fast formation): the eclipse of eclipse.spec.ts's second
 * test (16 real nodes with ids ground into V's thirds, each on its own loopback address, dialing V
 * alone), then V restarts with its peer store. The store keeps every proven peer, attackers included
 * (unflagged: V learned of them from their own word), and at start they all go back into V's address
 * book. Below its least degree V dials anyone it knows, and an outbound connection counts as one of
 * its own choosing in the share (connections.ts), whoever it leads to. Run with P2P_TEST_STATS=1.
 */

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


describe('review 22: the peer store after an eclipse attempt (TLS, default limits)', () => {
  const HONEST = 12;
  const ATTACKERS = 16;

  it('ids ground into V\'s thirds, before and after a restart with its peer store: their share measured (open), V keeps at least 3 honest links', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2p-review22-'));
    const storeFile = join(dir, 'peers.json');
    try {
      const options = { tls: true, pexIntervalMs: 200, reconnectBaseMs: 100, reconnectMaxMs: 1000 };
      const seed = await startEchoPeer(options, open);
      const honest: Peer[] = [seed];
      for (let i = 1; i < HONEST; i++) honest.push(await startEchoPeer({ ...options, peers: [`${honest[i - 1]!.id}@${honest[i - 1]!.address()}`] }, open));
      const key = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      const vOptions = { ...options, privateKey: key, peerStoreFile: storeFile, peers: [`${seed.id}@${seed.address()}`] };
      let v = await startEchoPeer(vOptions, open);
      const vAddress = v.address()!;
      await waitFor(() => [...honest, v].every((p) => p.peers().length >= 8), 20_000, 'the honest network');
      await sleep(1500);

      const needs = coverNeeds(v.id, [...new Set([v.id, ...v.routingView(), ...v.knownPeers().map((k) => k.id)])].sort());
      const attackerIds = new Set<string>();
      for (let i = 0; i < ATTACKERS; i++) {
        const identity = groundInto(needs[needs.length - 1 - (i % needs.length)]!.arc);
        const privateKey = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
        attackerIds.add(identity.peerId);
        await startEchoPeer({ ...options, privateKey, listen: `127.0.0.${2 + i}:0`, peers: [`${v.id}@${vAddress}`], peerExchange: false, allowedPeers: [v.id] }, open);
      }
      const share = (node: Peer) => {
        const peers = node.peers();
        return { attacker: peers.filter((p) => attackerIds.has(p.id)).length, outbound: peers.filter((p) => attackerIds.has(p.id) && p.direction === 'outbound').length, all: peers.length };
      };
      const watch = async (node: Peer, rounds: number) => {
        let most = 0;
        for (let t = 0; t < rounds; t++) {
          await sleep(100);
          const s = share(node);
          if (t >= 10 && s.all >= 8) most = Math.max(most, s.attacker / s.all);
        }
        return most;
      };
      const before = await watch(v, 40);
      const atClose = share(v);

      // V restarts on the same address with the same key and its peer store; the attackers keep redialing it.
      await v.close();
      open.splice(open.indexOf(v), 1);
      const stored = (JSON.parse(readFileSync(storeFile, 'utf8')) as { peers: Array<{ id: string }> }).peers.map((p) => p.id);
      v = await startEchoPeer({ ...vOptions, listen: vAddress }, open);
      const after = await watch(v, 60);
      const end = share(v);
      report(
        `peer store re-eclipse: before the restart most ${before.toFixed(2)} (${atClose.attacker}/${atClose.all} at close); stored ${stored.length} peers, ` +
          `${stored.filter((id) => attackerIds.has(id)).length} attackers; after the restart most ${after.toFixed(2)}, at the end ${end.attacker}/${end.all} (${end.outbound} dialed by V)`,
      );
      // Open (docs/security.md, review 22), so measured and reported rather than held to the third: on
      // 2026-12-07 the share after the restart was 0.27–0.33 in 4 runs, 0.44 and 0.5 once each (below its least degree
      // V takes every id that dials in, and nothing lets them go once past it), and with peer exchange every 200 ms a
      // fresh-clone CI run saw 0.57 even before the restart. test/net/eclipse.spec.ts holds the third at the default
      // pace. Asserted here: V keeps honest links through it all, which repair needs, and the attack took place.
      expect(atClose.attacker + end.attacker).toBeGreaterThan(0);
      expect(atClose.all - atClose.attacker).toBeGreaterThanOrEqual(3);
      expect(end.all - end.attacker).toBeGreaterThanOrEqual(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

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
 * book. Below its least degree V dials anyone it knows; an outbound connection to an id it knows only by
 * that id's word counts as not of its choosing in the share (connections.ts, discovery.ts), as an inbound
 * one it would not have dialed does. Run with P2P_TEST_STATS=1.
 */

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


describe('review 22: the peer store after an eclipse attempt (TLS, default limits)', () => {
  const HONEST = 12;
  const ATTACKERS = 16;

  it('ids ground into V\'s thirds, before and after a restart with its peer store: at most a third of V\'s connections, V at its least degree with at least 3 honest links', async () => {
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
      // `most`: the largest share sampled (every 100 ms, from 1 s on, V at 8 or more); `held`: the largest that held for
      // HELD samples in a row (its least over them). An honest neighbour that closes lifts the share until V's dial of its
      // own lands: at load 46, 3 of 8 for a moment (0.38), 3 of 9 again within a second.
      const HELD = 10;
      const watch = async (node: Peer, rounds: number) => {
        let most = 0;
        let held = 0;
        const recent: number[] = [];
        for (let t = 0; t < rounds; t++) {
          await sleep(100);
          const s = share(node);
          if (t < 10) continue;
          recent.push(s.all >= 8 ? s.attacker / s.all : 0);
          if (recent.length > HELD) recent.shift();
          most = Math.max(most, recent[recent.length - 1]!);
          if (recent.length === HELD) held = Math.max(held, Math.min(...recent));
        }
        return { most, held };
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
        `peer store re-eclipse: before the restart most ${before.most.toFixed(2)} (held ${before.held.toFixed(2)}; ${atClose.attacker}/${atClose.all} at close); stored ${stored.length} peers, ` +
          `${stored.filter((id) => attackerIds.has(id)).length} attackers; after the restart most ${after.most.toFixed(2)} (held ${after.held.toFixed(2)}), at the end ${end.attacker}/${end.all} (${end.outbound} dialed by V)`,
      );
      // The third, before and after the restart, held for a second and at the end (docs/security.md, review 22).
      // It was 0.44, 0.5 and 0.4 in 3 of 21 runs after the restart: 3 ground ids dialed in below V's least degree while its
      // dials to its stored peers were in flight (all taken), and V dialed a ground id from its store, which counted as its
      // own choice and let one more in; and 16 of 28 once, V connected to all 12 honest nodes (no peer of its own left to
      // dial: every ground id taken). Now an outbound connection to an id V knows only by its own word counts as not of its
      // choosing, below its least degree V takes such connections only up to a third of it (a dial of its own in flight
      // is a choice), and a node holding its least degree without them keeps the share with no peer left to dial.
      expect(atClose.attacker + end.attacker).toBeGreaterThan(0);
      expect(before.held).toBeLessThanOrEqual(1 / 3);
      expect(after.held).toBeLessThanOrEqual(1 / 3);
      // V at its least degree (within 5 s: an honest neighbour that just closed is replaced by a dial of its own).
      await waitFor(() => v.peers().length >= 8, 5_000, 'V at its least degree');
      expect(atClose.all - atClose.attacker).toBeGreaterThanOrEqual(3);
      expect(end.all - end.attacker).toBeGreaterThanOrEqual(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

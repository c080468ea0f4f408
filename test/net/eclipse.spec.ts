import { afterEach, describe, expect, it } from 'vitest';
import { encodeIds } from '../../src/broadcast/repair.js';
import { coverNeeds } from '../../src/discovery/ring-topology.js';
import { Peer } from '../../src/node/peer.js';
import { ControlType } from '../../src/wire/control.js';
import { repairFrame } from '../broadcast-mesh.js';
import { groundInto, startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 22, item 3: eclipse with default limits (maxPeers 50, maxInbound 40, maxInboundPerIp 8).
 * Real nodes over TLS on 127.0.0.1; the attacker is 10 hand-driven raw peers whose keys were
 * ground until their ids fell into the thirds of the ring V covers, each dialing V from its own
 * loopback address (127.0.0.2 …), so that the per-IP limit does not stop them. They relay
 * nothing, and announce every honest broadcast to V first without ever sending it.
 * Run with P2P_TEST_STATS=1 to print what it measured.
 */

const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


describe('eclipse: ids ground into a node’s thirds dial in, drop and withhold (TLS, default limits)', () => {
  const HONEST = 12;
  const ATTACKERS = 10;
  const INTERVAL = 250;
  const BROADCASTS = 40;

  it(`${ATTACKERS} ground ids hold at most a third of V's connections, and V delivers ≥ 95 % of honest broadcasts within two repair intervals`, async () => {
    // Default limits; only the intervals are shortened, so that the test takes seconds.
    const options = { tls: true, pexIntervalMs: 200, reconnectBaseMs: 100, reconnectMaxMs: 1000, broadcastRepairIntervalMs: INTERVAL };
    const seed = await startEchoPeer(options, open);
    const honest: Peer[] = [seed];
    // A chain, as in sparse-mesh.spec.ts: with every node on 127.0.0.1, one seed would take only maxInboundPerIp (8) of them.
    for (let i = 1; i < HONEST; i++) honest.push(await startEchoPeer({ ...options, peers: [`${honest[i - 1]!.id}@${honest[i - 1]!.address()}`] }, open));
    const v = await startEchoPeer({ ...options, peers: [`${seed.id}@${seed.address()}`] }, open);
    const delivered = new Map<string, number>();
    v.setHandler({ onEvent: (_f, _t, _d, meta) => void (meta && !delivered.has(meta.id) && delivered.set(meta.id, Date.now())), onRequest: () => undefined });
    const nodes = [...honest, v];
    const honestIds = new Set(honest.map((p) => p.id));
    await waitFor(() => nodes.every((p) => p.peers().length >= 8), 20_000, 'the honest network').catch((e) => {
      report(`degrees ${nodes.map((p) => p.peers().length)} view ${v.routingView().length}`);
      throw e;
    });
    await sleep(1500);
    const honestBefore = v.peers().length;

    // The attacker grinds ids into the thirds V covers (round robin), and dials in from 10 addresses.
    const needs = coverNeeds(v.id, [...new Set([v.id, ...v.routingView(), ...v.knownPeers().map((k) => k.id)])].sort());
    for (let i = 0; i < ATTACKERS; i++) {
      const identity = groundInto(needs[i % needs.length]!.arc);
      try {
        raws.push(await RawPeer.open(v.address()!, { tls: true, identity, localAddress: `127.0.0.${2 + i}` }));
      } catch {
        /* refused before the handshake ended: counted as not connected */
      }
    }
    const attackerIds = new Set(raws.map((r) => r.identity.peerId));
    const share = () => {
      const peers = v.peers();
      return { attacker: peers.filter((p) => attackerIds.has(p.id)).length, honest: peers.filter((p) => honestIds.has(p.id)).length, all: peers.length };
    };
    // Ten peer-exchange intervals: time for V to dial what it wants and let go what it does not.
    let most = 0;
    for (let t = 0; t < 20; t++) {
      await sleep(100);
      const s = share();
      if (t >= 5) most = Math.max(most, s.attacker / s.all);
    }
    const settled = share();

    // Honest broadcasts; each attacker announces each id to V at once and never sends it.
    const sent: Array<{ id: string; at: number }> = [];
    for (let k = 0; k < BROADCASTS; k++) {
      const from = honest[(k * 5 + 1) % HONEST]!;
      const at = Date.now();
      const { id } = from.broadcast('news', { k }, { scope: 'network' });
      for (const r of raws) if (!r.closed) r.write(repairFrame(ControlType.BroadcastIHave, encodeIds([Buffer.from(id!, 'hex')])));
      sent.push({ id: id!, at });
      await sleep(100);
    }
    await waitFor(() => sent.every((b) => delivered.has(b.id)), 3000).catch(() => undefined);
    const deadline = 2 * INTERVAL;
    const latencies = sent.map((b) => (delivered.get(b.id) ?? Infinity) - b.at);
    const inTime = latencies.filter((ms) => ms <= deadline).length;
    const end = share();
    report(
      `eclipse: V had ${honestBefore} connections before the attack; after it ${settled.attacker} attacker / ${settled.honest} honest of ${settled.all} ` +
        `(share ${(settled.attacker / settled.all).toFixed(2)}, most ${most.toFixed(2)}); at the end ${end.attacker}/${end.all}; ` +
        `V delivered ${latencies.filter((ms) => ms < Infinity).length}/${BROADCASTS}, ${inTime} within ${deadline} ms (latencies ${latencies.join(' ')}); V relays ${JSON.stringify({ ...v.networkBroadcastStats(), repair: undefined, dropped: undefined })}; V repair ${JSON.stringify(v.networkBroadcastStats().repair)}`,
    );
    expect(most).toBeLessThanOrEqual(1 / 3);
    // V keeps its honest links (it had 7–10 before the attack; the old code let all but 6 go for the attacker's).
    expect(settled.honest).toBeGreaterThanOrEqual(5);
    expect(inTime).toBeGreaterThanOrEqual(Math.ceil(0.95 * BROADCASTS));
  }, 60_000);

  it('ground ids that announce an address V can dial (real nodes, each on its own loopback address) also hold at most a third of its connections', async () => {
    // As the simulator's "with an address" (test/core/eclipse-sim.spec.ts): once they dial, V keeps them in its address
    // book, and in V's deepest thirds they outnumber the honest members; by rank alone one was V's own choice there,
    // let in past the share (issue 22, eclipse). Now only ids V learned of from others may be its choice.
    const ATTACKERS_WITH_ADDRESS = 16;
    const options = { tls: true, pexIntervalMs: 200, reconnectBaseMs: 100, reconnectMaxMs: 1000 };
    const seed = await startEchoPeer(options, open);
    const honest: Peer[] = [seed];
    for (let i = 1; i < HONEST; i++) honest.push(await startEchoPeer({ ...options, peers: [`${honest[i - 1]!.id}@${honest[i - 1]!.address()}`] }, open));
    const v = await startEchoPeer({ ...options, peers: [`${seed.id}@${seed.address()}`] }, open);
    const nodes = [...honest, v];
    await waitFor(() => nodes.every((p) => p.peers().length >= 8), 20_000, 'the honest network');
    await sleep(1500);

    // Each attacker is a node that dials V alone, announces where it listens, accepts only V (no honest node vouches for
    // it) and sends no peer exchange; V can dial it back.
    const needs = coverNeeds(v.id, [...new Set([v.id, ...v.routingView(), ...v.knownPeers().map((k) => k.id)])].sort());
    const attackerIds = new Set<string>();
    for (let i = 0; i < ATTACKERS_WITH_ADDRESS; i++) {
      const identity = groundInto(needs[needs.length - 1 - (i % needs.length)]!.arc);
      const privateKey = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      attackerIds.add(identity.peerId);
      await startEchoPeer(
        { ...options, privateKey, listen: `127.0.0.${2 + i}:0`, peers: [`${v.id}@${v.address()}`], peerExchange: false, allowedPeers: [v.id] },
        open,
      );
    }
    const share = () => {
      const peers = v.peers();
      return { attacker: peers.filter((p) => attackerIds.has(p.id)).length, all: peers.length };
    };
    // Twenty peer-exchange intervals: the attackers redial when refused, V dials what it wants and lets go what it does not.
    let most = 0;
    let connectedAtAll = 0;
    for (let t = 0; t < 40; t++) {
      await sleep(100);
      const s = share();
      connectedAtAll = Math.max(connectedAtAll, s.attacker);
      if (t >= 10) most = Math.max(most, s.attacker / s.all);
    }
    const end = share();
    report(`eclipse with addresses: most ${most.toFixed(2)}, at the end ${end.attacker}/${end.all}; V knows ${v.knownPeers().length} peers`);
    // The attack bites (they get in), and stays within the share.
    expect(connectedAtAll).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(1 / 3);
  }, 60_000);
});

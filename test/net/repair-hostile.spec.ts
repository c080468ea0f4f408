import { createHash } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createNetworkMessage, type NetworkMessage } from '../../src/broadcast/codec.js';
import { encodeIds, parseIds } from '../../src/broadcast/repair.js';
import { DEFAULTS } from '../../src/common/defaults.js';
import { loadIdentity, type Identity } from '../../src/common/identity.js';
import { type Peer } from '../../src/node/peer.js';
import { inArc, pointArc, type Arc } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { ControlType, type Control } from '../../src/wire/control.js';
import { broadcastMeshes, repairFrame } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Issue 22, items 1 and 2: hostile peers with valid keys against repair's promises.
 * Real nodes over TLS on 127.0.0.1; the hostile peers are hand-driven raw peers.
 * Run with P2P_TEST_STATS=1 to print what each test measured.
 */

const { mesh, raw } = broadcastMeshes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const message = (identity: Identity, data: unknown, topic = 'news'): NetworkMessage =>
  createNetworkMessage(identity, { timestampUs: Date.now() * 1000, strategy: 'raintree', encoding: Encoding.Json, topic, payload: Buffer.from(JSON.stringify(data)) });

/** Delivery times at `peer`, by broadcast id (replaces the harness's handler on that node). */
function deliveries(peer: Peer): Map<string, number> {
  const at = new Map<string, number>();
  peer.setHandler({
    onEvent: (_from, _topic, _data, meta) => void (meta && !at.has(meta.id) && at.set(meta.id, Date.now())),
    onRequest: (_p, _t, data, reply) => (reply.next(data), reply.complete()),
  });
  return at;
}

/** Ids of IWANT frames `r` got since `cursor` (advanced). */
function newWants(r: RawPeer, cursor: { at: number }): string[] {
  const controls = r.controls.slice(cursor.at);
  cursor.at = r.controls.length;
  return controls
    .filter((c): c is Control & { type: ControlType.BroadcastIWant; body: Buffer } => c.type === ControlType.BroadcastIWant)
    .flatMap((c) => parseIds(c.body, 'IWANT').map((b) => b.toString('hex')));
}

/** Every honest node's score for every other honest node. */
const honestScores = (nodes: Peer[]) => nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => a.peerScore(b.id)));

describe('withheld repair: Sybil neighbours that announce every id first and never send it (TLS)', () => {
  const INTERVAL = 250;
  const SYBILS = 6;
  const HONEST_BROADCASTS = 40;

  it(`${SYBILS} Sybils keeping one promise an interval: V still delivers ≥ 95 % of honest broadcasts within two intervals of the honest announcement, and the Sybils lose score`, async () => {
    // V (node 0) keeps 3 honest links; every honest broadcast reaches node 1 alone, so V can only get it by repair.
    const nodes = await mesh(true, 4, { broadcastRepairIntervalMs: INTERVAL });
    const [v, h1] = nodes as [Peer, Peer];
    const delivered = deliveries(v);
    const sybils: RawPeer[] = [];
    for (let i = 0; i < SYBILS; i++) sybils.push(await raw(true, v));
    const courier = await raw(true, h1);

    // Each Sybil keeps one promise an interval: it announces a broadcast of its own and sends it when asked.
    const keeper = keepPromises(sybils, v.id, INTERVAL);

    const sent: Array<{ id: string; at: number }> = [];
    try {
      for (let k = 0; k < HONEST_BROADCASTS; k++) {
        const m = message(courier.identity, { honest: k });
        const at = Date.now();
        // The Sybils announce it first (in turn, so that each is the first announcer of some), then node 1 gets it.
        for (let i = 0; i < SYBILS; i++) sybils[(k + i) % SYBILS]!.write(repairFrame(ControlType.BroadcastIHave, encodeIds([Buffer.from(m.id, 'hex')])));
        courier.sendBroadcast({ ...m, arc: pointArc(h1.id) });
        sent.push({ id: m.id, at });
        await sleep(150);
      }
      await waitFor(() => sent.every((b) => delivered.has(b.id)), 3000, 'V to deliver every honest broadcast').catch(() => undefined);
    } finally {
      await keeper.stop();
    }

    // The honest announcement comes at most one interval after node 1 got it (grace and tick): two intervals after that.
    const deadline = 3 * INTERVAL;
    const latencies = sent.map((b) => (delivered.get(b.id) ?? Infinity) - b.at);
    const inTime = latencies.filter((ms) => ms <= deadline).length;
    const got = latencies.filter((ms) => ms < Infinity).length;
    const sybilScores = sybils.map((s) => v.peerScore(s.identity.peerId));
    const finite = latencies.filter((ms) => ms < Infinity).sort((a, b) => a - b);
    report(
      `withholding: ${SYBILS} Sybils, interval ${INTERVAL} ms: V delivered ${got}/${HONEST_BROADCASTS} honest broadcasts, ${inTime} within ${deadline} ms; ` +
        `latency median ${finite[Math.floor(finite.length / 2)] ?? '-'} ms, max ${finite.at(-1) ?? '-'} ms; Sybil promises kept ${keeper.kept()}; ` +
        `Sybil scores at V ${sybilScores.map((s) => s.toFixed(1)).join(' ')}; V repair ${JSON.stringify(v.networkBroadcastStats().repair)}`,
    );
    expect(inTime).toBeGreaterThanOrEqual(Math.ceil(0.95 * HONEST_BROADCASTS));
    for (const score of sybilScores) expect(score).toBeLessThan(0);
    // No honest node lost a point, and V kept its honest links.
    expect(honestScores(nodes)).toEqual(Array(12).fill(0));
    expect(v.peers().filter((p) => nodes.some((n) => n.id === p.id))).toHaveLength(3);
  }, 40_000);
});

/** Repair's designation point of `peer` in `epoch` (BroadcastRepair.pointsFor: its id XOR sha1 of the epoch). */
function designationPoint(peer: string, epoch: number): string {
  const mask = createHash('sha1').update(`repair-epoch:${epoch}`).digest();
  const out = Buffer.from(peer, 'hex');
  for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ mask[i]!;
  return out.toString('hex');
}

/** Designation epochs last 10 s of the broadcasts' signed time (DESIGNATION_EPOCH_US in repair.ts). */
const epochOf = (timestampUs: number) => Math.floor(timestampUs / 10_000_000);

/** A key whose id falls in `arc` (ground; arcs here are rarely below a thousandth of the ring). */
function groundIdentity(arc: Arc): Identity {
  for (let i = 0; i < 200_000; i++) {
    const identity = loadIdentity();
    if (inArc(identity.peerId, arc)) return identity;
  }
  throw new Error('no key ground into the arc');
}

/**
 * Issue 21/22: what broadcastRepairFanout's random announcers are for. Above, peer exchange is off, so every honest node
 * is the designated announcer of V and the fanout plays no part. Here V's designated announcer in every epoch of the
 * test is a Sybil, so an honest neighbour tells V only when V is among its random draws: `fanout` of the neighbours it
 * does not know to hold the id. The Sybils are connected to every honest node too and stay silent there, so they are
 * in those draws (an attacker's cheapest choice: it only has to connect). V is the one node the tree left out.
 * Runs at the default fanout: lowering it is what this test guards. Measured (TLS, 2 shared cores, load 1-3.5),
 * broadcasts within the deadline of 40, one run each unless said:
 * - one Sybil per epoch (3; each honest node draws among 6): fanout 2: 29, 29; 3: 39; 4: 40; 6: 40, 40, 40;
 * - two per epoch (6; among 9): fanout 2: 19; 3: 31; 4: 36; 5: 38; 6: 40, 39, 40, 40, 38, 39, 39;
 * - 6 Sybils that also announce each id to the honest nodes after their copy (known holders, out of the draws):
 *   fanout 2: 40, 39; 3: 40; 6: 40.
 * So the fanout needed grows with the neighbours an honest node may draw: fanout 2 does not hold here.
 */
describe("withheld repair where V's designated announcers are the Sybils: V is told only by honest neighbours' random draws (TLS)", () => {
  const INTERVAL = 250;
  const EPOCHS = 3; // the broadcasts' signed times fall in these (setup and 40 broadcasts take well under 20 s)
  /** Sybils ground for each epoch; each honest node then draws among V, the two other honest nodes and every Sybil. */
  const PER_EPOCH = 1;
  const HONEST_BROADCASTS = 40;

  const fanout = DEFAULTS.broadcastRepairFanout;

  it(`fanout ${fanout}: Sybils ground in before every honest neighbour from V's designation point, announcing every id first and never sending it: V still delivers ≥ 95 % of honest broadcasts within two intervals of the honest announcement`, async () => {
    // Peer exchange on, so that the honest nodes know whom V is connected to, and the designation is not
    // "everyone" (as it is without peer exchange). The inbound share is off (maxInboundPerThird = maxInbound):
    // this test is about repair once the Sybils are V's neighbours, not about whether they get in (eclipse.spec.ts).
    const options = { broadcastRepairIntervalMs: INTERVAL, broadcastRepairFanout: fanout, peerExchange: true, pexIntervalMs: 200, maxInboundPerThird: DEFAULTS.maxInbound };
    const nodes = await mesh(true, 4, options);
    const [v, ...honest] = nodes as [Peer, ...Peer[]];
    const delivered = deliveries(v);

    // For each epoch the broadcasts may be signed in, PER_EPOCH ids between V's point and the first honest
    // neighbour clockwise from it: each honest node then sees a neighbour of V before itself, and is not designated.
    const first = epochOf(Date.now() * 1000);
    const epochs = Array.from({ length: EPOCHS }, (_, k) => first + k);
    const honestIds = honest.map((h) => h.id).sort();
    const identities = epochs.flatMap((epoch) => {
      const point = designationPoint(v.id, epoch);
      const next = honestIds.find((id) => id > point) ?? honestIds[0]!;
      return Array.from({ length: PER_EPOCH }, () => groundIdentity({ from: point, to: next }));
    });
    // Each Sybil dials V and every honest node from its own loopback address, announcing an address, so that V names it
    // in its peer exchange and the honest nodes count it (they are connected to it: isMember).
    const sybils: RawPeer[] = [];
    const links: RawPeer[] = [];
    onTestFinished(() => links.forEach((r) => r.destroy()));
    for (const [i, identity] of identities.entries()) {
      for (const to of nodes) {
        const r = await RawPeer.open(to.address()!, { tls: true, identity, hello: false, localAddress: `127.0.0.${2 + i}` });
        r.sendHello({ listenAddress: `127.0.0.${2 + i}:9` });
        links.push(r);
        if (to === v) sybils.push(r);
      }
    }
    const courier = await raw(true, honest[0]!);
    const couriers = [courier];
    for (const h of honest.slice(1)) {
      const r = await RawPeer.open(h.address()!, { tls: true, identity: courier.identity });
      links.push(r);
      couriers.push(r);
    }
    const sybilIds = identities.map((s) => s.peerId);
    await waitFor(() => nodes.every((n) => sybilIds.every((id) => n.peers().some((p) => p.id === id))), 5000, 'the Sybils to be admitted');
    // Grounded: no honest node is V's designated announcer in any of the epochs (V's peer exchange named the Sybils).
    type Reaches = { discovery: { reaches(neighbour: string, arc: Arc): boolean } };
    const designatedFor = () => epochs.flatMap((epoch) => honest.filter((h) => !(h as unknown as Reaches).discovery.reaches(v.id, { from: designationPoint(v.id, epoch), to: h.id })));
    await waitFor(() => designatedFor().length === 0, 5000, 'V to name the Sybils to its honest neighbours');

    // Each Sybil keeps one promise an interval: it announces a broadcast of its own and sends it when asked.
    const keeper = keepPromises(sybils, v.id, INTERVAL);

    const sent: Array<{ id: string; at: number; epoch: number }> = [];
    try {
      for (let k = 0; k < HONEST_BROADCASTS; k++) {
        const m = message(courier.identity, { honest: k });
        const at = Date.now();
        // The Sybils announce it to V first; then every honest node gets it, addressed to it alone: V is the one
        // node the tree left out, and no honest node had to ask for it (which would tell all its neighbours).
        for (let i = 0; i < sybils.length; i++) sybils[(k + i) % sybils.length]!.write(repairFrame(ControlType.BroadcastIHave, encodeIds([Buffer.from(m.id, 'hex')])));
        honest.forEach((h, i) => couriers[i]!.sendBroadcast({ ...m, arc: pointArc(h.id) }));
        sent.push({ id: m.id, at, epoch: epochOf(m.timestampUs) });
        await sleep(150);
      }
      await waitFor(() => sent.every((b) => delivered.has(b.id)), 3000, 'V to deliver every honest broadcast').catch(() => undefined);
    } finally {
      await keeper.stop();
    }

    const deadline = 3 * INTERVAL;
    const latencies = sent.map((b) => (delivered.get(b.id) ?? Infinity) - b.at);
    const inTime = latencies.filter((ms) => ms <= deadline).length;
    const finite = latencies.filter((ms) => ms < Infinity).sort((a, b) => a - b);
    const announced = honest.map((h) => h.networkBroadcastStats().repair.announced);
    report(
      `designated withholding, fanout ${fanout}: ${identities.length} Sybils, interval ${INTERVAL} ms: V delivered ${finite.length}/${HONEST_BROADCASTS} honest broadcasts, ${inTime} within ${deadline} ms; ` +
        `latency median ${finite[Math.floor(finite.length / 2)] ?? '-'} ms, max ${finite.at(-1) ?? '-'} ms; Sybil promises kept ${keeper.kept()}; honest nodes announced ${announced.join(' ')}; ` +
        `V repair ${JSON.stringify(v.networkBroadcastStats().repair)}`,
    );
    // Every broadcast was signed in an epoch the Sybils were ground for.
    expect(sent.every((b) => epochs.includes(b.epoch))).toBe(true);
    expect(inTime).toBeGreaterThanOrEqual(Math.ceil(0.95 * HONEST_BROADCASTS));
  }, 60_000);
});

describe('a flood of valid broadcasts from throwaway keys into one node does not make honest nodes ban each other (TLS)', () => {
  const INTERVAL = 500; // the default
  const KEYS = 60;
  const LINKS = 3;
  const RATE = 1200; // broadcasts a second, 20 per key: within each origin's budget (100/s), 400/s per link (budget 1 000/s)
  const SECONDS = 10;

  /** Pumps the flood into V (node 0 of a 4-node mesh) over LINKS raw links; what each honest node then holds of the others and of the links. */
  async function flood(options: { broadcastUnknownOriginRate?: number }) {
    const nodes = await mesh(true, 4, { broadcastRepairIntervalMs: INTERVAL, ...options });
    const v = nodes[0]!;
    const links: RawPeer[] = [];
    for (let i = 0; i < LINKS; i++) links.push(await raw(true, v));
    const keys = Array.from({ length: KEYS }, () => loadIdentity());
    const lowest = { score: 0 };
    const chargedAfter: number[] = Array(LINKS).fill(Infinity);
    let pumped = 0;
    const started = Date.now();
    const tickMs = 20;
    const perTick = (RATE * tickMs) / 1000;
    // Bounded: RATE × SECONDS broadcasts, and SECONDS + 10 s of wall time (the machine is shared).
    for (let tick = 0; pumped < RATE * SECONDS && Date.now() - started < (SECONDS + 10) * 1000; tick++) {
      // Catch up to the schedule when the loop runs late (the machine is shared), at most 4 ticks' worth at once.
      const due = Math.min(Math.floor(((Date.now() - started) / 1000) * RATE) + perTick, pumped + 4 * perTick, RATE * SECONDS);
      for (; pumped < due; pumped++) {
        // Addressed to V alone (a point arc): V hands it on to nobody, so its neighbours hear of it only by V's IHAVEs.
        const m = message(keys[pumped % KEYS]!, { flood: pumped });
        links[pumped % LINKS]!.sendBroadcast({ ...m, arc: pointArc(v.id) });
      }
      if (tick % 25 === 0) lowest.score = Math.min(lowest.score, ...honestScores(nodes));
      links.forEach((l, i) => {
        if (chargedAfter[i] === Infinity && v.peerScore(l.identity.peerId) < 0) chargedAfter[i] = Date.now() - started;
      });
      await sleep(tickMs);
    }
    const seconds = (Date.now() - started) / 1000;
    // Read before the pause below: a link stays throttled THROTTLE_MS after it was last charged.
    const budget = (v as unknown as { broadcasts: { pipeline: { budget: { throttled(id: string): boolean } } } }).broadcasts.pipeline.budget;
    const throttled = links.map((l) => budget.throttled(l.identity.peerId));
    await sleep(3 * INTERVAL + 500); // the last promises judged
    lowest.score = Math.min(lowest.score, ...honestScores(nodes));

    const stats = nodes.map((p) => p.networkBroadcastStats());
    const bans = nodes.flatMap((p) => p.bans().map((b) => b.peerId)).filter((id) => nodes.some((n) => n.id === id));
    const linkScores = links.map((l) => v.peerScore(l.identity.peerId));
    const honestLinks = v.peers().filter((p) => nodes.some((n) => n.id === p.id)).length;
    report(
      `flood${options.broadcastUnknownOriginRate === undefined ? ' (default unknown-origin budget)' : ''}: ${pumped} broadcasts from ${KEYS} keys over ${LINKS} links in ${seconds.toFixed(1)} s (${Math.round(pumped / seconds)}/s); ` +
        `V delivered ${stats[0]!.delivered}, kept ${stats[0]!.kept}, dropped ${JSON.stringify(stats[0]!.dropped)}; V repair: announced ${stats[0]!.repair.announced}, sent ${stats[0]!.repair.sent}; ` +
        `neighbours delivered ${stats.slice(1).map((s) => s.delivered).join(' ')}, requested ${stats.slice(1).map((s) => s.repair.requested).join(' ')}; ` +
        `lowest honest score ${lowest.score.toFixed(1)}, honest bans ${bans.length}, V's honest links ${honestLinks}; ` +
        `links: charged after ${chargedAfter.map((ms) => (ms === Infinity ? '-' : `${ms} ms`)).join(' ')}, throttled at the end ${throttled.join(' ')}, scores ${linkScores.map((x) => x.toFixed(1)).join(' ')}`,
    );
    return { pumped, v: stats[0]!, lowest: lowest.score, bans, honestLinks, linkScores, throttled };
  }

  it(`${RATE}/s from ${KEYS} keys over ${LINKS} links into V for ${SECONDS} s: no honest node's score for another falls`, async () => {
    // No unknown-origin budget: this flood tests repair's promises under load, not that budget (the next test adds it).
    const r = await flood({ broadcastUnknownOriginRate: 10_000_000 });
    expect(r.pumped).toBeGreaterThan((RATE * SECONDS) / 2);
    expect(r.v.delivered).toBeGreaterThan(r.pumped * 0.9); // V took the flood in: each key within its budget
    expect(r.lowest).toBe(0);
    expect(r.bans).toEqual([]);
    expect(r.honestLinks).toBe(3);
  }, 90_000);

  it(`the same flood with the default unknown-origin budget: no honest node bans or charges another, and every attacker link is throttled and charged`, async () => {
    // Issue 22's target for this flood: "no honest node bans another; the attacker's links are throttled or cut".
    const r = await flood({});
    expect(r.pumped).toBeGreaterThan((RATE * SECONDS) / 2);
    // Each link's 400/s of 60 new origins is far over its 20/s: most is dropped before its signature check.
    expect(r.v.dropped.unknownOrigin).toBeGreaterThan(r.pumped / 2);
    expect(r.lowest).toBe(0);
    expect(r.bans).toEqual([]);
    expect(r.honestLinks).toBe(3);
    for (const score of r.linkScores) expect(score).toBeLessThan(0);
    expect(r.throttled).toEqual(Array(LINKS).fill(true));
  }, 90_000);
});

/**
 * Each Sybil keeps one promise an interval: it announces a broadcast of its own to V and sends it when asked (for 30 s at
 * most, 200 rounds); honest ids it announced are never sent. `stop()` ends it; `kept()` counts the promises kept.
 */
function keepPromises(sybils: readonly RawPeer[], vId: string, interval: number): { stop(): Promise<void>; kept(): number } {
  const own = sybils.map(() => new Map<string, NetworkMessage>());
  const cursors = sybils.map(() => ({ at: 0 }));
  let kept = 0;
  let stop = false;
  const running = (async () => {
    const until = Date.now() + 30_000; // bounded in time; stops with the test
    for (let round = 0; !stop && Date.now() < until && round < 200; round++) {
      sybils.forEach((s, i) => {
        const m = message(s.identity, { sybil: i, round }, 'sybil');
        own[i]!.set(m.id, m);
        s.write(repairFrame(ControlType.BroadcastIHave, encodeIds([Buffer.from(m.id, 'hex')])));
      });
      for (let poll = 0; poll < interval / 25 && !stop; poll++) {
        await sleep(25);
        sybils.forEach((s, i) => {
          for (const id of newWants(s, cursors[i]!)) {
            const m = own[i]!.get(id);
            if (!m) continue; // an honest id: never sent
            own[i]!.delete(id);
            s.sendBroadcast({ ...m, arc: pointArc(vId) });
            kept++;
          }
        });
      }
    }
  })();
  return {
    stop: async () => {
      stop = true;
      await running;
    },
    kept: () => kept,
  };
}

import { describe, expect, it } from 'vitest';
import { createNetworkMessage, type NetworkMessage } from '../../src/broadcast/codec.js';
import { encodeIds, parseIds } from '../../src/broadcast/repair.js';
import { loadIdentity, type Identity } from '../../src/common/identity.js';
import { type Peer } from '../../src/node/peer.js';
import { pointArc } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { ControlType, type Control } from '../../src/wire/control.js';
import { broadcastMeshes, repairFrame } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import type { RawPeer } from '../raw-peer.js';

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
    const own = sybils.map(() => new Map<string, NetworkMessage>());
    const cursors = sybils.map(() => ({ at: 0 }));
    let kept = 0;
    let stop = false;
    const keeper = (async () => {
      const until = Date.now() + 30_000; // bounded in time; stops with the test
      for (let round = 0; !stop && Date.now() < until && round < 200; round++) {
        sybils.forEach((s, i) => {
          const m = message(s.identity, { sybil: i, round }, 'sybil');
          own[i]!.set(m.id, m);
          s.write(repairFrame(ControlType.BroadcastIHave, encodeIds([Buffer.from(m.id, 'hex')])));
        });
        for (let poll = 0; poll < INTERVAL / 25 && !stop; poll++) {
          await sleep(25);
          sybils.forEach((s, i) => {
            for (const id of newWants(s, cursors[i]!)) {
              const m = own[i]!.get(id);
              if (!m) continue; // an honest id: never sent
              own[i]!.delete(id);
              s.sendBroadcast({ ...m, arc: pointArc(v.id) });
              kept++;
            }
          });
        }
      }
    })();

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
      stop = true;
      await keeper;
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
        `latency median ${finite[Math.floor(finite.length / 2)] ?? '-'} ms, max ${finite.at(-1) ?? '-'} ms; Sybil promises kept ${kept}; ` +
        `Sybil scores at V ${sybilScores.map((s) => s.toFixed(1)).join(' ')}; V repair ${JSON.stringify(v.networkBroadcastStats().repair)}`,
    );
    expect(inTime).toBeGreaterThanOrEqual(Math.ceil(0.95 * HONEST_BROADCASTS));
    for (const score of sybilScores) expect(score).toBeLessThan(0);
    // No honest node lost a point, and V kept its honest links.
    expect(honestScores(nodes)).toEqual(Array(12).fill(0));
    expect(v.peers().filter((p) => nodes.some((n) => n.id === p.id))).toHaveLength(3);
  }, 40_000);
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

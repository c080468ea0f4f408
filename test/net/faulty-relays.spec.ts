import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addressOf,
  broadcastFrom,
  freeze,
  report,
  sleep,
  spawnNodes,
  startNode,
  statsOf,
  stopNodes,
  total,
  until,
  type NodeProcess,
  type NodeStats,
} from '../net-processes.js';

/**
 * Issue 15: relays that fail. A full mesh of node processes on 127.0.0.1 (each
 * started with every earlier node as a configured peer, so no connection is ever
 * let go), in which two relays are frozen with SIGSTOP (their kernel keeps the
 * TCP connections up, so they still look connected: a relay that has not been
 * noticed yet), or two nodes accept broadcasts and never forward them
 * (dropRelays). Repair (IHAVE/IWANT) must fill what they leave out; without it,
 * the same faults must lose deliveries (the control that shows the test can fail).
 */
const HONEST = 16;
const BROADCASTS = 20;
/** The "within a few seconds", from the command to the last live node's handler. */
const WITHIN_MS = 5000;
const REPAIR_MS = 500;
/**
 * The faulty nodes: the first two started, so every other node's oldest connections,
 * which it tries first when it hands an arc on. They relay in nearly every broadcast.
 */
const FAULTY = [0, 1];
/** maxOutbound: node i dials all i earlier ones. The frozen nodes stay connected for the whole test: keepalive would otherwise drop them after ping + pong. */
const BASE = { maxOutbound: 32, pexIntervalMs: 500, pingIntervalMs: 120_000, pongTimeoutMs: 60_000, broadcastRepairIntervalMs: REPAIR_MS };

/** Starts `count` processes, node i configured with every earlier one: a full mesh that stays one. */
async function fullMesh(count: number, options: (i: number) => Record<string, unknown> = () => ({})): Promise<NodeProcess[]> {
  const nodes = await spawnNodes(count);
  try {
    for (let i = 0; i < count; i++) await startNode(nodes[i]!, { ...BASE, ...options(i), peers: nodes.slice(0, i).map(addressOf) });
    const meshed = await until(async () => (await Promise.all(nodes.map(statsOf))).every((s) => s.peers.length === count - 1), 20_000, 200);
    if (!meshed) throw new Error(`no full mesh of ${count} after 20 s: degrees ${(await Promise.all(nodes.map(statsOf))).map((s) => s.peers.length).join(' ')}`);
  } catch (err) {
    await stopNodes(nodes);
    throw err;
  }
  return nodes;
}

interface Sent {
  id: string;
  from: number;
  at: number;
  /** The peers the originator handed it to. */
  to: string[];
}

/** BROADCASTS network broadcasts, 100 ms apart, from the given originators in turn. */
async function burst(origins: readonly NodeProcess[], tag: string): Promise<Sent[]> {
  const sent: Sent[] = [];
  for (let k = 0; k < BROADCASTS; k++) {
    const from = origins[k % origins.length]!;
    const at = Date.now();
    const answer = await from.ask<{ id: string; sent: string[] }>({ op: 'broadcast', data: { tag, k } });
    sent.push({ id: answer.id, from: from.index, at, to: answer.sent });
    await sleep(100);
  }
  return sent;
}

/** ms from each broadcast to the last of `nodes` to hear it (Infinity: someone never did). */
const latencies = (sent: readonly Sent[], nodes: readonly NodeProcess[]) => sent.map((b) => Math.max(...nodes.map((n) => (n.heardAt.get(b.id) ?? Infinity) - b.at)));

function deltas(before: readonly NodeStats[], after: readonly NodeStats[]) {
  const d = (pick: Parameters<typeof total>[1]) => total(after, pick) - total(before, pick);
  return {
    sent: d((s) => s.sent),
    duplicates: d((s) => s.duplicates),
    announced: d((s) => s.repair.announced),
    requested: d((s) => s.repair.requested),
    repaired: d((s) => s.repair.sent),
    controlBytes: d((s) => s.repair.controlBytes),
    unrouted: d((s) => s.unrouted),
  };
}

describe(`real sockets: a full mesh of ${HONEST} node processes with 2 frozen relays`, () => {
  let nodes: NodeProcess[] = [];
  beforeAll(async () => {
    nodes = await fullMesh(HONEST);
  }, 90_000);
  afterAll(() => stopNodes(nodes), 30_000);

  it('every live node receives every broadcast exactly once, within a few seconds: repair fills what the frozen relays hold', async () => {
    const frozen = new Set(FAULTY.map((i) => nodes[i]!));
    const live = nodes.filter((n) => !frozen.has(n));
    const before = await Promise.all(live.map(statsOf));
    for (const n of frozen) freeze(n);
    const frozenIds = new Set([...frozen].map((n) => n.id));

    const sent = await burst(live, 'frozen');
    await until(() => sent.every((b) => live.every((n) => n.heard.has(b.id))), WITHIN_MS + 5000, 50);
    await sleep(REPAIR_MS + 500); // a duplicate would show by now
    const after = await Promise.all(live.map(statsOf));
    const lat = latencies(sent, live);
    const d = deltas(before, after);
    const viaFrozen = sent.filter((b) => b.to.some((id) => frozenIds.has(id))).length;
    report(
      `frozen relays (nodes ${[...frozen].map((n) => n.index).join(', ')}): ${BROADCASTS} broadcasts, ${viaFrozen} handed by their originator to a frozen node; ` +
        `latency max ${Math.max(...lat)} ms, mean ${Math.round(lat.reduce((a, b) => a + b, 0) / lat.length)} ms; ` +
        `RainTree sends ${d.sent}, repair: announced ${d.announced}, requested ${d.requested}, sent ${d.repaired} (${(d.repaired / BROADCASTS).toFixed(1)} per broadcast), control bytes ${d.controlBytes}; duplicates ${d.duplicates}`,
    );
    for (const n of live) expect(sent.map((b) => n.heard.get(b.id) ?? 0), `node ${n.index}`).toEqual(Array(BROADCASTS).fill(1));
    for (const [k, ms] of lat.entries()) expect(ms, `broadcast ${k} from node ${sent[k]!.from}`).toBeLessThanOrEqual(WITHIN_MS);
    // The frozen relays did hold some arcs, and repair filled them.
    expect(d.repaired).toBeGreaterThan(0);
  }, 60_000);
});

describe(`real sockets: a full mesh of ${HONEST} honest node processes and 2 that accept broadcasts and never forward them`, () => {
  let nodes: NodeProcess[] = [];
  const DROPPERS = FAULTY;
  beforeAll(async () => {
    nodes = await fullMesh(HONEST + 2, (i) => (DROPPERS.includes(i) ? { dropRelays: true } : {}));
  }, 90_000);
  afterAll(() => stopNodes(nodes), 30_000);

  it('every honest node receives every broadcast exactly once, within a few seconds', async () => {
    const honest = nodes.filter((n) => !DROPPERS.includes(n.index));
    const droppers = nodes.filter((n) => DROPPERS.includes(n.index));
    const dropperIds = new Set(droppers.map((n) => n.id));
    const before = await Promise.all(nodes.map(statsOf));
    const sent = await burst(honest, 'dropped');
    await until(() => sent.every((b) => honest.every((n) => n.heard.has(b.id))), WITHIN_MS + 5000, 50);
    await sleep(REPAIR_MS + 500);
    const after = await Promise.all(nodes.map(statsOf));
    const lat = latencies(sent, honest);
    const d = deltas(before, after);
    const dropped = deltas(before.filter((_, i) => DROPPERS.includes(i)), after.filter((_, i) => DROPPERS.includes(i)));
    const viaDropper = sent.filter((b) => b.to.some((id) => dropperIds.has(id))).length;
    report(
      `dropping relays: ${BROADCASTS} broadcasts, ${viaDropper} handed by their originator to a dropper; latency max ${Math.max(...lat)} ms, ` +
        `mean ${Math.round(lat.reduce((a, b) => a + b, 0) / lat.length)} ms; RainTree sends ${d.sent} (droppers ${dropped.sent}), ` +
        `repair: announced ${d.announced} (droppers ${dropped.announced}), requested ${d.requested}, sent ${d.repaired} (droppers ${dropped.repaired}), ` +
        `control bytes ${d.controlBytes}; duplicates ${d.duplicates}; droppers heard ${droppers.map((n) => sent.filter((b) => n.heard.has(b.id)).length).join(', ')} of ${BROADCASTS}`,
    );
    for (const n of honest) expect(sent.map((b) => n.heard.get(b.id) ?? 0), `node ${n.index}`).toEqual(Array(BROADCASTS).fill(1));
    for (const [k, ms] of lat.entries()) expect(ms, `broadcast ${k} from node ${sent[k]!.from}`).toBeLessThanOrEqual(WITHIN_MS);
    // They dropped, as told: nothing forwarded, announced or answered.
    expect([dropped.sent, dropped.announced, dropped.repaired]).toEqual([0, 0, 0]);
    expect(d.repaired).toBeGreaterThan(0);
  }, 60_000);
});

describe(`control: the same ${HONEST}-node full mesh with 2 frozen relays and repair off`, () => {
  let nodes: NodeProcess[] = [];
  beforeAll(async () => {
    nodes = await fullMesh(HONEST, () => ({ broadcastRepairIntervalMs: 0 }));
  }, 90_000);
  afterAll(() => stopNodes(nodes), 30_000);

  it('some live nodes miss some broadcasts (no node receives one twice)', async () => {
    const frozen = new Set(FAULTY.map((i) => nodes[i]!));
    const live = nodes.filter((n) => !frozen.has(n));
    for (const n of frozen) freeze(n);
    const frozenIds = new Set([...frozen].map((n) => n.id));
    const sent = await burst(live, 'no repair');
    // What RainTree delivers arrives within milliseconds; give it the time repair had and more.
    await until(() => sent.every((b) => live.every((n) => n.heard.has(b.id))), WITHIN_MS, 50);
    const counts = live.flatMap((n) => sent.map((b) => n.heard.get(b.id) ?? 0));
    const missed = counts.filter((c) => c === 0).length;
    const viaFrozen = sent.filter((b) => b.to.some((id) => frozenIds.has(id))).length;
    report(
      `control, repair off (frozen nodes ${[...frozen].map((n) => n.index).join(', ')}): ${missed} of ${counts.length} deliveries missed ` +
        `(coverage ${((100 * (counts.length - missed)) / counts.length).toFixed(1)} %), in ${sent.filter((b) => live.some((n) => !n.heard.has(b.id))).length} of ${BROADCASTS} broadcasts; ` +
        `${viaFrozen} handed by their originator to a frozen node`,
    );
    expect(Math.max(...counts)).toBe(1);
    expect(missed).toBeGreaterThan(0);
  }, 60_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/types.js';
import { MAX_PINGS_PER_SECOND } from '../../src/connection/keepalive.js';
import { Peer } from '../../src/node/peer.js';
import { ControlType, encodeControl, GoodbyeReason } from '../../src/wire/control.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';
import { broadcastFrom, sleep, spawnNodes, startNode, stopNodes, until, type NodeProcess } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

// Issue 22: about 1 M pings a second from one peer were all answered, at 49-88 % of a core, and
// the peer was never cut off. Past MAX_PINGS_PER_SECOND a ping is a protocol violation.
const open: Peer[] = [];
const raws: RawPeer[] = [];
const processes: NodeProcess[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
  await stopNodes(processes.splice(0));
});

const ping = (token: number): Buffer => Buffer.concat(encodeControl({ type: ControlType.Ping, token }).chunks);

describe('a ping flood', () => {
  it('is cut off within a second with goodbye 1, costs the flooder score, and honest peers are still served', async () => {
    const victim = await startEchoPeer({ logger: silentLogger }, open);
    const honest = await startEchoPeer({ peers: [victim.address()!], logger: silentLogger, pingIntervalMs: 10 }, open);
    const flooder = await RawPeer.open(victim.address()!, { tls: true });
    raws.push(flooder);
    await waitFor(() => victim.peers().length === 2, 5000, 'both peers');
    const started = Date.now();
    // 20 000 pings in batches of 1 000, at most 2 s: fifty times the burst a node allows.
    for (let batch = 0; batch < 20 && !flooder.closed && Date.now() - started < 2_000; batch++) {
      flooder.write(Buffer.concat(Array.from({ length: 1_000 }, (_, i) => ping(batch * 1_000 + i))));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await flooder.whenClosed(1_000);
    const cutAfterMs = Date.now() - started;
    console.log(`[ping flood] cut off after ${cutAfterMs} ms; goodbye ${GoodbyeReason[flooder.goodbye()?.reason ?? -1]}: ${flooder.goodbye()?.message}`);
    expect(cutAfterMs).toBeLessThan(1_000);
    expect(flooder.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    expect(flooder.goodbye()?.message).toContain(`more than ${MAX_PINGS_PER_SECOND} pings a second`);
    // Scored when the victim's side of the connection has closed too.
    await waitFor(() => victim.peerScore(flooder.identity.peerId) < 0, 3000, 'the flooder to lose score');
    // The honest neighbour pings every 10 ms, the fastest the configuration allows, and keeps its connection.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(victim.peers().map((p) => p.id)).toEqual([honest.id]);
    expect(await echo(victim, honest.id, 'still served')).toBe('still served');
  }, 20_000);

  // Issue 22: "the peer is cut off within 1 s; the victim's CPU back to idle". The victim runs in a process of its
  // own, so its CPU time and event-loop use are its alone (the flooder's TLS writes are the test process's).
  it("leaves the victim's CPU at idle once the flooder is cut off, honest traffic still flowing", async () => {
    const WINDOW_MS = 2_000;
    // Residual work allowed over idle, in cores: answering the flood cost 0.49-0.88 of a core (issue 22); GC and the
    // close of the flooder's connection are spent in SETTLE_MS.
    const MARGIN = 0.05;
    const SETTLE_MS = 500;
    processes.push(...(await spawnNodes(2)));
    const [v, h] = processes as [NodeProcess, NodeProcess];
    await startNode(v, {});
    await startNode(h, { pingIntervalMs: 10, peers: [`${v.id}@${v.address}`] });
    const peersOf = async (node: NodeProcess) => (await node.ask<{ peers: Array<{ id: string }> }>({ op: 'stats' })).peers.map((p) => p.id);
    expect(await until(async () => (await peersOf(v)).includes(h.id), 10_000)).toBe(true);
    const flooder = await RawPeer.open(v.address, { tls: true });
    raws.push(flooder);
    expect(await until(async () => (await peersOf(v)).includes(flooder.identity.peerId), 5_000)).toBe(true);

    // Honest traffic through both windows: H's keepalive every 10 ms and a network broadcast every 100 ms.
    const honestIds: string[] = [];
    let honestOn = true;
    const honestTraffic = (async () => {
      for (let i = 0; honestOn && i < 200; i++) {
        honestIds.push(await broadcastFrom(h, `honest ${i}`));
        await sleep(100);
      }
    })();
    const load = async (node: NodeProcess, ms: number) => {
      type Cpu = { cpuMicros: number; elu: { idle: number; active: number } };
      const a = await node.ask<Cpu>({ op: 'cpu' });
      await sleep(ms);
      const b = await node.ask<Cpu>({ op: 'cpu' });
      const wallMs = b.elu.idle + b.elu.active - a.elu.idle - a.elu.active;
      return { cores: (b.cpuMicros - a.cpuMicros) / 1000 / wallMs, elu: (b.elu.active - a.elu.active) / wallMs };
    };
    await sleep(500);
    const idle = await load(v, WINDOW_MS);

    // The flood goes on, 1 000 pings a turn, until the victim cuts the flooder off or it has flooded through the window after it.
    const started = Date.now();
    const flooding = (async () => {
      for (let batch = 0; !flooder.closed && Date.now() - started < 1_000 + SETTLE_MS + WINDOW_MS + 500; batch++) {
        flooder.write(Buffer.concat(Array.from({ length: 1_000 }, (_, i) => ping(batch * 1_000 + i))));
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await until(() => flooder.closed, 1_000, 5);
    const cutAfterMs = Date.now() - started;
    await sleep(SETTLE_MS);
    const heardBefore = honestIds.filter((id) => v.heard.has(id)).length;
    const sentBefore = honestIds.length;
    const after = await load(v, WINDOW_MS);
    await flooding;
    honestOn = false;
    await honestTraffic;
    await until(() => honestIds.every((id) => v.heard.has(id)), 3_000);
    const pongs = flooder.controls.filter((c) => c.type === ControlType.Pong).length;
    const heardInWindow = honestIds.slice(sentBefore).filter((id) => v.heard.has(id)).length;
    console.log(
      `[ping flood] victim in its own process: idle ${idle.cores.toFixed(3)} cores (event loop ${idle.elu.toFixed(3)}), ` +
        `after the cut-off (${cutAfterMs} ms, then ${SETTLE_MS} ms) ${after.cores.toFixed(3)} cores (event loop ${after.elu.toFixed(3)}), ` +
        `over ${WINDOW_MS} ms each; ${pongs} pongs to the flooder; honest broadcasts heard ${heardBefore} of ${sentBefore} before the window, ` +
        `${heardInWindow} of ${honestIds.length - sentBefore} sent from it on`,
    );
    expect(flooder.closed).toBe(true);
    expect(flooder.goodbye()?.reason).toBe(GoodbyeReason.ProtocolError);
    // Answered within the ping budget only (its burst and a second's rate), none after the cut-off.
    expect(pongs).toBeLessThanOrEqual(3 * MAX_PINGS_PER_SECOND);
    expect(after.cores).toBeLessThanOrEqual(idle.cores + MARGIN);
    expect(after.elu).toBeLessThanOrEqual(idle.elu + MARGIN);
    expect(await peersOf(v)).toEqual([h.id]);
    expect(heardInWindow).toBe(honestIds.length - sentBefore);
  }, 40_000);
});

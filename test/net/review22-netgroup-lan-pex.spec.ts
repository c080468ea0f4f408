import { BlackHoles } from '../black-hole.js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadIdentity } from '../../src/common/identity.js';
import type { PexEntry } from '../../src/discovery/peer-exchange.js';
import { Peer } from '../../src/node/peer.js';
import { startEchoPeer, waitFor } from '../helpers.js';
import { report } from '../net-processes.js';

/**
 * Review of issue 22 (netgroups, src/trust/netgroup.ts), idea 2: a LAN (every honest node in one /16) and a hostile
 * neighbour H on it, the configured peer of a joining LAN node L, that names in its peer exchange made-up ids at
 * addresses in 16 other /16s. Naming an address costs nothing; here each is a listener that accepts and never
 * answers (a black hole: in the wild any address that drops SYNs does). L's dials to them are in flight for seconds,
 * and dials in flight count toward the netgroups the rule holds L to (heldNetgroups). Does L then skip or refuse its
 * honest LAN peers, and stay below its least degree (8)?  Run with P2P_TEST_STATS=1 for the figures.
 */
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  await holes.close();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const holes = new BlackHoles();
const blackHole = (host: string) => holes.open(host);

async function lan(hostile: boolean, rule = true, honestSeed = false): Promise<{ least: number; end: number; reachedMs: number; refusals: number; holes: number }> {
  const HONEST = 12;
  const options = { perIpLimitsOnLoopback: true };
  const honest: Peer[] = [];
  for (let i = 0; i < HONEST; i++) {
    const seed = i > 0 ? honest[(i * 7) % i]! : undefined;
    honest.push(await startEchoPeer({ ...options, listen: `127.50.0.${i + 1}:0`, peers: seed ? [`${seed.id}@${seed.address()}`] : [] }, open));
  }
  await waitFor(() => honest.every((p) => p.peers().length >= 8), 30_000, 'the LAN');
  const holes = await Promise.all(Array.from({ length: 16 }, (_x, g) => blackHole(`127.${100 + g}.0.1`)));
  // 64 made-up ids, 4 per black hole (ports differ per hole; the same address under 4 ids).
  const fake: PexEntry[] = Array.from({ length: 60 }, (_x, i) => ({ id: loadIdentity().peerId, address: holes[i % holes.length]!.address }));
  const h = await startEchoPeer({ ...options, listen: '127.50.0.100:0', peers: [`${honest[0]!.id}@${honest[0]!.address()}`] }, open);
  await waitFor(() => h.peers().length >= 8, 20_000, 'H to join');
  if (hostile) {
    // H names the made-up ids before its real peers, in every exchange it sends (at most 64 are read).
    const discovery = (h as unknown as { discovery: { entriesFor: (to: unknown) => PexEntry[] } }).discovery;
    const real = discovery.entriesFor.bind(discovery);
    discovery.entriesFor = (to) => [...fake, ...real(to)].slice(0, 64);
  }
  let refusals = 0;
  const lines: string[] = [];
  const logger = {
    log: () => undefined,
    warn: (m: string) => void lines.push(m),
    error: (m: string) => void lines.push(m),
    debug: (m: string) => {
      if (/netgroup/.test(m)) refusals++;
    },
  };
  const l = await startEchoPeer({ ...options, ...(rule ? {} : { netgroupPrefixV4: 0 }), listen: '127.50.0.101:0', peers: [`${h.id}@${h.address()}`, ...(honestSeed ? [`${honest[5]!.id}@${honest[5]!.address()}`] : [])], logger }, open);
  const t0 = Date.now();
  let least = Infinity;
  let reachedMs = -1;
  const degrees: number[] = [];
  // 11 s, the least degree judged over the last 4: with the liar, L's dials in flight to black holes count toward its
  // degree until their 5 s handshake timeout, so L reaches 8 after about 5 s on a quiet machine, later under load.
  for (let t = 0; t < 110; t++) {
    await sleep(100);
    const d = l.peers().length;
    if (t % 10 === 9) degrees.push(d);
    if (reachedMs < 0 && d >= 8) reachedMs = Date.now() - t0;
    if (t >= 70) least = Math.min(least, d);
  }
  const end = l.peers().length;
  const accepted = holes.reduce((s, x) => s + x.accepted(), 0);
  report(
    `LAN node L${rule ? '' : ' (netgroup rule off: netgroupPrefixV4 0)'}${honestSeed ? ' with an honest seed too' : ''}, H ${hostile ? 'naming 60 made-up ids at 16 black holes in other /16s' : 'honest'}: L's degree each second ${degrees.join(' ')}; ` +
      `at 8 after ${reachedMs} ms; least over the last 4 s ${least}; dials into black holes ${accepted}; netgroup lines ${refusals}; warnings ${lines.length}${lines.length ? ` (${lines.slice(0, 3).join(' | ')})` : ''}`,
  );
  return { least, end, reachedMs, refusals, holes: accepted };
}

// Not the netgroup rule's (it failed as much with the rule off on L, netgroupPrefixV4 0). Until 2026-12-07 (night) L stayed at
// its configured peers for all 10 s, having dialed the black holes 10-13 times: candidates were dialed oldest first, H's names
// came first, and each black hole held a place of the forming budget (PEX_DIALS_PER_INTERVAL unanswered dials at once) for
// the interval. Now candidates are taken in turn from each neighbour that named some, and one neighbour's unanswered dials hold
// at most PEX_UNPROVEN_PER_SOURCE places (src/discovery/pex-candidates.ts): L at 8 after 5.1 s, 9 dials into black holes.
// The control (H honest): 8 within 1.1 s.
describe('review 22: made-up ids in other netgroups named to a LAN node that also has an honest seed (default settings, TLS)', () => {
  it('H (one of its two configured peers) names 60 made-up ids at black holes in 16 other /16s: L reaches and holds 8', async () => {
    const r = await lan(true, true, true);
    expect(r.least).toBeGreaterThanOrEqual(8);
  }, 90_000);
});

// The same with the rule off on L, and with H as L's only configured peer (L at 1), were measured as above and are not
// run (CI time): the rule plays no part, and a node whose one configured peer lies learns only what it is told.
describe('review 22: made-up ids in other netgroups named to a LAN node (default settings, TLS)', () => {
  it('control: H honest, L reaches 8', async () => {
    const r = await lan(false);
    expect(r.least).toBeGreaterThanOrEqual(8);
  }, 90_000);
});

import { describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import type { Identity } from '../../src/common/identity.js';
import { DIRECTORY_TOPIC } from '../../src/directory/record.js';
import type { Peer } from '../../src/node/peer.js';
import { pointArc } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';
import { record } from '../directory-wire.js';

/**
 * Review of issue 22 after issues 23 and 24: a node's directory update rate is a budget of the
 * record's node, kept per record at each receiver. An attacker A (one key, connected to V and to an
 * honest H) spends V's budget for its own record, within it, and gives H a newer version; when H
 * pages its directory to V (anti-entropy, on connecting or every directorySyncIntervalMs), V refused
 * A's record from H as over its rate and charged H −10 ("rejected"), and judged nothing after it in
 * H's page. H could not have known V's budget: only the record's own node can be charged for it.
 */

const { node, raw } = broadcastMeshes();

let ts = 0;
/** `bytes` in A's own network broadcast, addressed to `to` alone (a point arc: relayed to nobody). */
function own(a: RawPeer, origin: Identity, bytes: Buffer, to: Peer): void {
  ts = Math.max(Date.now() * 1000, ts + 1);
  const m = createNetworkMessage(origin, { timestampUs: ts, encoding: Encoding.Binary, topic: DIRECTORY_TOPIC, payload: bytes, strategy: 'raintree' });
  a.sendBroadcast({ ...m, arc: pointArc(to.id) });
}

describe('review 22: directory update rate aimed at an honest pager (TLS)', () => {
  it("V's update budget for A's record, spent by A, does not cost the honest neighbour that pages A's newer record", async () => {
    const v = await node(true);
    const h = await node(true);
    h.setHandledPatterns({ requests: ['honest.h'], events: [] });
    const a = await raw(true, v);
    const aAtH = await RawPeer.open(h.address()!, { tls: true, identity: a.identity });
    try {
      await waitFor(() => h.peers().some((p) => p.id === a.identity.peerId), 3000, 'A admitted by H');
      // Both nodes asked A for its directory when it connected; A never answers, so each may pull from another after 5 s.
      await new Promise((r) => setTimeout(r, 5_200));
      const t0 = Date.now();
      // A's record, then three updates: V's burst (directoryUpdateBurst 3) for A's record is spent, within budget.
      for (let i = 0; i < 4; i++) own(a, a.identity, record(a.identity, { seq: t0 + i, requests: [`a.${i}`] }), v);
      await waitFor(() => v.handlers('a.3', 'request').length === 1, 2000, 'V to hold A\'s fourth version');
      // H gets a newer version, then H and V connect: V pulls H's directory at once.
      own(aAtH, a.identity, record(a.identity, { seq: t0 + 100, requests: ['a.h'] }), h);
      await waitFor(() => h.handlers('a.h', 'request').length === 1, 2000, 'H to hold A\'s newer version');
      await v.connect(`${h.id}@${h.address()}`);
      await waitFor(() => v.directoryStats().refused.rate + v.handlers('a.h', 'request').length > 0 && v.handlers('honest.h', 'request').length === 1, 3000, 'the page').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
      const refused = v.directoryStats().refused;
      report(
        `directory rate aimed at H: V refused ${refused.rate} record(s) of A from H's page as over rate; V's score for H ${v.peerScore(h.id)}, for A ${v.peerScore(a.identity.peerId)}; ` +
          `V lists H's own record: ${v.handlers('honest.h', 'request').length === 1}`,
      );
      // H only passed on A's record: it could not have known V's budget for it.
      expect(v.peerScore(h.id)).toBe(0);
      expect(v.bans()).toEqual([]);
    } finally {
      aAtH.destroy();
    }
  });
});

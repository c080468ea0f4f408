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
 * Review of issue 22 after issue 24: a record's pattern bounds are each node's configuration
 * (directoryMaxPatterns, directoryMaxPatternBytes, directoryMaxPatternTokens). Attacker A gives honest H,
 * at the defaults, a record of its own with 10 patterns; V allows 4. When H pages its directory to V,
 * V refuses A's record as malformed: is H, which could not know V's bounds, charged for it?
 */

const { node, raw } = broadcastMeshes();

function own(a: RawPeer, origin: Identity, bytes: Buffer, to: Peer): void {
  const m = createNetworkMessage(origin, { timestampUs: Date.now() * 1000, encoding: Encoding.Binary, topic: DIRECTORY_TOPIC, payload: bytes, strategy: 'raintree' });
  a.sendBroadcast({ ...m, arc: pointArc(to.id) });
}

describe('review 22: directory bounds that differ between honest nodes (TLS)', () => {
  it("a record within H's bounds and over V's, paged by H: V does not charge H", async () => {
    const v = await node(true, { directoryMaxPatterns: 4 });
    const h = await node(true);
    const a = await RawPeer.open(h.address()!, { tls: true });
    try {
      await waitFor(() => h.peers().some((p) => p.id === a.identity.peerId), 3000, 'A admitted by H');
      // H asked A for its directory when it connected; A never answers, so H may be pulled from after 5 s.
      own(a, a.identity, record(a.identity, { requests: Array.from({ length: 10 }, (_, i) => `a.${i}`) }), h);
      await waitFor(() => h.handlers('a.9', 'request').length === 1, 2000, "H to hold A's record");
      await new Promise((r) => setTimeout(r, 5_200));
      await v.connect(`${h.id}@${h.address()}`);
      await waitFor(() => v.directoryStats().refused.malformed > 0, 4000, 'the page').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      report(`directory limits: V refused ${v.directoryStats().refused.malformed} as malformed; V's score for H ${v.peerScore(h.id).toFixed(1)}`);
      expect(v.directoryStats().refused.malformed).toBeGreaterThan(0);
      expect(v.peerScore(h.id)).toBe(0);
    } finally {
      a.destroy();
    }
  });
});

import { describe, expect, it } from 'vitest';
import type { NetworkMessage } from '../../src/broadcast/codec.js';
import { DIRECTORY_TOPIC } from '../../src/directory/record.js';
import { pointArc } from '../../src/ring/raintree.js';
import { broadcastMeshes } from '../broadcast-mesh.js';
import { waitFor } from '../helpers.js';
import { report } from '../net-processes.js';
import { RawPeer } from '../raw-peer.js';

/**
 * Review of issue 22 after issue 24: a validator's verdict aimed at an honest origin, through the
 * directory. A relayed broadcast its validator rejects is asked again "as its origin sent it", and
 * the origin pays when that is still a reject (validator-aim.spec.ts). The directory's validator
 * refuses a record over its node's update rate, which depends on when the copies arrive, not on
 * the record: a relay A between honest O and V holds back O's record updates, each published
 * within O's own rate, and hands them to V at once. V took its burst (3), refused the rest as
 * over rate, asked again (still over rate) and charged O 10 points each; A paid nothing.
 */

const { node, raw } = broadcastMeshes();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('review 22: a relay that bunches an honest node\'s record updates (TLS)', () => {
  const RATE = 5; // directoryUpdateRate on every node, so that the test takes a second or two (default 0.5/s)
  const HELD = 7;

  it(`${HELD} of O's updates, each within O's rate, held back and handed to V at once: O is not charged`, async () => {
    const options = { directoryUpdateRate: RATE };
    const o = await node(true, options);
    const v = await node(true, options);
    // A is O's only neighbour and V's: whatever V knows of O comes through A.
    const a = await raw(true, o);
    const aAtV = await RawPeer.open(v.address()!, { tls: true, identity: a.identity });
    try {
      await waitFor(() => v.peers().some((p) => p.id === a.identity.peerId), 3000, 'A admitted by V');
      const records = () => a.broadcasts().filter((m) => m.topic === DIRECTORY_TOPIC && m.origin === o.id);
      const relay = (m: NetworkMessage) => aAtV.sendBroadcast({ ...m, arc: pointArc(v.id) });
      o.setHandledPatterns({ requests: ['o.0'], events: [] });
      await waitFor(() => records().length === 1, 2000, "O's first record at A");
      relay(records()[0]!);
      await waitFor(() => v.handlers('o.0', 'request').length === 1, 2000, "V to hold O's record");
      // O changes its handlers HELD times, each once the last is out (O paces itself at RATE); A keeps them all.
      for (let i = 1; i <= HELD; i++) {
        o.setHandledPatterns({ requests: [`o.${i}`], events: [] });
        await waitFor(() => records().length === i + 1, 3000, `O's update ${i} at A`);
      }
      await sleep(1000); // V's budget for O's record is full again (burst 3)
      for (const m of records().slice(1)) relay(m);
      await sleep(500);
      const refused = v.directoryStats().refused;
      const latest = Array.from({ length: HELD + 1 }, (_, i) => i).filter((i) => v.handlers(`o.${i}`, 'request').length === 1);
      report(
        `directory delay: ${HELD} updates of O handed to V at once; V refused ${refused.rate} as over rate (counted with the re-ask); ` +
          `V's score for O ${v.peerScore(o.id).toFixed(1)}, for A ${v.peerScore(a.identity.peerId).toFixed(1)}; V lists O under o.${latest.join(',')}`,
      );
      // O published each within its rate: the bunching is the relay's doing.
      expect(v.peerScore(o.id)).toBe(0);
    } finally {
      aAtV.destroy();
    }
  });
});

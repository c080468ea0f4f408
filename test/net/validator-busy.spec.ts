import { describe, expect, it } from 'vitest';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import type { BroadcastVerdict } from '../../src/broadcast/pipeline.js';
import { loadIdentity } from '../../src/common/identity.js';
import { pointArc } from '../../src/ring/raintree.js';
import { Encoding } from '../../src/wire/constants.js';
import { waitFor } from '../helpers.js';
import { recordingNodes } from '../recording-nodes.js';

// Issue 22, item 5: a saturated async validator (1 024 pending) dropped an honest broadcast that came
// meanwhile and kept its id as seen, so neither repair nor another relay could bring it again: lost
// for good. A drop for a local limit now forgets the id.
const { node, raw } = recordingNodes();

describe('an honest broadcast that meets a saturated validator', () => {
  it('is delivered once the validator has room again (by repair), not lost for good', async () => {
    const delivered: unknown[] = [];
    // The flood comes from throwaway keys: the unknown-origin budget would drop it before the validator (throwaway-keys.spec).
    const victim = await node({ broadcastNeighbourRate: 10_000, broadcastUnknownOriginRate: 10_000_000 }, delivered);
    const held: Array<() => void> = [];
    let released = false;
    victim.setBroadcastValidator('orders', (b) => {
      const verdict: BroadcastVerdict = b.data === 'honest' ? 'accept' : 'ignore';
      if (released) return verdict;
      return new Promise<BroadcastVerdict>((resolve) => held.push(() => resolve(verdict)));
    });
    const honest = await node({ peers: [victim.address()!] });
    const origin = await node({ peers: [victim.address()!, honest.address()!] });
    await waitFor(() => victim.peers().length === 2 && honest.peers().length === 2, 5000, 'the honest triangle');

    // 1 100 broadcasts from 6 throwaway keys (within each one's origin burst of 200) fill the 1 024 pending validations.
    const flooder = await raw(victim);
    await waitFor(() => victim.peers().length === 3, 5000, 'the flooder');
    const keys = Array.from({ length: 6 }, () => loadIdentity());
    for (let i = 0; i < 1_100; i++) {
      const m = createNetworkMessage(keys[i % keys.length]!, { timestampUs: Date.now() * 1000 + i, strategy: 'raintree', encoding: Encoding.Json, topic: 'orders', payload: Buffer.from(JSON.stringify(`junk ${i}`)) });
      flooder.sendBroadcast({ ...m, arc: pointArc(victim.id) });
    }
    await waitFor(() => held.length >= 1_024, 10_000, 'the validator to be saturated');
    await new Promise((resolve) => setTimeout(resolve, 500)); // the rest of the flood read and dropped
    const busy = victim.networkBroadcastStats().dropped.validatorBusy;

    origin.broadcast('orders', 'honest', { scope: 'network' });
    await waitFor(() => victim.networkBroadcastStats().dropped.validatorBusy > busy, 5000, 'the honest broadcast to meet the busy validator');
    released = true;
    held.splice(0).forEach((release) => release());
    // Repair announces within an interval (500 ms); before, the id stayed seen and was never asked for again.
    await waitFor(() => delivered.includes('honest'), 5000, 'the honest broadcast to be delivered');
    expect(delivered.filter((d) => d === 'honest')).toHaveLength(1);
  }, 30_000);
});

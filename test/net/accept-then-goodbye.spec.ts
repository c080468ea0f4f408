import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/types.js';
import { Peer } from '../../src/node/peer.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';

// A hostile peer that completes every handshake and says goodbye at once. Before, its victim
// redialed it at once every time: 26 connections in 10 s as a persistent peer, 117 with peer
// exchange on (the topology dialed it too). A connection that ends before it outlasts the
// longest redial delay (reconnectMaxMs) now counts as a refusal, and the redials back off.
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function acceptThenGoodbye(): Promise<{ node: Peer; connects: () => number }> {
  const node = new Peer({ listen: '127.0.0.1:0', logger: silentLogger, peerExchange: false });
  open.push(node);
  await node.start();
  let connects = 0;
  node.on('peer', (e) => {
    if (e.type !== 'connected') return;
    connects++;
    void node.disconnect(e.peer.id);
  });
  return { node, connects: () => connects };
}

describe('a peer that accepts every connection and then says goodbye', () => {
  for (const peerExchange of [true, false]) {
    it(`is redialed with backoff, not in a loop (peer exchange ${peerExchange ? 'on, the default' : 'off'}); honest peers are still served`, async () => {
      const attacker = await acceptThenGoodbye();
      const honest = await startEchoPeer({}, open);
      const victim = await startEchoPeer({ peers: [attacker.node.address()!, honest.address()!], peerExchange }, open);
      await waitFor(() => attacker.connects() >= 1, 5000, 'the first connection');
      const windowMs = 6_000;
      const started = attacker.connects();
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      const redials = attacker.connects() - started;
      console.log(`[accept-then-goodbye, pex ${peerExchange}] ${redials} connections in ${windowMs / 1000} s after the first`);
      // Backoff from reconnectBaseMs 500: at least 0.5 + 1 + 2 + 4 s before a fifth redial on one path. With peer
      // exchange on, the topology may dial it too, on its own backoff. Before: 15 (persistent) to 70 (both) in 6 s.
      expect(redials).toBeLessThanOrEqual(peerExchange ? 8 : 4);
      expect(await echo(victim, honest.id, 'still served')).toBe('still served');
    }, 20_000);
  }
});

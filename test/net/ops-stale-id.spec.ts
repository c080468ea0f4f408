import { afterEach, describe, expect, it } from 'vitest';
import { Peer } from '../../src/node/peer.js';
import { captureLogger, freePort, waitFor } from '../helpers.js';

// A node restarted on the same port with a new key (issue 23). Before, its peer connected to the
// new id but kept the old id at that address in its address book, and dialed it there every
// backoff period, each dial a WARN "expected peer id <old>, the remote end is <new>", for good
// (15 in 7.5 minutes with the defaults; 5 in 4 s with the short periods here). One node
// listens at one address: the address book now forgets the old id there as soon as another id proves
// itself there: it answers a dial of that address (meant for the old id, or for whoever is there).
// An address a peer announces on a connection it dialed is a claim, and makes the book forget nobody.

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});



async function start(options: ConstructorParameters<typeof Peer>[0]): Promise<Peer> {
  const peer = new Peer(options);
  open.push(peer);
  await peer.start();
  return peer;
}

// Short periods, so that the old behaviour shows within seconds: peer exchange (which dials the
// address book's due entries) every 300 ms, redials after 0.25 to 1 s.
const fast = { pexIntervalMs: 300, reconnectBaseMs: 250, reconnectMaxMs: 1000 };

describe('a node restarted at the same address with a new key', () => {
  for (const newcomerDials of [true, false]) {
    it(`is known by its new id only; the old id there is dropped and not dialed again (${newcomerDials ? 'it dials its peer' : 'its peer redials the address'})`, async () => {
      const logger = captureLogger();
      const p = await start({ listen: '127.0.0.1:0', logger, ...fast });
      const port = await freePort();
      const q1 = await start({ listen: `127.0.0.1:${port}`, peers: [p.address()!], ...fast });
      const oldId = q1.id;
      await waitFor(() => p.knownPeers().some((k) => k.id === oldId && k.verified), 5000, 'P to know Q at its address');
      await q1.close();
      await waitFor(() => !p.peers().some((x) => x.id === oldId), 5000, 'P to see Q leave');

      // Q again, same address, a new key (no key file, say, or a new one).
      const q2 = await start({ listen: `127.0.0.1:${port}`, peers: newcomerDials ? [p.address()!] : [], ...fast });
      expect(q2.id).not.toBe(oldId);
      if (newcomerDials) await waitFor(() => p.peers().some((x) => x.id === q2.id), 5000, 'P to connect to the new Q');
      // Its address announced on an inbound connection is a claim only; P's next dial of the old id there proves it gone.
      await waitFor(() => !p.knownPeers().some((k) => k.id === oldId), 8000, "P to drop Q's old id after a dial there");

      // Long enough for a dozen dials of the old entry, had it stayed (P is under its least degree, so it dials what it knows).
      const before = p.knownPeers().length;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const mismatches = logger.lines.filter((l) => l.level === 'warn' && l.message.includes(`expected peer id ${oldId}`));
      console.log(`[stale id, ${newcomerDials ? 'newcomer dials' : 'peer redials'}] ${mismatches.length} mismatch warnings; known: ${p.knownPeers().map((k) => k.id.slice(0, 8)).join(', ')}`);
      expect(p.knownPeers().some((k) => k.id === oldId)).toBe(false);
      expect(p.knownPeers().filter((k) => k.address === `127.0.0.1:${port}`).map((k) => k.id)).toEqual(newcomerDials ? [q2.id] : []);
      expect(p.knownPeers().length).toBeLessThanOrEqual(Math.max(before, 1));
      // At most the one dial that found the new id there.
      expect(mismatches.length).toBeLessThanOrEqual(1);
    }, 30_000);
  }

  it("is not faked by a peer that announces another node's address: that node stays known", async () => {
    const p = await start({ listen: '127.0.0.1:0', ...fast });
    const honest = await start({ listen: '127.0.0.1:0', peers: [p.address()!], ...fast });
    await waitFor(() => p.knownPeers().some((k) => k.id === honest.id && k.verified), 5000, 'P to know the honest node');
    // A liar that dials P and announces the honest node's address as its own.
    const liar = await start({ listen: '127.0.0.1:0', externalAddress: honest.address()!, peers: [p.address()!], ...fast });
    await waitFor(() => p.peers().some((x) => x.id === liar.id), 5000, 'the liar to connect');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(p.knownPeers().find((k) => k.id === honest.id)?.address).toBe(honest.address());
    expect(p.peers().some((x) => x.id === honest.id)).toBe(true);
  }, 20_000);
});

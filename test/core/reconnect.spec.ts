import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadIdentity } from '../../src/common/identity.js';
import { type LogFields, type P2PLogger, type PeerEvent, type PeerInfo } from '../../src/common/types.js';
import { backoffDelay, PersistentPeers, type DialOutcome } from '../../src/discovery/reconnect.js';
import { type PeerOptions } from '../../src/node/peer-options.js';
import { Peer } from '../../src/node/peer.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';

const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

const start = (options: PeerOptions = {}): Promise<Peer> => startEchoPeer(options, open);


describe('backoff', () => {
  it('grows exponentially to the cap, with jitter in [ceiling/2, ceiling]', () => {
    const opts = { baseMs: 100, maxMs: 5000 };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const ceiling = Math.min(5000, 100 * 2 ** attempt);
        const d = backoffDelay(attempt, opts, () => r);
        return d >= Math.floor(ceiling / 2) && d <= ceiling;
      }),
    );
    expect(backoffDelay(0, opts, () => 0)).toBe(50);
    expect(backoffDelay(3, opts, () => 0.999999)).toBe(800);
    expect(backoffDelay(1000, opts, () => 1 - 1e-9)).toBe(5000);
  });
});

/** PersistentPeers whose dials meet `outcomes` in turn (an Error is a failed dial), backing off 5–10 ms. */
function scripted(outcomes: ReadonlyArray<DialOutcome | Error>, logger: P2PLogger): { persistent: PersistentPeers; dials: () => number } {
  let dials = 0;
  const persistent = new PersistentPeers(
    {
      dial: async () => {
        const next = outcomes[dials++]!;
        if (next instanceof Error) throw next;
        return next;
      },
      isConnected: () => false,
    },
    { baseMs: 5, maxMs: 10 },
    logger,
  );
  return { persistent, dials: () => dials };
}

describe('persistent peers: what is logged', () => {
  it('logs a reconnect only when the redial opened the connection, not when the peer had redialed first (a duplicate)', async () => {
    const lines: string[] = [];
    const logger = { log: (m: string) => void lines.push(`log ${m}`), warn: (m: string) => void lines.push(`warn ${m}`), error: (m: string) => void lines.push(`error ${m}`) };
    const info = { id: 'b'.repeat(40) } as PeerInfo;
    const outcomes: Array<DialOutcome | Error> = [new Error('connect ECONNREFUSED'), { info, opened: false }, { info, opened: true }];
    const { persistent, dials } = scripted(outcomes, logger);
    try {
      await persistent.add('127.0.0.1:1'); // refused: a warning, then a retry
      await waitFor(() => dials() === 2, 1000, 'the retry');
      await new Promise((r) => setTimeout(r, 20));
      expect(lines.filter((l) => l.includes('reconnected'))).toEqual([]); // the retry met the peer's own connection
      persistent.onDisconnected(info.id);
      await waitFor(() => dials() === 3, 1000, 'the redial after a disconnect');
      await waitFor(() => lines.some((l) => l.includes('reconnected')), 1000, 'the reconnect line');
      expect(lines).toEqual([
        expect.stringMatching(/^warn could not connect to 127\.0\.0\.1:1: connect ECONNREFUSED; retrying in \d+ ms$/),
        `log reconnected to ${info.id} at 127.0.0.1:1`,
      ]);
    } finally {
      persistent.stop();
    }
  });

  it('passes LogFields with each line: the event, and the id and address of the peer (issue 23)', async () => {
    const lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
    const at = (level: string) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields });
    const logger: P2PLogger = { log: at('log'), warn: at('warn'), error: at('error'), debug: at('debug') };
    const info = { id: 'c'.repeat(40) } as PeerInfo;
    const outcomes: Array<DialOutcome | Error> = [new Error('connect ECONNREFUSED'), new Error('connect ECONNREFUSED'), { info, opened: true }];
    const { persistent } = scripted(outcomes, logger);
    try {
      await persistent.add(`${info.id}@127.0.0.1:2`, info.id);
      await waitFor(() => lines.some((l) => l.fields?.event === 'reconnected'), 1000, 'the reconnect line');
      const about = { peerId: info.id, address: '127.0.0.1:2' }; // host:port, without the configured id
      expect(lines.map(({ level, fields }) => ({ level, fields }))).toEqual([
        { level: 'warn', fields: { event: 'dial-failed', ...about } }, // the first failure
        { level: 'debug', fields: { event: 'dial-failed', ...about } }, // the retry: routine
        { level: 'log', fields: { event: 'reconnected', ...about } },
      ]);
    } finally {
      persistent.stop();
    }
  });
});

describe.each([true, false])('persistent peers (tls: %s)', (tls) => {
  it('redials a configured peer that restarts on the same address, without user code', async () => {
    const key = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    let b = await start({ tls, privateKey: key });
    const address = b.address()!;
    const a = await start({ tls, peers: [`${b.id}@${address}`], reconnectBaseMs: 20, reconnectMaxMs: 100 });
    const events: PeerEvent[] = [];
    a.on('peer', (e: PeerEvent) => events.push(e));
    expect(a.peers().map((p) => p.id)).toEqual([b.id]);

    await b.close();
    open.splice(open.indexOf(b), 1);
    await waitFor(() => a.peers().length === 0, 2000, 'A to notice');
    // While B is down, A's redials fail and back off; sends fail fast with a typed error.
    expect(() => a.send(b.id, 'x', 1)).toThrow(/not connected/);
    await new Promise((r) => setTimeout(r, 150));

    b = await start({ tls, privateKey: key, listen: address });
    await waitFor(() => a.peers().some((p) => p.id === b.id), 3000, 'A to redial B');
    expect(await echo(a, b.id, 'back')).toBe('back');
    expect(events.map((e) => e.type)).toEqual(['disconnected', 'connected']);
    // The socket is gone by the time the disconnect is reported: the address seen while it was open is kept.
    expect(events[0]!.peer.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('keeps retrying a configured peer that is not up yet, and connects when it comes', async () => {
    const key = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const placeholder = await start({ tls }); // reserve a port, then free it
    const address = placeholder.address()!;
    await placeholder.close();
    open.splice(open.indexOf(placeholder), 1);
    const a = await start({ tls, peers: [address], reconnectBaseMs: 20, reconnectMaxMs: 80 });
    expect(a.peers()).toEqual([]);
    await new Promise((r) => setTimeout(r, 200)); // several failed attempts
    const b = await start({ tls, privateKey: key, listen: address });
    await waitFor(() => a.peers().some((p) => p.id === b.id), 3000, 'A to reach B');
    expect(await echo(a, b.id, 1)).toBe(1);
  });

  it('drops a configured address that turns out to be this node itself', async () => {
    const lines: string[] = [];
    const log = { log: () => undefined, warn: (m: string) => void lines.push(m), error: () => undefined };
    const key = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const self = await start({ tls, privateKey: key });
    const address = self.address()!;
    await self.close();
    open.splice(open.indexOf(self), 1);
    const again = await start({ tls, privateKey: key, listen: address, peers: [address], logger: log, reconnectBaseMs: 10 });
    await new Promise((r) => setTimeout(r, 100));
    expect(lines.some((l) => /is this node itself; not redialing it/.test(l))).toBe(true);
    expect(again.peers()).toEqual([]);
  });
});

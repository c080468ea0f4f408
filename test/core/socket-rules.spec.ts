import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { P2PDialError } from '../../src/common/errors.js';
import { loadIdentity } from '../../src/common/identity.js';
import { PendingRequests, type PendingRequest } from '../../src/connection/pending-requests.js';
import { Peer } from '../../src/node/peer.js';
import { MAX_NONCE } from '../../src/wire/constants.js';
import { GoodbyeReason } from '../../src/wire/control.js';
import { MODES, startPeers as startAny, waitFor } from '../helpers.js';
import { RawPeer } from '../raw-peer.js';

const open: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(open.splice(0).map((p) => p.close()));
});

let tls = true;
const startPeers: typeof startAny = (count, options = {}) => startAny(count, { tls, ...options });

function entry(): PendingRequest {
  return { pattern: 'p', timeoutMs: 1, timer: undefined, observer: { next() {}, error() {}, complete() {} } };
}

describe('request nonces', () => {
  it('wrap past 2^32-1 to 1 and never reuse one still in flight', () => {
    const pending = new PendingRequests();
    pending.seed(MAX_NONCE - 2);
    const first = pending.add(entry()); // MAX-1
    expect(first).toBe(MAX_NONCE - 1);
    expect(pending.add(entry())).toBe(MAX_NONCE);
    expect(pending.add(entry())).toBe(1);
    pending.take(MAX_NONCE);
    pending.seed(MAX_NONCE - 2);
    // MAX-1 is still in flight: skipped; MAX was released: reused.
    expect(pending.add(entry())).toBe(MAX_NONCE);
    expect(pending.add(entry())).toBe(2); // 1 is in flight too
    expect(pending.size).toBe(4);
  });
});

describe.each(MODES)('socket rules over real sockets ($mode)', (mode) => {
  beforeAll(() => {
    tls = mode.tls;
  });

  it('refuses a hello with another protocol version', async () => {
    const [b] = await startPeers(1);
    open.push(b!);
    const r = await RawPeer.open(b!.address()!, { hello: false, tls });
    raws.push(r);
    r.sendHello({ version: 99 });
    await r.whenClosed();
    expect(r.goodbye()?.reason).toBe(GoodbyeReason.Version);
    expect(b!.peers()).toEqual([]);
  });

  it('refuses a hello whose id does not match its public key', async () => {
    const [b] = await startPeers(1);
    open.push(b!);
    const r = await RawPeer.open(b!.address()!, { hello: false, tls });
    raws.push(r);
    r.sendHello({ peerId: 'a'.repeat(40) });
    await r.whenClosed();
    expect(r.goodbye()?.message).toMatch(/does not match its public key/);
  });

  it('drops a peer that stops answering pings, and measures rtt for one that answers', async () => {
    const [b, c] = await startPeers(2, { pingIntervalMs: 50, pongTimeoutMs: 100 });
    open.push(b!, c!);
    await c!.connect(b!.address()!);
    const mute = await RawPeer.open(b!.address()!, { tls }); // completes the hello, then never answers a ping
    raws.push(mute);
    const started = Date.now();
    await mute.whenClosed(2000);
    expect(mute.goodbye()?.reason).toBe(GoodbyeReason.IdleTimeout);
    expect(Date.now() - started).toBeLessThan(1000);
    await waitFor(() => b!.peers().length === 1, 2000, 'the mute peer to be dropped');
    expect(b!.peers().map((p) => p.id)).toEqual([c!.id]);
    // The answering peer stays, with a measured round trip.
    await waitFor(() => b!.peers()[0]!.rttMs !== null, 2000, 'an rtt measurement');
    expect(b!.peers()[0]!.rttMs).toBeGreaterThanOrEqual(0);
  });

  it('enforces maxOutbound', async () => {
    const [a, b, c] = await startPeers(3, { maxOutbound: 1 });
    open.push(a!, b!, c!);
    await a!.connect(b!.address()!);
    await expect(a!.connect(c!.address()!)).rejects.toBeInstanceOf(P2PDialError);
    expect(a!.peers()).toHaveLength(1);
  });

  it('loads the same id from a PEM key or its hex seed', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const seed = (privateKey.export({ format: 'der', type: 'pkcs8' }) as Buffer).subarray(-32).toString('hex');
    const fromPem = loadIdentity(pem);
    expect(fromPem.ephemeral).toBe(false);
    expect(loadIdentity(seed).peerId).toBe(fromPem.peerId);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(() => loadIdentity(rsa)).toThrow(/Ed25519/);
  });
});

import { X509CertificateGenerator } from '@peculiar/x509';
import { statSync, mkdtempSync, rmSync } from 'node:fs';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, createServer as createTlsServer, TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ALPN_PROTOCOL } from '../../src/connection/secure-channel.js';
import { createTlsCredentials, GoodbyeReason, loadIdentity, P2PConfigError, P2PHandshakeError, P2PIdentityMismatchError, P2PPeerNotAllowedError, Peer, validateConfig, type P2PLogger, type PeerOptions } from '../../src/index.js';
import { echo as request, startEchoPeer, waitFor } from '../helpers.js';
import { startNode, type TestNode } from '../nest-helpers.js';
import { header, RawPeer } from '../raw-peer.js';

const peers: Peer[] = [];
const raws: RawPeer[] = [];
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all(peers.splice(0).map((p) => p.close()));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface Captured extends P2PLogger {
  lines: string[];
}
function capture(): Captured {
  const lines: string[] = [];
  const push = (m: string) => void lines.push(m);
  return { lines, log: push, warn: push, error: push, debug: push };
}

const start = (options: PeerOptions = {}): Promise<Peer> => startEchoPeer(options, peers);

/** A well-behaved TLS peer still gets served. */
async function stillServes(node: Peer): Promise<void> {
  const good = await start();
  await good.connect(`${node.id}@${node.address()}`);
  expect(await request(good, node.id, 'ok')).toBe('ok');
}

/** A TCP relay that records every byte crossing it, to look at what is on the wire. */
async function tap(target: string): Promise<{ address: string; seen: () => Buffer }> {
  const [host, port] = target.split(':') as [string, string];
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host, port: Number(port) });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    inbound.on('data', (d: Buffer) => (chunks.push(Buffer.from(d)), outbound.write(d)));
    outbound.on('data', (d: Buffer) => (chunks.push(Buffer.from(d)), inbound.write(d)));
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise((resolve) => server.close(resolve));
  });
  const { port: relayPort } = server.address() as { port: number };
  return { address: `127.0.0.1:${relayPort}`, seen: () => Buffer.concat(chunks) };
}

async function selfSigned(options: { notBefore: Date; notAfter: Date; rsa?: boolean }): Promise<{ key: string; cert: string }> {
  const algorithm = options.rsa
    ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
    : { name: 'Ed25519' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01', name: 'CN=bad', notBefore: options.notBefore, notAfter: options.notAfter, keys, signingAlgorithm: algorithm },
    webcrypto as never,
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  return { key, cert: cert.toString('pem') };
}

const DAY = 24 * 3600 * 1000;

describe('TLS channel', () => {
  it('runs TLS 1.3 with the peer ids proven, and keeps payloads off the wire in clear', async () => {
    const b = await start();
    const a = await start();
    const relay = await tap(b.address()!);
    const info = await a.connect(`${b.id}@${relay.address}`);
    expect(info.id).toBe(b.id);
    const socket = a.connection(b.id)!.raw as TLSSocket;
    expect(socket).toBeInstanceOf(TLSSocket);
    expect(socket.getProtocol()).toBe('TLSv1.3');
    expect(socket.alpnProtocol).toBe(ALPN_PROTOCOL);
    const secret = 'the-secret-payload-7f3a9c';
    expect(await request(a, b.id, secret)).toBe(secret);
    const wire = relay.seen();
    expect(wire.length).toBeGreaterThan(1000); // handshake plus the exchange went through the relay
    expect(wire.includes(secret)).toBe(false);
    expect(wire.includes(b.id)).toBe(false); // ids travel inside the encrypted hello only
  });

  it('sees the same payload in clear with tls: false (the relay above does see traffic)', async () => {
    const b = await start({ tls: false });
    const a = await start({ tls: false });
    const relay = await tap(b.address()!);
    await a.connect(`${b.id}@${relay.address}`);
    const secret = 'the-secret-payload-7f3a9c';
    expect(await request(a, b.id, secret)).toBe(secret);
    expect(relay.seen().includes(secret)).toBe(true);
  });

  it('rejects a dial to <wrongId>@host:port with P2PIdentityMismatchError', async () => {
    const b = await start();
    const a = await start();
    const wrong = loadIdentity().peerId;
    const err = await a.connect(`${wrong}@${b.address()}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PIdentityMismatchError);
    expect((err as P2PIdentityMismatchError).expected).toBe(wrong);
    expect((err as P2PIdentityMismatchError).actual).toBe(b.id);
    expect(a.peers()).toEqual([]);
    await waitFor(() => b.peers().length === 0);
    // Without an id, the dial accepts whichever id the peer proves.
    expect((await a.connect(b.address()!)).id).toBe(b.id);
  });

  it('refuses a peer whose hello claims another id than its certificate proves', async () => {
    const log = capture();
    const b = await start({ logger: log });
    const holder = loadIdentity(); // the key the certificate is for
    const claimed = loadIdentity(); // a self-consistent hello for another key
    const r = await RawPeer.open(b.address()!, {
      tls: true,
      identity: claimed,
      credentials: await createTlsCredentials(holder),
    });
    raws.push(r);
    await r.whenClosed();
    expect(r.goodbye()?.reason).toBe(GoodbyeReason.IdentityMismatch);
    expect(r.goodbye()?.message).toMatch(new RegExp(`claims peer id ${claimed.peerId} but the TLS certificate proves ${holder.peerId}`));
    expect(b.peers()).toEqual([]);
    expect(log.lines.some((l) => l.includes('TLS certificate proves') && l.includes('127.0.0.1:'))).toBe(true);
    await stillServes(b);
  });

  it('refuses plaintext against a TLS node, and TLS against a plaintext node, with a clear reason', async () => {
    const log = capture();
    const secure = await start({ logger: log });
    // Raw plaintext frames: answered with a plaintext goodbye the client can read.
    const r = await RawPeer.open(secure.address()!, { tls: false });
    raws.push(r);
    r.write(header(0x12, 0, 2));
    await r.whenClosed();
    expect(r.goodbye()?.reason).toBe(GoodbyeReason.TlsMismatch);
    expect(r.goodbye()?.message).toMatch(/requires TLS/);
    expect(log.lines.some((l) => /plaintext to a TLS node/.test(l))).toBe(true);

    const plain = await start({ tls: false, logger: log });
    const fromPlain = await plain.connect(secure.address()!).catch((e: unknown) => e);
    expect(fromPlain).toBeInstanceOf(P2PHandshakeError);
    expect((fromPlain as Error).message).toMatch(/requires TLS/);
    const fromSecure = await secure.connect(plain.address()!).catch((e: unknown) => e);
    expect(fromSecure).toBeInstanceOf(P2PHandshakeError);
    expect((fromSecure as Error).message).toMatch(/tls: false/);
    await waitFor(() => log.lines.some((l) => /started a TLS handshake but this node runs with tls: false/.test(l)));
    expect(secure.peers()).toEqual([]);
    expect(plain.peers()).toEqual([]);
    await stillServes(secure);
  });

  it('refuses a client without a certificate, with an expired one, or with a non-Ed25519 key', async () => {
    const log = capture();
    const b = await start({ logger: log });
    const [host, port] = b.address()!.split(':') as [string, string];
    const expired = await selfSigned({ notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const rsa = await selfSigned({ notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY), rsa: true });
    const cases: Array<[string, { key?: string; cert?: string }, RegExp]> = [
      ['no certificate', {}, /presented no certificate/],
      ['expired', expired, /outside its validity/],
      ['RSA', rsa, /rsa key, not Ed25519/],
    ];
    for (const [, creds, reason] of cases) {
      const client = tlsConnect({ host, port: Number(port), ...creds, rejectUnauthorized: false, ALPNProtocols: [ALPN_PROTOCOL] });
      client.on('error', () => undefined);
      const received: Buffer[] = [];
      client.on('data', (d: Buffer) => received.push(d));
      await new Promise((resolve) => client.once('close', resolve));
      const text = Buffer.concat(received).toString('latin1');
      expect(text).toMatch(reason); // the goodbye frame's text, sent over TLS before the close
      expect(log.lines.some((l) => reason.test(l) && l.includes('127.0.0.1:'))).toBe(true);
    }
    expect(b.peers()).toEqual([]);
    await stillServes(b);
  });

  it('refuses to dial a server whose certificate is expired', async () => {
    const expired = await selfSigned({ notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    const server = createTlsServer({ ...expired, ALPNProtocols: [ALPN_PROTOCOL], minVersion: 'TLSv1.3' }, (s) => s.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const a = await start();
    const err = await a.connect(`127.0.0.1:${(server.address() as { port: number }).port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PHandshakeError);
    expect((err as Error).message).toMatch(/outside its validity/);
    expect(a.peers()).toEqual([]);
  });

  it('closes connections that stall the TLS handshake after handshakeTimeoutMs, and keeps serving', async () => {
    const log = capture();
    const b = await start({ handshakeTimeoutMs: 200, logger: log });
    const [host, port] = b.address()!.split(':') as [string, string];
    const open = (bytes?: Buffer) =>
      new Promise<number>((resolve) => {
        const s = connect({ host, port: Number(port) }, () => bytes && s.write(bytes));
        const started = Date.now();
        s.on('error', () => undefined);
        s.on('close', () => resolve(Date.now() - started));
        s.resume();
      });
    // Silent, and the first bytes of a ClientHello then nothing.
    const durations = await Promise.all([open(), open(Buffer.from('160301', 'hex'))]);
    for (const ms of durations) {
      expect(ms).toBeGreaterThanOrEqual(150);
      expect(ms).toBeLessThan(2000);
    }
    expect(log.lines.filter((l) => /no TLS handshake within 200 ms/.test(l))).toHaveLength(2);
    await stillServes(b);
    // The dialing side too: a server that accepts and never answers the ClientHello.
    const mute = createServer((s) => s.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => mute.close(resolve)));
    const a = await start({ handshakeTimeoutMs: 200 });
    const err = await a.connect(`127.0.0.1:${(mute.address() as { port: number }).port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PHandshakeError);
    expect((err as Error).message).toMatch(/no TLS handshake within 200 ms/);
  });

  it('allowedPeers refuses an unlisted peer in both directions', async () => {
    const log = capture();
    const friend = await start();
    const stranger = await start();
    const a = await start({ allowedPeers: [friend.id], logger: log });
    await friend.connect(`${a.id}@${a.address()}`);
    // Inbound from a stranger: refused at the handshake with a reason it can read.
    const inbound = await stranger.connect(a.address()!).catch((e: unknown) => e);
    expect(inbound).toBeInstanceOf(P2PHandshakeError);
    expect((inbound as Error).message).toMatch(/not in allowedPeers/);
    // Outbound to a stranger: refused on our side.
    const outbound = await a.connect(stranger.address()!).catch((e: unknown) => e);
    expect(outbound).toBeInstanceOf(P2PPeerNotAllowedError);
    expect((outbound as P2PPeerNotAllowedError).remotePeerId).toBe(stranger.id);
    expect(a.peers().map((p) => p.id)).toEqual([friend.id]);
    expect(stranger.peers()).toEqual([]);
    expect(log.lines.filter((l) => l.includes(`peer ${stranger.id} is not in allowedPeers`)).length).toBeGreaterThanOrEqual(2);
    expect(await request(friend, a.id, 'still friends')).toBe('still friends');
  });
});

describe('identity persistence and config', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('keeps the peer id across restarts with the same privateKeyFile, created with mode 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2p-key-'));
    dirs.push(dir);
    const privateKeyFile = join(dir, 'keys', 'node.pem');
    let node: TestNode | undefined = await startNode({ privateKeyFile });
    const firstId = node.id;
    expect(statSync(privateKeyFile).mode & 0o777).toBe(0o600);
    await node.app.close();
    node = await startNode({ privateKeyFile });
    cleanups.push(() => node!.app.close());
    expect(node.id).toBe(firstId);
    // A peer that pinned the first run's id reaches the restarted node.
    const pinned = await start();
    expect((await pinned.connect(`${firstId}@${node.address}`)).id).toBe(firstId);
  });

  it('validates tls, allowedPeers and the key options', () => {
    expect(validateConfig({}).tls).toBe(true);
    const bad = (options: Record<string, unknown>) => {
      try {
        validateConfig(options);
      } catch (err) {
        expect(err).toBeInstanceOf(P2PConfigError);
        return (err as P2PConfigError).problems.join('\n');
      }
      throw new Error('config was accepted');
    };
    expect(bad({ tls: 'yes' })).toMatch(/tls/);
    expect(bad({ allowedPeers: ['not-an-id'] })).toMatch(/allowedPeers must hold peer ids/);
    expect(bad({ privateKey: 'a'.repeat(64), privateKeyFile: '/tmp/k.pem' })).toMatch(/set one, not both/);
  });
});

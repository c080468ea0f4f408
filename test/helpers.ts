import { createServer, type AddressInfo } from 'node:net';
import { type PeerOptions } from '../src/node/peer-options.js';
import { Peer } from '../src/node/peer.js';
import type { P2PLogger } from '../src/common/types.js';
import { loadIdentity, type Identity } from '../src/common/identity.js';
import { inArc, type Arc } from '../src/ring/raintree.js';

/** The two channel modes every end-to-end suite runs in. */
export const MODES = [
  { mode: 'TLS', tls: true },
  { mode: 'plaintext', tls: false },
] as const;

/** Starts core nodes on 127.0.0.1 with ephemeral ports. */
export async function startPeers(count: number, options: PeerOptions = {}): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let i = 0; i < count; i++) {
    const peer = new Peer({ listen: '127.0.0.1:0', ...options });
    await peer.start();
    peers.push(peer);
  }
  return peers;
}

/** Starts one core node on 127.0.0.1 that answers every request with its data; `track` collects it for cleanup. */
export async function startEchoPeer(options: PeerOptions, track: Peer[]): Promise<Peer> {
  const peer = new Peer({ listen: '127.0.0.1:0', ...options });
  track.push(peer);
  peer.setHandler({ onEvent: () => undefined, onRequest: (_p, _t, data, reply) => (reply.next(data), reply.complete()) });
  await peer.start();
  return peer;
}

/** A request through the core node, resolving with the first reply value. */
export function echo(from: Peer, to: string, data: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => from.request(to, 'echo', data, { next: resolve, error: reject, complete: () => undefined }));
}

export function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

export function collect<T>(observe: (push: (value: T) => void) => void): T[] {
  const values: T[] = [];
  observe((value) => values.push(value));
  return values;
}

/** A port free on 127.0.0.1 now (for a child process that must listen on a known port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A logger that keeps every line with its level, for tests that check what a node logged. */
export interface CapturedLogger extends P2PLogger {
  lines: Array<{ level: string; message: string }>;
}

export function captureLogger(): CapturedLogger {
  const lines: CapturedLogger['lines'] = [];
  return {
    lines,
    log: (message) => lines.push({ level: 'log', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    error: (message) => lines.push({ level: 'error', message }),
    debug: (message) => lines.push({ level: 'debug', message }),
  };
}

/** A fresh key whose id lies in `arc` (bounded: the arcs the eclipse specs use hold at least 1/81 of the ring). */
export function groundInto(arc: Arc): Identity {
  for (let i = 0; i < 20_000; i++) {
    const identity = loadIdentity();
    if (inArc(identity.peerId, arc)) return identity;
  }
  throw new Error('no key ground into the arc');
}

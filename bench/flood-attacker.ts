// The hostile neighbour of the `throwaway-flood` scenario (lib/flood.ts), in its own process: it connects
// to the victim over TLS with a key of its own, speaks the handshake (hello), then on the orchestrator's
// word writes network broadcasts signed by throwaway keys (`perKey` each) at `rate` a second, in batches
// every 10 ms. Every frame is signed before the flood starts, so the flood costs this process only its
// writes (TLS included), as a prepared attacker's would. It reads and discards whatever the victim sends.
import { connect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
// Internal modules of the built package (not its public API): the wire format as a hand-driven peer
// writes it (test/raw-peer.ts does the same from the sources).
import type * as Codec from '../dist/broadcast/codec.js';
import type * as Id from '../dist/common/identity.js';
import type * as Secure from '../dist/connection/secure-channel.js';
import type * as Ring from '../dist/ring/raintree.js';
import type * as Constants from '../dist/wire/constants.js';
import type * as Control from '../dist/wire/control.js';
import type { FloodAttackerSpec } from './lib/flood.js';

const load = async <T>(path: string): Promise<T> => (await import(new URL(`../../dist/${path}`, import.meta.url).href)) as T;
const { createNetworkMessage, encodeNetworkMessage } = await load<typeof Codec>('broadcast/codec.js');
const { loadIdentity } = await load<typeof Id>('common/identity.js');
const { ALPN_PROTOCOL, createTlsCredentials } = await load<typeof Secure>('connection/secure-channel.js');
const { RING_ROOT } = await load<typeof Ring>('ring/raintree.js');
const { Encoding, PROTOCOL_VERSION } = await load<typeof Constants>('wire/constants.js');
const { ControlType, encodeControl } = await load<typeof Control>('wire/control.js');

const spec = JSON.parse(process.argv[2]!) as FloodAttackerSpec;
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const frameOf = (control: Control.Control) => Buffer.concat(encodeControl(control).chunks);

const identity = loadIdentity();
const credentials = await createTlsCredentials(identity);
const [host, port] = [spec.address.slice(0, spec.address.lastIndexOf(':')), Number(spec.address.slice(spec.address.lastIndexOf(':') + 1))];
const socket: TLSSocket = tlsConnect({
  socket: connect({ host, port }),
  secureContext: credentials.context,
  rejectUnauthorized: false,
  checkServerIdentity: () => undefined,
  ALPNProtocols: [ALPN_PROTOCOL],
});
await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
let closed = false;
socket.on('data', () => undefined);
socket.on('error', () => undefined);
socket.on('close', () => (closed = true));
socket.write(
  frameOf({
    type: ControlType.Hello,
    hello: { version: PROTOCOL_VERSION, peerId: identity.peerId, publicKey: identity.publicKeyRaw.toString('hex'), listenAddress: null, maxFrameBytes: 64 * 1024 * 1024 },
  }),
);

// Every frame, signed in advance by `frames / perKey` fresh keys.
const keys = Array.from({ length: Math.ceil(spec.frames / spec.perKey) }, () => loadIdentity());
const base = Date.now() * 1000;
const frames = Array.from({ length: spec.frames }, (_, i) => {
  const m = createNetworkMessage(keys[Math.floor(i / spec.perKey)]!, {
    timestampUs: base + i,
    strategy: spec.strategy,
    encoding: Encoding.Json,
    topic: 'flood',
    payload: Buffer.from(JSON.stringify({ i })),
  });
  return frameOf({ type: ControlType.NetworkBroadcast, body: encodeNetworkMessage({ ...m, arc: RING_ROOT }) });
});

async function flood(): Promise<{ startedAt: number; endedAt: number; written: number }> {
  const startedAt = nowUs();
  let written = 0;
  while (written < frames.length && !closed) {
    const due = Math.min(frames.length, Math.floor(((nowUs() - startedAt) / 1e6) * spec.rate) + 1);
    for (; written < due; written++) socket.write(frames[written]!);
    await sleep(10);
  }
  return { startedAt, endedAt: nowUs(), written };
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'flood') void flood().then((r) => process.send!({ type: 'flooded', ...r, closed }));
});
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready', id: identity.peerId });

import { afterEach } from 'vitest';
import { silentLogger } from '../src/common/types.js';
import { Peer } from '../src/node/peer.js';
import { RawPeer } from './raw-peer.js';

/**
 * Real core nodes on 127.0.0.1 (peer exchange off) whose handler records the data of the events they
 * deliver, with hand-driven raw peers beside them over TLS: the harness of the specs of honest broadcasts
 * dropped for local limits. Call once per spec file; it closes everything after each test.
 */
export function recordingNodes() {
  const open: Peer[] = [];
  const raws: RawPeer[] = [];

  afterEach(async () => {
    raws.splice(0).forEach((r) => r.destroy());
    await Promise.all(open.splice(0).map((p) => p.close()));
  });

  /** A started node; with `delivered`, the data of every event it delivers is pushed there. */
  async function node(options: ConstructorParameters<typeof Peer>[0], delivered?: unknown[]): Promise<Peer> {
    const peer = new Peer({ listen: '127.0.0.1:0', logger: silentLogger, peerExchange: false, ...options });
    open.push(peer);
    peer.setHandler({ onEvent: (_p, _t, data) => void delivered?.push(data), onRequest: (_p, _t, _d, reply) => reply.complete() });
    await peer.start();
    return peer;
  }

  /** A raw peer with a key of its own, connected to `to` over TLS. */
  async function raw(to: Peer): Promise<RawPeer> {
    const r = await RawPeer.open(to.address()!, { tls: true });
    raws.push(r);
    return r;
  }

  return { node, raw };
}

import { randomBytes } from 'node:crypto';
import { afterEach } from 'vitest';
import { loadIdentity } from '../src/common/identity.js';
import { type BroadcastMeta } from '../src/common/types.js';
import { type PeerOptions } from '../src/node/peer-options.js';
import { type Peer } from '../src/node/peer.js';
import { ControlType, encodeControl } from '../src/wire/control.js';
import { startEchoPeer, waitFor } from './helpers.js';
import { RawPeer } from './raw-peer.js';

/**
 * Full meshes of real nodes on 127.0.0.1 that record the network broadcasts they
 * deliver, with hand-driven raw peers beside them: the harness of the repair and
 * broadcast-abuse specs. Call once per spec file; it closes everything after each test.
 */
export function broadcastMeshes() {
  const open: Peer[] = [];
  const raws: RawPeer[] = [];
  const heard: Array<{ node: string; meta: BroadcastMeta }> = [];

  afterEach(async () => {
    raws.splice(0).forEach((r) => r.destroy());
    await Promise.all(open.splice(0).map((p) => p.close()));
    heard.length = 0;
  });

  async function node(tls: boolean, options: PeerOptions = {}): Promise<Peer> {
    const peer = await startEchoPeer({ tls, peerExchange: false, broadcastRepairIntervalMs: 200, ...options }, open);
    peer.setHandler({
      onEvent: (_from, _topic, _data, meta) => void (meta && heard.push({ node: peer.id, meta })),
      onRequest: (_p, _t, data, reply) => (reply.next(data), reply.complete()),
    });
    return peer;
  }

  /** `n` nodes, each connected to every other. */
  async function mesh(tls: boolean, n: number, options: PeerOptions = {}): Promise<Peer[]> {
    const nodes: Peer[] = [];
    for (let i = 0; i < n; i++) nodes.push(await node(tls, options));
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await nodes[i]!.connect(`${nodes[j]!.id}@${nodes[j]!.address()}`);
    await waitFor(() => nodes.every((p) => p.peers().length === n - 1), 5000, 'the mesh');
    return nodes;
  }

  /** A hand-driven peer with its own key, admitted by `to`. */
  async function raw(tls: boolean, to: Peer): Promise<RawPeer> {
    const r = await RawPeer.open(to.address()!, { tls });
    raws.push(r);
    await waitFor(() => to.peers().some((p) => p.id === r.identity.peerId), 3000, 'the raw peer to be admitted');
    return r;
  }

  /** The nodes that delivered broadcast `id`, sorted. */
  const heardOf = (id: string) => heard.filter((h) => h.meta.id === id).map((h) => h.node).sort();

  return { node, mesh, raw, heardOf };
}

/** An IHAVE or IWANT frame, as bytes to write. */
export const repairFrame = (type: ControlType.BroadcastIHave | ControlType.BroadcastIWant, body: Buffer) =>
  Buffer.concat(encodeControl({ type, body }).chunks);

/** A private key (64 hex) whose peer id lies in top-level third `t` of the ring (0, 1 or 2). */
export function keyInThird(t: number): string {
  for (;;) {
    const seed = randomBytes(32).toString('hex');
    const id = loadIdentity(seed).peerId;
    if (Math.floor((parseInt(id.slice(0, 8), 16) * 3) / 2 ** 32) === t) return seed;
  }
}

/** From here on `peer` accepts and relays nothing, and announces and answers nothing (the test flags of PeerOptions.dropRelays). */
export function makeDropper(peer: Peer): void {
  const pipeline = (peer as unknown as { broadcasts: { pipeline: { router: { dropRelays: boolean }; repair: { silent: boolean } } } }).broadcasts.pipeline;
  pipeline.router.dropRelays = true;
  pipeline.repair.silent = true;
}

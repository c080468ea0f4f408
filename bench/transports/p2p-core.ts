// Reference: this transport's core (Peer, no Nest) with plaintext framing. What it costs to
// add Nest's handler pipeline shows as the gap between this row and "p2p (plaintext)".
import { P2PQueueFullError, Peer, silentLogger } from 'nestjs-p2p/core';
import type { BenchClient, BenchServer, OnEvent, Target, Transport } from './types.js';

async function startPeer(onEvent: OnEvent): Promise<Peer> {
  const peer = new Peer({ listen: '127.0.0.1:0', tls: false, peerExchange: false, logger: silentLogger });
  peer.setHandler({
    onEvent: () => onEvent(),
    onRequest: (_peer, _topic, data, reply) => {
      reply.next(data);
      reply.complete();
    },
  });
  await peer.start();
  return peer;
}

export const p2pCore: Transport = {
  async startServer(receivers: number, onEvent: OnEvent): Promise<BenchServer> {
    const peers: Peer[] = [];
    for (let i = 0; i < receivers; i++) peers.push(await startPeer(onEvent));
    return {
      targets: peers.map((p) => ({ address: p.address()!, id: p.id })),
      close: async () => void (await Promise.all(peers.map((p) => p.close()))),
    };
  },

  async startClient(targets: Target[]): Promise<BenchClient> {
    const peer = await startPeer(() => undefined);
    for (const target of targets) await peer.connect(`${target.id}@${target.address}`);
    const ids = targets.map((t) => t.id!);
    const sendWaiting = async (id: string, data: Buffer | string): Promise<void> => {
      for (;;) {
        try {
          return peer.send(id, 'bench.event', data);
        } catch (err) {
          if (!(err instanceof P2PQueueFullError)) throw err;
          await peer.whenWritable(id);
        }
      }
    };
    return {
      emit: (i, data) => sendWaiting(ids[i]!, data),
      async broadcast(data) {
        for (const id of ids) await sendWaiting(id, data);
      },
      request: (data) =>
        new Promise((resolve, reject) => {
          let last: unknown;
          peer.request(ids[0]!, 'bench.echo', data, { next: (v) => (last = v), error: reject, complete: () => resolve(last) });
        }),
      close: () => peer.close(),
    };
  },
};

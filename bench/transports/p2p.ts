// Under test (3, 4): this transport through P2PModule, P2PServer and P2PService, with and without TLS.
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { P2P_NODE, P2PModule, P2PQueueFullError, P2PServer, P2PService, type Peer, type PeerEvent } from 'nestjs-p2p';
import { benchModule } from './nest-app.js';
import type { BenchClient, BenchServer, OnEvent, Target, Transport } from './types.js';

async function startApp(onEvent: OnEvent, tls: boolean): Promise<INestApplication> {
  const app = await NestFactory.create(benchModule(onEvent, [P2PModule.forRoot({ listen: '127.0.0.1:0', tls })]), { logger: false });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  return app;
}

/** A send that waits while the peer's write queue is full, as an application that must not drop would. */
async function sendWaiting(service: P2PService, id: string, data: Buffer | string): Promise<void> {
  for (;;) {
    try {
      return await service.send(id, 'bench.event', data);
    } catch (err) {
      if (!(err instanceof P2PQueueFullError)) throw err;
      await service.whenWritable(id);
    }
  }
}

export function p2p(tls: boolean): Transport {
  return {
    async startServer(receivers: number, onEvent: OnEvent): Promise<BenchServer> {
      const apps: INestApplication[] = [];
      for (let i = 0; i < receivers; i++) apps.push(await startApp(onEvent, tls));
      return {
        targets: apps.map((app) => {
          const service = app.get(P2PService);
          return { address: service.address()!, id: service.id };
        }),
        stall() {
          for (const app of apps) {
            const node = app.get<Peer>(P2P_NODE);
            // connection() is internal (stripped from the published types): the bench stalls a reader by hand.
            const internal = node as unknown as { connection(id: string): { raw: { pause(): void } } | undefined };
            const pause = (id: string) => internal.connection(id)?.raw.pause();
            node.peers().forEach((p) => pause(p.id));
            node.on('peer', (e: PeerEvent) => e.type === 'connected' && pause(e.peer.id));
          }
        },
        close: async () => void (await Promise.all(apps.map((a) => a.close()))),
      };
    },

    async startClient(targets: Target[]): Promise<BenchClient> {
      const app = await startApp(() => undefined, tls);
      const service = app.get(P2PService);
      for (const target of targets) await service.connect(`${target.id}@${target.address}`);
      const ids = targets.map((t) => t.id!);
      return {
        emit: (i, data) => sendWaiting(service, ids[i]!, data),
        async broadcast(data) {
          const { failed } = await service.broadcast('bench.event', data);
          for (const { peerId, error } of failed) {
            if (!(error instanceof P2PQueueFullError)) throw error;
            await sendWaiting(service, peerId, data);
          }
        },
        request: (data) => service.request(ids[0]!, 'bench.echo', data),
        async offer(i, data) {
          try {
            await service.send(ids[i]!, 'bench.event', data);
            return true;
          } catch (err) {
            if (err instanceof P2PQueueFullError) return false;
            throw err;
          }
        },
        close: () => app.close(),
      };
    },
  };
}

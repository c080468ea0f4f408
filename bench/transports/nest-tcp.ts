// Reference (2): NestJS's built-in Transport.TCP, through ClientProxy and real handlers.
import type { INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, Transport, type ClientProxy, type MicroserviceOptions } from '@nestjs/microservices';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { lastValueFrom } from 'rxjs';
import { benchModule } from './nest-app.js';
import type { BenchClient, BenchServer, OnEvent, Target, Transport as BenchTransport } from './types.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export const nestTcp: BenchTransport = {
  async startServer(receivers: number, onEvent: OnEvent): Promise<BenchServer> {
    const apps: INestMicroservice[] = [];
    const targets: Target[] = [];
    for (let i = 0; i < receivers; i++) {
      const port = await freePort();
      const app = await NestFactory.createMicroservice<MicroserviceOptions>(benchModule(onEvent), {
        transport: Transport.TCP,
        options: { host: '127.0.0.1', port },
        logger: false,
      });
      await app.listen();
      apps.push(app);
      targets.push({ address: `127.0.0.1:${port}` });
    }
    return { targets, close: async () => void (await Promise.all(apps.map((a) => a.close()))) };
  },

  async startClient(targets: Target[]): Promise<BenchClient> {
    const clients: ClientProxy[] = [];
    for (const target of targets) {
      const [host, port] = target.address.split(':');
      const client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: host!, port: Number(port) } });
      await client.connect();
      clients.push(client);
    }
    // ClientProxy.emit gives no backpressure signal, and NestJS 12 destroys a client socket
    // with more than 128 MiB queued; so the sender waits on the socket's own 'drain', as the
    // raw sender does. unwrap() gives the net.Socket on both majors.
    const sockets = clients.map((c) => c.unwrap<Socket>());
    const emit = (i: number, data: Buffer | string): void | Promise<void> => {
      clients[i]!.emit('bench.event', data);
      if (sockets[i]!.writableNeedDrain) return once(sockets[i]!, 'drain').then(() => undefined);
    };
    return {
      emit,
      broadcast(data) {
        let wait: void | Promise<void> = undefined;
        for (let i = 0; i < clients.length; i++) wait = emit(i, data) ?? wait;
        return wait;
      },
      request: (data) => lastValueFrom(clients[0]!.send('bench.echo', data)),
      async close() {
        await Promise.all(clients.map((c) => c.close()));
      },
    };
  },
};

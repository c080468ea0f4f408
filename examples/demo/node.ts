// One demo node: a real Nest app configured from config/demo/<name>.json, driven by
// the demo runner over the IPC channel (commands in, readable events out).
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { P2PContext, P2PModule, P2PServer, P2PService, type P2POptions } from 'nestjs-p2p';

const file = process.argv[2];
if (!file) throw new Error('usage: node node.js <config.json>');
const { name, p2p } = JSON.parse(readFileSync(file, 'utf8')) as { name: string; p2p: P2POptions };

type Report =
  | { type: 'log'; text: string }
  | { type: 'ready'; id: string; address: string }
  | { type: 'peer'; event: 'connected' | 'disconnected'; id: string; reason?: string }
  | { type: 'result'; seq: number; value?: unknown; error?: string };
// The runner may have closed the channel first (Ctrl-C reaches every process of the group): a report then has
// nowhere to go, and must not become an unhandled ERR_IPC_CHANNEL_CLOSED while the node says goodbye.
const report = (message: Report): void => {
  if (process.connected) process.send?.(message, undefined, {}, () => undefined);
};

@Controller()
class DemoController {
  @EventPattern<string>('chat.message')
  chat(@Payload() data: { text: string }, @Ctx() ctx: P2PContext): void {
    report({ type: 'log', text: `received event chat.message from ${ctx.getPeer().id.slice(0, 8)}: "${data.text}"` });
  }

  @EventPattern<string>('news')
  news(@Payload() data: { headline: string }, @Ctx() ctx: P2PContext): void {
    report({ type: 'log', text: `received broadcast news from ${ctx.getPeer().id.slice(0, 8)}: "${data.headline}"` });
  }

  @MessagePattern('math.sum')
  sum(@Payload() numbers: number[], @Ctx() ctx: P2PContext): number {
    const total = numbers.reduce((a, b) => a + b, 0);
    report({ type: 'log', text: `answered request math.sum from ${ctx.getPeer().id.slice(0, 8)} with ${total}` });
    return total;
  }
}

@Module({
  imports: [P2PModule.forRootAsync({ useFactory: () => p2p })],
  controllers: [DemoController],
})
class DemoNodeModule {}

type Command =
  | { seq: number; op: 'peers' }
  | { seq: number; op: 'send'; to: string; pattern: string; data: unknown }
  | { seq: number; op: 'request'; to: string; pattern: string; data: unknown }
  | { seq: number; op: 'broadcast'; pattern: string; data: unknown };

async function main(): Promise<void> {
  const app = await NestFactory.create(DemoNodeModule, { logger: ['warn', 'error'] });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  const p2p = app.get(P2PService);
  report({ type: 'ready', id: p2p.id, address: p2p.address()! });
  // Connection lifecycle, for the runner's live view.
  p2p.events$.subscribe((event) => report({ type: 'peer', event: event.type, id: event.peer.id, reason: event.type === 'disconnected' ? event.reason : undefined }));

  process.on('message', (command: Command) => {
    const run = async (): Promise<unknown> => {
      switch (command.op) {
        case 'peers':
          return p2p.peers().map((p) => ({ id: p.id, secure: p.secure, direction: p.direction, rttMs: p.rttMs }));
        case 'send':
          return p2p.send(command.to, command.pattern, command.data);
        case 'request': {
          const started = process.hrtime.bigint();
          const value = await p2p.request(command.to, command.pattern, command.data);
          return { value, ms: Number(process.hrtime.bigint() - started) / 1e6 };
        }
        case 'broadcast':
          return p2p.broadcast(command.pattern, command.data);
      }
    };
    run().then(
      (value) => report({ type: 'result', seq: command.seq, value }),
      (err: Error) => report({ type: 'result', seq: command.seq, error: `${err.name}: ${err.message}` }),
    );
  });

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await app.close(); // goodbye to every peer, queues flushed, sockets closed
    process.disconnect?.();
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  report({ type: 'log', text: `up, configured from ${file.split(/[\\/]/).slice(-3).join('/')}` });
}

main().catch((err: Error) => {
  process.stderr.write(`${name}: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

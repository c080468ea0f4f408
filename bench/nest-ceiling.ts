// How many events per second Nest's handler pipeline alone can run, with no transport:
// the registered @EventPattern handler called in-process, 256 at a time (as a connection's
// read loop dispatches them), each with a fresh P2PContext. No I/O, no decoding. Every Nest
// transport pays this per event on the receiving core, so it bounds any of them; run.ts
// prints it beside the events scenario.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { P2PContext, P2PModule, P2PServer } from 'nestjs-p2p';
import { benchModule } from './transports/nest-app.js';

async function main(): Promise<void> {
  let received = 0;
  const app = await NestFactory.create(benchModule(() => void received++, [P2PModule.forRoot({ listen: '127.0.0.1:0', tls: false })]), { logger: false });
  const server = app.get(P2PServer);
  app.connectMicroservice({ strategy: server });
  await app.startAllMicroservices();
  await app.init();
  const handler = server.getHandlerByPattern('bench.event')!;
  const peer = Object.freeze({ id: 'x', remoteAddress: '127.0.0.1:1', listenAddress: null, direction: 'inbound' as const, connectedAt: new Date(), rttMs: null, secure: false });
  const payload = 'x'.repeat(64);
  const run = async (count: number) => {
    const batch: unknown[] = [];
    for (let i = 0; i < count; i++) {
      batch.push(handler(payload, new P2PContext([peer, 'bench.event', undefined])));
      if (batch.length === 256) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
  };
  await run(100_000);
  const figures: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    await run(500_000);
    figures.push(500_000 / (Number(process.hrtime.bigint() - t0) / 1e9));
    const { user, system } = process.cpuUsage(cpu0);
    cpu.push((user + system) / 500_000);
  }
  figures.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  if (received !== 2_600_000) throw new Error(`the handler ran ${received} times, expected 2 600 000`);
  const perSecond = figures[2]!;
  if (process.send) process.send({ type: 'result', perSecond, cpuUs: cpu[2] });
  else process.stdout.write(`Nest handler pipeline alone: ${Math.round(perSecond).toLocaleString('en-US')} events/s (median of 5)\n`);
  await app.close();
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});

import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { afterEach, describe, expect, it } from 'vitest';
import { P2PModule, P2PRateLimitError, P2PService, P2P_NODE, type P2PContext, type Peer } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startApp } from '../nest-helpers.js';
import type { INestApplication } from '@nestjs/common';

/**
 * Issue 21: with default settings, a Nest app emitting 1 000 network events a second from one node
 * does not meet P2PRateLimitError (the old default origin budget, 100/s and a burst of 200, let 206 of
 * a loop of 1 000 through). Two Nest apps over TLS, every setting but the address at its default.
 */

@Controller()
class TicksController {
  readonly heard: number[] = [];

  @EventPattern<string>('ticks')
  tick(@Payload() data: number, @Ctx() ctx: P2PContext): void {
    if (ctx.getBroadcast()) this.heard.push(data);
  }
}

const apps: INestApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(): Promise<{ service: P2PService; node: Peer; ticks: TicksController }> {
  const app = await startApp({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0' })], controllers: [TicksController] });
  apps.push(app);
  return { service: app.get(P2PService), node: app.get<Peer>(P2P_NODE), ticks: app.get(TicksController) };
}

describe('network events at 1 000 a second with default settings (Nest)', () => {
  it('two seconds of 1 000 network events each, awaited one by one: none refused, all delivered, in batches', async () => {
    const [emitter, receiver] = [await start(), await start()];
    await emitter.service.connect(`${receiver.service.id}@${receiver.service.address()}`);
    await waitFor(() => receiver.service.peers().length === 1, 3000, 'the connection');
    let refused = 0;
    for (let second = 0; second < 2; second++) {
      const started = Date.now();
      for (let i = 0; i < 1000; i++) {
        try {
          await emitter.service.broadcast('ticks', second * 1000 + i, { scope: 'network' });
        } catch (err) {
          if (!(err instanceof P2PRateLimitError)) throw err;
          refused++;
        }
      }
      // The rest of the second (bounded: one second at most).
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
    }
    expect(refused).toBe(0);
    await waitFor(() => receiver.ticks.heard.length === 2000, 20_000, 'all 2 000 events on the receiver');
    expect(new Set(receiver.ticks.heard).size).toBe(2000);
    const { dropped, verified, verifiedByBatch } = receiver.node.networkBroadcastStats();
    expect(dropped.originBudget + dropped.neighbourBudget).toBe(0);
    expect(verifiedByBatch).toBeGreaterThan(verified);
  }, 40_000);
});

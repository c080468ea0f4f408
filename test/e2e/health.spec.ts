import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { afterEach, describe, expect, it } from 'vitest';
import { P2PModule, P2PService } from '../../src/index.js';
import { P2PHealthIndicator } from '../../src/nest/p2p.health.js';
import { startApp, startNode, type TestNode } from '../nest-helpers.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly p2p: P2PHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.p2p.isHealthy()]);
  }
}

const nodes: TestNode[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await Promise.all(nodes.splice(0).map((n) => n.app.close()));
});

describe('P2PHealthIndicator (@nestjs/terminus)', () => {
  it('is down below minPeers and up once enough peers are connected', async () => {
    const app = await startApp({
      imports: [TerminusModule, P2PModule.forRoot({ listen: '127.0.0.1:0', minPeers: 1 })],
      controllers: [HealthController],
      providers: [P2PHealthIndicator],
    });
    closers.push(() => app.close());
    const controller = app.get(HealthController);
    const service = app.get(P2PService);

    // Down: Terminus answers 503 with the details.
    const down = await controller.check().catch((err: { getResponse(): unknown }) => err.getResponse());
    expect(down).toMatchObject({ status: 'error', error: { p2p: { status: 'down', peers: 0, minPeers: 1, id: service.id } } });

    const peer = await startNode();
    nodes.push(peer);
    await service.connect(`${peer.id}@${peer.address}`);
    const up = await controller.check();
    expect(up).toMatchObject({ status: 'ok', info: { p2p: { status: 'up', peers: 1, address: service.address() } } });

    // A per-check override of minPeers.
    expect(app.get(P2PHealthIndicator).isHealthy('p2p', { minPeers: 2 })).toMatchObject({ p2p: { status: 'down' } });
  });
});

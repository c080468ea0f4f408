import { Controller, type INestApplication, type ModuleMetadata, type Type } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { from, interval, map, take, type Observable } from 'rxjs';
import { P2PModule, P2PServer, P2PService, P2P_NODE, type P2POptions, type Peer, type P2PContext } from '../src/index.js';

export interface Received {
  pattern: string;
  from: string;
  data: unknown;
}

/** The handlers every test node runs. */
@Controller()
export class NodeController {
  readonly received: Received[] = [];

  @EventPattern<string>('note')
  note(@Payload() data: unknown, @Ctx() ctx: P2PContext): void {
    this.received.push({ pattern: ctx.getPattern(), from: ctx.getPeer().id, data });
  }

  @EventPattern({ kind: 'typed', v: 1 })
  typed(@Payload() data: unknown, @Ctx() ctx: P2PContext): void {
    this.received.push({ pattern: ctx.getPattern(), from: ctx.getPeer().id, data });
  }

  @EventPattern<string>('explode')
  explode(): never {
    throw new Error('event handler failure');
  }

  @MessagePattern('echo')
  echo(@Payload() data: unknown): unknown {
    return data;
  }

  @MessagePattern('typeof')
  typeOf(@Payload() data: unknown): string {
    return Buffer.isBuffer(data) ? 'buffer' : typeof data;
  }

  @MessagePattern({ cmd: 'sum' })
  async sum(@Payload() numbers: number[]): Promise<number> {
    await new Promise((r) => setTimeout(r, 5));
    return numbers.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('count')
  count(@Payload() n: number): Observable<number> {
    return interval(2).pipe(
      take(n),
      map((i) => i + 1),
    );
  }

  /** A stream that never ends: a value every 200 ms (a buggy or hostile handler). */
  @MessagePattern('trickle')
  trickle(): Observable<number> {
    return interval(200);
  }

  @MessagePattern('list')
  list(): Observable<string> {
    return from(['a', 'b', 'c']);
  }

  @MessagePattern('whoami')
  whoami(@Ctx() ctx: P2PContext): string {
    return ctx.getPeer().id;
  }

  @MessagePattern('reject')
  reject(): never {
    throw new RpcException({ code: 'E_BAD_INPUT', message: 'bad input' });
  }

  @MessagePattern('crash')
  crash(): never {
    throw new Error('boom');
  }

  @MessagePattern('never')
  never(): Promise<never> {
    return new Promise(() => undefined);
  }
}

export interface TestNode {
  app: INestApplication;
  service: P2PService;
  node: Peer;
  controller: NodeController;
  id: string;
  address: string;
}

/** Compiles `metadata` into a Nest app, connects P2PServer the documented way, and starts it. */
export async function startApp(metadata: ModuleMetadata): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const app = moduleRef.createNestApplication({ logger: process.env.P2P_TEST_LOGS ? undefined : false });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  return app;
}

/** A real Nest app with P2PModule, wired the documented way, listening on 127.0.0.1. */
export async function startNode(options: P2POptions = {}, controllers: Type[] = [NodeController]): Promise<TestNode> {
  const app = await startApp({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', ...options })], controllers });
  const service = app.get(P2PService);
  return {
    app,
    service,
    node: app.get<Peer>(P2P_NODE),
    controller: app.get(NodeController),
    id: service.id,
    address: service.address()!,
  };
}

export async function connectAndWait(from: TestNode, to: TestNode): Promise<void> {
  await from.service.connect(`${to.id}@${to.address}`);
  const deadline = Date.now() + 5000;
  while (!to.service.peers().some((p) => p.id === from.id)) {
    if (Date.now() > deadline) throw new Error('peer never registered the connection');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Nest's own NATS transport spec, run on this transport: a controller written for Nest's NATS
 * transport (wildcard `@MessagePattern`s, a stream, an RpcException, two `@EventPattern`s on one
 * pattern, and the `ClientProxy` that calls them) runs with only its wiring changed, and with
 * the client and the handlers in different nodes (issue 24, "Tests that must exist").
 *
 * Ported from github.com/nestjs/nest (read through the code index, each file pinned to the
 * commit it was read at):
 * - integration/microservices/e2e/sum-nats.spec.ts @ cbd465966b02d5c31f53002052c38abd700df7b8
 *     'NATS transport': '/POST', '/POST (Promise/async)', '/POST (Observable stream)',
 *       '/POST (streaming)', '/POST (concurrent)', '/GET (exception)', '/POST (event notification)'
 *     (not '/POST (sending headers with "RecordBuilder")': NATS headers, see the controller)
 *   with integration/microservices/src/nats/nats.controller.ts @ 00e9421a3ba06b6a9602b2a5d86382cfc1f1a32e
 *   and  integration/microservices/src/nats/nats.service.ts    @ fe9c8d071cb9fa88dbd8864d49fa32cf39bfce6c
 *   (test/fixtures/nest-nats/: the lines that differ are marked there).
 *
 * Wiring. Nest's spec runs one app (`controllers: [NatsController], providers: [NatsService]`)
 * that serves HTTP and is connected to a NATS broker with `connectMicroservice({ transport:
 * Transport.NATS, options: { servers } })`; its client reaches its own handlers through the
 * broker. Here there is no broker. In the 'apart' layout the handlers run in other nodes than
 * the client (the 'together' layout, Nest's own, runs too: see below):
 * - two handler nodes: that module plus `P2PModule.forRoot({ listen, peers })`, connected with
 *   `connectMicroservice({ strategy: app.get(P2PServer) })` in place of the NATS options;
 * - the client side: that module as the HTTP app (its routes and the client they use), not
 *   connected as a microservice, so its handlers are not on the network (a node's own handler
 *   would count as one of the handlers, as a NATS queue group member on the client's host
 *   would), and beside it a node with no handlers (`P2PModule` alone, started last), which the
 *   controller's `P2PClient` without `peer` uses (the node of its process that started last).
 * supertest → global fetch against app.listen(0), with the same status and body assertions.
 * Every `expect` is Nest's; those added (marked "Added") say where the work was done. Nest's
 * fixed 1 s wait for the notification becomes a wait for the handlers, then 1 s.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { P2PModule, P2PServer, P2PService } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startApp } from '../nest-helpers.js';
import { NatsController } from '../fixtures/nest-nats/nats.controller.js';
import { NatsService } from '../fixtures/nest-nats/nats.service.js';

const quiet = { logger: process.env.P2P_TEST_LOGS ? undefined : (false as const) };

/**
 * 'apart' is the layout described above. 'together' is Nest's own: one app that serves HTTP and
 * is the node with the handlers (its client's requests answered by its own handlers, its events
 * delivered to itself, as NATS delivers to the sender's own subscriptions).
 */
describe.each(['apart', 'together'] as const)('NATS transport (%s)', (layout) => {
  let server: string;
  let app: INestApplication;
  let handlerNodes: INestApplication[];
  let clientNode: INestApplication | undefined;

  beforeEach(async () => {
    handlerNodes = [];
    clientNode = undefined;
    if (layout === 'together') {
      // Nest: connectMicroservice({ transport: Transport.NATS, options: { servers: 'nats://0.0.0.0:4222' } }).
      const module = await Test.createTestingModule({
        imports: [P2PModule.forRoot({ listen: '127.0.0.1:0' })],
        controllers: [NatsController],
        providers: [NatsService],
      }).compile();
      app = module.createNestApplication(quiet);
      app.connectMicroservice({ strategy: app.get(P2PServer) });
      await app.startAllMicroservices();
      await app.init();
      await app.listen(0, '127.0.0.1');
      handlerNodes.push(app);
    } else {
      for (let i = 0; i < 2; i++) {
        const seed = handlerNodes[0]?.get(P2PService);
        handlerNodes.push(
          await startApp({
            imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peers: seed ? [`${seed.id}@${seed.address()}`] : [] })],
            controllers: [NatsController],
            providers: [NatsService],
          }),
        );
      }
      const seed = handlerNodes[0]!.get(P2PService);
      clientNode = await startApp({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peers: [`${seed.id}@${seed.address()}`] })] });
      const node = clientNode.get(P2PService);
      // Until the client's node knows both handler nodes (requests would wait for the first one anyway).
      await waitFor(() => node.handlers('math.sum').length === 2 && node.handlers('notification', 'event').length === 2, 15_000, 'both handler nodes in the directory');

      const module = await Test.createTestingModule({
        controllers: [NatsController],
        providers: [NatsService],
      }).compile();

      app = module.createNestApplication(quiet);
      await app.listen(0, '127.0.0.1');
    }
    server = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  }, 40_000);

  function post(path: string, body: unknown): Promise<Response> {
    return fetch(`${server}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  async function expect200(res: Response, body: string): Promise<void> {
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(body);
  }

  /** Added: inbound requests and events each handler node's P2PServer took, by subject. */
  function watchHandlerNodes(): { requests: string[][]; events: string[][] } {
    const requests: string[][] = [];
    const events: string[][] = [];
    handlerNodes.forEach((node, i) => {
      const strategy = node.get(P2PServer);
      requests[i] = [];
      events[i] = [];
      const onRequest = strategy.onRequest.bind(strategy);
      const onEvent = strategy.onEvent.bind(strategy);
      vi.spyOn(strategy, 'onRequest').mockImplementation((peer, topic, ...rest) => (requests[i]!.push(topic), onRequest(peer, topic, ...rest)));
      vi.spyOn(strategy, 'onEvent').mockImplementation((peer, topic, ...rest) => (events[i]!.push(topic), onEvent(peer, topic, ...rest)));
    });
    return { requests, events };
  }

  it(`/POST`, async () => {
    const seen = watchHandlerNodes();
    await expect200(await post('/?command=math.sum', [1, 2, 3, 4, 5]), '15');
    // Added: answered by a handler node ('apart': the client's node has no handler).
    expect(seen.requests.flat()).toEqual(['math.sum']);
  });

  it(`/POST (Promise/async)`, async () => {
    const res = await post('/?command=async.sum', [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    await expect200(res, '15');
  });

  it(`/POST (Observable stream)`, async () => {
    await expect200(await post('/?command=stream.sum', [1, 2, 3, 4, 5]), '15');
  });

  it(`/POST (streaming)`, async () => {
    await expect200(await post('/stream', [1, 2, 3, 4, 5]), '15');
  });

  it(`/POST (concurrent)`, async () => {
    const seen = watchHandlerNodes();
    await expect200(
      await post('/concurrent', [
        Array.from({ length: 10 }, (v, k) => k + 1),
        Array.from({ length: 10 }, (v, k) => k + 11),
        Array.from({ length: 10 }, (v, k) => k + 21),
        Array.from({ length: 10 }, (v, k) => k + 31),
        Array.from({ length: 10 }, (v, k) => k + 41),
        Array.from({ length: 10 }, (v, k) => k + 51),
        Array.from({ length: 10 }, (v, k) => k + 61),
        Array.from({ length: 10 }, (v, k) => k + 71),
        Array.from({ length: 10 }, (v, k) => k + 81),
        Array.from({ length: 10 }, (v, k) => k + 91),
      ]),
      'true',
    );
    // Added: the ten requests, each run once, by the handler nodes.
    expect(seen.requests.flat()).toEqual(Array(10).fill('math.sum'));
  });

  it(`/GET (exception)`, async () => {
    const res = await fetch(`${server}/exception`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      message: 'test',
      status: 'error',
    });
  });

  it(`/POST (event notification)`, async () => {
    // Added: count the handlers' writes to Nest's static flags (every handler node's controller writes the same two).
    const writes = { IS_NOTIFIED: 0, IS_NOTIFIED2: 0 };
    for (const key of ['IS_NOTIFIED', 'IS_NOTIFIED2'] as const) {
      let value = false;
      Object.defineProperty(NatsController, key, { configurable: true, get: () => value, set: (v: boolean) => ((value = v), writes[key]++) });
    }
    const seen = watchHandlerNodes();
    await post('/notify', [1, 2, 3, 4, 5]);
    // Nest waits a fixed 1 s; here, until the handlers have run (at most 10 s: a busy machine), then 1 s for a duplicate to show.
    await waitFor(() => writes.IS_NOTIFIED >= handlerNodes.length && writes.IS_NOTIFIED2 >= handlerNodes.length, 10_000, 'both handlers on every handler node');
    await new Promise((r) => setTimeout(r, 1000));
    expect(NatsController.IS_NOTIFIED).toBe(true);
    expect(NatsController.IS_NOTIFIED2).toBe(true);
    // Added: each handler node took the event once, and ran both of its handlers once.
    expect(seen.events.map((topics) => topics.filter((t) => t === 'notification'))).toEqual(handlerNodes.map(() => ['notification']));
    expect(writes).toEqual({ IS_NOTIFIED: handlerNodes.length, IS_NOTIFIED2: handlerNodes.length });
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await app.close();
    await clientNode?.close();
    await Promise.all(handlerNodes.filter((node) => node !== app).map((node) => node.close()));
  });
});

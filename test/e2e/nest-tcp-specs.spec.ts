/**
 * Nest's own TCP transport specs, run against this transport: a Nest user's code should
 * behave with P2PServer/P2PClient as it does with `Transport.TCP`.
 *
 * Ported from github.com/nestjs/nest (read through the code index, one blob per file; the
 * whole snapshot was too large to fetch, so each file is pinned to the commit it was read at):
 *
 * - integration/microservices/e2e/packet-metadata-tcp.spec.ts @ 14b74ae705904626aa2bbe8ee30ad94f48d16381
 *     'Packet metadata (TCP)':
 *       'delivers what the dispatch hook attached to a request, beside the payload'   (Nest 12 only)
 *       'delivers it with an event as well'                                            (Nest 12 only)
 *       'leaves the context without metadata when no hook is set'
 *       'calls the hook once per packet, with the pattern and the data'                (Nest 12 only)
 * - integration/microservices/e2e/disconnected-client.spec.ts @ 11ac94e23e55755c9a1708658e2d0c378cfbf832
 *     'Disconnected client': 'TCP' (the REDIS/NATS/MQTT/RMQ cases are other transports)
 *   with integration/microservices/src/disconnected.controller.ts @ cf362d369b4db0ad59ce92d8575d06c8c006fd97
 * - integration/microservices/e2e/tcp-reconnect.spec.ts @ c845dd065240c70b659a9896f501e9665fdc384a
 *     'TCP client reconnect':
 *       'should preserve streamed responses after closing a connected socket and reconnecting'
 *       'should preserve streamed responses after closing a connecting socket and reconnecting'
 * - integration/microservices/e2e/sum-rpc.spec.ts @ 9b6b00f0debcedaec1b2ca2d6be56f2cb0216e57
 *     'RPC transport': '/POST', '/POST (Promise/async)', '/POST (Observable stream)',
 *       '/POST (useFactory client)', '/POST (useClass client)', '/POST (concurrent)',
 *       '/POST (streaming)', '/POST (pattern not found)', '/POST (event notification)'
 *     (not '/POST (custom client)' / '(standard client)': they need a ClientTCP subclass and an
 *     /error route that the app.controller.ts read here does not have)
 *   with integration/microservices/src/app.controller.ts @ 9940c6182ece24c8949a1adaa48d12d51727dc24
 *   and  integration/microservices/src/app.module.ts     @ c9e619e74a94752fbb8dc95d8890cc94802af356
 *
 * Only the wiring differs. Server: P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false })
 * and app.connectMicroservice({ strategy: app.get(P2PServer) }) (test/nest-helpers.ts startApp).
 * Client: a P2PClient (through ClientsModule, ClientProxyFactory or `new`, where Nest used
 * ClientsModule, ClientProxyFactory or `new ClientTCP`) for `<peerId>@<address>`.
 * `TcpContext` → `P2PContext`. supertest → global fetch against app.listen(0), with the same
 * status and body assertions. In tcp-reconnect, Nest's raw net server and its sockets map to a
 * P2P app and its connections: `serverSockets` are the server's inbound connections, `socketA`
 * and `socketB` the client's nodes (what `unwrap()` returns), `serverA.end()` is the server's
 * `disconnect(A)`, the server's three `sendMessage` calls are the 'stream' handler emitting
 * 'a', 'b' and completing. Every `expect` is Nest's.
 */
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { ClientProxy, ClientsModule, Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { createServer, type AddressInfo } from 'node:net';
import { firstValueFrom, from, lastValueFrom, mergeMap, Observable, of, timeout, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { P2PClient, P2PModule, P2PService, type P2PContext, type Peer } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startApp } from '../nest-helpers.js';
import { AppController } from '../fixtures/nest-tcp/app.controller.js';
import { AppModule } from '../fixtures/nest-tcp/app.module.js';
import { createdClients, DisconnectedClientController } from '../fixtures/nest-tcp/disconnected.controller.js';

/** Nest 12's dispatch hook; Nest 11's ClientProxy has none (and its packets no `metadata`). */
interface HookedPacket {
  pattern: unknown;
  data: unknown;
  metadata?: Record<string, string>;
}
type Hookable = { setOnDispatchHook(hook: (packet: HookedPacket) => void): void };
const hasDispatchHook = typeof (ClientProxy.prototype as Partial<Hookable>).setOnDispatchHook === 'function';
const NO_HOOK = 'ClientProxy#setOnDispatchHook (packet.metadata) is Nest 12+; this is Nest 11';
/** Runs on Nest 12; on Nest 11 it is skipped, and its title says why (Nest's title otherwise). */
const itNest12 = (name: string, fn: () => Promise<void>) =>
  it.skipIf(!hasDispatchHook)(hasDispatchHook ? name : `${name} [skipped: ${NO_HOOK}]`, fn);

/** The documented server wiring: a Nest app running P2PModule, connected as a microservice. */
async function startServer(imports: unknown[] = [], controllers: unknown[] = []): Promise<{ app: INestApplication; service: P2PService; peer: string }> {
  const app = await startApp({
    imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false }), ...(imports as never[])],
    controllers: controllers as never[],
  });
  const service = app.get(P2PService);
  return { app, service, peer: `${service.id}@${service.address()}` };
}

/** An HTTP app on 127.0.0.1 and an ephemeral port, for fetch() where Nest used supertest. */
async function startHttp(metadata: Parameters<typeof Test.createTestingModule>[0]): Promise<{ app: INestApplication; url: string }> {
  const module = await Test.createTestingModule(metadata).compile();
  const app = module.createNestApplication({ logger: process.env.P2P_TEST_LOGS ? undefined : false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

function post(url: string, body?: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// ---------------------------------------------------------------------------------------------
// packet-metadata-tcp.spec.ts

@Controller()
class MetadataController {
  static lastEventMetadata: Record<string, string> | undefined;
  static eventReceived: () => void = () => undefined;

  @MessagePattern('echo-metadata')
  echo(@Payload() data: unknown, @Ctx() context: P2PContext) {
    return { data, metadata: context.getMetadata() ?? null };
  }

  @EventPattern('record-metadata')
  record(@Ctx() context: P2PContext) {
    MetadataController.lastEventMetadata = context.getMetadata();
    MetadataController.eventReceived();
  }
}

@Module({ controllers: [MetadataController] })
class MetadataModule {}

describe('Packet metadata (TCP)', () => {
  let app: INestApplication;
  let clientApp: INestApplication;
  let client: ClientProxy;

  beforeEach(async () => {
    const server = await startServer([MetadataModule]);
    app = server.app;

    const module = await Test.createTestingModule({
      imports: [ClientsModule.register([{ name: 'METADATA', customClass: P2PClient, options: { peer: server.peer } }])],
    }).compile();
    clientApp = module.createNestApplication({ logger: false });
    await clientApp.init();
    client = clientApp.get<ClientProxy>('METADATA');
    await client.connect();
  });

  afterEach(async () => {
    await client.close();
    await clientApp.close();
    await app.close();
  });

  itNest12('delivers what the dispatch hook attached to a request, beside the payload', async () => {
    (client as unknown as Hookable).setOnDispatchHook((packet) => {
      packet.metadata = { 'x-request-id': 'trace-1' };
    });

    const reply = await firstValueFrom(client.send('echo-metadata', { orderId: 7 }));

    expect(reply).toEqual({
      data: { orderId: 7 },
      metadata: { 'x-request-id': 'trace-1' },
    });
  });

  itNest12('delivers it with an event as well', async () => {
    const received = new Promise<void>((resolve) => {
      MetadataController.eventReceived = resolve;
    });
    (client as unknown as Hookable).setOnDispatchHook((packet) => {
      packet.metadata = { 'x-request-id': 'trace-2' };
    });

    await firstValueFrom(client.emit('record-metadata', {}), {
      defaultValue: undefined,
    });
    await received;

    expect(MetadataController.lastEventMetadata).toEqual({
      'x-request-id': 'trace-2',
    });
  });

  it('leaves the context without metadata when no hook is set', async () => {
    const reply = await firstValueFrom(client.send('echo-metadata', 'plain'));

    expect(reply).toEqual({ data: 'plain', metadata: null });
  });

  itNest12('calls the hook once per packet, with the pattern and the data', async () => {
    const seen: unknown[] = [];
    (client as unknown as Hookable).setOnDispatchHook((packet) => {
      seen.push({ pattern: packet.pattern, data: packet.data });
    });

    await firstValueFrom(client.send('echo-metadata', 1));
    await firstValueFrom(client.send('echo-metadata', 2));

    expect(seen).toEqual([
      { pattern: 'echo-metadata', data: 1 },
      { pattern: 'echo-metadata', data: 2 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// disconnected-client.spec.ts ('TCP')

/** A port nothing listens on: Nest's TCP case dials the default localhost:3000 with no server. */
async function refusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('Disconnected client', () => {
  let url: string;
  let app: INestApplication;

  beforeEach(async () => {
    ({ app, url } = await startHttp({
      controllers: [DisconnectedClientController],
    }));
  });

  it(`TCP`, async () => {
    // Nest sends { transport: Transport.TCP }: a client for a peer that is down.
    const res = await post(`${url}/`, {
      options: { peer: `127.0.0.1:${await refusedPort()}` },
    });
    expect(res.status).toBe(408);
  });

  afterEach(async () => {
    await app.close();
    await Promise.all([...createdClients].map((client) => client.close()));
    createdClients.clear();
  });
});

// ---------------------------------------------------------------------------------------------
// tcp-reconnect.spec.ts

/** Nest's raw server answers 'stream' by hand once the old connection is gone; here a handler waits for the same go-ahead. */
let requestArrived: () => void = () => undefined;
let sendResponses: () => void = () => undefined;

@Controller()
class StreamController {
  @MessagePattern('stream')
  stream(): Observable<string> {
    const go = new Promise<void>((resolve) => (sendResponses = resolve));
    requestArrived();
    return from(go).pipe(mergeMap(() => of('a', 'b')));
  }
}

describe('TCP client reconnect', () => {
  let server: { app: INestApplication; service: P2PService; peer: string };
  let client: P2PClient;
  /** The server's inbound connections, by the id of the node that opened each. */
  let serverSockets: string[];
  let clientSockets: Peer[];
  let accepted: Promise<void>;

  beforeEach(async () => {
    serverSockets = [];
    clientSockets = [];
    server = await startServer([], [StreamController]);
    accepted = new Promise((resolve) => {
      server.service.events$.subscribe((event) => {
        if (event.type !== 'connected' || event.peer.direction !== 'inbound') return;
        serverSockets.push(event.peer.id);
        if (serverSockets.length === 2) {
          resolve();
        }
      });
    });
    client = new P2PClient({ peer: server.peer });
  });

  afterEach(async () => {
    await client?.close();
    // Also clean up nodes that a regression might leave running.
    await Promise.all(clientSockets.map((node) => node.close()));
    await server.app.close();
  });

  for (const closeWhileConnecting of [false, true]) {
    // Closing a connecting client: as with ClientTCP, the first connect() still resolves and its
    // connection reaches the server (2 connections) before close() ends it.
    it(`should preserve streamed responses after closing ${
      closeWhileConnecting ? 'a connecting' : 'a connected'
    } socket and reconnecting`, async () => {
      const connectA = client.connect();
      const socketA = client.unwrap<Peer>();
      clientSockets.push(socketA);
      if (!closeWhileConnecting) {
        await connectA;
      }

      // Nest: once(socketA, 'close'). Here: A's node stopped and the server no longer has it.
      const closedA = waitFor(
        () => !socketA.isRunning && !server.service.peers().some((p) => p.id === socketA.id),
        5000,
        'the first connection to close',
      );
      void client.close();
      const connectB = client.connect();
      const socketB = client.unwrap<Peer>();
      clientSockets.push(socketB);
      await Promise.all([connectA, connectB, accepted]);

      const serverA = serverSockets.find((id) => id === socketA.id)!;
      const serverB = serverSockets.find((id) => id === socketB.id)!;
      expect(serverB).toBeDefined();
      const request = new Promise<void>((resolve) => (requestArrived = resolve));
      // Handle rejection immediately, including when a stale close fails the
      // request before the server sends its response.
      const response = lastValueFrom(client.send<string>('stream', {}).pipe(timeout(5000), toArray())).then(
        (values) => ({ values }),
        (error: unknown) => ({ error }),
      );
      await request;

      // Nest: serverA.end()
      await server.service.disconnect(serverA).catch(() => undefined);
      await closedA;
      // Nest: sendMessage({ response: 'a' }), ({ response: 'b' }), ({ isDisposed: true })
      sendResponses();

      expect(await response).toEqual({ values: ['a', 'b'] });
      expect(client.unwrap<Peer>()).toBe(socketB);
      await client.connect();
      expect(client.unwrap<Peer>()).toBe(socketB);
      expect(serverSockets).toHaveLength(2);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// sum-rpc.spec.ts

describe('RPC transport', () => {
  let url: string;
  let app: INestApplication;
  let server: INestApplication;

  beforeEach(async () => {
    // Nest runs one app that is both the HTTP server and the TCP microservice on the default
    // port its clients dial. A P2P node's id and port are known only once it runs, so the
    // microservice side runs first (the same AppModule, its clients unused) and the HTTP app's
    // clients dial it.
    const serving = await startServer([AppModule.register('127.0.0.1:9')]);
    server = serving.app;
    ({ app, url } = await startHttp({
      imports: [AppModule.register(serving.peer)],
    }));
  });

  it(`/POST`, async () => {
    const res = await post(`${url}/?command=sum`, [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('15');
  });

  it(`/POST (Promise/async)`, async () => {
    const res = await post(`${url}/?command=asyncSum`, [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('15');
  });

  it(`/POST (Observable stream)`, async () => {
    const res = await post(`${url}/?command=streamSum`, [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('15');
  });

  it(`/POST (useFactory client)`, async () => {
    const res = await post(`${url}/useFactory?command=sum`, [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('15');
  });

  it(`/POST (useClass client)`, async () => {
    const res = await post(`${url}/useClass?command=sum`, [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('15');
  });

  it(`/POST (concurrent)`, async () => {
    const res = await post(`${url}/concurrent`, [
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
    ]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('true');
  });

  it(`/POST (streaming)`, async () => {
    const res = await post(`${url}/stream`, [1, 2, 3, 4, 5]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('15');
  });

  it(`/POST (pattern not found)`, async () => {
    const res = await post(`${url}/?command=test`);
    expect(res.status).toBe(500);
  });

  it(`/POST (event notification)`, async () => {
    // Nest: supertest's .end() then a 1000 ms timer, with a done callback (which vitest has not).
    await post(`${url}/notify`, [1, 2, 3, 4, 5]).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(AppController.IS_NOTIFIED).to.be.true;
  });

  afterEach(async () => {
    await app.close();
    await server.close();
  });
});

import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { silentLogger, type LogFields, type P2PLogger } from '../../src/core.js';
import { P2PConfigError, P2PListenError, P2PModule, P2PNotRunningError, P2PServer, P2PService, P2P_CONFIG, validateConfig, type P2POptions, type P2POptionsFactory } from '../../src/index.js';
import { connectAndWait, NodeController, startApp, startNode } from '../nest-helpers.js';

function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe('config', () => {
  it('fills defaults', () => {
    const config = validateConfig({});
    expect(config).toMatchObject({ listen: '127.0.0.1:0', peers: [], maxInbound: 40, maxOutbound: 24, maxFrameBytes: 4 * 1024 * 1024 });
  });

  it('fails fast naming every bad key', () => {
    let error: unknown;
    try {
      validateConfig({
        listen: 'nowhere',
        peers: ['127.0.0.1:1', 'zz@1.2.3.4:5'],
        maxInbound: -1,
        timeoutMs: 'soon',
        privateKey: 'not a key',
        maxFrameBytes: 1024,
        maxQueueBytes: 512,
        broadcastRepairFanout: 0,
        typo: true,
      } as never);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(P2PConfigError);
    const text = (error as P2PConfigError).problems.join('\n');
    for (const key of ['listen', 'peers', 'maxInbound', 'timeoutMs', 'privateKey', 'maxQueueBytes', 'broadcastRepairFanout', 'typo']) {
      expect(text).toContain(key);
    }
  });

  it('reports only the type error for a value of the wrong type, not the ranges it also fails', () => {
    const problems = (() => {
      try {
        validateConfig({ maxInbound: '40', maxQueueBytes: 'lots', listen: 42 } as never);
      } catch (err) {
        return (err as P2PConfigError).problems;
      }
      return [];
    })();
    expect(problems.filter((p) => p.startsWith('maxInbound:'))).toEqual(['maxInbound: maxInbound must be an integer number']);
    expect(problems.filter((p) => p.startsWith('maxQueueBytes:'))).toEqual(['maxQueueBytes: maxQueueBytes must be an integer number']);
    // A right type out of range still reports the range.
    expect(() => validateConfig({ maxInbound: -1 })).toThrow(/maxInbound must not be less than 0/);
  });

  it('stops the app from starting with a bad config', async () => {
    await expect(
      Test.createTestingModule({ imports: [P2PModule.forRoot({ maxOutbound: -5 })] }).compile(),
    ).rejects.toBeInstanceOf(P2PConfigError);
  });

  it('checks a logger: log, warn and error methods, debug optional (issue 23)', () => {
    expect(() => validateConfig({ logger: 'pino' } as never)).toThrow(/logger must be an object with log, warn and error methods/);
    expect(() => validateConfig({ logger: { log() {} } } as never)).toThrow(/missing: warn, error/);
    expect(() => validateConfig({ logger: { ...silentLogger, debug: true } } as never)).toThrow(/logger.debug must be a method/);
    expect(() => validateConfig({ logger: silentLogger })).not.toThrow();
  });

  it('a logger in the config gets every line with its LogFields, methods on its prototype included (issue 23)', async () => {
    class Recorder implements P2PLogger {
      readonly lines: Array<{ message: string; fields?: LogFields }> = [];
      log(message: string, fields?: LogFields): void {
        this.lines.push({ message, fields });
      }
      warn(message: string, fields?: LogFields): void {
        this.lines.push({ message, fields });
      }
      error(message: string, fields?: LogFields): void {
        this.lines.push({ message, fields });
      }
    }
    const logger = new Recorder();
    const a = await startNode({ logger });
    const b = await startNode();
    try {
      await connectAndWait(a, b);
      await new Promise((r) => setTimeout(r, 50));
      expect(logger.lines.find((l) => l.fields?.event === 'listening')!.message).toContain(a.address);
      const connected = logger.lines.find((l) => l.fields?.event === 'connected');
      expect(connected?.fields).toEqual({ event: 'connected', peerId: b.id, address: b.address });
      expect(logger.lines.every((l) => l.fields?.event)).toBe(true); // every core line names its event
    } finally {
      await Promise.all([a.app.close(), b.app.close()]);
    }
  });

  it('loads a fixed identity from a hex seed', () => {
    const seed = '11'.repeat(32);
    expect(validateConfig({ privateKey: seed }).privateKey).toBe(seed);
  });
});

describe('forRootAsync with @nestjs/config', () => {
  it('builds the node from ConfigService values', async () => {
    const peerNode = await startNode();
    @Injectable()
    class Probe {
      constructor(readonly p2p: P2PService) {}
    }
    @Module({ providers: [Probe] })
    class FeatureModule {}
    const app = await startApp({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ p2p: { listen: '127.0.0.1:0', peers: [peerNode.address], timeoutMs: 1234 } })] }),
        P2PModule.forRootAsync({
          isGlobal: true,
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => config.getOrThrow('p2p'),
        }),
        FeatureModule,
      ],
      controllers: [NodeController],
    });
    try {
      const probe = app.get(Probe);
      // Dialed the configured peer at start.
      expect(probe.p2p.peers().map((p) => p.id)).toEqual([peerNode.id]);
      expect(await probe.p2p.request(peerNode.id, 'echo', 'via config')).toBe('via config');
    } finally {
      await app.close();
      await peerNode.app.close();
    }
  });
});

describe('forRootAsync with useClass / useExisting', () => {
  @Injectable()
  class P2POptionsFromConfig implements P2POptionsFactory {
    constructor(private readonly config: ConfigService) {}
    createP2POptions(): P2POptions {
      return this.config.getOrThrow('p2p');
    }
  }
  const settings = () => ({ p2p: { listen: '127.0.0.1:0', timeoutMs: 4321 } });

  it('useClass: the module instantiates the class, with its dependencies', async () => {
    const app = await startApp({
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [settings] }),
        P2PModule.forRootAsync({ useClass: P2POptionsFromConfig }),
      ],
    });
    try {
      expect(app.get(P2PService).address()).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(app.get(P2P_CONFIG).timeoutMs).toBe(4321);
    } finally {
      await app.close();
    }
  });

  it('useExisting: uses a provider from imports', async () => {
    @Module({ imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [settings] })], providers: [P2POptionsFromConfig], exports: [P2POptionsFromConfig] })
    class OptionsModule {}
    const app = await startApp({ imports: [P2PModule.forRootAsync({ imports: [OptionsModule], useExisting: P2POptionsFromConfig })] });
    try {
      expect(app.get(P2P_CONFIG).timeoutMs).toBe(4321);
    } finally {
      await app.close();
    }
  });

  it('needs exactly one of useFactory, useClass, useExisting', () => {
    expect(() => P2PModule.forRootAsync({})).toThrow(/exactly one of useFactory, useClass, useExisting/);
  });
});

describe('lifecycle', () => {
  it.each([
    { why: 'EADDRINUSE: the port is taken', code: 'EADDRINUSE', listen: (taken: string) => taken },
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): not an address of this host.
    { why: 'EADDRNOTAVAIL: not an address of this host', code: 'EADDRNOTAVAIL', listen: () => '192.0.2.1:0' },
  ])('fails app.startAllMicroservices() with a P2PListenError naming the address ($why)', async ({ code, listen }) => {
    const holder = await startNode();
    const address = listen(holder.address);
    const moduleRef = await Test.createTestingModule({ imports: [P2PModule.forRoot({ listen: address })] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      app.connectMicroservice({ strategy: app.get(P2PServer) });
      const err = await app.startAllMicroservices().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(P2PListenError);
      expect(err).toMatchObject({ code, p2pCode: 'P2P_LISTEN', listenAddress: address });
      expect((err as Error).message).toContain(`cannot listen on ${address}`);
    } finally {
      await app.close();
      await holder.app.close();
    }
  });

  it('rejects calls before the microservice is started', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [P2PModule.forRoot()] }).compile();
    const service = moduleRef.get(P2PService);
    expect(service.id).toMatch(/^[0-9a-f]{40}$/);
    await expect(service.send('0'.repeat(40), 'x', 1)).rejects.toBeInstanceOf(P2PNotRunningError);
    await moduleRef.close();
  });

  it('leaves no sockets, servers or timers behind after app.close()', async () => {
    const baseline = handles();
    const [a, b, c] = await Promise.all([startNode({ pingIntervalMs: 50 }), startNode({ pingIntervalMs: 50 }), startNode()]);
    await connectAndWait(a!, b!);
    await connectAndWait(b!, c!);
    await connectAndWait(c!, a!);
    await a!.service.broadcast('note', 'bye soon');
    expect(await a!.service.request(b!.id, 'echo', 1)).toBe(1);
    await new Promise((r) => setTimeout(r, 120)); // let a few pings run
    const during = handles();
    expect(during.TCPSocketWrap ?? 0).toBeGreaterThanOrEqual(6);
    await Promise.all([a, b, c].map((n) => n!.app.close()));
    await new Promise((r) => setImmediate(r));
    const after = handles();
    for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout']) {
      expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(baseline[kind] ?? 0);
    }
  });
});

describe('an app that never starts the node (no connectMicroservice)', () => {
  it('fails the first send, connect and broadcast with P2PNotRunningError naming what is missing', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0' })] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init(); // app.connectMicroservice({ strategy: app.get(P2PServer) }) + startAllMicroservices() forgotten
    try {
      const service = app.get(P2PService);
      const missing = /node is new: it was never started\. In a Nest app, add app\.connectMicroservice\(\{ strategy: app\.get\(P2PServer\) \}\) and await app\.startAllMicroservices\(\)/;
      for (const call of [() => service.send('a'.repeat(40), 'x', 1), () => service.connect('127.0.0.1:1'), () => service.broadcast('x', 1)]) {
        const err = await Promise.resolve().then(() => call() as Promise<unknown>).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(P2PNotRunningError);
        expect((err as Error).message).toMatch(missing);
      }
    } finally {
      await app.close();
    }
  });
});

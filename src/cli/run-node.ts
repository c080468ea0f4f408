import 'reflect-metadata';
import { Module, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { readFileSync } from 'node:fs';
import { P2PConfigError } from '../common/errors.js';
import { validateConfig, type P2POptions } from '../nest/p2p.config.js';
import { P2PModule } from '../nest/p2p.module.js';
import { P2PServer } from '../nest/p2p.server.js';
import { P2PService } from '../nest/p2p.service.js';
import type { Peer } from '../node/peer.js';
import { P2P_NODE } from '../nest/p2p.constants.js';
import { isLoopback, parseAdminListen, startAdminServer, type AdminServer } from './admin-server.js';
import { CliLogger, logLevelsUpTo, type CliLogLevel } from './cli-logger.js';

export interface RunNodeOptions {
  config?: string;
  listen?: string;
  peer?: string[];
  keyFile?: string;
  peerStore?: string;
  externalAddress?: string;
  json: boolean;
  /** The most verbose level printed (default 'log': no debug lines). */
  logLevel?: CliLogLevel;
  /** Debug lines too (peer exchange, redials, refusals): `logLevel` 'debug'. */
  verbose?: boolean;
  /** `--admin-listen`: serve the read-only admin endpoint here (off when undefined). */
  adminListen?: string;
}

/** Reads the config file and applies the command-line overrides; throws P2PConfigError when invalid. */
export function loadNodeConfig(options: RunNodeOptions): P2POptions {
  let fromFile: Record<string, unknown> = {};
  if (options.config) {
    try {
      fromFile = JSON.parse(readFileSync(options.config, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new P2PConfigError([`${options.config}: ${(err as Error).message}`]);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  if (options.listen !== undefined) merged.listen = options.listen;
  if (options.peer !== undefined) merged.peers = options.peer;
  if (options.externalAddress !== undefined) merged.externalAddress = options.externalAddress;
  if (options.peerStore !== undefined) merged.peerStoreFile = options.peerStore;
  if (options.keyFile !== undefined) {
    merged.privateKeyFile = options.keyFile;
    delete merged.privateKey;
  }
  validateConfig(merged); // the same checks as P2PModule.forRoot, reported before anything starts
  return merged as P2POptions;
}

/** Starts a standalone node and resolves with the exit code once it has stopped. */
export async function runNode(options: RunNodeOptions): Promise<number> {
  const level = options.verbose && (options.logLevel ?? 'log') !== 'verbose' ? 'debug' : (options.logLevel ?? 'log');
  // A boolean: isTTY is undefined when stdout is redirected, and Nest then took the default (colours) into the file.
  const colors = !options.json && process.stdout.isTTY === true;
  const logger = new CliLogger('nestjs-p2p', { json: options.json, colors, logLevels: logLevelsUpTo(level) });
  let config: P2POptions;
  try {
    config = loadNodeConfig(options);
  } catch (err) {
    if (!(err instanceof P2PConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }

  const admin = options.adminListen === undefined ? undefined : parseAdminListen(options.adminListen);
  if (typeof admin === 'string') {
    process.stderr.write(`--admin-listen: ${admin}\n`);
    return 2;
  }
  // /metrics reuses nestjs-p2p/metrics, in a registry of its own, when the optional prom-client is installed.
  const metrics = admin ? await loadMetrics(logger) : undefined;

  @Module({ imports: [P2PModule.forRoot({ ...config, logger: logger.p2pLogger() })], providers: metrics?.providers ?? [] })
  class StandaloneNodeModule {}

  // A microservice app, not an HTTP one: the node serves no HTTP, so it needs no HTTP driver
  // (@nestjs/platform-express), which the README's install does not list.
  const app = await NestFactory.createMicroservice(StandaloneNodeModule, {
    logger,
    inject: [P2PServer],
    useFactory: (server: P2PServer) => ({ strategy: server }),
  });
  const service = app.get(P2PService);
  // Connects and disconnects are logged by the node itself (context P2P): logging events$ here too doubled each line.
  await app.listen();
  let adminServer: AdminServer | undefined;
  if (admin) {
    adminServer = await startAdminServer(admin, { node: app.get<Peer>(P2P_NODE), minPeers: config.minPeers ?? 0, listens: config.listen !== undefined && config.listen !== null, metrics: metrics?.read });
    const reach = isLoopback(admin.host) ? 'loopback only' : 'NOT loopback: reachable from other hosts';
    logger.log(`admin endpoint at http://${adminServer.address}/ (${reach}; read-only: /metrics, /health, /peers, /topology)`);
  }
  logger.log(`ready: id ${service.id}, address ${service.address() ?? 'not listening'}`);

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.log(`${signal}: closing`);
      Promise.all([adminServer?.close(), app.close()]).then(
        () => resolve(0),
        (err: Error) => {
          logger.error(`close failed: ${err.message}`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** P2PMetrics and its registry as providers, or undefined (with a log line) when prom-client is not installed. */
async function loadMetrics(logger: CliLogger): Promise<{ providers: Provider[]; read: () => Promise<string> } | undefined> {
  try {
    const { Registry } = await import('prom-client');
    const { P2PMetrics, P2P_METRICS_REGISTRY } = await import('../nest/p2p.metrics.js');
    const registry = new Registry();
    return { providers: [P2PMetrics, { provide: P2P_METRICS_REGISTRY, useValue: registry }], read: () => registry.metrics() };
  } catch {
    logger.log('admin endpoint: /metrics off (it needs prom-client: npm install prom-client)');
    return undefined;
  }
}

import { Module, type DynamicModule, type FactoryProvider, type ModuleMetadata, type Provider, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Peer } from '../node/peer.js';
import { P2PConfig, validateConfig, type P2POptions } from './p2p.config.js';
import { P2P_CONFIG, P2P_NODE, P2P_OPTIONS } from './p2p.constants.js';
import { NestP2PLogger } from './nest-p2p-logger.js';
import { P2PServer } from './p2p.server.js';
import { P2PService } from './p2p.service.js';
import { P2PValidatorExplorer } from './p2p.validators.js';

/** What `P2PModule.forRoot` takes: the config keys (P2PConfig, docs/configuration.md) and `isGlobal`. */
export interface P2PModuleOptions extends P2POptions {
  /** Register the module globally, so that P2PService, P2PServer, P2PHealthIndicator and P2PMetrics resolve in every module (default false). */
  isGlobal?: boolean;
}

/** What `forRootAsync({ useClass })` / `{ useExisting }` takes, as with Nest's own modules. */
export interface P2POptionsFactory {
  /** Returns (or resolves to) the config keys; called once, at start-up. */
  createP2POptions(): P2POptions | Promise<P2POptions>;
}

/** Exactly one of `useFactory`, `useClass`, `useExisting`. */
export interface P2PModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Register the module globally, as with `forRoot` (default false). */
  isGlobal?: boolean;
  /** For `useFactory`. */
  inject?: FactoryProvider['inject'];
  /** Returns (or resolves to) the config keys, given the providers listed in `inject`. */
  useFactory?: (...args: any[]) => P2POptions | Promise<P2POptions>;
  /** A class the module instantiates (with its own dependencies) to get the options. */
  useClass?: Type<P2POptionsFactory>;
  /** A provider already in scope (from `imports`) that gives the options. */
  useExisting?: Type<P2POptionsFactory>;
}

const coreProviders: Provider[] = [
  { provide: P2P_CONFIG, useFactory: (options: P2POptions) => validateConfig(options), inject: [P2P_OPTIONS] },
  {
    provide: P2P_NODE,
    // validateConfig checked options.logger; it is not part of P2PConfig (it is not data).
    useFactory: (config: P2PConfig, options: P2POptions) => new Peer({ ...config, logger: options.logger ?? new NestP2PLogger() }),
    inject: [P2P_CONFIG, P2P_OPTIONS],
  },
  P2PServer,
  P2PService,
  P2PValidatorExplorer,
];

const exported = [P2PService, P2PServer, P2P_NODE, P2P_CONFIG];

/**
 * Makes the app a peer: `P2PModule.forRoot(config)` or `forRootAsync(...)`.
 * A bad config fails the app's start-up with a P2PConfigError naming every bad key.
 */
@Module({})
export class P2PModule {
  /** The module with config known at import time; a bad key fails the app's start-up. */
  static forRoot(options: P2PModuleOptions = {}): DynamicModule {
    const { isGlobal, ...config } = options;
    return {
      module: P2PModule,
      global: isGlobal ?? false,
      imports: [DiscoveryModule],
      providers: [{ provide: P2P_OPTIONS, useValue: config }, ...coreProviders],
      exports: exported,
    };
  }

  /** The module with config from a factory or provider (ConfigService, for one); throws unless exactly one `use…` is given. */
  static forRootAsync(options: P2PModuleAsyncOptions): DynamicModule {
    return {
      module: P2PModule,
      global: options.isGlobal ?? false,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [...optionsProviders(options), ...coreProviders],
      exports: exported,
    };
  }
}

function optionsProviders(options: P2PModuleAsyncOptions): Provider[] {
  const given = [options.useFactory, options.useClass, options.useExisting].filter((use) => use !== undefined);
  if (given.length !== 1) throw new Error('P2PModule.forRootAsync needs exactly one of useFactory, useClass, useExisting');
  if (options.useFactory) return [{ provide: P2P_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  const factory = (options.useClass ?? options.useExisting)!;
  const fromFactory: Provider = { provide: P2P_OPTIONS, useFactory: (f: P2POptionsFactory) => f.createP2POptions(), inject: [factory] };
  // useClass: the module owns the class; useExisting: it must come from `imports`.
  return options.useClass ? [options.useClass, fromFactory] : [fromFactory];
}

import { Logger, Module, type DynamicModule, type FactoryProvider, type ModuleMetadata, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Peer } from '../core/peer.js';
import { P2PConfig, validateConfig, type P2POptions } from './p2p.config.js';
import { P2P_CONFIG, P2P_NODE, P2P_OPTIONS } from './p2p.constants.js';
import { P2PServer } from './p2p.server.js';
import { P2PService } from './p2p.service.js';
import { P2PValidatorExplorer } from './p2p.validators.js';

export interface P2PModuleOptions extends P2POptions {
  /** Register the module globally, so P2PService is injectable everywhere. */
  isGlobal?: boolean;
}

export interface P2PModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  isGlobal?: boolean;
  inject?: FactoryProvider['inject'];
  useFactory: (...args: any[]) => P2POptions | Promise<P2POptions>;
}

const coreProviders: Provider[] = [
  { provide: P2P_CONFIG, useFactory: (options: P2POptions) => validateConfig(options), inject: [P2P_OPTIONS] },
  {
    provide: P2P_NODE,
    useFactory: (config: P2PConfig) => new Peer({ ...config, logger: new Logger('P2P') }),
    inject: [P2P_CONFIG],
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

  static forRootAsync(options: P2PModuleAsyncOptions): DynamicModule {
    return {
      module: P2PModule,
      global: options.isGlobal ?? false,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        { provide: P2P_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        ...coreProviders,
      ],
      exports: exported,
    };
  }
}

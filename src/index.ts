// Decorators in this package record metadata at import time.
import 'reflect-metadata';

export * from './core/index.js';
export { P2PConfig, validateConfig, type P2POptions } from './nest/p2p.config.js';
export { P2P_CONFIG, P2P_NODE, P2P_OPTIONS, P2P_TRANSPORT } from './nest/p2p.constants.js';
export { P2PClient, type P2PClientOptions } from './nest/p2p.client.js';
export { P2PContext } from './nest/p2p.context.js';
export { P2PModule, type P2PModuleAsyncOptions, type P2PModuleOptions, type P2POptionsFactory } from './nest/p2p.module.js';
export { NO_MESSAGE_HANDLER, P2PServer } from './nest/p2p.server.js';
export { P2PService, type P2PPattern } from './nest/p2p.service.js';
export { BroadcastValidator } from './nest/p2p.validators.js';

/**
 * `nestjs-p2p`: the peer-to-peer transport for NestJS. The Nest module, service, client, server
 * and context, plus everything of `nestjs-p2p/core` (the node, its options, events, errors and
 * identities).
 *
 * @packageDocumentation
 */
// Decorators in this package record metadata at import time.
import 'reflect-metadata';

export * from './core.js';
export { P2PConfig, validateConfig, type P2POptions } from './nest/p2p.config.js';
export { P2P_CONFIG, P2P_NODE, P2P_OPTIONS, P2P_TRANSPORT } from './nest/p2p.constants.js';
export { P2PClient, type P2PClientOptions } from './nest/p2p.client.js';
export { P2PContext } from './nest/p2p.context.js';
export { P2PModule, type P2PModuleAsyncOptions, type P2PModuleOptions, type P2POptionsFactory } from './nest/p2p.module.js';
export { NO_MESSAGE_HANDLER, P2PServer, type P2PServerEvents } from './nest/p2p.server.js';
export { P2PService, type P2PPattern } from './nest/p2p.service.js';
export { BroadcastValidator } from './nest/p2p.validators.js';

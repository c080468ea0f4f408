import { Inject, Injectable, SetMetadata, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { BroadcastToValidate, BroadcastVerdict } from '../broadcast/pipeline.js';
import type { Peer } from '../node/peer.js';
import { P2P_NODE } from './p2p.constants.js';
import { route, type P2PPattern } from './p2p.route.js';

const BROADCAST_VALIDATOR = 'nestjs-p2p:broadcast-validator';

/**
 * Marks a provider or controller method as the validator of network broadcasts
 * on `pattern`, as gossipsub's topic validators: it gets the broadcast (its
 * decoded data, proven origin, relaying neighbour) after the origin's signature
 * and budget are checked, and returns (or resolves to) 'accept' (deliver and
 * relay), 'ignore' (drop) or 'reject' (drop, and the neighbour that relayed it
 * loses score). A throw counts as 'ignore' and is logged.
 *
 * ```ts
 * @BroadcastValidator('orders.created')
 * check(b: BroadcastToValidate): BroadcastVerdict {
 *   return isOrder(b.data) ? 'accept' : 'reject';
 * }
 * ```
 */
export function BroadcastValidator(pattern: P2PPattern): MethodDecorator {
  return SetMetadata(BROADCAST_VALIDATOR, route(pattern));
}

type ValidatorMethod = (broadcast: BroadcastToValidate) => BroadcastVerdict | Promise<BroadcastVerdict>;

/** Finds every `@BroadcastValidator` method at start-up and registers it with the node. */
@Injectable()
export class P2PValidatorExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    @Inject(P2P_NODE) private readonly node: Peer,
  ) {}

  onModuleInit(): void {
    const seen = new Map<string, string>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[name];
        const topic: unknown = typeof method === 'function' ? Reflect.getMetadata(BROADCAST_VALIDATOR, method) : undefined;
        if (typeof topic !== 'string') continue;
        const where = `${instance.constructor.name}.${name}`;
        if (seen.has(topic)) throw new Error(`two @BroadcastValidator methods for "${topic}": ${seen.get(topic)} and ${where}`);
        seen.set(topic, where);
        const bound = (method as ValidatorMethod).bind(instance);
        this.node.setBroadcastValidator(topic, (broadcast) => bound(broadcast));
      }
    }
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { Peer } from '../node/peer.js';
import type { P2PConfig } from './p2p.config.js';
import { P2P_CONFIG, P2P_NODE } from './p2p.constants.js';

/**
 * A @nestjs/terminus health indicator: up when the node is running, listening (if
 * it was configured to), and connected to at least `minPeers` peers. Imported from
 * `nestjs-p2p/health`, so that apps without @nestjs/terminus never load it.
 */
@Injectable()
export class P2PHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(P2P_NODE) private readonly node: Peer,
    @Inject(P2P_CONFIG) private readonly config: P2PConfig,
  ) {}

  /**
   * The node's health under `key` (default `p2p`), for `HealthCheckService.check`, with its `id`, `address`,
   * `peers` (connected), `minPeers` and `running` as details; `options.minPeers` overrides the configured one.
   */
  isHealthy<const Key extends string = 'p2p'>(key: Key = 'p2p' as Key, options: { minPeers?: number } = {}) {
    const minPeers = options.minPeers ?? this.config.minPeers;
    const peers = this.node.peers().length;
    const address = this.node.address();
    const details = {
      /** This node's peer id. */
      id: this.node.id,
      /** The `host:port` it listens on, or null when it does not listen. */
      address,
      /** How many peers are connected. */
      peers,
      /** The fewest connected peers for the node to be up. */
      minPeers,
      /** Whether the node is started and not closed. */
      running: this.node.isRunning,
    };
    const listening = this.config.listen === undefined || this.config.listen === null || address !== null;
    const check = this.health.check(key);
    return this.node.isRunning && listening && peers >= minPeers ? check.up(details) : check.down(details);
  }
}

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

  isHealthy<const Key extends string = 'p2p'>(key: Key = 'p2p' as Key, options: { minPeers?: number } = {}) {
    const minPeers = options.minPeers ?? this.config.minPeers;
    const peers = this.node.peers().length;
    const address = this.node.address();
    const details = { id: this.node.id, address, peers, minPeers, running: this.node.isRunning };
    const listening = this.config.listen === undefined || this.config.listen === null || address !== null;
    const check = this.health.check(key);
    return this.node.isRunning && listening && peers >= minPeers ? check.up(details) : check.down(details);
  }
}

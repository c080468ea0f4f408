import { BaseRpcContext } from '@nestjs/microservices';
import type { PeerInfo } from '../core/types.js';

/** `@Ctx() ctx: P2PContext` in a handler: who sent the message, and under which pattern. */
export class P2PContext extends BaseRpcContext<[PeerInfo, string]> {
  /** The sending peer (id, addresses, direction, round-trip time). */
  getPeer(): PeerInfo {
    return this.args[0];
  }

  /** The normalised pattern the message was sent to. */
  getPattern(): string {
    return this.args[1];
  }
}

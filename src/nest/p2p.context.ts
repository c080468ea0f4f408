import { BaseRpcContext } from '@nestjs/microservices';
import type { Metadata } from '../wire/metadata.js';
import type { BroadcastMeta, PeerInfo } from '../common/types.js';

/** `@Ctx() ctx: P2PContext` in a handler: who sent the message, and under which pattern. */
export class P2PContext extends BaseRpcContext<[PeerInfo, string, BroadcastMeta | undefined, Metadata?]> {
  /** The sending peer (id, addresses, direction, round-trip time); for a network broadcast, the neighbour that relayed it. */
  getPeer(): PeerInfo {
    return this.args[0];
  }

  /** The normalised pattern the message was sent to. */
  getPattern(): string {
    return this.args[1];
  }

  /** For a network-wide broadcast: its id, the originating peer id and the hop count; otherwise undefined. */
  getBroadcast(): BroadcastMeta | undefined {
    return this.args[2];
  }

  /**
   * The metadata the sender attached, if any (as Nest's `TcpContext.getMetadata()`): from a
   * `P2PClient` whose dispatch hook set `packet.metadata`, or `{ metadata }` on P2PService calls.
   * For a network broadcast it is the origin's, signed with the rest.
   */
  getMetadata(): Metadata | undefined {
    return this.args[3];
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type WritePacket } from '@nestjs/microservices';
import type { InboundHandler, Peer } from '../core/peer.js';
import type { ReplySink } from '../core/socket.js';
import type { BroadcastMeta, PeerEvent, PeerInfo } from '../core/types.js';
import { P2P_NODE, P2P_TRANSPORT } from './p2p.constants.js';
import { P2PContext } from './p2p.context.js';
import { registerNode, unregisterNode } from './p2p.registry.js';

/** What a caller receives for a pattern this node has no @MessagePattern for. */
export const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

type P2PServerEvents = { peer: (event: PeerEvent) => void };

/**
 * The custom transport strategy: owns the node's lifecycle (`listen` starts it,
 * `close` stops it) and routes inbound frames to @MessagePattern / @EventPattern
 * handlers. Wire it with `app.connectMicroservice({ strategy: app.get(P2PServer) })`.
 */
@Injectable()
export class P2PServer extends Server<P2PServerEvents> implements CustomTransportStrategy, InboundHandler {
  override transportId = P2P_TRANSPORT;

  constructor(@Inject(P2P_NODE) private readonly node: Peer) {
    super();
    node.setHandler(this);
  }

  listen(callback: (...optionalParams: unknown[]) => void): void {
    this.node.start().then(
      () => {
        registerNode(this.node);
        callback();
      },
      (err: unknown) => callback(err),
    );
  }

  async close(): Promise<void> {
    unregisterNode(this.node);
    await this.node.close();
  }

  /** `peer` events: connected / disconnected (also on P2PService.events$). */
  on<K extends keyof P2PServerEvents>(event: K, callback: P2PServerEvents[K]): void {
    this.node.on(event, callback);
  }

  /**
   * Topics arrive already normalised (the sender normalised its pattern the way
   * Nest does), so a registered route is used as is. Nest's own lookup tries
   * JSON.parse first, and a throw per message for every plain string pattern
   * cost a third of the receiver's CPU in the benchmark.
   */
  protected override getRouteFromPattern(pattern: string): string {
    return this.getHandlers().has(pattern) ? pattern : super.getRouteFromPattern(pattern);
  }

  /** The transport core's node. */
  unwrap<T>(): T {
    return this.node as T;
  }

  onEvent(peer: PeerInfo, topic: string, data: unknown, broadcast?: BroadcastMeta): Promise<unknown> {
    return this.handleEvent(topic, { pattern: topic, data }, new P2PContext([peer, topic, broadcast]));
  }

  onRequest(peer: PeerInfo, topic: string, data: unknown, reply: ReplySink): void {
    const handler = this.getHandlerByPattern(topic);
    if (!handler || handler.isEventHandler) {
      reply.error({ status: 'error', message: `${NO_MESSAGE_HANDLER} Pattern: ${topic}` });
      return;
    }
    const context = new P2PContext([peer, topic, undefined]);
    Promise.resolve()
      .then(() => handler(data, context))
      .then(
        (result) => this.send(this.transformToObservable(result), (packet) => deliver(packet, reply)),
        (err: unknown) => reply.error(err),
      );
  }
}

/** Maps Nest's reply packets onto the reply stream: values, then end or error. */
function deliver(packet: WritePacket, reply: ReplySink): void {
  if (packet.err !== undefined) {
    reply.error(packet.err);
    return;
  }
  if ('response' in packet) reply.next(packet.response);
  if (packet.isDisposed) reply.complete();
}

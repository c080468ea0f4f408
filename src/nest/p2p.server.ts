import { Inject, Injectable } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type MessageHandler, type WritePacket } from '@nestjs/microservices';
import { connectable, isObservable, Subject, type Observable } from 'rxjs';
import type { Metadata } from '../wire/metadata.js';
import type { InboundHandler, Peer } from '../node/peer.js';
import type { ReplySink } from '../connection/socket.js';
import type { BroadcastMeta, PeerEvent, PeerInfo } from '../common/types.js';
import { P2P_NODE, P2P_TRANSPORT } from './p2p.constants.js';
import { P2PContext } from './p2p.context.js';
import { registerNode, unregisterNode } from './p2p.registry.js';

/** What a caller receives for a pattern this node has no `@MessagePattern` for. */
export const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

/** The events `P2PServer.on` takes. */
export type P2PServerEvents = {
  /** A peer connected or disconnected. */
  peer: (event: PeerEvent) => void;
};

/**
 * The custom transport strategy: owns the node's lifecycle (`listen` starts it,
 * `close` stops it) and routes inbound frames to `@MessagePattern` / `@EventPattern`
 * handlers. Wire it with `app.connectMicroservice({ strategy: app.get(P2PServer) })`.
 */
@Injectable()
export class P2PServer extends Server<P2PServerEvents> implements CustomTransportStrategy, InboundHandler {
  override transportId = P2P_TRANSPORT;
  /** Nest's no-op start hook; while it and the end hook are unset, handlers are called without the hook wrappers. */
  private readonly noStartHook = this.onProcessingStartHook;

  constructor(@Inject(P2P_NODE) private readonly node: Peer) {
    super();
    node.setHandler(this);
  }

  listen(callback: (...optionalParams: unknown[]) => void): void {
    try {
      this.publishPatterns();
    } catch (err) {
      return callback(err);
    }
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

  /**
   * Nest's registration of a handler; the node's directory record follows, so that a handler
   * added while the app runs is found by pattern from other nodes too (docs/directory.md).
   */
  override addHandler(pattern: unknown, callback: MessageHandler, isEventHandler = false, extras: Record<string, unknown> = {}): void {
    super.addHandler(pattern, callback, isEventHandler, extras);
    // Before listen() the record is made there, once: Nest registers handlers one by one at init.
    if (this.node.isRunning) this.publishPatterns();
  }

  /** This node's directory record from its registered handlers: their routes, by kind. */
  private publishPatterns(): void {
    const requests: string[] = [];
    const events: string[] = [];
    for (const [route, handler] of this.getHandlers()) (handler.isEventHandler ? events : requests).push(route);
    this.node.setHandledPatterns({ requests, events });
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

  /** True while nobody has set Nest's processing hooks (tracing, for one), the usual case. */
  private get hooksUnset(): boolean {
    return this.onProcessingStartHook === this.noStartHook && !this.onProcessingEndHook;
  }

  onEvent(peer: PeerInfo, topic: string, data: unknown, broadcast?: BroadcastMeta, metadata?: Metadata): unknown {
    // A node relays network broadcasts on every topic; having no handler for one is normal, not an error to log.
    if (broadcast && !this.getHandlerByPattern(topic)) return undefined;
    const context = new P2PContext([peer, topic, broadcast, metadata]);
    const handler = this.hooksUnset && this.getHandlerByPattern(topic);
    // Server.handleEvent does the same work inside two async wrappers for the hooks; without
    // hooks those wrappers were a quarter of the receiver's time per event (see bench/README.md).
    if (!handler) return this.handleEvent(topic, { pattern: topic, data, metadata } as { pattern: string; data: unknown }, context);
    const result = handler(data, context);
    return result instanceof Promise ? result.then(connectStream) : connectStream(result);
  }

  /** An inbound request: runs its `@MessagePattern` handler into `reply`; a pattern with none gets NO_MESSAGE_HANDLER as an error. */
  onRequest(peer: PeerInfo, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void {
    const handler = this.getHandlerByPattern(topic);
    if (!handler || handler.isEventHandler) {
      reply.error({ status: 'error', message: `${NO_MESSAGE_HANDLER} Pattern: ${topic}` });
      return;
    }
    const context = new P2PContext([peer, topic, undefined, metadata]);
    if (this.hooksUnset) return this.answer(handler, data, context, reply);
    // With hooks set: the start hook wraps the handler, the end hook runs once the reply has ended.
    void this.onProcessingStartHook(this.transportId, context, async () => {
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        this.onProcessingEndHook?.(this.transportId, context);
      };
      this.answer(handler, data, context, {
        next: (value) => reply.next(value),
        error: (err) => {
          reply.error(err);
          end();
        },
        complete: () => {
          reply.complete();
          end();
        },
      });
    });
  }

  private answer(handler: MessageHandler, data: unknown, context: P2PContext, reply: ReplySink): void {
    let result: unknown;
    try {
      result = handler(data, context);
    } catch (err) {
      reply.error(err);
      return;
    }
    if (result instanceof Promise) result.then((value: unknown) => this.respond(value, reply), (err: unknown) => reply.error(err));
    else this.respond(result, reply);
  }

  /**
   * A plain value (what Nest's handler proxy resolves to when there are no interceptors)
   * is answered at once; a stream goes through Nest's `send`, which handles its values,
   * errors and teardown. The plain path skips an rxjs pipeline and two ticks per request.
   */
  private respond(result: unknown, reply: ReplySink): void {
    if (isObservable(result) || result instanceof Promise) {
      this.send(this.transformToObservable(result), (packet) => deliver(packet, reply));
      return;
    }
    reply.next(result);
    reply.complete();
  }
}

/** What Server.handleEvent does with a handler's result: a stream is run (hot) without a subscriber. */
function connectStream(result: unknown): void {
  if (isObservable(result)) connectable(result as Observable<unknown>, { connector: () => new Subject(), resetOnDisconnect: false }).connect();
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

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
import { isWildcard, SubjectIndex } from '../common/subject.js';
import { escapeControlCharacters } from '../wire/control.js';

/** What a caller receives for a pattern this node has no `@MessagePattern` for. */
export const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

/** The events `P2PServer.on` takes. */
export type P2PServerEvents = {
  /** A peer connected or disconnected. */
  peer: (event: PeerEvent) => void;
};

/** Patterns without a handler logged in all; then one line, and no more. */
const UNHANDLED_LOGGED = 256;
/** Patterns without a handler logged per sender; then one line for it. */
const UNHANDLED_PER_SENDER = 8;
/** Senders remembered for UNHANDLED_PER_SENDER (neighbours come and go). */
const UNHANDLED_SENDERS = 1024;

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
  /** Wildcard handler patterns (`math.*`, `orders.>`), each indexed under itself. */
  private readonly wildcards = new SubjectIndex<string>();
  /** Per subject, the wildcard patterns that match it, most specific first (bounded: subjects can be many). */
  private readonly wildcardRoutes = new Map<string, string[]>();
  /** Patterns whose events arrived with no handler, logged once each (at most UNHANDLED_LOGGED). */
  private readonly unhandledEvents = new Set<string>();
  /** Lines logged per sender for such patterns (at most UNHANDLED_PER_SENDER each; the map forgets past UNHANDLED_SENDERS senders). */
  private readonly unhandledBySender = new Map<string, number>();

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
   * Nest's registration of a handler. A wildcard pattern (`*` one token, `>` the trailing ones,
   * as Nest's NATS transport) is indexed so that subjects it matches reach it, and the node's
   * directory record follows, so that a handler added while the app runs is found by pattern
   * from other nodes too (docs/directory.md).
   */
  override addHandler(pattern: unknown, callback: MessageHandler, isEventHandler = false, extras: Record<string, unknown> = {}): void {
    super.addHandler(pattern, callback, isEventHandler, extras);
    const normalized = this.normalizePattern(pattern as string);
    if (isWildcard(normalized)) this.wildcards.add(normalized, normalized);
    this.wildcardRoutes.clear();
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

  /**
   * The `@MessagePattern` handler for a subject: the exact pattern's (the fast path, a map probe),
   * else the most specific wildcard pattern that matches it (most literal tokens, then `*` before `>`).
   */
  private requestHandler(subject: string): MessageHandler | undefined {
    // Not getHandlerByPattern: for a subject only a wildcard matches, Nest's lookup would try JSON.parse (and throw) on every request.
    const exact = this.getHandlers().get(subject) ?? (subject[0] === '{' ? this.getHandlerByPattern(subject) : undefined);
    if (exact) return exact.isEventHandler ? undefined : exact;
    for (const pattern of this.wildcardsFor(subject)) {
      const handler = this.getHandlers().get(pattern);
      if (handler && !handler.isEventHandler) return handler;
    }
    return undefined;
  }

  /** The `@EventPattern` handler chains for a subject: its exact pattern's and every matching wildcard pattern's, as NATS delivers to every matching subscription. */
  private eventRoutes(subject: string): string[] {
    const routes: string[] = [];
    const exact = this.getHandlers().get(subject) ?? (subject[0] === '{' ? this.getHandlerByPattern(subject) : undefined);
    if (exact?.isEventHandler) routes.push(this.getHandlers().has(subject) ? subject : this.getRouteFromPattern(subject));
    for (const pattern of this.wildcardsFor(subject)) if (this.getHandlers().get(pattern)?.isEventHandler) routes.push(pattern);
    return routes;
  }

  private wildcardsFor(subject: string): string[] {
    if (this.wildcards.size === 0) return NONE;
    let routes = this.wildcardRoutes.get(subject);
    if (!routes) {
      routes = [...this.wildcards.match(subject)].sort(bySpecificity);
      if (this.wildcardRoutes.size >= 1024) this.wildcardRoutes.clear();
      this.wildcardRoutes.set(subject, routes);
    }
    return routes;
  }

  /**
   * An event no handler takes. A neighbour may send events this node has no handler for (a
   * neighbour-scope broadcast reaches every neighbour): that is no error, and logging one per event
   * let any neighbour fill the log. Logged once per pattern, as a hint, with its topic escaped and cut
   * (a topic is the sender's text), and at most UNHANDLED_PER_SENDER patterns a sender, so that one
   * sender's made-up topics cannot use up the lines others' would get; past UNHANDLED_LOGGED patterns
   * in all, one line says the rest are dropped unlogged.
   */
  private noEventHandler(peer: PeerInfo, subject: string): void {
    if (this.unhandledEvents.has(subject) || this.unhandledEvents.size > UNHANDLED_LOGGED) return;
    const fromSender = this.unhandledBySender.get(peer.id) ?? 0;
    if (fromSender > UNHANDLED_PER_SENDER) return;
    if (this.unhandledBySender.size >= UNHANDLED_SENDERS && fromSender === 0) this.unhandledBySender.clear();
    this.unhandledBySender.set(peer.id, fromSender + 1);
    if (fromSender === UNHANDLED_PER_SENDER) {
      this.logger.log(`${peer.id} sent events of more patterns with no @EventPattern handler: they are dropped, no longer logged`);
      return;
    }
    this.unhandledEvents.add(subject);
    if (this.unhandledEvents.size > UNHANDLED_LOGGED) {
      this.logger.log(`events of more than ${UNHANDLED_LOGGED} patterns have no @EventPattern handler: they are dropped, no longer logged`);
      return;
    }
    const shown = escapeControlCharacters(subject.length > 128 ? `${subject.slice(0, 128)}…` : subject);
    this.logger.log(`no @EventPattern handler for "${shown}" (first from ${peer.id}): its events are dropped (logged once per pattern)`);
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
    const exact = this.getHandlers().get(topic);
    // The fast path: one exact handler and no wildcard pattern that could also match.
    const routes = exact?.isEventHandler && this.wildcards.size === 0 ? undefined : this.eventRoutes(topic);
    if (routes?.length === 0) {
      // A node relays network broadcasts on every topic; having no handler for one is normal, not an error to log.
      if (!broadcast) this.noEventHandler(peer, topic);
      return undefined;
    }
    const context = new P2PContext([peer, topic, broadcast, metadata]);
    if (!routes) return this.runEvent(exact!, topic, data, metadata, context);
    if (routes.length === 1) return this.runEvent(this.getHandlers().get(routes[0]!)!, routes[0]!, data, metadata, context);
    // Several chains: each one's stream is run as it resolves (the transport's onEventResult sees only the array).
    return Promise.all(routes.map((route) => ranToEnd(this.runEvent(this.getHandlers().get(route)!, route, data, metadata, context))));
  }

  private runEvent(handler: MessageHandler, route: string, data: unknown, metadata: Metadata | undefined, context: P2PContext): unknown {
    // Server.handleEvent does the same work inside two async wrappers for the hooks; without
    // hooks those wrappers were a quarter of the receiver's time per event (see bench/README.md).
    if (!this.hooksUnset) return this.handleEvent(route, { pattern: context.getPattern(), data, metadata } as { pattern: string; data: unknown }, context);
    const result = handler(data, context);
    // A promise is returned as it is: the transport hands what it resolves to to onEventResult.
    return result instanceof Promise ? result : connectStream(result);
  }

  /** What an event handler's promise resolved to: a stream is run, as Server.handleEvent runs it. */
  onEventResult(result: unknown): void {
    connectStream(result);
  }

  /** An inbound request: runs its `@MessagePattern` handler into `reply`; a pattern with none gets NO_MESSAGE_HANDLER as an error. */
  onRequest(peer: PeerInfo, topic: string, data: unknown, reply: ReplySink, metadata?: Metadata): void {
    const handler = this.requestHandler(topic);
    if (!handler) {
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

const NONE: string[] = [];

/** Most literal tokens first, then a `*` pattern before a `>` one, then by text (a stable order). */
function bySpecificity(a: string, b: string): number {
  return literals(b) - literals(a) || Number(a.endsWith('>')) - Number(b.endsWith('>')) || (a < b ? -1 : a > b ? 1 : 0);
}

function literals(pattern: string): number {
  return pattern.split('.').filter((t) => t !== '*' && t !== '>').length;
}

/** What Server.handleEvent does with a handler's result: a stream is run (hot) without a subscriber. */
function connectStream(result: unknown): void {
  if (isObservable(result)) connectable(result as Observable<unknown>, { connector: () => new Subject(), resetOnDisconnect: false }).connect();
}

/** A handler chain's result with its stream, if any, run. */
function ranToEnd(result: unknown): unknown {
  return result instanceof Promise ? result.then(connectStream) : result;
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

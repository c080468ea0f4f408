import type { P2PSocket } from '../connection/socket.js';
import type { MetricsSink } from '../connection/metrics.js';
import {
  P2PConnectionClosedError,
  P2PDialError,
  P2PNoHandlerError,
  P2PQueueFullError,
  P2PReservedPatternError,
  P2PTimeoutError,
} from '../common/errors.js';
import { isReserved } from '../common/reserved.js';
import { turnNow } from '../common/turn-clock.js';
import type { P2PLogger, PeerInfo } from '../common/types.js';
import { HandlerChoice } from '../directory/handler-choice.js';
import { HandlerDials } from './handler-dials.js';
import { answerLocally } from './local-request.js';
import type { InboundHandler, RequestObserver, RequestOptions } from './messaging.js';
import { PatternRequest } from './pattern-request.js';
import type { HandlerInfo } from '../directory/directory.js';
import { KeptLists } from './kept-lists.js';

export type { HandlerInfo };

/**
 * Which nodes handle a subject, and word when that may have changed: the directory of
 * handlers (`Peer.handlers` and its `directory` event) or, in tests, a table kept by hand.
 * @internal
 */
export interface HandlerLookup {
  /** The nodes with a handler matching `subject` (exact or wildcard), this node included. */
  handlers(subject: string, kind: 'request'): HandlerInfo[];
  /**
   * Node `id`'s entry in `handlers(subject, kind)` now, else undefined: with it, a record change updates the
   * kept answers by that node (src/node/kept-lists.ts); without it, every change drops them.
   */
  handler?(id: string, subject: string, kind: 'request'): HandlerInfo | undefined;
  /** Calls `listener` whenever a node's handlers may have changed (with which node and how, when known); returns a function that stops it. */
  onChange(listener: (change?: { id: string; change: 'added' | 'replaced' | 'removed' }) => void): () => void;
}

/** What requests to a pattern need from the node. */
export interface PatternRequestsHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** Why the node cannot send now (it is not running). */
  notRunning(): Error;
  /** The open connections, one per peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** Dials `<peerId>@host:port` (resolves once its hello exchange is done; at once when connected). */
  dial(address: string): Promise<unknown>;
  /** Why a handler's address, as its directory record states it, may not be dialed (the address policy peer exchange applies), or undefined. */
  refusal(address: string): string | undefined;
  /** Whether this node's outbound connections are at maxOutbound. */
  outboundFull(): boolean;
  /** Closes a connection this node dialed for requests and no longer uses. */
  release(peerId: string, why: string): void;
  /** This node's own handler (the Nest server), which answers requests this node sends itself. */
  local(): InboundHandler | undefined;
  /** This node as its own handler's `ctx.getPeer()` sees it. */
  selfInfo(): PeerInfo;
  /** A pattern encoded as a frame's topic. */
  topic(pattern: string): Buffer;
  metrics(): MetricsSink | undefined;
  /** Whether something else uses a connection dialed here (events to a subscriber: event-fanout.ts), so that it is kept. */
  alsoInUse?(peerId: string): boolean;
}

export interface PatternRequestsOptions {
  /** The default reply timeout. */
  timeoutMs: number;
  /** A connection dialed only for requests is closed after this long without one, ms. */
  idleMs: number;
  /** A handler with requests outstanding from which nothing has been read for this long (and 4 × its usual answer time) is passed over, ms. */
  silentMs: number;
  /** New connections a second dialed to reach handlers (handlerDialRate). */
  dialRate: number;
  /** Most connections open or dialing for requests at once (a quarter of maxOutbound: the topology keeps its dials). */
  maxDialed: number;
  /** Most connections open or dialing for a publisher's fanout at once (eventFanout), beside maxDialed. */
  fanoutDials: number;
}

/** Handlers one request may dial before it fails: a directory full of false records costs each request at most this many dials. */
export const MAX_DIALS_PER_REQUEST = 2;

/**
 * Requests to a pattern rather than to a peer (`Peer.requestPattern`): each goes to exactly one
 * node with a matching `@MessagePattern`, as a request to a NATS queue group does, this node
 * included (answered by its own handler, without a socket: local-request.ts). The handler is
 * chosen by HandlerChoice (src/directory/handler-choice.ts); a handler that is not a neighbour is
 * dialed directly (handler-dials.ts), and that connection is kept while requests use it (`inUse`).
 * While no handler is known the request waits for one, until its timeout. Each request is one
 * PatternRequest (pattern-request.ts), which is also the observer of its connection's replies.
 *
 * At most once: a request is handed to one handler and never re-sent after it may have run. A
 * request that could not be handed over (the dial failed, the queue was full) tries another.
 */
/** Subjects whose handlers are kept between lookups; past it the cache starts over. */
const MAX_KEPT_SUBJECTS = 1024;
/** Handlers in the kept answers, all subjects together (each a HandlerInfo): 1 024 subjects of 50 000 handlers each would be gigabytes. */
const MAX_KEPT_HANDLERS = 250_000;

export class PatternRequests {
  /** Where handlers are looked up; undefined: nowhere yet (every request waits, then fails). */
  private lookup: HandlerLookup | undefined;
  private unsubscribe: (() => void) | undefined;
  readonly choice: HandlerChoice;
  /** Requests waiting for a handler to become known, or for a dial to be allowed. */
  private readonly waiting = new Set<PatternRequest>();
  /** The lookup's answer per subject, kept up to date by record changes (bounded: subjects can be many). */
  private known: KeptLists<HandlerInfo> | undefined;
  private readonly dials: HandlerDials;

  constructor(
    private readonly host: PatternRequestsHost,
    private readonly opts: PatternRequestsOptions,
  ) {
    // The clock of a turn of the event loop: a burst of requests reads Date.now() once (see turn-clock.ts).
    this.choice = new HandlerChoice({ retryAfterMs: Math.min(1_000, opts.timeoutMs), now: turnNow });
    this.dials = new HandlerDials(
      {
        ...host,
        logger: host.logger,
        inUse: (id) => this.inUse(id) || (host.alsoInUse?.(id) ?? false),
        dialFailed: (id) => this.choice.failed(id),
        // The lookup's answers hold handlers at that address: they are filtered again.
        addressesChanged: () => this.known?.clear(),
      },
      opts,
    );
  }

  /** Where to look handlers up from now on; waiting requests look again at once. */
  setLookup(lookup: HandlerLookup | undefined): void {
    this.unsubscribe?.();
    this.lookup = lookup;
    const one = lookup?.handler?.bind(lookup);
    this.known = lookup && new KeptLists<HandlerInfo>(
      {
        all: (subject) => lookup.handlers(subject, 'request'),
        one: (id, subject) => one?.(id, subject, 'request'),
        idOf: (h) => h.id,
        same: (a, b) => a.address === b.address && a.self === b.self,
      },
      MAX_KEPT_SUBJECTS,
      MAX_KEPT_HANDLERS,
    );
    this.unsubscribe = lookup?.onChange((change) => {
      if (change && one) this.known?.changed(change.id);
      else this.known?.clear();
      // Its record is gone (it left, or its record expired): what the choice knew of it goes too.
      if (change?.change === 'removed') this.choice.forget(change.id);
      this.retryWaiting();
    });
    this.retryWaiting();
  }

  /** Sends a request to a node that handles `subject`; the observer gets each reply value. Returns a cancel function. */
  request(subject: string, data: unknown, observer: RequestObserver, options: RequestOptions = {}): () => void {
    if (!this.host.isRunning()) throw this.host.notRunning();
    if (isReserved(subject)) throw new P2PReservedPatternError(`cannot send a request to "${subject}": the $p2p. prefix is reserved for the library`);
    const now = turnNow();
    const req = new PatternRequest(this, subject, data, observer, options, options.timeoutMs ?? this.opts.timeoutMs, now);
    // The usual case: one handler, a neighbour already connected. Sent with one lookup of the subject and one of
    // the connection, none of the checks a choice, a skip or a dial needs (attempt() makes them otherwise).
    const all = this.lookUp(subject);
    const only = all.length === 1 ? all[0]! : undefined;
    const socket = only && only.id !== this.host.selfId ? this.host.connections().get(only.id) : undefined;
    if (socket?.isOpen) this.send(req, only!.id, socket, now);
    else this.attempt(req, now);
    return () => {
      this.waiting.delete(req);
      req.cancel();
    };
  }

  /** Whether requests use the connection to `peerId` (one in flight, or one within `idleMs`): the topology must not close it. */
  inUse(peerId: string): boolean {
    if (this.choice.inFlight(peerId) > 0) return true;
    const last = this.choice.lastUsed(peerId);
    return last !== undefined && turnNow() - last < this.opts.idleMs;
  }

  /**
   * Dials `id` at `address`, a subscriber of `subject` this node sends events to (event-fanout.ts), within the limits of
   * the dials to handlers; the connection is closed again once neither requests nor events use it. Why not, or undefined.
   * Counted apart from the dials requests make (at most eventFanout of them, beside maxDialed): requests failed for
   * want of a dial while six stalling "subscribers" of two topics held all of a shared limit (review-fanout-slots.spec).
   */
  dialSubscriber(id: string, address: string, subject: string): string | undefined {
    if (this.dials.isDialing(id)) return undefined;
    if (!this.dials.dialable(address)) return 'its address failed lately or is not allowed';
    const why = this.dials.refusal(address, 'fanout');
    if (why) return why;
    this.dials.dial(id, address, 'fanout').then(
      () => this.dials.used(id, address, subject, 'fanout'),
      () => {}, // counted and logged by the dials
    );
    return undefined;
  }

  /** The node is closing: waiting requests fail, timers stop. */
  stop(): void {
    this.dials.stop();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const req of [...this.waiting]) this.fail(req, this.host.notRunning());
  }

  /** The request could not be handed to `id` (it never ran there): another handler is tried. */
  skip(req: PatternRequest, id: string, err: Error): void {
    this.host.logger.debug?.(`request to "${req.subject}" not handed to ${id}: ${err.message}`, { event: 'request-failed', peerId: id });
    (req.skip ??= new Set()).add(id);
    req.lastError = err;
    this.attempt(req);
  }

  private retryWaiting(): void {
    for (const req of [...this.waiting]) {
      this.waiting.delete(req);
      req.doneWaiting();
      this.attempt(req);
    }
  }

  /** Hands the request to a handler, or waits for one. `now`: Date.now(), when the caller has it. */
  private attempt(req: PatternRequest, now = Date.now()): void {
    if (req.done) return;
    if (!this.host.isRunning()) return this.fail(req, this.host.notRunning());
    const candidates = this.candidates(req);
    if (candidates.length === 0) return this.wait(req);
    // One handler (the usual case for a pattern a single service answers): no choice to make.
    let handler = candidates.length === 1 ? candidates[0]! : this.choose(candidates);
    const id = handler.id;
    if (id === this.host.selfId) return this.local(req);
    const socket = this.host.connections().get(id);
    if (socket?.isOpen) return this.send(req, id, socket, now);
    // A dial this request would start: only within its own and the node's budget (rate, a quarter of maxOutbound, one per address).
    const why = req.dials >= MAX_DIALS_PER_REQUEST ? `this request dialed ${MAX_DIALS_PER_REQUEST} handlers already` : this.dials.isDialing(id) ? undefined : this.dials.refusal(handler.address!);
    if (why) {
      // A handler already connected (or this node) takes it instead, when one is not failing; else the request waits for room.
      const connected = candidates.filter((h) => this.near(h));
      if (!connected.some((h) => !this.choice.isFailing(h.id))) {
        if (req.dials >= MAX_DIALS_PER_REQUEST) return this.noHandler(req);
        req.lastError ??= new P2PDialError(`handler ${id} not dialed: ${why}`, { peerId: id, address: handler.address ?? undefined });
        return this.wait(req, Math.max(50, Math.ceil(1000 / this.opts.dialRate)));
      }
      handler = this.choose(connected);
      if (handler.id === this.host.selfId) return this.local(req);
      return this.send(req, handler.id, this.host.connections().get(handler.id)!, now);
    }
    this.dial(req, handler);
  }

  /** This node, or a handler already connected: no dial needed. */
  private near(h: HandlerInfo): boolean {
    return h.id === this.host.selfId || this.host.connections().get(h.id)?.isOpen === true;
  }

  private choose(candidates: readonly HandlerInfo[]): HandlerInfo {
    const id = this.choice.choose(
      candidates.map((h) => h.id),
      (id) => this.silent(id),
    );
    return candidates.find((h) => h.id === id)!;
  }

  /**
   * Known handlers this request may go to: this node when it has a handler, others when connected
   * or dialable. The lookup's answer is kept per subject until the directory changes, so that a
   * request allocates nothing here in the usual case (one handler, or none skipped).
   */
  private candidates(req: PatternRequest): readonly HandlerInfo[] {
    const all = this.lookUp(req.subject);
    for (const h of all) {
      if (req.skip?.has(h.id) || !this.reachable(h)) return all.filter((x) => !req.skip?.has(x.id) && this.reachable(x));
    }
    return all;
  }

  /** The subject's handlers, as the kept lists hold them (updated by each record that changes). */
  private lookUp(subject: string): readonly HandlerInfo[] {
    return this.known?.get(subject) ?? [];
  }

  private reachable(h: HandlerInfo): boolean {
    if (h.id === this.host.selfId) return this.host.local() !== undefined;
    if (this.host.connections().has(h.id)) return true;
    return h.address !== null && this.dials.dialable(h.address);
  }

  /** No handler to hand it to: wait for the directory to name one (or, `retryMs`, for a dial to be allowed), until the request's timeout. */
  private wait(req: PatternRequest, retryMs?: number): void {
    const left = req.left();
    if (left <= 0) return this.noHandler(req);
    this.waiting.add(req);
    const retry = retryMs !== undefined && retryMs < left;
    req.timer = setTimeout(
      () => {
        if (!this.waiting.delete(req)) return;
        req.doneWaiting();
        if (retry) this.attempt(req);
        else this.noHandler(req);
      },
      retry ? retryMs : left,
    );
  }

  private noHandler(req: PatternRequest): void {
    const err = new P2PNoHandlerError(req.subject, Date.now() - req.startedAt, req.lastError);
    const sink = this.host.metrics();
    sink?.error(err.constructor.name);
    sink?.noHandler?.(req.subject);
    this.fail(req, err);
  }

  private fail(req: PatternRequest, err: Error): void {
    this.waiting.delete(req);
    req.fail(err);
  }

  /** A handler that is not a neighbour: dialed directly at the address its record gives (its id is checked by TLS). */
  private dial(req: PatternRequest, handler: HandlerInfo): void {
    const id = handler.id;
    const address = handler.address!;
    const left = req.left();
    if (left <= 0) return this.noHandler(req);
    req.dials++;
    this.choice.started(id);
    let over = false;
    // The request's timeout runs from requestPattern(), dial included: a handler that accepts and says nothing cannot hold it.
    const timer = setTimeout(() => {
      over = true;
      req.doneWaiting();
      req.lastError = new P2PTimeoutError(req.subject, req.timeoutMs, { peerId: id, address });
      this.noHandler(req);
    }, left);
    req.waitingForDial(timer, () => void (over = true));
    this.dials.dial(id, address).then(
      () => {
        this.choice.ended(id);
        if (over || req.done) return;
        req.doneWaiting();
        const socket = this.host.connections().get(id);
        if (!socket?.isOpen) return this.skip(req, id, new P2PConnectionClosedError('connection closed after it was dialed', { peerId: id, address }));
        this.dials.used(id, address, req.subject);
        this.send(req, id, socket);
      },
      (err: Error) => {
        this.choice.ended(id);
        if (over || req.done) return;
        req.doneWaiting();
        this.skip(req, id, err);
      },
    );
  }

  /**
   * Sends the request on the handler's connection. The first reply must come within what is
   * left of the request's timeout (it may have waited for a handler and dialed one: the timeout
   * bounds it all), each later value of a stream within the timeout.
   */
  private send(req: PatternRequest, id: string, socket: P2PSocket, now = Date.now()): void {
    const elapsed = now - req.startedAt;
    const left = req.timeoutMs - elapsed;
    if (left <= 0) {
      req.lastError = new P2PTimeoutError(req.subject, req.timeoutMs, { peerId: id });
      return this.noHandler(req);
    }
    const stats = this.choice.started(id, now);
    const deadlineMs = req.options.deadlineMs === undefined ? undefined : Math.max(1, req.options.deadlineMs - elapsed);
    let cancel: () => void;
    try {
      cancel = socket.request(req.subject, this.host.topic(req.subject), req.data, req.timeoutMs, req, deadlineMs, req.options.metadata, elapsed > 0 ? left : undefined);
    } catch (err) {
      this.choice.endedOn(id, stats, now);
      // Not sent, so it cannot have run: a full queue or a closing connection sends it elsewhere. A request too large fails.
      if (err instanceof P2PQueueFullError || err instanceof P2PConnectionClosedError) return this.skip(req, id, err);
      return this.fail(req, err as Error);
    }
    req.sent(id, stats, socket, now, cancel);
    this.host.metrics()?.routed?.(req.subject, id);
  }

  /** This node handles the subject itself: its own handler answers, through the same encoding a peer's request goes through. */
  private local(req: PatternRequest): void {
    answerLocally(req, req.caller, {
      selfId: this.host.selfId,
      logger: this.host.logger,
      choice: this.choice,
      handler: this.host.local()!,
      self: this.host.selfInfo(),
      metrics: this.host.metrics(),
    });
  }

  /**
   * Whether `id` has gone silent: it has had requests in flight, and answered none of them, for
   * longer than `silentMs` and 4 × its usual answer time, and nothing at all has been read from its
   * connection in that time (not even a pong). A frozen process is passed over before its requests time out.
   */
  private silent(id: string): boolean {
    const since = this.choice.quietSince(id);
    if (since === undefined) return false;
    const socket = this.host.connections().get(id);
    if (!socket) return false;
    const usual = this.choice.latencyMs(id) ?? 0;
    // <=: the answer that set `since` was itself the last read; a later read, however soon, moves lastReadAt past it.
    return turnNow() - since > Math.max(this.opts.silentMs, 4 * usual) && socket.lastReadAt <= since;
  }
}

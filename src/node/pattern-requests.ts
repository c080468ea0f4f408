import { toWireError, type ReplySink } from '../connection/reply-sink.js';
import type { P2PSocket } from '../connection/socket.js';
import type { MetricsSink } from '../connection/metrics.js';
import {
  P2PConnectionClosedError,
  P2PDialError,
  P2PNoHandlerError,
  P2PQueueFullError,
  P2PRemoteError,
  P2PReservedPatternError,
  P2PTimeoutError,
} from '../common/errors.js';
import { isReserved } from '../common/reserved.js';
import { TokenBucket } from '../common/token-bucket.js';
import type { P2PLogger, PeerInfo } from '../common/types.js';
import { HandlerChoice } from '../directory/handler-choice.js';
import { decodePayload, encodePayload } from '../wire/codec.js';
import { GoodbyeReason } from '../wire/control.js';
import type { InboundHandler, RequestObserver, RequestOptions } from './messaging.js';
import type { HandlerInfo } from '../directory/directory.js';

export type { HandlerInfo };

/**
 * Which nodes handle a subject, and word when that may have changed: the directory of
 * handlers (`Peer.handlers` and its `directory` event) or, in tests, a table kept by hand.
 * @internal
 */
export interface HandlerLookup {
  /** The nodes with a handler matching `subject` (exact or wildcard), this node included. */
  handlers(subject: string, kind: 'request'): HandlerInfo[];
  /** Calls `listener` whenever a node's handlers may have changed; returns a function that stops it. */
  onChange(listener: () => void): () => void;
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
}

/** Handlers one request may dial before it fails: a directory full of false records costs each request at most this many dials. */
export const MAX_DIALS_PER_REQUEST = 2;
/** How long an address whose dial failed (or answered with another id) is not dialed again for requests: 1 s, doubling per failure in a row up to this, ms. */
export const BAD_ADDRESS_MS = 60_000;
/** Addresses remembered as failed (and addresses judged by the policy); the oldest are forgotten beyond it. */
const MAX_ADDRESSES = 4096;

/** A request to a pattern on its way: waiting for a handler, dialing one, or sent. */
interface PatternRequest {
  subject: string;
  data: unknown;
  observer: RequestObserver;
  options: RequestOptions;
  timeoutMs: number;
  startedAt: number;
  /** Handlers this request could not be handed to (their dial failed, their queue was full); made when first needed. */
  skip?: Set<string>;
  /** Handlers this request has dialed. */
  dials: number;
  /** Why the last handler could not take it. */
  lastError?: Error;
  /** Cancels what the request is doing now: its wait, or the request on a connection. */
  cancel?: () => void;
  done: boolean;
}

/**
 * Requests to a pattern rather than to a peer (`Peer.requestPattern`): each goes to exactly one
 * node with a matching `@MessagePattern`, as a request to a NATS queue group does, this node
 * included (answered by its own handler, without a socket). The handler is chosen by
 * HandlerChoice (src/directory/handler-choice.ts); a handler that is not a neighbour is dialed
 * directly, and that connection is kept while requests use it (`inUse`), then closed after
 * `idleMs` without one. While no handler is known the request waits for one, until its timeout.
 *
 * At most once: a request is handed to one handler and never re-sent after it may have run. A
 * request that could not be handed over (the dial failed, the queue was full) tries another.
 */
export class PatternRequests {
  /** Where handlers are looked up; undefined: nowhere yet (every request waits, then fails). */
  private lookup: HandlerLookup | undefined;
  private unsubscribe: (() => void) | undefined;
  readonly choice: HandlerChoice;
  /** Requests waiting for a handler to become known. */
  private readonly waiting = new Set<PatternRequest>();
  /** Handlers' connections requests used in the last `idleMs`, with when each was last used. */
  private readonly used = new Map<string, number>();
  /** Of those, the connections this node dialed for requests (closed again once idle). */
  private readonly dialed = new Set<string>();
  private idleTimer: NodeJS.Timeout | undefined;
  /** Dials in flight to handlers, shared by the requests that wait for them. */
  private readonly dialing = new Map<string, Promise<unknown>>();
  /** The lookup's answer per subject, until the directory changes (bounded: subjects can be many). */
  private readonly known = new Map<string, HandlerInfo[]>();
  /** Addresses being dialed for requests: one dial per address, whatever ids records claim at it. */
  private readonly dialingAddresses = new Set<string>();
  /** Addresses whose dial failed or proved another id, not dialed again until the time given (by address, not id: ids are free to make). */
  private readonly badAddresses = new Map<string, { until: number; failures: number }>();
  /** The address policy's verdict per address (bounded). */
  private readonly refused = new Map<string, string | undefined>();
  private readonly dialBucket: TokenBucket;

  constructor(
    private readonly host: PatternRequestsHost,
    private readonly opts: PatternRequestsOptions,
  ) {
    this.choice = new HandlerChoice({ retryAfterMs: Math.min(1_000, opts.timeoutMs) });
    this.dialBucket = new TokenBucket(opts.dialRate, Math.max(1, opts.dialRate), Date.now());
  }

  /** Where to look handlers up from now on; waiting requests look again at once. */
  setLookup(lookup: HandlerLookup | undefined): void {
    this.unsubscribe?.();
    this.lookup = lookup;
    this.known.clear();
    this.unsubscribe = lookup?.onChange(() => {
      this.known.clear();
      this.retryWaiting();
    });
    this.retryWaiting();
  }

  /** Sends a request to a node that handles `subject`; the observer gets each reply value. Returns a cancel function. */
  request(subject: string, data: unknown, observer: RequestObserver, options: RequestOptions = {}): () => void {
    if (!this.host.isRunning()) throw this.host.notRunning();
    if (isReserved(subject)) throw new P2PReservedPatternError(`cannot send a request to "${subject}": the $p2p. prefix is reserved for the library`);
    const req: PatternRequest = {
      subject,
      data,
      observer,
      options,
      timeoutMs: options.timeoutMs ?? this.opts.timeoutMs,
      startedAt: Date.now(),
      dials: 0,
      done: false,
    };
    this.attempt(req);
    return () => {
      if (req.done) return;
      req.done = true;
      this.waiting.delete(req);
      req.cancel?.();
    };
  }

  /** Whether requests use the connection to `peerId` (one in flight, or one within `idleMs`): the topology must not close it. */
  inUse(peerId: string): boolean {
    if (this.choice.inFlight(peerId) > 0) return true;
    const last = this.used.get(peerId);
    return last !== undefined && Date.now() - last < this.opts.idleMs;
  }

  /** The node is closing: waiting requests fail, timers stop. */
  stop(): void {
    clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const req of [...this.waiting]) this.fail(req, this.host.notRunning());
    this.dialed.clear();
    this.used.clear();
  }

  private retryWaiting(): void {
    for (const req of [...this.waiting]) {
      this.waiting.delete(req);
      req.cancel?.();
      req.cancel = undefined;
      this.attempt(req);
    }
  }

  /** Hands the request to a handler, or waits for one. */
  private attempt(req: PatternRequest): void {
    if (req.done) return;
    if (!this.host.isRunning()) return this.fail(req, this.host.notRunning());
    const candidates = this.candidates(req);
    if (candidates.length === 0) return this.wait(req);
    // One handler (the usual case for a pattern a single service answers): no choice to make.
    let handler = candidates.length === 1 ? candidates[0]! : this.choose(candidates);
    if (!this.near(handler)) {
      // A dial this request would start: only within its own and the node's budget (rate, a quarter of maxOutbound, one per address).
      const why = req.dials >= MAX_DIALS_PER_REQUEST ? `this request dialed ${MAX_DIALS_PER_REQUEST} handlers already` : this.dialing.has(handler.id) ? undefined : this.dialRefusal(handler.address!);
      if (why) {
        // A handler already connected (or this node) takes it instead, when one is not failing; else the request waits for room.
        const connected = candidates.filter((h) => this.near(h));
        if (connected.some((h) => !this.choice.isFailing(h.id))) handler = this.choose(connected);
        else if (req.dials >= MAX_DIALS_PER_REQUEST) return this.noHandler(req);
        else {
          req.lastError ??= new P2PDialError(`handler ${handler.id} not dialed: ${why}`, { peerId: handler.id, address: handler.address ?? undefined });
          return this.wait(req, Math.max(50, Math.ceil(1000 / this.opts.dialRate)));
        }
      }
    }
    const id = handler.id;
    if (id === this.host.selfId) return this.local(req);
    const socket = this.host.connections().get(id);
    if (socket?.isOpen) return this.send(req, id, socket);
    this.dial(req, handler);
  }

  /** This node, or a handler already connected: no dial needed. */
  private near(h: HandlerInfo): boolean {
    return h.id === this.host.selfId || this.host.connections().get(h.id)?.isOpen === true;
  }

  /** Why a new dial to `address` may not start now, or undefined. */
  private dialRefusal(address: string): string | undefined {
    if (this.dialingAddresses.has(address)) return 'its address is being dialed already';
    if (this.host.outboundFull()) return 'maxOutbound reached';
    const connections = this.host.connections();
    let held = this.dialing.size;
    for (const id of this.dialed) if (connections.has(id)) held++;
    if (held >= this.opts.maxDialed) return `${this.opts.maxDialed} connections open or dialing for requests already`;
    if (!this.dialBucket.take(1, Date.now())) return `over handlerDialRate (${this.opts.dialRate} new dials a second)`;
    return undefined;
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
    let all = this.known.get(req.subject);
    if (!all) {
      all = this.lookup?.handlers(req.subject, 'request') ?? [];
      if (this.known.size >= 1024) this.known.clear();
      this.known.set(req.subject, all);
    }
    for (const h of all) {
      if (req.skip?.has(h.id) || !this.reachable(h)) return all.filter((x) => !req.skip?.has(x.id) && this.reachable(x));
    }
    return all;
  }

  private reachable(h: HandlerInfo): boolean {
    if (h.id === this.host.selfId) return this.host.local() !== undefined;
    if (this.host.connections().has(h.id)) return true;
    return h.address !== null && this.dialable(h.address);
  }

  /** Whether requests may dial `address`: the address policy allows it, and it has not failed recently. */
  private dialable(address: string): boolean {
    const bad = this.badAddresses.get(address);
    if (bad !== undefined && bad.until > Date.now()) return false;
    if (!this.refused.has(address)) {
      if (this.refused.size >= MAX_ADDRESSES) this.refused.clear();
      const why = this.host.refusal(address);
      if (why) this.host.logger.debug?.(`handler address ${address} not dialed: ${why}`);
      this.refused.set(address, why);
    }
    return this.refused.get(address) === undefined;
  }

  private markBad(address: string): void {
    const failures = (this.badAddresses.get(address)?.failures ?? 0) + 1;
    this.badAddresses.delete(address);
    if (this.badAddresses.size >= MAX_ADDRESSES) this.badAddresses.delete(this.badAddresses.keys().next().value!);
    this.badAddresses.set(address, { until: Date.now() + Math.min(BAD_ADDRESS_MS, 1_000 * 2 ** Math.min(failures - 1, 20)), failures });
    // The lookup's answers hold handlers at this address: they are filtered again.
    this.known.clear();
  }

  /** No handler to hand it to: wait for the directory to name one (or, `retryMs`, for a dial to be allowed), until the request's timeout. */
  private wait(req: PatternRequest, retryMs?: number): void {
    const left = req.timeoutMs - (Date.now() - req.startedAt);
    if (left <= 0) return this.noHandler(req);
    this.waiting.add(req);
    const retry = retryMs !== undefined && retryMs < left;
    const timer = setTimeout(() => {
      if (!this.waiting.delete(req)) return;
      req.cancel = undefined;
      if (retry) this.attempt(req);
      else this.noHandler(req);
    }, retry ? retryMs : left);
    req.cancel = () => clearTimeout(timer);
  }

  private noHandler(req: PatternRequest): void {
    const err = new P2PNoHandlerError(req.subject, Date.now() - req.startedAt, req.lastError);
    const sink = this.host.metrics();
    sink?.error(err.constructor.name);
    sink?.noHandler?.(req.subject);
    this.fail(req, err);
  }

  private fail(req: PatternRequest, err: Error): void {
    if (req.done) return;
    req.done = true;
    this.waiting.delete(req);
    req.cancel?.();
    req.observer.error(err);
  }

  /** A handler that is not a neighbour: dialed directly at the address its record gives (its id is checked by TLS). */
  private dial(req: PatternRequest, handler: HandlerInfo): void {
    const id = handler.id;
    const address = handler.address!;
    const left = req.timeoutMs - (Date.now() - req.startedAt);
    if (left <= 0) return this.noHandler(req);
    req.dials++;
    this.choice.started(id);
    let cancelled = false;
    // The request's timeout runs from requestPattern(), dial included: a handler that accepts and says nothing cannot hold it.
    const timer = setTimeout(() => {
      cancelled = true;
      req.cancel = undefined;
      req.lastError = new P2PTimeoutError(req.subject, req.timeoutMs, { peerId: id, address });
      this.noHandler(req);
    }, left);
    req.cancel = () => {
      cancelled = true;
      clearTimeout(timer);
    };
    let dialing = this.dialing.get(id);
    if (!dialing) {
      // One dial per handler, however many requests wait for it (each dial in flight holds a place under maxOutbound).
      this.dialingAddresses.add(address);
      dialing = this.host.dial(`${id}@${address}`).finally(() => {
        this.dialing.delete(id);
        this.dialingAddresses.delete(address);
      });
      this.dialing.set(id, dialing);
      // Whoever waits for it, a failed dial (or one that proved another id) marks its address, and the id fails only once.
      dialing.then(
        () => this.badAddresses.delete(address),
        (err: unknown) => {
          if (!this.host.isRunning()) return;
          this.host.logger.debug?.(`dial to handler ${id} at ${address} failed: ${(err as Error).message}`);
          this.markBad(address);
          this.choice.failed(id);
        },
      );
    }
    dialing.then(
      () => {
        clearTimeout(timer);
        this.choice.ended(id);
        if (cancelled || req.done) return;
        const socket = this.host.connections().get(id);
        if (!socket?.isOpen) return this.skip(req, id, new P2PConnectionClosedError('connection closed after it was dialed', { peerId: id, address: handler.address ?? undefined }));
        if (!this.dialed.has(id)) this.host.logger.debug?.(`dialed handler ${id} at ${handler.address} for "${req.subject}"`);
        this.dialed.add(id);
        this.send(req, id, socket);
      },
      (err: Error) => {
        clearTimeout(timer);
        this.choice.ended(id);
        if (cancelled || req.done) return;
        this.skip(req, id, err);
      },
    );
  }

  /** The request could not be handed to `id` (it never ran there): another handler is tried. */
  private skip(req: PatternRequest, id: string, err: Error): void {
    this.host.logger.debug?.(`request to "${req.subject}" not handed to ${id}: ${err.message}`);
    (req.skip ??= new Set()).add(id);
    req.lastError = err;
    req.cancel = undefined;
    this.attempt(req);
  }

  /** Sends the request on the handler's connection. */
  private send(req: PatternRequest, id: string, socket: P2PSocket): void {
    const sent = new SentRequest(this, req, id, socket);
    this.touch(id, sent.sentAt);
    this.choice.started(id);
    const deadlineMs = req.options.deadlineMs === undefined ? undefined : Math.max(1, req.options.deadlineMs - (sent.sentAt - req.startedAt));
    try {
      sent.cancelOnSocket = socket.request(req.subject, this.host.topic(req.subject), req.data, req.timeoutMs, sent, deadlineMs, req.options.metadata);
      req.cancel = sent.cancel;
    } catch (err) {
      sent.end();
      // Not sent, so it cannot have run: a full queue or a closing connection sends it elsewhere. A request too large fails.
      if (err instanceof P2PQueueFullError || err instanceof P2PConnectionClosedError) return this.skip(req, id, err);
      req.done = true;
      req.observer.error(err as Error);
      return;
    }
    this.host.metrics()?.routed?.(req.subject, id);
  }

  /** A request sent on a connection has ended (SentRequest). */
  ended(id: string): void {
    this.choice.ended(id);
    this.touch(id);
  }

  /** Its first reply came (SentRequest); `error`: it was the handler's error. */
  answered(id: string, ms: number, error = false): void {
    this.choice.replied(id, ms, error);
  }

  /** It timed out or its connection failed (SentRequest); `refused`: the handler was full, so it never ran there and another is tried. */
  failed(req: PatternRequest, id: string, err: Error, refused: boolean): void {
    this.choice.failed(id);
    if (refused) this.skip(req, id, err);
  }

  /** This node handles the subject itself: its own handler answers, through the same encoding a peer's request goes through. */
  private local(req: PatternRequest): void {
    const handler = this.host.local()!;
    const id = this.host.selfId;
    const sentAt = Date.now();
    const sink = this.host.metrics();
    let ended = false;
    let answered = false;
    let gap: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    const end = () => {
      ended = true;
      req.done = true;
      clearTimeout(gap);
      clearTimeout(deadline);
      this.choice.ended(id);
    };
    const outcome = (what: 'ok' | 'remote_error' | 'timeout') => sink?.request(req.subject, (Date.now() - sentAt) / 1000, what);
    const timeout = (ms: number, isDeadline: boolean) => () => {
      if (ended) return;
      end();
      this.choice.failed(id);
      outcome('timeout');
      const err = new P2PTimeoutError(req.subject, ms, { peerId: id }, isDeadline);
      sink?.error(err.constructor.name);
      req.observer.error(err);
    };
    const arm = () => {
      clearTimeout(gap);
      gap = setTimeout(timeout(req.timeoutMs, false), req.timeoutMs);
    };
    const answer = (error = false) => {
      if (answered) return;
      answered = true;
      this.choice.replied(id, Date.now() - sentAt, error);
    };
    const reply: ReplySink = {
      next: (value) => {
        if (ended) return;
        answer();
        arm();
        let copy: unknown;
        try {
          copy = roundTrip(value);
        } catch (err) {
          host.logger.warn(`reply to "${req.subject}" is not serialisable: ${(err as Error).message}`);
          return;
        }
        req.observer.next(copy);
      },
      error: (err) => {
        if (ended) return;
        answer(true);
        end();
        outcome('remote_error');
        const remote = new P2PRemoteError(JSON.parse(JSON.stringify(toWireError(err)) ?? 'null'), { peerId: id });
        sink?.error(remote.constructor.name);
        req.observer.error(remote);
      },
      complete: () => {
        if (ended) return;
        answer();
        end();
        outcome('ok');
        req.observer.complete();
      },
    };
    const host = this.host;
    this.choice.started(id);
    arm();
    const deadlineMs = req.options.deadlineMs;
    if (deadlineMs !== undefined) deadline = setTimeout(timeout(deadlineMs, true), Math.max(1, deadlineMs - (sentAt - req.startedAt)));
    req.cancel = () => {
      if (!ended) end();
    };
    sink?.routed?.(req.subject, id);
    let data: unknown;
    try {
      // The handler gets a copy, as a peer's handler would: it cannot change the caller's object, nor the caller its.
      data = roundTrip(req.data);
    } catch (err) {
      end();
      req.observer.error(err as Error);
      return;
    }
    // Never in the caller's stack: as over a socket, the first reply comes after request() has returned.
    queueMicrotask(() => {
      if (ended) return;
      try {
        handler.onRequest(host.selfInfo(), req.subject, data, reply, req.options.metadata);
      } catch (err) {
        reply.error(err);
      }
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
    return Date.now() - since > Math.max(this.opts.silentMs, 4 * usual) && socket.lastReadAt <= since;
  }

  private touch(id: string, now = Date.now()): void {
    this.used.set(id, now);
    if (!this.idleTimer) this.watchIdle();
  }

  /** Forgets connections unused for `idleMs`, and closes those dialed for requests (the topology redials what it needs itself). */
  private watchIdle(): void {
    if (this.idleTimer) return;
    this.idleTimer = setInterval(() => {
      const connections = this.host.connections();
      for (const id of this.dialed) if (!connections.has(id)) this.dialed.delete(id);
      for (const id of [...this.used.keys()]) {
        if (this.inUse(id)) continue;
        this.used.delete(id);
        if (this.dialed.delete(id)) this.host.release(id, `no request to its handlers for ${this.opts.idleMs} ms`);
      }
      if (this.used.size === 0 && this.dialed.size === 0) {
        clearInterval(this.idleTimer);
        this.idleTimer = undefined;
      }
    }, Math.max(50, Math.min(this.opts.idleMs / 2, 10_000)));
    this.idleTimer.unref();
  }
}

/** A value as the other end of a socket would get it. */
function roundTrip(value: unknown): unknown {
  const { encoding, bytes } = encodePayload(value);
  return decodePayload(encoding, bytes);
}

/**
 * One request on a handler's connection, and the observer its replies go to: one object per
 * request (the replies of a request to a pattern went through six closures before, and the
 * garbage showed in the benchmark). Its own properties, not prototype methods, because the
 * connection copies the observer's callbacks into its pending entry.
 */
class SentRequest implements RequestObserver {
  readonly sentAt = Date.now();
  private answered = false;
  private over = false;
  cancelOnSocket: (() => void) | undefined;

  constructor(
    private readonly owner: PatternRequests,
    private readonly req: PatternRequest,
    private readonly id: string,
    private readonly socket: P2PSocket,
  ) {}

  readonly next = (value: unknown): void => {
    this.answer();
    this.req.observer.next(value);
  };

  readonly error = (err: Error): void => {
    // A handler at its maxPeers accepts the hello, then closes without reading a request: it never ran there.
    if (!this.answered && err instanceof P2PConnectionClosedError && this.socket.goodbyeReceived === GoodbyeReason.InboundLimit) {
      this.end();
      return this.owner.failed(this.req, this.id, err, true);
    }
    // A handler's own error is an answer: it is alive. A timeout or a lost connection is not.
    if (err instanceof P2PRemoteError) this.answer(true);
    else this.owner.failed(this.req, this.id, err, false);
    this.end();
    this.req.done = true;
    this.req.observer.error(err);
  };

  readonly complete = (): void => {
    this.answer();
    this.end();
    this.req.done = true;
    this.req.observer.complete();
  };

  readonly cancel = (): void => {
    this.cancelOnSocket?.();
    this.end();
  };

  end(): void {
    if (this.over) return;
    this.over = true;
    this.owner.ended(this.id);
  }

  private answer(error = false): void {
    if (this.answered) return;
    this.answered = true;
    this.owner.answered(this.id, Date.now() - this.sentAt, error);
  }
}

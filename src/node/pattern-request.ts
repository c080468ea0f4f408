import { P2PConnectionClosedError, P2PRemoteError } from '../common/errors.js';
import { turnNow } from '../common/turn-clock.js';
import type { P2PSocket } from '../connection/socket.js';
import type { HandlerChoice, HandlerStats } from '../directory/handler-choice.js';
import { GoodbyeReason } from '../wire/control.js';
import type { RequestObserver, RequestOptions } from './messaging.js';

/** What a request on a handler's connection reports back to the router (PatternRequests). */
export interface PatternRequestRouter {
  readonly choice: HandlerChoice;
  /** The request could not be handed to `id` (it never ran there): another handler is tried. */
  skip(req: PatternRequest, id: string, err: Error): void;
}

/**
 * One request to a pattern, from the call to its end: what it asked, what it tried, and, once
 * sent on a handler's connection, the observer of that connection's replies. One object per
 * request, its callbacks prototype methods (the connection holds the observer by reference): the
 * path of a request to a pattern allocates what a request to a peer id does, plus this.
 */
export class PatternRequest implements RequestObserver {
  /** Handlers this request could not be handed to (their dial failed, their queue was full); made when first needed. */
  skip: Set<string> | undefined;
  /** Handlers this request has dialed. */
  dials = 0;
  /** Why the last handler could not take it. */
  lastError: Error | undefined;
  /** Over: replied to, failed or cancelled; nothing more reaches the caller. */
  done = false;
  /** While it waits (for a handler, for a dial to be allowed, for a dial): its timer. */
  timer: NodeJS.Timeout | undefined;
  /** While it waits for a dial: called with false when it is over before the dial is. */
  private stopDial: (() => void) | undefined;
  /** Once sent on a connection: the handler, its entry in the choice, its connection, and how to cancel it there. */
  private handlerId = '';
  private stats: HandlerStats | undefined;
  private socket: P2PSocket | undefined;
  private cancelHandler: (() => void) | undefined;
  private sentAt = 0;
  private answered = false;

  constructor(
    private readonly router: PatternRequestRouter,
    readonly subject: string,
    readonly data: unknown,
    readonly caller: RequestObserver,
    readonly options: RequestOptions,
    /** The longest wait for a handler, the dial and the first reply together, then between values. */
    readonly timeoutMs: number,
    /** Date.now() at the call (as read first in its turn of the event loop: turnNow). */
    readonly startedAt: number,
  ) {}

  /** ms of the timeout left at `now`. */
  left(now = Date.now()): number {
    return this.timeoutMs - (now - this.startedAt);
  }

  /** It waits for a dial; `stop` is called if it is over first. */
  waitingForDial(timer: NodeJS.Timeout, stop: () => void): void {
    this.timer = timer;
    this.stopDial = stop;
  }

  /** Whatever it waited for is over (the timer fired, or what it waited for came). */
  doneWaiting(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopDial = undefined;
  }

  /** Sent on the connection to `id`; `cancel` takes it back there. */
  sent(id: string, stats: HandlerStats, socket: P2PSocket, sentAt: number, cancel: () => void): void {
    this.handlerId = id;
    this.stats = stats;
    this.socket = socket;
    this.sentAt = sentAt;
    this.cancelHandler = cancel;
  }

  /** Answered by this node's own handler (local-request.ts); `cancel` stops that. */
  handedLocally(cancel: () => void): void {
    this.cancelHandler = cancel;
  }

  /** The caller cancels (unsubscribes): late replies are ignored. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.stopWaiting();
    if (this.cancelHandler) {
      this.cancelHandler();
      this.end(turnNow());
    }
  }

  /** The request fails before (or without) reaching a handler's connection. */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.stopWaiting();
    this.caller.error(err);
  }

  // ---- the observer of the connection's replies (RequestObserver) ----

  // Replies are timed by the read that carried them (socket.lastReadAt): no clock read per reply, and the
  // time the silent check (PatternRequests.silent) compares with the connection's reads is that read's own.

  next(value: unknown): void {
    if (!this.answered) this.answer(false, this.socket!.lastReadAt);
    this.caller.next(value);
  }

  error(err: Error): void {
    const now = turnNow();
    // A handler at its maxPeers accepts the hello, then closes without reading a request: it never ran there.
    if (!this.answered && err instanceof P2PConnectionClosedError && this.socket!.goodbyeReceived === GoodbyeReason.InboundLimit) {
      this.router.choice.failedOn(this.stats!, now);
      this.end(now);
      this.cancelHandler = undefined;
      return this.router.skip(this, this.handlerId, err);
    }
    // A handler's own error is an answer: it is alive. A timeout or a lost connection is not.
    if (err instanceof P2PRemoteError) {
      if (!this.answered) this.answer(true, this.socket!.lastReadAt);
    } else this.router.choice.failedOn(this.stats!, now);
    this.end(now);
    this.done = true;
    this.caller.error(err);
  }

  complete(): void {
    const now = this.socket!.lastReadAt;
    if (!this.answered) this.answer(false, now);
    this.end(now);
    this.done = true;
    this.caller.complete();
  }

  private answer(error: boolean, now: number): void {
    this.answered = true;
    this.router.choice.repliedOn(this.stats!, now - this.sentAt, error, now);
  }

  /** Its request on the connection is over: one fewer in flight there. */
  private end(now: number): void {
    const stats = this.stats;
    if (!stats) return;
    this.stats = undefined;
    this.router.choice.endedOn(this.handlerId, stats, now);
  }

  private stopWaiting(): void {
    const stop = this.stopDial;
    this.doneWaiting();
    stop?.();
  }
}

import { toWireError, type ReplySink } from '../connection/reply-sink.js';
import type { MetricsSink } from '../connection/metrics.js';
import { P2PRemoteError, P2PTimeoutError } from '../common/errors.js';
import type { P2PLogger, PeerInfo } from '../common/types.js';
import type { HandlerChoice } from '../directory/handler-choice.js';
import { decodePayload, encodePayload } from '../wire/codec.js';
import type { InboundHandler, RequestObserver } from './messaging.js';
import type { PatternRequest } from './pattern-request.js';

/** What answering a request with this node's own handler needs. */
export interface LocalAnswer {
  readonly selfId: string;
  readonly logger: P2PLogger;
  readonly choice: HandlerChoice;
  handler: InboundHandler;
  /** This node as its own handler's `ctx.getPeer()` sees it. */
  self: PeerInfo;
  metrics: MetricsSink | undefined;
}

/**
 * A request to a pattern that this node handles itself, answered by its own handler through the
 * same encoding a peer's request goes through (the handler gets a copy of the data; replies and
 * errors arrive as from a peer, a handler's error as P2PRemoteError), without a socket, with the
 * same timeouts as on a connection: the first reply within what is left of the request's
 * `timeoutMs`, each later value within `timeoutMs`, the whole within `deadlineMs` when set.
 */
export function answerLocally(req: PatternRequest, caller: RequestObserver, local: LocalAnswer): void {
  const { selfId: id, choice, metrics: sink } = local;
  const sentAt = Date.now();
  let ended = false;
  let answered = false;
  let gap: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const stats = choice.started(id, sentAt);
  const end = () => {
    ended = true;
    req.done = true;
    clearTimeout(gap);
    clearTimeout(deadline);
    choice.endedOn(id, stats, Date.now());
  };
  const outcome = (what: 'ok' | 'remote_error' | 'timeout') => sink?.request(req.subject, (Date.now() - sentAt) / 1000, what);
  const timeout = (ms: number, isDeadline: boolean) => () => {
    if (ended) return;
    choice.failedOn(stats);
    end();
    outcome('timeout');
    const err = new P2PTimeoutError(req.subject, ms, { peerId: id }, isDeadline);
    sink?.error(err.constructor.name);
    caller.error(err);
  };
  const arm = (ms: number) => {
    clearTimeout(gap);
    gap = setTimeout(timeout(ms, false), ms);
  };
  const answer = (error = false) => {
    if (answered) return;
    answered = true;
    choice.repliedOn(stats, Date.now() - sentAt, error);
  };
  const reply: ReplySink = {
    next: (value) => {
      if (ended) return;
      answer();
      arm(req.timeoutMs);
      let copy: unknown;
      try {
        copy = roundTrip(value);
      } catch (err) {
        local.logger.warn(`reply to "${req.subject}" is not serialisable: ${(err as Error).message}`, { event: 'reply-failed' });
        return;
      }
      caller.next(copy);
    },
    error: (err) => {
      if (ended) return;
      answer(true);
      end();
      outcome('remote_error');
      const remote = new P2PRemoteError(JSON.parse(JSON.stringify(toWireError(err)) ?? 'null'), { peerId: id });
      sink?.error(remote.constructor.name);
      caller.error(remote);
    },
    complete: () => {
      if (ended) return;
      answer();
      end();
      outcome('ok');
      caller.complete();
    },
  };
  // The first reply within what is left of the timeout (the request may have waited for a handler).
  arm(Math.max(1, req.left(sentAt)));
  const deadlineMs = req.options.deadlineMs;
  if (deadlineMs !== undefined) deadline = setTimeout(timeout(deadlineMs, true), Math.max(1, deadlineMs - (sentAt - req.startedAt)));
  req.handedLocally(() => {
    if (!ended) end();
  });
  sink?.routed?.(req.subject, id);
  let data: unknown;
  try {
    // The handler gets a copy, as a peer's handler would: it cannot change the caller's object, nor the caller its.
    data = roundTrip(req.data);
  } catch (err) {
    end();
    caller.error(err as Error);
    return;
  }
  // Never in the caller's stack: as over a socket, the first reply comes after request() has returned.
  queueMicrotask(() => {
    if (ended) return;
    try {
      local.handler.onRequest(local.self, req.subject, data, reply, req.options.metadata);
    } catch (err) {
      reply.error(err);
    }
  });
}

/** A value as the other end of a socket would get it. */
function roundTrip(value: unknown): unknown {
  const { encoding, bytes } = encodePayload(value);
  return decodePayload(encoding, bytes);
}

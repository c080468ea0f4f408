import { MAX_NONCE } from '../wire/constants.js';

/** Who hears a request's reply values and its end. */
export interface RequestObserver {
  next(value: unknown): void;
  error(err: Error): void;
  complete(): void;
}

/** One outstanding request; the reply stream may carry several values. */
export interface PendingRequest {
  pattern: string;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  /**
   * The total deadline, when the caller set one (`deadlineMs`, and when it passes, Date.now()): a stream
   * of values cannot hold the request open past it. The request's one timer is armed for whichever of
   * the two comes first.
   */
  deadlineMs?: number;
  deadlineAt?: number;
  /** Held by reference, not copied: an observer may be a class instance whose callbacks are prototype methods. */
  observer: RequestObserver;
}

/**
 * Outstanding requests of one connection, keyed by nonce (O(1), unlike the seed's
 * linear slice). Nonces run 1..2^32-1, wrap, and skip any still in flight.
 */
export class PendingRequests {
  private readonly byNonce = new Map<number, PendingRequest>();
  private last = 0;

  get size(): number {
    return this.byNonce.size;
  }

  add(request: PendingRequest): number {
    if (this.byNonce.size >= MAX_NONCE) throw new RangeError('no free request nonce');
    let nonce = this.last;
    do {
      nonce = nonce >= MAX_NONCE ? 1 : nonce + 1;
    } while (this.byNonce.has(nonce));
    this.last = nonce;
    this.byNonce.set(nonce, request);
    return nonce;
  }

  get(nonce: number): PendingRequest | undefined {
    return this.byNonce.get(nonce);
  }

  /** Removes and returns the request, clearing its timer. */
  take(nonce: number): PendingRequest | undefined {
    const request = this.byNonce.get(nonce);
    if (request) {
      clearTimeout(request.timer);
      this.byNonce.delete(nonce);
    }
    return request;
  }

  /** Rejects every outstanding request with the error built for it. */
  failAll(makeError: (request: PendingRequest) => Error): void {
    const all = [...this.byNonce.values()];
    for (const request of all) clearTimeout(request.timer);
    this.byNonce.clear();
    for (const request of all) request.observer.error(makeError(request));
  }

  /** For tests: start numbering after `nonce`. */
  seed(nonce: number): void {
    this.last = nonce;
  }
}

import type { P2PSocket } from '../connection/socket.js';
import { TokenBucket } from '../common/token-bucket.js';
import type { P2PLogger } from '../common/types.js';

/** What dials to handlers need from the node. */
export interface HandlerDialsHost {
  readonly logger: P2PLogger;
  isRunning(): boolean;
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
  /** Whether requests use the connection to `peerId` (one in flight, or one within idleMs). */
  inUse(peerId: string): boolean;
  /** A dial to `peerId` failed (the handler choice counts it). */
  dialFailed(peerId: string): void;
  /** An address became undialable: answers that held it are looked at again. */
  addressesChanged(): void;
}

export interface HandlerDialsOptions {
  /** A connection dialed only for requests is closed after this long without one, ms. */
  idleMs: number;
  /** New connections a second dialed to reach handlers (handlerDialRate). */
  dialRate: number;
  /** Most connections open or dialing for requests at once (a quarter of maxOutbound: the topology keeps its dials). */
  maxDialed: number;
  /** Most connections open or dialing for a publisher's fanout at once (eventFanout), beside maxDialed. */
  fanoutDials: number;
}

/** Whom a dial is for: requests to a pattern, or a publisher's fanout (event-fanout.ts). Each has its own limit, so neither starves the other. */
export type DialPool = 'requests' | 'fanout';

/** How long an address whose dial failed (or answered with another id) is not dialed again for requests: 1 s, doubling per failure in a row up to this, ms. */
export const BAD_ADDRESS_MS = 60_000;
/** Addresses remembered as failed (and addresses judged by the policy); the oldest are forgotten beyond it. */
const MAX_ADDRESSES = 4096;

/**
 * The dials requests to a pattern make to handlers that are not neighbours, and the limits on
 * them: a directory record's address is the word of whoever signed it (docs/pattern-requests.md,
 * "False records"). One dial per handler however many requests wait for it, one per address
 * whatever ids records claim there, failed addresses remembered by address (1 s doubling to 60 s),
 * `dialRate` new dials a second and `maxDialed` connections open or dialing for requests. The
 * connections dialed here are closed once requests have not used them for `idleMs`.
 */
export class HandlerDials {
  /** Dials in flight to handlers, shared by the requests that wait for them. */
  private readonly dialing = new Map<string, { done: Promise<unknown>; pool: DialPool }>();
  /** Addresses being dialed: one dial per address, whatever ids records claim at it. */
  private readonly dialingAddresses = new Set<string>();
  /** Addresses whose dial failed or proved another id, not dialed again until the time given (by address, not id: ids are free to make). */
  private readonly badAddresses = new Map<string, { until: number; failures: number }>();
  /** The address policy's verdict per address (bounded). */
  private readonly refused = new Map<string, string | undefined>();
  private readonly bucket: TokenBucket;
  /** Connections this node dialed for requests or the fanout, by pool (closed again once idle). */
  private readonly dialed = new Map<string, DialPool>();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: HandlerDialsHost,
    private readonly opts: HandlerDialsOptions,
  ) {
    this.bucket = new TokenBucket(opts.dialRate, Math.max(1, opts.dialRate), Date.now());
  }

  /** Whether a dial to `id` is under way (a request may wait for it without a dial of its own). */
  isDialing(id: string): boolean {
    return this.dialing.has(id);
  }

  /**
   * Why a new dial to `address` may not start now, or undefined (and then one is counted against the rate). `most`:
   * the connections of `pool` open or dialing here past which it may not: maxDialed for requests, fanoutDials for the fanout.
   */
  refusal(address: string, pool: DialPool = 'requests'): string | undefined {
    if (this.dialingAddresses.has(address)) return 'its address is being dialed already';
    if (this.host.outboundFull()) return 'maxOutbound reached';
    const connections = this.host.connections();
    const most = pool === 'requests' ? this.opts.maxDialed : this.opts.fanoutDials;
    let held = 0;
    for (const dial of this.dialing.values()) if (dial.pool === pool) held++;
    for (const [id, of] of this.dialed) if (of === pool && connections.has(id)) held++;
    if (held >= most) return `${most} connections open or dialing for ${pool === 'requests' ? 'requests' : 'the fanout'} already`;
    if (!this.bucket.take(1, Date.now())) return `over handlerDialRate (${this.opts.dialRate} new dials a second)`;
    return undefined;
  }

  /** Whether requests may dial `address`: the address policy allows it, and it has not failed recently. */
  dialable(address: string): boolean {
    const bad = this.badAddresses.get(address);
    if (bad !== undefined && bad.until > Date.now()) return false;
    if (!this.refused.has(address)) {
      if (this.refused.size >= MAX_ADDRESSES) this.refused.clear();
      const why = this.host.refusal(address);
      if (why) this.host.logger.debug?.(`handler address ${address} not dialed: ${why}`, { event: 'refused', address });
      this.refused.set(address, why);
    }
    return this.refused.get(address) === undefined;
  }

  /** Dials handler `id` at `address`, or joins the dial under way; a failure marks the address and counts against the id once. */
  dial(id: string, address: string, pool: DialPool = 'requests'): Promise<unknown> {
    const under = this.dialing.get(id);
    if (under) return under.done;
    // Each dial in flight holds a place under maxOutbound.
    this.dialingAddresses.add(address);
    const dialing = this.host.dial(`${id}@${address}`).finally(() => {
      this.dialing.delete(id);
      this.dialingAddresses.delete(address);
    });
    this.dialing.set(id, { done: dialing, pool });
    dialing.then(
      () => this.badAddresses.delete(address),
      (err: unknown) => {
        if (!this.host.isRunning()) return;
        this.host.logger.debug?.(`dial to handler ${id} at ${address} failed: ${(err as Error).message}`, { event: 'dial-failed', peerId: id, address });
        this.markBad(address);
        this.host.dialFailed(id);
      },
    );
    return dialing;
  }

  /** A request (or the fanout) is about to use the connection it dialed to `id`: closed again once idle. */
  used(id: string, address: string, subject: string, pool: DialPool = 'requests'): void {
    if (this.dialed.has(id)) return;
    this.host.logger.debug?.(`dialed ${pool === 'requests' ? 'handler' : 'subscriber'} ${id} at ${address} for "${subject}"`, { event: 'dialed', peerId: id, address });
    this.dialed.set(id, pool);
    this.watchIdle();
  }

  stop(): void {
    clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    this.dialed.clear();
  }

  private markBad(address: string): void {
    const failures = (this.badAddresses.get(address)?.failures ?? 0) + 1;
    this.badAddresses.delete(address);
    if (this.badAddresses.size >= MAX_ADDRESSES) this.badAddresses.delete(this.badAddresses.keys().next().value!);
    this.badAddresses.set(address, { until: Date.now() + Math.min(BAD_ADDRESS_MS, 1_000 * 2 ** Math.min(failures - 1, 20)), failures });
    this.host.addressesChanged();
  }

  /** Closes connections dialed for requests once unused for `idleMs` (the topology redials what it needs itself). */
  private watchIdle(): void {
    if (this.idleTimer) return;
    this.idleTimer = setInterval(() => {
      const connections = this.host.connections();
      for (const id of [...this.dialed.keys()]) {
        if (!connections.has(id)) this.dialed.delete(id);
        else if (!this.host.inUse(id)) {
          this.dialed.delete(id);
          this.host.release(id, `no request to its handlers for ${this.opts.idleMs} ms`);
        }
      }
      if (this.dialed.size === 0) {
        clearInterval(this.idleTimer);
        this.idleTimer = undefined;
      }
    }, Math.max(50, Math.min(this.opts.idleMs / 2, 10_000)));
    this.idleTimer.unref();
  }
}

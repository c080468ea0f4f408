import { afterEach, describe, expect, it, vi } from 'vitest';
import { P2PConnectionClosedError, P2PProtocolError } from '../../src/common/errors.js';
import { dispatchControl, type ControlRoutes } from '../../src/connection/control-dispatch.js';
import { Delivery, type DeliveryHost } from '../../src/connection/delivery.js';
import { HandlerLimit, type ReadControl } from '../../src/connection/handler-limit.js';
import { Keepalive, type KeepaliveHost } from '../../src/connection/keepalive.js';
import { ControlType, GoodbyeReason, type Control } from '../../src/wire/control.js';

// The socket's parts against recording hosts; the socket itself is covered over real sockets
// (socket-rules, handler-limit, hostile and the other e2e specs).

describe('HandlerLimit', () => {
  function reader(held: number, limit: () => HandlerLimit) {
    const calls: string[] = [];
    let closed = false;
    const read: ReadControl = {
      pause: () => void calls.push('pause'),
      // Each held frame starts a handler, as the decoder's dispatch does.
      decodeHeld: () => {
        calls.push('decodeHeld');
        for (; held > 0; held--) limit().acquire();
        return true;
      },
      resume: () => void calls.push('resume'),
      closed: () => closed,
    };
    return { read, calls, close: () => (closed = true) };
  }

  /** What release() queued: the resume runs after the current run of microtasks. */
  const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('stops reading at exactly the limit and reads again when a handler is free', async () => {
    let limit!: HandlerLimit;
    const { read, calls } = reader(0, () => limit);
    limit = new HandlerLimit(read, 2);
    limit.acquire();
    expect(calls).toEqual([]);
    limit.acquire();
    expect(calls).toEqual(['pause']);
    limit.release();
    expect(calls).toEqual(['pause']);
    await microtasks();
    expect(calls).toEqual(['pause', 'decodeHeld', 'resume']);
  });

  it('decodes the held frames once for every slot freed in one run of microtasks', async () => {
    let limit!: HandlerLimit;
    const { read, calls } = reader(3, () => limit);
    limit = new HandlerLimit(read, 4);
    for (let i = 0; i < 4; i++) limit.acquire();
    // Four handlers settle together, as a read's worth of async handlers do.
    for (let i = 0; i < 4; i++) void Promise.resolve().then(limit.release);
    await microtasks();
    // One pass took three held frames into three of the four free slots; the socket reads again.
    expect(calls).toEqual(['pause', 'decodeHeld', 'resume']);
  });

  it('stays paused when the held frames fill the handlers again, and does not resume a closed connection', async () => {
    let limit!: HandlerLimit;
    const { read, calls, close } = reader(1, () => limit);
    limit = new HandlerLimit(read, 1);
    limit.acquire();
    limit.release();
    await microtasks();
    // The held frame took the free slot: paused again, the socket not resumed.
    expect(calls).toEqual(['pause', 'decodeHeld', 'pause']);
    close();
    limit.release();
    await microtasks();
    expect(calls).toEqual(['pause', 'decodeHeld', 'pause']);
    limit.unpause(); // closing reads on regardless
    expect(calls).toEqual(['pause', 'decodeHeld', 'pause', 'decodeHeld', 'resume']);
  });
});

describe('Delivery of events', () => {
  /** A delivery whose handler returns what `results` hands it, with a limit that counts its slots. */
  function delivery(results: unknown[], resultHook: (value: unknown) => void = () => undefined) {
    const log: string[] = [];
    let active = 0;
    const host: DeliveryHost = {
      onEvent: () => results.shift(),
      eventResult: (value) => {
        log.push(`result:${String(value)}`);
        resultHook(value);
      },
      onRequest: () => undefined,
      writeFrame: () => undefined,
      isOpen: () => true,
      log: (level, message) => void log.push(`${level}:${message}`),
    };
    const limit = { acquire: () => void active++, release: () => void active-- };
    return { d: new Delivery(host, limit), log, active: () => active };
  }

  it('frees the slot of a plain value at once, and of a promise when it settles, handing on what it resolved to', async () => {
    let resolve!: (v: unknown) => void;
    const { d, log, active } = delivery([undefined, new Promise((r) => (resolve = r)), Promise.resolve(undefined)]);
    d.event('t', 1);
    expect(active()).toBe(0);
    d.event('t', 2);
    d.event('t', 3);
    expect(active()).toBe(2);
    await Promise.resolve();
    // One reaction per event: a promise that was already settled frees its slot one microtask later.
    expect(active()).toBe(1);
    resolve('stream');
    await Promise.resolve();
    await Promise.resolve();
    expect(active()).toBe(0);
    expect(log).toEqual(['result:stream']); // undefined is not handed on
  });

  it('frees the slot when the promise rejects or the result hook throws, and logs both', async () => {
    const { d, log, active } = delivery([Promise.reject(new Error('no')), Promise.resolve('bad')], () => {
      throw new Error('hook broke');
    });
    d.event('a.topic', 1);
    d.event('b.topic', 2);
    expect(active()).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect(active()).toBe(0);
    expect(log).toEqual(['error:event handler for "a.topic" failed: no', 'result:bad', "error:event handler's result failed: hook broke"]);
  });
});

describe('dispatchControl', () => {
  function routes(handshaking: boolean) {
    const seen: string[] = [];
    const to: ControlRoutes = {
      handshaking: () => handshaking,
      hello: () => void seen.push('hello'),
      ping: (token) => void seen.push(`ping ${token}`),
      pong: (token) => void seen.push(`pong ${token}`),
      goodbye: (reason) => void seen.push(`goodbye ${GoodbyeReason[reason]}`),
      peerExchange: () => void seen.push('peerExchange'),
      networkBroadcast: () => void seen.push('networkBroadcast'),
      repair: (type) => void seen.push(`repair ${ControlType[type]}`),
      directory: (type) => void seen.push(`directory ${ControlType[type]}`),
    };
    return { to, seen };
  }
  const body = Buffer.alloc(0);
  const protocols: Control[] = [
    { type: ControlType.PeerExchange, body },
    { type: ControlType.NetworkBroadcast, body },
    { type: ControlType.BroadcastIHave, body },
    { type: ControlType.BroadcastIWant, body },
  ];

  it('lets only hello, ping, pong and goodbye through before the hello exchange', () => {
    const { to, seen } = routes(true);
    dispatchControl({ type: ControlType.Ping, token: 1 }, to);
    dispatchControl({ type: ControlType.Pong, token: 2 }, to);
    dispatchControl({ type: ControlType.Hello, hello: {} as never }, to);
    dispatchControl({ type: ControlType.Goodbye, reason: GoodbyeReason.Normal, message: '' }, to);
    for (const control of protocols) expect(() => dispatchControl(control, to)).toThrow(P2PProtocolError);
    expect(seen).toEqual(['ping 1', 'pong 2', 'hello', 'goodbye Normal']);
  });

  it('refuses a second hello and routes the protocols once open', () => {
    const { to, seen } = routes(false);
    expect(() => dispatchControl({ type: ControlType.Hello, hello: {} as never }, to)).toThrow(/second hello/);
    for (const control of protocols) dispatchControl(control, to);
    expect(seen).toEqual(['peerExchange', 'networkBroadcast', 'repair BroadcastIHave', 'repair BroadcastIWant']);
  });
});

describe('Keepalive', () => {
  afterEach(() => void vi.useRealTimers());

  function host(over: Partial<KeepaliveHost> = {}) {
    const written: Control[] = [];
    const failed: [Error, GoodbyeReason][] = [];
    let destroyed = 0;
    let lastRead = 0;
    const h: KeepaliveHost = {
      ref: () => ({ peerId: 'p', address: 'a' }),
      writeControl: (control) => void written.push(control),
      backlogged: () => false,
      lastReadAt: () => lastRead,
      fail: (error, reason) => void failed.push([error, reason]),
      destroy: () => void destroyed++,
      ...over,
    };
    return { h, written, failed, read: (at: number) => (lastRead = at), destroyed: () => destroyed };
  }

  it('closes a silent peer once, a pong timeout after the first unanswered ping, and drops it at once', async () => {
    vi.useFakeTimers({ now: 1000 });
    const { h, written, failed, destroyed } = host();
    const keepalive = new Keepalive(h, { pingIntervalMs: 10, pongTimeoutMs: 25 });
    keepalive.start();
    vi.advanceTimersByTime(30); // a ping at 10, none at 20 and 30 while it is unanswered; the deadline runs from it
    expect(written.map((c) => c.type)).toEqual([ControlType.Ping]);
    expect(failed).toEqual([]);
    vi.advanceTimersByTime(5);
    expect(failed).toHaveLength(1);
    expect(failed[0]![0]).toBeInstanceOf(P2PConnectionClosedError);
    expect(failed[0]![1]).toBe(GoodbyeReason.IdleTimeout);
    await vi.advanceTimersToNextTimerAsync();
    expect(destroyed()).toBe(1);
    keepalive.stop();
  });

  it('keeps a peer that reads, measures the round trip of the last ping, and drops pongs while backlogged', () => {
    vi.useFakeTimers({ now: 1000 });
    let backlogged = false;
    const { h, written, failed, read } = host({ backlogged: () => backlogged });
    const keepalive = new Keepalive(h, { pingIntervalMs: 10, pongTimeoutMs: 25 });
    keepalive.start();
    vi.advanceTimersByTime(10);
    read(Date.now() + 3);
    vi.advanceTimersByTime(3);
    keepalive.onPong(1);
    expect(keepalive.rttMs).toBe(3);
    keepalive.onPong(7); // not the last ping's token
    expect(keepalive.rttMs).toBe(3);
    vi.advanceTimersByTime(30);
    expect(failed).toEqual([]);
    keepalive.stop();
    keepalive.onPing(5);
    backlogged = true;
    keepalive.onPing(6);
    expect(written.filter((c) => c.type === ControlType.Pong)).toEqual([{ type: ControlType.Pong, token: 5 }]);
  });
});

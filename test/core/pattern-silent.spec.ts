import { describe, expect, it } from 'vitest';
import { PatternRequests, type PatternRequestsHost } from '../../src/node/pattern-requests.js';
import type { P2PSocket } from '../../src/connection/socket.js';
import type { RequestObserver } from '../../src/node/messaging.js';
import { silentLogger, type PeerInfo } from '../../src/common/types.js';

/** A connection stand-in that answers after `delayMs`, or never once `frozen` (nothing is read from it then). */
class FakeConnection {
  frozen = false;
  lastReadAt = Date.now();
  sent = 0;
  readonly isOpen = true;
  constructor(private readonly delayMs: number) {}
  request(_s: string, _t: Buffer, data: unknown, _timeoutMs: number, observer: RequestObserver): () => void {
    this.sent++;
    if (!this.frozen) {
      setTimeout(() => {
        this.lastReadAt = Date.now();
        observer.next(data);
        observer.complete();
      }, this.delayMs);
    }
    return () => undefined;
  }
}

const FAST = 'f'.repeat(40);

describe('requests to a pattern: a handler that goes silent', () => {
  it('is passed over once it has answered nothing, and sent nothing, for silentMs with requests in flight, before any timeout', async () => {
    const fast = new FakeConnection(1);
    const slow = new FakeConnection(30);
    const conns = new Map<string, FakeConnection>([
      [FAST, fast],
      ['5'.repeat(40), slow],
    ]);
    const host: PatternRequestsHost = {
      selfId: '0'.repeat(40),
      logger: silentLogger,
      isRunning: () => true,
      notRunning: () => new Error('not running'),
      connections: () => conns as unknown as ReadonlyMap<string, P2PSocket>,
      dial: () => Promise.resolve(),
      refusal: () => undefined,
      outboundFull: () => false,
      release: () => undefined,
      local: () => undefined,
      selfInfo: () => ({}) as PeerInfo,
      topic: (p) => Buffer.from(p),
      metrics: () => undefined,
    };
    const requests = new PatternRequests(host, { timeoutMs: 60_000, idleMs: 60_000, silentMs: 100, dialRate: 10, maxDialed: 6, fanoutDials: 0 });
    requests.setLookup({ handlers: () => [...conns.keys()].map((id) => ({ id, address: '127.0.0.1:1', self: false })), onChange: () => () => undefined });
    const ask = () => new Promise<void>((resolve, reject) => requests.request('math.sum', 1, { next: () => undefined, error: reject, complete: resolve }));
    // Both measured: the fast one is much cheaper, so it takes most requests.
    for (let i = 0; i < 40; i++) await ask();
    fast.frozen = true;
    const frozenAt = Date.now();
    const before = fast.sent;
    // Requests keep coming, one every 5 ms: 60, then 60 more.
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        void ask().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await send(60);
    const waited = Date.now() - frozenAt;
    const midway = fast.sent;
    await send(60);
    // Cost alone (about 1 ms x in flight against 30 ms) would keep sending it a share for good, since its measured
    // time stays low; once silent for silentMs (and 4 x its usual time) it gets nothing more.
    if (waited > 2 * Math.max(100, 4 * (requests.choice.latencyMs(FAST) ?? 0))) expect(fast.sent - midway).toBe(0);
    expect(midway - before).toBeGreaterThan(0);
    expect(slow.sent).toBeGreaterThan(60);
  });
});

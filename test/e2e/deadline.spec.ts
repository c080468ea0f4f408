import { afterEach, describe, expect, it } from 'vitest';
import { P2PTimeoutError } from '../../src/index.js';
import { connectAndWait, startNode, type TestNode } from '../nest-helpers.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.app.close()));
});

async function pair(): Promise<[TestNode, TestNode]> {
  const a = await startNode();
  const b = await startNode();
  nodes.push(a, b);
  await connectAndWait(a, b);
  return [a, b];
}

describe('request deadlines: a reply stream that trickles cannot hold a request open', () => {
  it('request(): timeoutMs is the total deadline, though each value arrives within it', async () => {
    const [a, b] = await pair();
    const started = Date.now();
    const err = await a.service.request(b.id, 'trickle', null, { timeoutMs: 1000 }).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(P2PTimeoutError);
    expect((err as P2PTimeoutError).deadline).toBe(true);
    expect((err as Error).message).toMatch(/did not complete within its deadline of 1000 ms/);
    expect(took).toBeGreaterThanOrEqual(990);
    expect(took).toBeLessThan(1500);
    // The connection is fine; a plain request still works.
    expect(await a.service.request(b.id, 'echo', 'after')).toBe('after');
  });

  it('request(): with no reply at all, the one timer reports the wait for a reply, not the deadline it equals', async () => {
    const [a, b] = await pair();
    const started = Date.now();
    const err = await a.service.request(b.id, 'never', null, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PTimeoutError);
    expect((err as P2PTimeoutError).deadline).toBe(false);
    expect((err as P2PTimeoutError).timeoutMs).toBe(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // A deadline shorter than the gap's timeout is the one that ends it.
    const early = await a.service.request(b.id, 'never', null, { timeoutMs: 2000, deadlineMs: 200 }).catch((e: unknown) => e);
    expect((early as P2PTimeoutError).deadline).toBe(true);
    expect((early as P2PTimeoutError).timeoutMs).toBe(200);
  });

  it('requestStream(): timeoutMs is the gap between values; deadlineMs, when set, ends the stream', async () => {
    const [a, b] = await pair();
    const values: number[] = [];
    const ended = await new Promise<{ err: unknown; ms: number }>((resolve) => {
      const started = Date.now();
      a.service.requestStream<number>(b.id, 'trickle', null, { timeoutMs: 1000, deadlineMs: 1100 }).subscribe({
        next: (v) => values.push(v),
        error: (err: unknown) => resolve({ err, ms: Date.now() - started }),
      });
    });
    expect(ended.err).toBeInstanceOf(P2PTimeoutError);
    expect(ended.ms).toBeGreaterThanOrEqual(1090);
    expect(ended.ms).toBeLessThan(1600);
    expect(values.length).toBeGreaterThanOrEqual(2); // values kept coming within the 1000 ms gap
    // Without a deadline the same stream stays open past timeoutMs: the gap is what counts.
    const open: number[] = [];
    const sub = a.service.requestStream<number>(b.id, 'trickle', null, { timeoutMs: 1000 }).subscribe({ next: (v) => open.push(v) });
    await new Promise((r) => setTimeout(r, 1300));
    expect(sub.closed).toBe(false);
    expect(open.length).toBeGreaterThanOrEqual(3);
    sub.unsubscribe();
  });
});

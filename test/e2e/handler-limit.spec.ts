// maxConcurrentHandlers is an exact bound per peer: a flood of events or requests that all
// arrive in one read still runs at most that many handlers at once. The rest wait, unread and
// in order, and the peer's socket is paused (TCP backpressure); other peers are served meanwhile.
import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MODES, waitFor } from '../helpers.js';
import { connectAndWait, NodeController, startNode, type TestNode } from '../nest-helpers.js';

const LIMIT = 8;

/** Handlers that hold until the gate opens, counting how many run at once. */
const gate = { open: false, waiters: [] as Array<() => void>, running: 0, maxRunning: 0, seen: [] as number[] };

function resetGate(): void {
  Object.assign(gate, { open: false, waiters: [], running: 0, maxRunning: 0, seen: [] });
}

function openGate(): void {
  gate.open = true;
  for (const release of gate.waiters.splice(0)) release();
}

async function held(n: number): Promise<number> {
  gate.running++;
  gate.maxRunning = Math.max(gate.maxRunning, gate.running);
  gate.seen.push(n);
  if (!gate.open) await new Promise<void>((resolve) => gate.waiters.push(resolve));
  gate.running--;
  return n * 2;
}

@Controller()
class GatedController {
  @EventPattern<string>('gated.note')
  async note(@Payload() n: number): Promise<void> {
    await held(n);
  }

  @MessagePattern('gated.ask')
  ask(@Payload() n: number): Promise<number> {
    return held(n);
  }
}

describe.each(MODES)('maxConcurrentHandlers ($mode)', ({ tls }) => {
  let a: TestNode;
  let b: TestNode;
  let c: TestNode;

  beforeEach(async () => {
    resetGate();
    [a, b, c] = await Promise.all([
      startNode({ tls, peerExchange: false }),
      startNode({ tls, peerExchange: false, maxConcurrentHandlers: LIMIT }, [NodeController, GatedController]),
      startNode({ tls, peerExchange: false }),
    ]);
    await connectAndWait(a, b);
    await connectAndWait(c, b);
  });

  afterEach(async () => {
    openGate();
    await Promise.all([a, b, c].map((n) => n?.app.close()));
  });

  it('runs at most the limit of event handlers at once, pauses the peer, and delivers the rest in order', async () => {
    const count = 300;
    // One burst within a tick (send resolves once queued): the frames reach the receiver in a few reads.
    for (let i = 0; i < count; i++) await a.service.send(b.id, 'gated.note', i);
    await waitFor(() => gate.running === LIMIT, 5000, `${LIMIT} handlers running`);
    await new Promise((r) => setTimeout(r, 200));
    expect(gate.running).toBe(LIMIT);
    expect(gate.maxRunning).toBe(LIMIT);
    expect(gate.seen).toEqual(Array.from({ length: LIMIT }, (_, i) => i));
    expect(b.node.connection(a.id)?.raw.isPaused()).toBe(true);

    // Another peer is served while this one waits.
    await expect(c.service.request(b.id, 'echo', 'still here', { timeoutMs: 2000 })).resolves.toBe('still here');

    openGate();
    await waitFor(() => gate.seen.length === count, 5000, 'every event');
    expect(gate.seen).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(gate.maxRunning).toBe(LIMIT);
    await waitFor(() => b.node.connection(a.id)?.raw.isPaused() === false, 2000, 'reading again');
  });

  it('bounds request handlers the same way, and every request gets its reply', async () => {
    const count = 40;
    const replies = Array.from({ length: count }, (_, i) => a.service.request<number>(b.id, 'gated.ask', i, { timeoutMs: 5000 }));
    await waitFor(() => gate.running === LIMIT, 5000, `${LIMIT} handlers running`);
    await new Promise((r) => setTimeout(r, 200));
    expect(gate.running).toBe(LIMIT);
    expect(gate.seen).toHaveLength(LIMIT);

    openGate();
    await expect(Promise.all(replies)).resolves.toEqual(Array.from({ length: count }, (_, i) => i * 2));
    expect(gate.maxRunning).toBe(LIMIT);
  });
});

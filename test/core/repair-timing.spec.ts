import { afterEach, describe, expect, it, vi } from 'vitest';
import { BroadcastRepair, type RepairHost } from '../../src/broadcast/repair.js';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { loadIdentity } from '../../src/common/identity.js';
import { Encoding } from '../../src/wire/constants.js';

/**
 * When a running BroadcastRepair announces (its own timer, under fake timers): an id waits
 * the grace (0.3 of an interval), and is announced at the next run of the clock grid (every
 * half interval), at most 0.8 of an interval after it arrived, wherever it falls between runs. Before, with one tick per interval, an id that arrived
 * just under the grace before a tick waited for the next: 1.5 intervals. An event for subscribers keeps the grace it
 * had before watchers (half an interval): announced within one interval.
 */
const identity = loadIdentity();
const peer = (n: number) => n.toString(16).padStart(40, '0');

afterEach(() => {
  vi.useRealTimers();
});

function running(intervalMs: number) {
  const announced: number[] = [];
  const host: RepairHost = {
    selfId: peer(0),
    neighbours: () => [peer(1)],
    has: () => false,
    sendIHave: () => void announced.push(Date.now()),
    sendIWant: () => undefined,
    sendBroadcast: () => undefined,
  };
  const repair = new BroadcastRepair(host, { intervalMs, cacheBytes: 1 << 20, fanout: 6 }, () => Date.now());
  repair.start();
  return { repair, announced };
}

describe('repair announcement timing', () => {
  it.each([1, 240, 260, 499])('an id that arrives %i ms after a tick is announced within 0.8 of an interval (400 ms), after the grace (150 ms)', (offset) => {
    vi.useFakeTimers({ now: 0 });
    const { repair, announced } = running(500);
    vi.advanceTimersByTime(500 + offset);
    const at = Date.now();
    repair.got(createNetworkMessage(identity, { timestampUs: at * 1000 + offset, encoding: Encoding.Json, topic: 't', payload: Buffer.from('1'), strategy: 'raintree' }), []);
    vi.advanceTimersByTime(1000);
    repair.stop();
    expect(announced).toHaveLength(1);
    const waited = announced[0]! - at;
    // The grace (0.3 of an interval), then the next run of the clock grid (every half interval).
    expect(waited).toBeGreaterThanOrEqual(150);
    expect(waited).toBeLessThanOrEqual(400);
  });

  it.each([1, 240, 260, 499])('an event for subscribers that arrives %i ms after a tick waits its own grace (half an interval, as before watchers), and is announced within one interval', (offset) => {
    vi.useFakeTimers({ now: 0 });
    const { repair, announced } = running(500);
    vi.advanceTimersByTime(500 + offset);
    const at = Date.now();
    repair.got(createNetworkMessage(identity, { timestampUs: at * 1000 + offset, encoding: Encoding.Json, topic: 't', payload: Buffer.from('1'), strategy: 'subscribers' }), []);
    vi.advanceTimersByTime(1500);
    repair.stop();
    expect(announced).toHaveLength(1);
    const waited = announced[0]! - at;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThanOrEqual(500);
  });

  it("a network broadcast that arrives just after an event for subscribers is not held to the event's longer grace", () => {
    vi.useFakeTimers({ now: 0 });
    const { repair, announced } = running(500);
    // The event comes due at 760 (the grid's 1 000), the network broadcast at 670 (the grid's 750).
    vi.advanceTimersByTime(510);
    repair.got(createNetworkMessage(identity, { timestampUs: 510_000, encoding: Encoding.Json, topic: 't', payload: Buffer.from('1'), strategy: 'subscribers' }), []);
    vi.advanceTimersByTime(10);
    const at = Date.now();
    repair.got(createNetworkMessage(identity, { timestampUs: 520_000, encoding: Encoding.Json, topic: 't', payload: Buffer.from('2'), strategy: 'raintree' }), []);
    vi.advanceTimersByTime(1500);
    repair.stop();
    // The network broadcast's id goes at 750, within 0.8 of an interval (held to the event's due time it would wait
    // for the grid's 1 000: 480 ms); the event's rides along, within a tenth of an interval of its grace (RIDE_SHARE).
    expect(announced.length).toBeGreaterThanOrEqual(1);
    expect(announced[0]! - at).toBeLessThanOrEqual(400);
    expect(announced.at(-1)! - 510).toBeGreaterThanOrEqual(200);
    expect(announced.at(-1)! - 510).toBeLessThanOrEqual(500);
  });
});

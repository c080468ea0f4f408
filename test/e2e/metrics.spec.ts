import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { P2PModule, P2PService } from '../../src/index.js';
import { P2P_METRICS_REGISTRY, P2PMetrics } from '../../src/nest/p2p.metrics.js';
import { NodeController, startApp, startNode, type TestNode } from '../nest-helpers.js';

const nodes: TestNode[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await Promise.all(nodes.splice(0).map((n) => n.app.close()));
});

type MetricJson = { name: string; values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }> };

describe('P2PMetrics (prom-client)', () => {
  it('counts frames, bytes, request durations by outcome, errors, peers and queue bytes', async () => {
    const registry = new Registry();
    const app = await startApp({
      imports: [P2PModule.forRoot({ listen: '127.0.0.1:0' })],
      controllers: [NodeController],
      providers: [P2PMetrics, { provide: P2P_METRICS_REGISTRY, useValue: registry }],
    });
    closers.push(() => app.close());
    const a = app.get(P2PService);
    expect(app.get(P2PMetrics).registry).toBe(registry);
    const b = await startNode();
    nodes.push(b);
    await a.connect(`${b.id}@${b.address}`);

    expect(await a.request(b.id, 'echo', 'x')).toBe('x');
    expect(await a.request(b.id, 'echo', 'y')).toBe('y');
    await expect(a.request(b.id, 'reject', null)).rejects.toThrow(/bad input/);
    await expect(a.request(b.id, 'never', null, { timeoutMs: 50 })).rejects.toThrow(/no reply/);
    await a.send(b.id, 'note', Buffer.alloc(1000));
    await new Promise((r) => setTimeout(r, 20)); // let the write queue hand the event to the kernel

    const metrics = (await registry.getMetricsAsJSON()) as MetricJson[];
    const value = (name: string, labels: Record<string, string>, metricName = name) =>
      metrics
        .find((m) => m.name === name)
        ?.values.find((v) => (v.metricName ?? name) === metricName && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;

    expect(value('p2p_connected_peers', { direction: 'outbound' })).toBe(1);
    expect(value('p2p_connected_peers', { direction: 'inbound' })).toBe(0);
    expect(value('p2p_frames_total', { direction: 'out', kind: 'request' })).toBe(4);
    expect(value('p2p_frames_total', { direction: 'out', kind: 'event' })).toBe(1);
    expect(value('p2p_frames_total', { direction: 'in', kind: 'response' })).toBe(3);
    expect(value('p2p_bytes_total', { direction: 'out', kind: 'event' })).toBeGreaterThan(1000);
    const count = (pattern: string, outcome: string) => value('p2p_request_duration_seconds', { pattern, outcome }, 'p2p_request_duration_seconds_count');
    expect(count('echo', 'ok')).toBe(2);
    expect(count('reject', 'remote_error')).toBe(1);
    expect(count('never', 'timeout')).toBe(1);
    expect(value('p2p_errors_total', { type: 'P2PTimeoutError' })).toBe(1);
    expect(value('p2p_errors_total', { type: 'P2PRemoteError' })).toBe(1);
    expect(value('p2p_queue_bytes', {})).toBe(0);
    expect(value('p2p_refused_connections_total', {})).toBe(0);
    // Bans and broadcast drops: a hand ban, and a broadcast a validator ignores.
    b.service.setBroadcastValidator('note', () => 'ignore');
    await a.broadcast('note', 'judged', { scope: 'network' });
    await new Promise((r) => setTimeout(r, 50));
    b.service.ban(a.id, { reason: 'metrics test' });
    const after = (await registry.getMetricsAsJSON()) as MetricJson[];
    const now = (name: string, labels: Record<string, string> = {}) =>
      after.find((m) => m.name === name)?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    expect(now('p2p_bans_total')).toBe(0); // A banned nobody; B did
    expect(b.service.bans()).toHaveLength(1);
    const bMetrics = new Registry();
    const bProbe = new P2PMetrics(b.node, bMetrics);
    closers.push(async () => bProbe.onModuleDestroy());
    const bJson = (await bMetrics.getMetricsAsJSON()) as MetricJson[];
    const bValue = (name: string, labels: Record<string, string> = {}) =>
      bJson.find((m) => m.name === name)?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    expect(bValue('p2p_bans_total')).toBe(1);
    expect(bValue('p2p_banned_peers')).toBe(1);
    expect(bValue('p2p_broadcast_dropped_total', { reason: 'ignored' })).toBe(1);
    // The text exposition a /metrics endpoint serves.
    expect(await registry.metrics()).toMatch(/^p2p_frames_total\{direction="out",kind="request"\} 4$/m);
  });
});

// The CLI's admin endpoint over core nodes (no Nest): what it answers without prom-client, below minPeers, to
// methods that would write, and to oversized requests; and that it closes its connections when the node stops.
import { connect } from 'node:net';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdminServer, type AdminServer } from '../../src/cli/admin-server.js';
import type { AdminPeerRow, AdminTopology } from '../../src/cli/admin-views.js';
import { Peer } from '../../src/node/peer.js';
import { startPeers, waitFor } from '../helpers.js';

const open: Peer[] = [];
const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(open.splice(0).map((p) => p.close()));
});

function get(address: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request(`http://${address}${path}`, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('admin endpoint (src/cli/admin-server.ts) over core nodes', () => {
  it('without prom-client /metrics is 501 and says so; /health is 503 below minPeers and 200 once reached', async () => {
    const [a, b] = await startPeers(2);
    open.push(a!, b!);
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, { node: a!, minPeers: 1 });
    servers.push(admin);
    expect(admin.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const metrics = await get(admin.address, '/metrics');
    expect(metrics.status).toBe(501);
    expect(metrics.body).toMatch(/needs prom-client/);
    const down = await get(admin.address, '/health');
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body)).toEqual({ status: 'down', id: a!.id, address: a!.address(), peers: 0, minPeers: 1, running: true, listening: true });
    await b!.connect(a!.address()!);
    await waitFor(() => a!.peers().length === 1, 5000, 'the connection');
    const up = await get(admin.address, '/health');
    expect(up.status).toBe(200);
    expect(JSON.parse(up.body)).toMatchObject({ status: 'up', peers: 1 });
    const { peers } = JSON.parse((await get(admin.address, '/peers?x=1')).body) as { peers: AdminPeerRow[] };
    expect(peers).toHaveLength(1);
    expect(peers[0]).toMatchObject({ id: b!.id, address: b!.address(), direction: 'inbound', score: 0 });
    const topo = JSON.parse((await get(admin.address, '/topology')).body) as AdminTopology;
    expect(topo.nodes.map((n) => n.role).sort()).toEqual(['neighbour', 'self']);
    expect(topo.links).toEqual([{ from: a!.id, to: b!.id, kind: 'connection', rttMs: peers[0]!.rttMs }]);
  });

  it('/health is down for a node configured to listen that has no address, as P2PHealthIndicator', async () => {
    const [a] = await startPeers(1);
    const quiet = new Peer({ listen: null });
    await quiet.start();
    open.push(a!, quiet);
    await quiet.connect(a!.address()!);
    await waitFor(() => quiet.peers().length === 1, 5000, 'the connection');
    const configured = await startAdminServer({ host: '127.0.0.1', port: 0 }, { node: quiet, minPeers: 0, listens: true });
    const dialOnly = await startAdminServer({ host: '127.0.0.1', port: 0 }, { node: quiet, minPeers: 0 });
    servers.push(configured, dialOnly);
    const down = await get(configured.address, '/health');
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body)).toMatchObject({ status: 'down', address: null, listening: false, peers: 1 });
    const up = await get(dialOnly.address, '/health');
    expect(up.status).toBe(200);
    expect(JSON.parse(up.body)).toMatchObject({ status: 'up', address: null, listening: true });
  });

  it('never acts on a write: POST/PUT/DELETE with a body are 405 and change nothing; oversized headers are refused', async () => {
    const [a, b] = await startPeers(2);
    open.push(a!, b!);
    await b!.connect(a!.address()!);
    await waitFor(() => a!.peers().length === 1, 5000, 'the connection');
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, { node: a!, minPeers: 0 });
    servers.push(admin);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of ['/peers', `/peers/${b!.id}`, '/ban', '/health']) {
        const res = await get(admin.address, path, { method, body: JSON.stringify({ ban: b!.id }), headers: { 'content-type': 'application/json' } });
        expect(res.status).toBe(405);
        expect(res.headers.allow).toBe('GET, HEAD');
      }
    }
    expect(a!.peers().map((p) => p.id)).toEqual([b!.id]);
    expect(a!.bans()).toEqual([]);
    // Node's own header limit (16 KiB) answers 431, and the endpoint keeps serving.
    const big = await get(admin.address, '/peers', { headers: { 'x-pad': 'x'.repeat(20_000) } });
    expect(big.status).toBe(431);
    expect((await get(admin.address, '/peers')).status).toBe(200);
  });

  it('close() ends idle keep-alive connections too: the process is not held open', async () => {
    const [a] = await startPeers(1);
    open.push(a!);
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0 }, { node: a!, minPeers: 0 });
    const [host, port] = [admin.address.split(':')[0]!, Number(admin.address.split(':')[1])];
    const socket = connect(port, host);
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    await admin.close();
    await closed;
    expect(socket.destroyed).toBe(true);
  });
});

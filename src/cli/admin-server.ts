import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseAddress } from '../connection/address.js';
import { isLoopback as isLoopbackIp } from '../trust/inbound-admission.js';
import type { Peer } from '../node/peer.js';
import { peerRows, topology } from './admin-views.js';
import { TOPOLOGY_PAGE } from './admin-page.js';

/** Where the admin endpoint listens. */
export interface AdminListen {
  host: string;
  port: number;
}

/** What the admin endpoint serves from. */
export interface AdminSources {
  node: Peer;
  /** The fewest connected peers for `/health` to say up (the config's minPeers). */
  minPeers: number;
  /** Whether the node was configured to listen: `/health` is then down while it has no address, as P2PHealthIndicator. */
  listens?: boolean;
  /** Prometheus text for `/metrics`; undefined when prom-client is not installed (`/metrics` then answers 501). */
  metrics?: () => Promise<string>;
}

/** A running admin endpoint. */
export interface AdminServer {
  /** `host:port` it listens on. */
  readonly address: string;
  close(): Promise<void>;
}

// Read-only and small: a handful of operators or scrapers at once, each answered at once.
const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * `--admin-listen`: `host:port`, `[v6]:port`, or a port alone (then 127.0.0.1). Returns an error
 * message when invalid. Loopback unless the host is given: a non-loopback bind is always explicit.
 */
export function parseAdminListen(value: string): AdminListen | string {
  const text = /^\d+$/.test(value.trim()) ? `127.0.0.1:${value.trim()}` : value;
  const parsed = parseAddress(text);
  if (typeof parsed === 'string') return parsed;
  if (parsed.peerId !== undefined) return `"${value}" names a peer id: expected host:port`;
  return { host: parsed.host, port: parsed.port };
}

/** Whether `host` is a loopback address (the trust layer's rule) or `localhost`. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || isLoopbackIp(host);
}

/**
 * The `/health` body: up when the node runs, listens if it was configured to, and has at least
 * minPeers peers (200, else 503) — the same rule as P2PHealthIndicator.
 */
export function health(node: Peer, minPeers: number, listens = false) {
  const peers = node.peers().length;
  const address = node.address();
  const listening = !listens || address !== null;
  const up = node.isRunning && listening && peers >= minPeers;
  return { status: up ? 'up' : 'down', id: node.id, address, peers, minPeers, running: node.isRunning, listening };
}

/**
 * The operator's view over HTTP (node:http, read-only): `/metrics` (Prometheus text), `/health`,
 * `/peers`, `/topology` (JSON) and `/` (a page drawing the topology). GET and HEAD only: nothing
 * here changes the node. Every body is bounded by config (see admin-views.ts).
 */
export async function startAdminServer(listen: AdminListen, sources: AdminSources): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    handle(req, res, sources).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${err.message}\n`);
      else res.destroy();
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const address = bound && typeof bound === 'object' ? (bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`) : `${listen.host}:${listen.port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, { node, minPeers, listens, metrics }: AdminSources): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    // The body is never read: the connection closes after the answer, rather than a keep-alive reuse meeting it.
    res.setHeader('Connection', 'close');
    return send(res, 405, 'text/plain; charset=utf-8', 'read-only: GET or HEAD\n');
  }
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/metrics':
      if (!metrics) return send(res, 501, 'text/plain; charset=utf-8', '/metrics needs prom-client: npm install prom-client\n');
      return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await metrics());
    case '/health': {
      const body = health(node, minPeers, listens);
      return json(res, body.status === 'up' ? 200 : 503, body);
    }
    case '/peers':
      return json(res, 200, { id: node.id, address: node.address(), peers: peerRows(node) });
    case '/topology':
      return json(res, 200, topology(node));
    case '/':
      return send(res, 200, 'text/html; charset=utf-8', TOPOLOGY_PAGE);
    default:
      return send(res, 404, 'text/plain; charset=utf-8', 'not found: /metrics, /health, /peers, /topology or /\n');
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

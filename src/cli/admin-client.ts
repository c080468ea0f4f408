import type { AdminPeerRow, AdminTopology } from './admin-views.js';

const TIMEOUT_MS = 5000;

/** An admin address as typed (`host:port`, a port alone for 127.0.0.1, or an http:// URL) as a base URL. */
export function adminUrl(address: string): string {
  const text = address.trim();
  if (/^https?:\/\//.test(text)) return text.endsWith('/') ? text : `${text}/`;
  return `http://${/^\d+$/.test(text) ? `127.0.0.1:${text}` : text}/`;
}

/** GETs a JSON path of a node's admin endpoint; a 503 (health down) still has a body. */
export async function getAdmin<T>(address: string, path: string): Promise<T> {
  const url = new URL(path, adminUrl(address));
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) }).catch((err: Error & { cause?: Error & { code?: string } }) => {
    throw new Error(`${url}: ${err.cause?.code ?? err.cause?.message ?? err.message}`); // "fetch failed" alone says nothing
  });
  if (!res.ok && res.status !== 503) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function age(since: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** `nestjs-p2p status`: the health line and the peer table. */
export function formatStatus(
  health: { status: string; id: string; address: string | null; peers: number; minPeers: number },
  peers: AdminPeerRow[],
  now = Date.now(),
): string {
  const head = `node ${health.id} at ${health.address ?? 'not listening'}: ${health.status}, ${health.peers} peer${health.peers === 1 ? '' : 's'} (minPeers ${health.minPeers})`;
  const rows = peers.map((p) => [
    p.id, p.address, p.direction, p.rttMs === null ? '-' : `${p.rttMs.toFixed(1)} ms`, String(p.score), bytes(p.bytesIn), bytes(p.bytesOut), age(p.since, now),
  ]);
  return `${head}\n${table(['PEER', 'ADDRESS', 'DIRECTION', 'RTT', 'SCORE', 'IN', 'OUT', 'SINCE'], rows)}\n`;
}

/** `nestjs-p2p topology`: every known node, then each node's links (RTT for this node's own). */
export function formatTopology(topo: AdminTopology): string {
  const nodes = table(
    ['NODE', 'ADDRESS', 'ROLE'],
    topo.nodes.map((n) => [n.id, n.address ?? '-', n.role === 'self' ? 'this node' : n.role]),
  );
  const adjacent = new Map<string, string[]>();
  const add = (a: string, b: string, label: string) => adjacent.set(a, [...(adjacent.get(a) ?? []), `${b.slice(0, 8)}${label}`]);
  for (const link of topo.links) {
    const label = link.kind === 'connection' ? ` (${link.rttMs === null ? '-' : `${link.rttMs.toFixed(1)} ms`})` : '';
    add(link.from, link.to, label);
    add(link.to, link.from, label);
  }
  const lines = topo.nodes.filter((n) => adjacent.has(n.id)).map((n) => `${n.id.slice(0, 8)} -- ${adjacent.get(n.id)!.join(', ')}`);
  return `${topo.nodes.length} nodes, ${topo.links.length} links (RTT on this node's own; the rest from its neighbours' peer exchange)\n${nodes}\n\nlinks:\n${lines.join('\n')}\n`;
}

import type { Peer } from '../node/peer.js';

/** One connected peer, as the admin endpoint's `/peers` lists it. */
export interface AdminPeerRow {
  /** The peer's id. */
  id: string;
  /** The address it can be dialed at (from its hello), else the remote end of this connection. */
  address: string;
  /** The remote end of this connection. */
  remoteAddress: string;
  /** Who dialed: `outbound` when this node did. */
  direction: 'inbound' | 'outbound';
  /** Last ping round trip in ms, null before the first pong. */
  rttMs: number | null;
  /** This node's score of the peer (0 is neutral; misbehaviour lowers it toward a ban). */
  score: number;
  /** Bytes read from and written to this connection's socket (TLS records included when secure). */
  bytesIn: number;
  bytesOut: number;
  /** When the connection was set up (ISO 8601). */
  since: string;
  /** TLS with the id proven by its certificate. */
  secure: boolean;
}

/** The known graph, as `/topology` serves it: this node, its neighbours, and what their peer exchange named. */
export interface AdminTopology {
  /** This node's id and listen address. */
  self: { id: string; address: string | null };
  /** Every id known: this node, its neighbours, the ids their peer exchange named, the address book. */
  nodes: Array<{ id: string; address: string | null; role: 'self' | 'neighbour' | 'known' }>;
  /**
   * Links: `connection` between this node and a neighbour (with its RTT), `peer-exchange` between a
   * neighbour and an id it named in its last peer exchange (hearsay: no RTT). Each pair once.
   */
  links: Array<{ from: string; to: string; kind: 'connection' | 'peer-exchange'; rttMs: number | null }>;
}

/** The `/peers` table: one row per connection; at most maxPeers rows. */
export function peerRows(node: Peer): AdminPeerRow[] {
  return node.peers().map((info) => {
    const raw = node.connection(info.id)?.raw;
    return {
      id: info.id,
      address: info.listenAddress ?? info.remoteAddress,
      remoteAddress: info.remoteAddress,
      direction: info.direction,
      rttMs: info.rttMs,
      score: node.peerScore(info.id),
      bytesIn: raw?.bytesRead ?? 0,
      bytesOut: raw?.bytesWritten ?? 0,
      since: info.connectedAt.toISOString(),
      secure: info.secure,
    };
  });
}

/**
 * The `/topology` graph. Bounded by config: at most 1 + maxPeers neighbours, each naming at most 64 ids
 * (a peer exchange's limit), plus maxKnownPeers address-book entries.
 */
export function topology(node: Peer): AdminTopology {
  const addresses = new Map<string, string>();
  for (const known of node.knownPeers()) addresses.set(known.id, known.address);
  const nodes = new Map<string, AdminTopology['nodes'][number]>();
  const self = { id: node.id, address: node.address() };
  nodes.set(self.id, { ...self, role: 'self' });
  const links: AdminTopology['links'] = [];
  const linked = new Set<string>();
  const link = (from: string, to: string, kind: 'connection' | 'peer-exchange', rttMs: number | null) => {
    const key = from < to ? `${from} ${to}` : `${to} ${from}`;
    if (from === to || linked.has(key)) return;
    linked.add(key);
    links.push({ from, to, kind, rttMs });
  };
  const peers = node.peers();
  for (const info of peers) {
    nodes.set(info.id, { id: info.id, address: info.listenAddress ?? info.remoteAddress, role: 'neighbour' });
    link(self.id, info.id, 'connection', info.rttMs);
  }
  for (const [neighbour, named] of node.neighbourViews()) {
    for (const id of named) {
      if (!nodes.has(id)) nodes.set(id, { id, address: addresses.get(id) ?? null, role: 'known' });
      link(neighbour, id, 'peer-exchange', null);
    }
  }
  for (const [id, address] of addresses) if (!nodes.has(id)) nodes.set(id, { id, address, role: 'known' });
  return { self, nodes: [...nodes.values()], links };
}

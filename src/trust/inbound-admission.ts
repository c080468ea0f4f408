import { BlockList, isIP, type Socket } from 'node:net';
import { BucketTable } from '../common/token-bucket.js';
import { branchOf } from '../ring/raintree.js';

/** Limits on inbound connections, in the order they are checked (as js-libp2p's connection manager). */
export interface AdmissionLimits {
  /** Connections still in their handshake (TLS, then hello); past it the oldest is dropped. */
  maxPendingInbound: number;
  /** New inbound connections a second from one IP (burst: twice that). */
  inboundRatePerIp: number;
  /** Authenticated inbound connections. */
  maxInbound: number;
  /** Authenticated inbound connections from one IP. */
  maxInboundPerIp: number;
  /** Hold loopback dialers to the per-IP limits too (by default they are held to maxInbound and maxPendingInbound only). */
  perIpLimitsOnLoopback: boolean;
}

/**
 * Inbound admission in two stages. At accept, before any handshake: banned
 * address (the caller), rate per IP, then a slot among the pending handshakes,
 * taking the oldest's when they are all held. After the handshake, once the
 * peer is authenticated: maxInbound and maxInboundPerIp. So sockets that never
 * finish a handshake cannot hold the slots honest peers need.
 */
export class InboundAdmission {
  /** Handshakes in progress, oldest first (Map order), by TCP socket. */
  private readonly pending = new Set<Socket>();
  private readonly rates: BucketTable;

  constructor(private readonly limits: AdmissionLimits) {
    this.rates = new BucketTable(limits.inboundRatePerIp, 2 * limits.inboundRatePerIp, 10_000);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * A new TCP connection. Returns why it is dropped at once, or undefined when it may
   * start its handshake; then `evicted` is the oldest pending one it displaced, if any.
   */
  accept(raw: Socket): { refused?: string; evicted?: Socket } {
    const ip = ipOf(raw);
    if (this.perIp(ip) && !this.rates.take(ip, 1)) return { refused: `more than ${this.limits.inboundRatePerIp} new connections a second from ${ip}` };
    let evicted: Socket | undefined;
    if (this.pending.size >= this.limits.maxPendingInbound) {
      evicted = this.pending.values().next().value!;
      this.pending.delete(evicted);
    }
    this.pending.add(raw);
    raw.once('close', () => this.pending.delete(raw));
    return { evicted };
  }

  /** The handshake is over (admitted or not): the connection no longer holds a pending slot. */
  settle(raw: Socket): void {
    this.pending.delete(raw);
  }

  /** Every handshake in progress, for close(). */
  pendingSockets(): Socket[] {
    return [...this.pending];
  }

  /** After the handshake: why an authenticated inbound connection from `ip` cannot stay, given the others open. */
  refusal(ip: string, openInboundIps: readonly string[]): string | undefined {
    if (openInboundIps.length >= this.limits.maxInbound) return `inbound limit of ${this.limits.maxInbound} reached`;
    if (!this.perIp(ip)) return undefined;
    const fromIp = openInboundIps.filter((other) => other === ip).length;
    if (fromIp >= this.limits.maxInboundPerIp) return `inbound limit of ${this.limits.maxInboundPerIp} per IP reached for ${ip}`;
    return undefined;
  }

  /**
   * Whether the per-IP limits apply to dialers from `ip`. Not on loopback by default: every process of
   * this host dials from there, so an IP tells no two of them apart (a network of nodes on one host, or
   * a local proxy in front of the node), and whoever can dial from loopback runs on this host already.
   */
  private perIp(ip: string): boolean {
    return this.limits.perIpLimitsOnLoopback || !isLoopback(ip);
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8 or ::1 (IPv4-mapped ones arrive without their prefix, see ipOf). */
export function isLoopback(ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why an authenticated inbound peer `id` cannot stay on node `self`, which already holds inbound
 * connections from `openInboundIds`: `limit` of them are in the same third of the ring as `id`
 * (its ring-distance bucket from `self`, as Kademlia's k-buckets: the sibling third along
 * `self`'s path where `id` leaves it, src/ring/raintree.ts). Ids ground into one of a node's
 * thirds then hold at most `limit` of its inbound connections there; the node covers that third
 * with a neighbour of its own choosing anyway (src/discovery/ring-topology.ts).
 */
export function thirdRefusal(self: string, id: string, openInboundIds: readonly string[], limit: number): string | undefined {
  const branch = branchOf(self, id);
  if (!branch) return undefined;
  const { arc, level } = branch;
  let same = 0;
  for (const other of openInboundIds) {
    const b = branchOf(self, other);
    if (b && b.level === level && b.arc.from === arc.from) same++;
  }
  return same >= limit ? `inbound limit of ${limit} per third of the ring reached (level ${level}, from ${arc.from.slice(0, 8)})` : undefined;
}

/** The remote IP of a socket, without the IPv4-mapped prefix. */
export function ipOf(raw: Socket): string {
  return (raw.remoteAddress ?? '?').replace(/^::ffff:/, '');
}

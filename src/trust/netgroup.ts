import ipaddr from 'ipaddr.js';

/** How addresses are grouped into netgroups (Bitcoin's /16 buckets): config, src/node/peer-options.ts. */
export interface NetgroupOptions {
  /** Leading bits of an IPv4 address that name its netgroup; 0: one group for all. */
  netgroupPrefixV4: number;
  /** Leading bits of an IPv6 address that name its netgroup; 0: one group for all. */
  netgroupPrefixV6: number;
  /** Group loopback addresses by prefix too (127.1.0.0/16 apart from 127.2.0.0/16); by default all of loopback is one group. */
  perIpLimitsOnLoopback: boolean;
}

/**
 * The netgroup of a host (an IP, or a DNS name: its own group). Ids cost nothing to make, addresses in
 * many networks do: a node that takes at most a share of its connections from one netgroup holds
 * ids that all run in one place to that share, however many they are (issue 22, formation eclipse).
 * An IPv4-mapped IPv6 address counts as its IPv4 one.
 */
export function netgroupOf(host: string, o: NetgroupOptions): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (!ipaddr.isValid(bare)) return bare.toLowerCase();
  const ip = ipaddr.process(bare);
  if (ip.range() === 'loopback' && !o.perIpLimitsOnLoopback) return 'loopback';
  const bits = ip.kind() === 'ipv4' ? o.netgroupPrefixV4 : o.netgroupPrefixV6;
  const bytes = ip.toByteArray();
  // Keep the first `bits` bits, zero the rest.
  for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! & (0xff << Math.max(0, Math.min(8, 8 * (i + 1) - bits))) & 0xff;
  return `${ipaddr.fromByteArray(bytes).toString()}/${bits}`;
}

/** The host part of `host:port` or `[v6]:port`. */
export function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (v6) return v6[1]!;
  const i = address.lastIndexOf(':');
  return i > 0 && address.indexOf(':') === i ? address.slice(0, i) : address;
}

/**
 * Why a peer in `group` may not take one more of this node's connections: the netgroups among its connections and
 * dials (and the peer's) are k of them (at most 3), and peers of `group` already hold a k-th of them (of its least
 * degree, below it). Held only while holding costs the node no degree: it holds its least degree without `group`,
 * or a peer of another netgroup is free to dial. So with three netgroups or more, one holds at most a third; with two,
 * half; with one, all (a LAN, a network on one host). The netgroups it merely knows of do not count toward k: a
 * neighbour naming made-up ids in other netgroups would make a node on a LAN refuse its own.
 * `held`: the netgroup of each open connection and dial in flight; `free`: per netgroup, how many peers of it it could dial now;
 * `own`: the node's own netgroups (where it is reached from: its site), never held: attackers in a third netgroup made
 * every node of a large site hold its own site's peers to a third and let them go (review of issue 22, 6 waves: 12 to 5).
 */
export function netgroupRefusal(group: string, held: readonly string[], free: ReadonlyMap<string, number>, floor: number, own: ReadonlySet<string> = NONE): string | undefined {
  if (own.has(group)) return undefined;
  const k = Math.min(3, new Set(held).add(group).size);
  if (k < 2) return undefined;
  const count = held.filter((g) => g === group).length;
  if (!holds(group, held.length - count, free, floor)) return undefined;
  const cap = Math.max(1, Math.floor(Math.max(held.length + 1, floor) / k));
  return count + 1 > cap ? `peers from netgroup ${group} at ${count} of ${held.length} connections (a ${k === 2 ? 'half' : 'third'} at most)` : undefined;
}

/**
 * The netgroup furthest past its share, and by how many connections from other netgroups it would be back within it
 * (0: every one is within, or holding it would cost the node degree). Admission holds the share as connections come;
 * one that closes may leave a netgroup past it (3 of 9, then 3 of 8): the node lets the newest inbound ones from it go,
 * dials the difference elsewhere when it can, and lets go of no connection that would add to it.
 */
export function netgroupExcess(held: readonly string[], free: ReadonlyMap<string, number>, floor: number, own: ReadonlySet<string> = NONE): { excess: number; group?: string } {
  const counts = new Map<string, number>();
  for (const g of held) counts.set(g, (counts.get(g) ?? 0) + 1);
  const k = Math.min(3, counts.size);
  let worst: { excess: number; group?: string } = { excess: 0 };
  if (k < 2) return worst;
  for (const [g, c] of counts) {
    const excess = k * c - Math.max(held.length, floor);
    if (excess > worst.excess && !own.has(g) && holds(g, held.length - c, free, floor)) worst = { excess, group: g };
  }
  return worst;
}

/**
 * Whether holding `group` to its share costs the node no degree: `others` (connections from other netgroups), with the
 * peers of other netgroups it is free to dial, make its least degree. Counted, not merely one: one free peer elsewhere
 * held a large site to a third of a node below 8 that the small sites could not fill, and made-up ids a neighbour named
 * at black holes in a third netgroup did so on every node they were named to (review of issue 22).
 * `free`: per netgroup, how many distinct peers of it the node could dial now.
 */
function holds(group: string, others: number, free: ReadonlyMap<string, number>, floor: number): boolean {
  let reach = others;
  for (const [g, n] of free) if (g !== group) reach += n;
  return reach >= floor;
}

const NONE: ReadonlySet<string> = new Set();

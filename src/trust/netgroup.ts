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
 * Why a peer in `group` may not take one more of this node's connections: the netgroups it knows of
 * (connected or free to dial) are k of them (at most 3), and peers of one netgroup already hold a k-th
 * of its connections (of its least degree, below it), while a peer of another netgroup is free to dial or
 * the node holds its least degree. So with three netgroups or more, one holds at most a third; with two,
 * half; with one, all (a LAN, a local network on loopback: nothing changes). `groups`: the netgroup of each open connection and dial
 * in flight; `free`: those of the peers it could dial now.
 */
export function netgroupRefusal(group: string, groups: readonly string[], free: ReadonlySet<string>, floor: number): string | undefined {
  const distinct = new Set(groups).add(group);
  for (const g of free) distinct.add(g);
  const k = Math.min(3, distinct.size);
  if (k < 2) return undefined;
  // With no peer of another netgroup to dial, refusing holds the node below its least degree (a LAN of two sites);
  // at it or past it, refusing costs nothing (a seed connected to every honest node took every ground id).
  if (groups.length < floor && ![...free].some((g) => g !== group)) return undefined;
  const held = groups.filter((g) => g === group).length;
  const cap = Math.max(1, Math.floor(Math.max(groups.length + 1, floor) / k));
  return held + 1 > cap ? `peers from netgroup ${group} at ${held} of ${groups.length} connections (a ${k === 2 ? 'half' : 'third'} at most while another netgroup has a peer to dial)` : undefined;
}

/**
 * How many more connections from other netgroups would bring the largest netgroup back within its share: 0 when it
 * is within. Admission holds the share as connections come; one that closes may leave a netgroup over it (3 of 9,
 * then 3 of 8): the node dials the difference elsewhere when it can (`free` holds another netgroup), and lets go of
 * no connection that would add to it.
 */
export function netgroupExcess(groups: readonly string[], free: ReadonlySet<string>, floor: number): number {
  const counts = new Map<string, number>();
  for (const g of groups) counts.set(g, (counts.get(g) ?? 0) + 1);
  const distinct = new Set([...counts.keys(), ...free]);
  const k = Math.min(3, distinct.size);
  if (k < 2) return 0;
  let excess = 0;
  for (const c of counts.values()) excess = Math.max(excess, k * c - Math.max(groups.length, floor));
  return excess;
}

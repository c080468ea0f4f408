import { BlockList, isIP } from 'node:net';
import { parseAddress } from '../connection/address.js';

/**
 * Which addresses learned from others (peer exchange, a peer's own hello) this
 * node may dial by itself. Configured peers and connect() are not judged: the
 * operator chose those. The point is that nobody can make the node probe or
 * flood a service it was never meant to reach.
 */

export interface AddressPolicyOptions {
  /** Loopback and private ranges, even when this node does not listen on one. */
  allowPrivate: boolean;
  /** Host names (resolved by the OS at dial time, so not judged further). */
  allowHostnames: boolean;
}

function blockList(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6');
  return list;
}

/** Never a peer: "this network" / unspecified, link-local, multicast, reserved and broadcast. */
const NEVER = blockList(
  [['0.0.0.0', 8], ['169.254.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4]],
  [['::', 128], ['fe80::', 10], ['ff00::', 8]],
);
const LOOPBACK = blockList([['127.0.0.0', 8]], [['::1', 128]]);
/** RFC 1918, carrier-grade NAT (RFC 6598) and IPv6 unique local addresses. */
const PRIVATE = blockList([['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10]], [['fc00::', 7]]);

type Scope = 'never' | 'loopback' | 'private' | 'public' | 'hostname';

/**
 * Hosts already judged: a BlockList check builds a SocketAddress per list, and every peer exchange read judges each
 * address it names (about 20 µs each, most of a read's cost). Bounded; emptied when full.
 */
const judged = new Map<string, Scope>();
const MAX_JUDGED = 4096;

/** What kind of address a host is. IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 it maps. */
export function addressScope(host: string): Scope {
  let scope = judged.get(host);
  if (scope === undefined) {
    if (judged.size >= MAX_JUDGED) judged.clear();
    judged.set(host, (scope = judgeScope(host)));
  }
  return scope;
}

function judgeScope(host: string): Scope {
  const family = isIP(host);
  if (family === 0) return 'hostname';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (NEVER.check(host, type)) return 'never';
  if (LOOPBACK.check(host, type)) return 'loopback';
  if (PRIVATE.check(host, type)) return 'private';
  return 'public';
}

export class AddressPolicy {
  constructor(
    private readonly options: AddressPolicyOptions,
    /** The address this node announces (externalAddress, else where it listens), or null. */
    private readonly ownAddress: () => string | null,
  ) {}

  /** Why `address` may not be dialed on someone else's word, or undefined when it may. */
  refusal(address: string): string | undefined {
    const parsed = parseAddress(address);
    if (typeof parsed === 'string') return parsed;
    if (parsed.port === 0) return 'port 0';
    const scope = addressScope(parsed.host);
    if (scope === 'never') return 'an unspecified, link-local, multicast or broadcast address';
    if (scope === 'hostname') return this.options.allowHostnames ? undefined : 'a host name (pexAllowHostnames is off)';
    if (scope === 'public' || this.options.allowPrivate || this.ownScopes().has(scope)) return undefined;
    return `a ${scope} address, and this node does not listen on one (pexAllowPrivate is off)`;
  }

  /**
   * Local networks keep working without config: a node listening on loopback may
   * dial loopback peers, one on a private address private ones. A node bound to
   * every interface without an externalAddress is on a LAN or in a container: both.
   */
  private ownScopes(): Set<Scope> {
    const own = this.ownAddress();
    const parsed = own ? parseAddress(own) : undefined;
    if (!parsed || typeof parsed === 'string') return new Set();
    const scope = addressScope(parsed.host);
    return scope === 'never' ? new Set<Scope>(['loopback', 'private']) : new Set([scope]);
  }
}

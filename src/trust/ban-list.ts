/**
 * Timed bans, by peer id and, for inbound peers, by IP address. Bounded: when
 * full, the ban that ends soonest goes first. Expired bans are forgotten when
 * read.
 */

export interface BanInfo {
  /** The banned peer id, or undefined for a ban of an address only. */
  peerId?: string;
  /** The banned IP (inbound peers), when it is not one every local process shares. */
  ip?: string;
  /** When the ban ends. */
  until: Date;
  /** Why: the misbehaviour that earned it, or the reason given to `ban()`. */
  reason: string;
}

interface Ban {
  peerId?: string;
  ip?: string;
  until: number;
  reason: string;
}

/** Every process on a host dials from these by default: banning them would ban every local peer. */
const SHARED_IPS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export function isSharedIp(ip: string): boolean {
  return SHARED_IPS.has(ip);
}

export class BanList {
  private readonly byId = new Map<string, Ban>();
  private readonly byIp = new Map<string, Ban>();

  constructor(
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(ban: { peerId?: string; ip?: string; durationMs: number; reason: string }): BanInfo {
    const entry: Ban = {
      peerId: ban.peerId,
      ip: ban.ip && !isSharedIp(ban.ip) ? ban.ip : undefined,
      until: this.now() + ban.durationMs,
      reason: ban.reason,
    };
    if (entry.peerId) this.put(this.byId, entry.peerId, entry);
    if (entry.ip) this.put(this.byIp, entry.ip, entry);
    return info(entry);
  }

  /** The ban on this id, if one is in force. */
  peer(peerId: string): BanInfo | undefined {
    return this.live(this.byId, peerId);
  }

  /** The ban on this IP, if one is in force. */
  ip(ip: string): BanInfo | undefined {
    return this.live(this.byIp, ip);
  }

  /** Lifts the ban on an id (and on the IP banned with it), or on an IP. */
  remove(peerIdOrIp: string): boolean {
    const ban = this.byId.get(peerIdOrIp) ?? this.byIp.get(peerIdOrIp);
    if (!ban) return false;
    if (ban.peerId && this.byId.get(ban.peerId) === ban) this.byId.delete(ban.peerId);
    if (ban.ip && this.byIp.get(ban.ip) === ban) this.byIp.delete(ban.ip);
    return true;
  }

  list(): BanInfo[] {
    const now = this.now();
    const all = new Set([...this.byId.values(), ...this.byIp.values()]);
    return [...all].filter((b) => b.until > now).map(info);
  }

  private live(map: Map<string, Ban>, key: string): BanInfo | undefined {
    const ban = map.get(key);
    if (!ban) return undefined;
    if (ban.until > this.now()) return info(ban);
    map.delete(key);
    return undefined;
  }

  private put(map: Map<string, Ban>, key: string, ban: Ban): void {
    map.delete(key);
    if (map.size >= this.max) {
      let soonest: string | undefined;
      let until = Infinity;
      for (const [k, b] of map) if (b.until < until) [until, soonest] = [b.until, k];
      if (soonest !== undefined) map.delete(soonest);
    }
    map.set(key, ban);
  }
}

function info(ban: Ban): BanInfo {
  return { peerId: ban.peerId, ip: ban.ip, until: new Date(ban.until), reason: ban.reason };
}

import { isIP, type Socket } from 'node:net';

/** A dialable address: `host:port`, `[v6]:port`, optionally prefixed by `<peerId>@`. */
export interface PeerAddress {
  host: string;
  port: number;
  /** The id the remote end must prove, when the address named one. */
  peerId?: string;
}

const PEER_ID = /^[0-9a-f]{40}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/** Parses an address; returns an error message instead of throwing so validators can collect it. */
export function parseAddress(input: string): PeerAddress | string {
  if (typeof input !== 'string' || input.length > 300) return 'not a string of at most 300 characters';
  let rest = input.trim();
  let peerId: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    peerId = rest.slice(0, at).toLowerCase();
    if (!PEER_ID.test(peerId)) return `"${peerId}" is not a peer id (40 hex characters)`;
    rest = rest.slice(at + 1);
  }
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') return `"${input}" is not host:port`;
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
    if (isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) return `"${input}" is not host:port`;
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (!isIP(host) && !HOSTNAME.test(host)) return `"${host}" is not a host name or IP address`;
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) return `"${portText}" is not a port (0-65535)`;
  return { host, port: Number(portText), peerId };
}

export function mustParseAddress(input: string): PeerAddress {
  const parsed = parseAddress(input);
  if (typeof parsed === 'string') throw new TypeError(`invalid address "${input}": ${parsed}`);
  return parsed;
}

export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A connected socket's remote end as `host:port` (`[v6]:port`), or 'unknown' once it is gone. */
export function socketAddress(socket: Socket): string {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress ? formatAddress(remoteAddress, remotePort ?? 0) : 'unknown';
}

/**
 * One spelling per address, so that duplicates merge: IPv6 compressed and
 * lower-case, IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 it maps, host names
 * lower-case. `[::ffff:127.0.0.1]:80` and `127.0.0.1:80` are one address.
 */
export function canonicalAddress(host: string, port: number): string {
  if (isIP(host) !== 6) return formatAddress(isIP(host) ? host : host.toLowerCase(), port);
  const v6 = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!mapped) return formatAddress(v6, port);
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return formatAddress(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, port);
}

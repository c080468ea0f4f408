import { parseAddress } from '../connection/address.js';
import { ControlType, type Control } from '../wire/control.js';

/**
 * Peer exchange (PEX): a node tells its peers where the peers it is connected to
 * can be dialed, as `{"peers":[{"id":…,"address":"host:port"},…]}`. Only
 * addresses that peers advertised themselves (hello `listenAddress`) are shared.
 * A receiver bounds everything: the body size, the entries it reads, and how
 * often a peer may send one; bad entries are skipped, never fatal.
 */

export interface PexEntry {
  id: string;
  address: string;
}

export const PEX_MAX_ENTRIES = 64;
export const PEX_MAX_BYTES = 16 * 1024;

const PEER_ID = /^[0-9a-f]{40}$/;

export function encodePeerExchange(entries: readonly PexEntry[]): Control {
  const peers = entries.slice(0, PEX_MAX_ENTRIES).map(({ id, address }) => ({ id, address }));
  return { type: ControlType.PeerExchange, body: Buffer.from(JSON.stringify({ peers }), 'utf8') };
}

export interface ParsedPex {
  entries: PexEntry[];
  /** Entries skipped (invalid, ours, beyond the limit), with why, for one log line. */
  ignored: number;
  problems: string[];
}

/** Hosts that mean "any interface": a listener's bind address, never a dial target. */
export function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

/**
 * Reads a PEX body. `isOwn(id, address)` says whether an entry points back at
 * this node (its id or one of its addresses); such entries are skipped.
 */
export function parsePeerExchange(body: Buffer, isOwn: (entry: PexEntry) => boolean): ParsedPex {
  const result: ParsedPex = { entries: [], ignored: 0, problems: [] };
  const problem = (text: string) => {
    if (!result.problems.includes(text)) result.problems.push(text);
  };
  if (body.length > PEX_MAX_BYTES) {
    problem(`body of ${body.length} bytes exceeds ${PEX_MAX_BYTES}`);
    return result;
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    problem('not JSON');
    return result;
  }
  const peers = (value as { peers?: unknown } | null)?.peers;
  if (!Array.isArray(peers)) {
    problem('no "peers" array');
    return result;
  }
  if (peers.length > PEX_MAX_ENTRIES) {
    result.ignored += peers.length - PEX_MAX_ENTRIES;
    problem(`${peers.length} entries, only the first ${PEX_MAX_ENTRIES} read`);
  }
  const seen = new Set<string>();
  for (const raw of peers.slice(0, PEX_MAX_ENTRIES)) {
    const entry = raw as Partial<PexEntry> | null;
    const id = entry?.id;
    const address = entry?.address;
    if (typeof id !== 'string' || !PEER_ID.test(id) || typeof address !== 'string') {
      result.ignored++;
      problem('malformed entry');
      continue;
    }
    const parsed = parseAddress(address);
    if (typeof parsed === 'string' || parsed.peerId !== undefined || parsed.port === 0 || isUnspecified(parsed.host)) {
      result.ignored++;
      problem(`undialable address "${address.slice(0, 60)}"`);
      continue;
    }
    if (isOwn({ id, address }) || seen.has(id)) {
      result.ignored++;
      problem(seen.has(id) ? 'duplicate id' : 'our own id or address');
      continue;
    }
    seen.add(id);
    result.entries.push({ id, address });
  }
  return result;
}

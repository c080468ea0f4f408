import { ConsoleLogger, type LogLevel } from '@nestjs/common';

/** `--log-level` values, least verbose first: a level prints its own lines and those of the levels before it. */
export const CLI_LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type CliLogLevel = (typeof CLI_LOG_LEVELS)[number];

/** The levels Nest prints at `level`. */
export function logLevelsUpTo(level: CliLogLevel): LogLevel[] {
  return CLI_LOG_LEVELS.slice(0, CLI_LOG_LEVELS.indexOf(level) + 1);
}

const PEER_ID = /\b[0-9a-f]{40}\b/;
/** host:port as the node writes one: an IPv4 address or a host name, or [IPv6]. */
const ADDRESS = /(?:\[[0-9A-Fa-f:.]+\]|\b(?:\d{1,3}\.){3}\d{1,3}|\b[A-Za-z][A-Za-z0-9.-]*\.[A-Za-z]{2,}|\blocalhost):\d{1,5}\b/;

/**
 * The peer a node's log line is about: the first peer id and the first `host:port` it names. The
 * node writes both into its lines ("connected to <id> at <host:port> (outbound)", "[peer <id> <host:port>
 * inbound] …", an error's "(peer <id> at <host:port>)"); a JSON line carries them as fields too.
 */
export function peerFields(message: string): { peerId?: string; address?: string } {
  const fields: { peerId?: string; address?: string } = {};
  const id = PEER_ID.exec(message)?.[0];
  if (id) fields.peerId = id;
  const address = ADDRESS.exec(message)?.[0];
  if (address) fields.address = address;
  return fields;
}

/**
 * Nest's ConsoleLogger, whose JSON lines (`--json`) also carry `peerId` and `address` when the line
 * names them (peerFields), so that a log pipeline can select one peer's lines without parsing text.
 */
export class CliLogger extends ConsoleLogger {
  protected override getJsonLogObject(message: unknown, options: Parameters<ConsoleLogger['getJsonLogObject']>[1]): ReturnType<ConsoleLogger['getJsonLogObject']> {
    const object = super.getJsonLogObject(message, options);
    return typeof message === 'string' ? { ...object, ...peerFields(message) } : object;
  }
}

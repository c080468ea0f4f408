import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import type { LogFields, P2PLogger } from '../common/types.js';

/** `--log-level` values, least verbose first: a level prints its own lines and those of the levels before it. */
export const CLI_LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type CliLogLevel = (typeof CLI_LOG_LEVELS)[number];

/** The levels Nest prints at `level`. */
export function logLevelsUpTo(level: CliLogLevel): LogLevel[] {
  return CLI_LOG_LEVELS.slice(0, CLI_LOG_LEVELS.indexOf(level) + 1);
}

/**
 * Nest's ConsoleLogger with Nest's structured params flattened into JSON lines (`--json`), and left out of
 * text lines, which read as before. The node logs through p2pLogger(): its JSON lines carry the node's
 * LogFields (`event`, `peerId`, `address`), so that a log pipeline can select lines without parsing text.
 */
export class CliLogger extends ConsoleLogger {
  constructor(context: string, options: { json: boolean; colors: boolean; logLevels: LogLevel[] }) {
    super(context, { ...options, flattenParams: true });
  }

  /** The node's logger: this one, under the context `P2P`, each line with the fields the node passes. */
  p2pLogger(): P2PLogger {
    return {
      log: (message, fields) => this.log(message, ...withFields(fields), 'P2P'),
      warn: (message, fields) => this.warn(message, ...withFields(fields), 'P2P'),
      error: (message, fields) => this.error(message, ...withFields(fields), 'P2P'),
      debug: (message, fields) => this.debug(message, ...withFields(fields), 'P2P'),
    };
  }

  // Text lines stay as they were: the fields only repeat what the message says.
  protected override formatMessage(level: LogLevel, message: unknown, pid: string, levelText: string, context: string, timestampDiff: string): string {
    return super.formatMessage(level, message, pid, levelText, context, timestampDiff);
  }
}

/** The fields as one plain object param without unset keys (a JSON line has no `"address": undefined`), or none. */
function withFields(fields: LogFields | undefined): [LogFields] | [] {
  if (!fields) return [];
  return [Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as unknown as LogFields];
}

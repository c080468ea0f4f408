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
 * Nest's ConsoleLogger whose JSON lines (`--json`) carry the node's LogFields (`event`, `peerId`,
 * `address`) at the top level, so that a log pipeline can select lines without parsing text; text lines
 * read as before. The node logs through p2pLogger(). The fields ride beside the call rather than as a
 * Nest param: NestJS 11's ConsoleLogger prints each extra param as a line of its own (12's
 * `flattenParams` does not exist there), and both majors build JSON lines in getJsonLogObject.
 */
export class CliLogger extends ConsoleLogger {
  /** The fields of the line being printed (logging is synchronous: set, print, cleared). */
  private fields: Record<string, unknown> | undefined;

  constructor(context: string, options: { json: boolean; colors: boolean; logLevels: LogLevel[] }) {
    super(context, options);
  }

  /** The node's logger: this one, under the context `P2P`, each line with the fields the node passes. */
  p2pLogger(): P2PLogger {
    return {
      log: (message, fields) => this.withFields(fields, () => this.log(message, 'P2P')),
      warn: (message, fields) => this.withFields(fields, () => this.warn(message, 'P2P')),
      error: (message, fields) => this.withFields(fields, () => this.error(message, 'P2P')),
      debug: (message, fields) => this.withFields(fields, () => this.debug(message, 'P2P')),
    };
  }

  protected override getJsonLogObject(message: unknown, options: Parameters<ConsoleLogger['getJsonLogObject']>[1]): ReturnType<ConsoleLogger['getJsonLogObject']> {
    const object = super.getJsonLogObject(message, options);
    return this.fields ? { ...object, ...this.fields } : object;
  }

  private withFields(fields: LogFields | undefined, print: () => void): void {
    // Without unset keys: a JSON line has no `"address": undefined`.
    this.fields = fields && Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
    try {
      print();
    } finally {
      this.fields = undefined;
    }
  }
}

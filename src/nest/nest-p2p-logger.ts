import { Logger, type LoggerService } from '@nestjs/common';
import type { P2PLogger } from '../common/types.js';

/**
 * The node's logger when the config names none: Nest's `Logger('P2P')`, handed the message only. Nest's
 * ConsoleLogger would print the LogFields after the message (or, with `structuredParams: false`, as a second
 * line), so dropping them keeps every Nest app's lines as they were. A `logger` in the config gets the fields.
 */
export class NestP2PLogger implements P2PLogger {
  constructor(private readonly logger: LoggerService = new Logger('P2P')) {}

  log(message: string): void {
    this.logger.log(message);
  }

  warn(message: string): void {
    this.logger.warn(message);
  }

  error(message: string): void {
    this.logger.error(message);
  }

  debug(message: string): void {
    this.logger.debug?.(message);
  }
}

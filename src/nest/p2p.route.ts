import type { MsPattern } from '@nestjs/microservices';
import { transformPatternToRoute } from '@nestjs/microservices/utils/transform-pattern.utils.js';

/** A Nest pattern: a string, or an object normalised the way Nest normalises it. */
export type P2PPattern = string | number | Record<string, unknown>;

/** The wire topic of a pattern: exactly the route Nest registers handlers under. */
export function route(pattern: P2PPattern | MsPattern): string {
  return transformPatternToRoute(pattern as MsPattern) as string;
}

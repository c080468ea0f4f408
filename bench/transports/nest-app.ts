// The handlers every Nest-based transport under test runs: count events, echo requests.
import { Controller, Inject, Module, type DynamicModule } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { OnEvent } from './types.js';

export const ON_EVENT = Symbol('ON_EVENT');

@Controller()
export class BenchController {
  constructor(@Inject(ON_EVENT) private readonly onEvent: OnEvent) {}

  @EventPattern<string>('bench.event')
  event(): void {
    this.onEvent();
  }

  @MessagePattern('bench.echo')
  echo(@Payload() data: unknown): unknown {
    return data;
  }
}

/** A module with the bench handlers, plus whatever the transport needs. */
export function benchModule(onEvent: OnEvent, imports: DynamicModule[] = []): DynamicModule {
  @Module({})
  class BenchModule {}
  return { module: BenchModule, imports, controllers: [BenchController], providers: [{ provide: ON_EVENT, useValue: onEvent }] };
}

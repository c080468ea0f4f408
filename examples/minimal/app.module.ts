// The README's minimal example. Compiled by `npm run build:examples` (part of `npm test`).
import { Controller, Injectable, Module } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { P2PContext, P2PModule, P2PService } from 'nestjs-p2p';

@Controller()
export class GreetingController {
  @MessagePattern('greet')
  greet(@Payload() name: string, @Ctx() ctx: P2PContext): string {
    return `hello ${name}, from ${ctx.getPeer().id.slice(0, 8)}`;
  }

  @EventPattern('chat')
  chat(@Payload() message: { text: string }): void {
    console.log('chat:', message.text);
  }
}

@Injectable()
export class Greeter {
  constructor(private readonly p2p: P2PService) {}

  async greetEveryone(): Promise<void> {
    for (const peer of this.p2p.peers()) {
      const reply = await this.p2p.request<string>(peer.id, 'greet', 'Ada', { timeoutMs: 2000 });
      console.log(reply);
    }
    await this.p2p.broadcast('chat', { text: 'hi all' });
  }
}

@Module({
  imports: [
    P2PModule.forRoot({
      listen: '0.0.0.0:4100',
      peers: ['127.0.0.1:4101'],
    }),
  ],
  controllers: [GreetingController],
  providers: [Greeter],
})
export class AppModule {}

// app.module.ts
import { Controller, Injectable, Module } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { P2PContext, P2PModule, P2PService } from 'nestjs-p2p';

@Controller()
export class GreetingController {
  @MessagePattern('greet')
  greet(@Payload() name: string, @Ctx() ctx: P2PContext): string {
    return `hello ${name}, you are ${ctx.getPeer().id.slice(0, 8)}`;
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
      await this.p2p.send(peer.id, 'chat', { text: `hi ${peer.id.slice(0, 8)}` });
    }
    await this.p2p.broadcast('chat', { text: 'hi all' });
  }
}

@Module({
  imports: [
    P2PModule.forRoot({
      isGlobal: true, // P2PService injectable in every module, not only in this one
      listen: `127.0.0.1:${process.env.P2P_PORT ?? 4100}`, // 0.0.0.0:… to accept other hosts
      peers: process.env.P2P_PEERS?.split(',') ?? [],
    }),
  ],
  controllers: [GreetingController],
  providers: [Greeter],
})
export class AppModule {}

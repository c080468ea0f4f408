import { NestFactory } from '@nestjs/core';
import { P2PServer } from 'nestjs-p2p';
import { AppModule, Greeter } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices(); // listens and dials the configured peers
  await app.listen(3000); // the HTTP side, if the app has one
  await app.get(Greeter).greetEveryone();
}
void bootstrap();

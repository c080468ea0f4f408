// main.ts: `node dist/main.js` starts a node on port 4100; a second one, that dials the first:
//   P2P_PORT=4101 P2P_PEERS=127.0.0.1:4100 HTTP_PORT=3001 node dist/main.js
import { NestFactory } from '@nestjs/core';
import { P2PServer, P2PService } from 'nestjs-p2p';
import { AppModule, Greeter } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks(); // Ctrl-C closes the app, which says goodbye to every peer
  const greeter = app.get(Greeter);
  app.get(P2PService).events$.subscribe((event) => {
    if (event.type === 'connected') greeter.greetEveryone().catch((err) => console.error(err));
  });
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices(); // listens, then dials P2P_PEERS
  await app.listen(process.env.HTTP_PORT ?? 3000); // the HTTP side, if the app has one
}
void bootstrap();

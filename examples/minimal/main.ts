// main.ts: `node dist/main.js` starts a node on port 4100; a second one, that dials the first:
//   P2P_PORT=4101 P2P_PEERS=127.0.0.1:4100 node dist/main.js
import { NestFactory } from '@nestjs/core';
import { P2PServer, P2PService } from 'nestjs-p2p';
import { AppModule, Greeter } from './app.module.js';

async function bootstrap(): Promise<void> {
  // A microservice, as with Nest's NATS or Redis transports: no HTTP server, no HTTP driver.
  const app = await NestFactory.createMicroservice(AppModule, {
    inject: [P2PServer], // the transport strategy lives in DI
    useFactory: (server: P2PServer) => ({ strategy: server }),
  });
  app.enableShutdownHooks(); // Ctrl-C closes the app, which says goodbye to every peer
  const greeter = app.get(Greeter);
  app.get(P2PService).events$.subscribe((event) => {
    if (event.type === 'connected') greeter.greetEveryone().catch((err) => console.error(err));
  });
  await app.listen(); // starts the node: listens, then dials P2P_PEERS
}
void bootstrap();

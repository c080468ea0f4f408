import { Controller, type INestApplication, type LoggerService } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { P2PModule, P2PServer, P2PService, type PeerEvent } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { connectAndWait, startNode, type TestNode } from '../nest-helpers.js';

/** Issue 14's "logs in a healthy mesh" and "late subscribers": what a Nest user sees, not what the wire does. */
const apps: INestApplication[] = [];
const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all([...apps.splice(0).map((a) => a.close()), ...nodes.splice(0).map((n) => n.app.close())]);
});

class Capture implements LoggerService {
  readonly lines: Array<{ level: string; message: string }> = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
}

@Controller()
class NewsController {
  readonly heard: unknown[] = [];
  @EventPattern<string>('news')
  news(data: unknown): void {
    this.heard.push(data);
  }
}

@Controller()
class NothingController {}

async function app(controllers: Array<new () => unknown>, logger: LoggerService): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false })], controllers }).compile();
  const a = moduleRef.createNestApplication({ logger });
  a.connectMicroservice({ strategy: a.get(P2PServer) });
  await a.startAllMicroservices();
  await a.init();
  apps.push(a);
  return a;
}

describe('what a Nest user sees', () => {
  it('a node that relays a network broadcast it has no handler for logs no error or warning', async () => {
    // Nest's Logger instances write to the last app's logger: one capture for all three.
    const quiet = new Capture();
    const [origin, relay, end] = [await app([NewsController], quiet), await app([NothingController], quiet), await app([NewsController], quiet)];
    const [o, r, e] = [origin, relay, end].map((a) => a.get(P2PService));
    await o!.connect(`${r!.id}@${r!.address()}`);
    await r!.connect(`${e!.id}@${e!.address()}`);
    await waitFor(() => r!.peers().length === 2 && e!.peers().length === 1);
    await o!.broadcast('news', 'across the relay', { scope: 'network', strategy: 'gossip' });
    await waitFor(() => end.get(NewsController).heard.length === 1, 3000, 'the broadcast at the far end');
    expect(quiet.lines.filter((l) => l.level !== 'log')).toEqual([]);
  });

  it("the app's logger gets the node's lines as before: the message and the context P2P, no LogFields (issue 23)", async () => {
    const calls: unknown[][] = [];
    const record = (...args: unknown[]) => void calls.push(args);
    const capture: LoggerService = { log: record, warn: record, error: record, debug: record };
    const [a, b] = [await app([NothingController], capture), await app([NothingController], capture)];
    const [sa, sb] = [a, b].map((x) => x.get(P2PService));
    await sa!.connect(`${sb!.id}@${sb!.address()}`);
    await waitFor(() => calls.some(([message]) => String(message).startsWith(`connected to ${sb!.id}`)), 3000, 'the connect line');
    const node = calls.filter((args) => args.at(-1) === 'P2P');
    expect(node.length).toBeGreaterThan(0);
    // Nest's ConsoleLogger would print an object argument after the message, or as a second line.
    expect(node.filter((args) => typeof args[0] !== 'string' || args.slice(1).some((arg) => typeof arg === 'object' && arg !== null))).toEqual([]);
  });

  it('events$ tells a late subscriber who is connected already, then what changes', async () => {
    const [a, b] = [await startNode({ peerExchange: false }), await startNode({ peerExchange: false })];
    nodes.push(a, b);
    await connectAndWait(a, b);
    const events: PeerEvent[] = [];
    const sub = a.service.events$.subscribe((event) => events.push(event));
    expect(events.map((e) => [e.type, e.peer.id])).toEqual([['connected', b.id]]);
    await a.service.disconnect(b.id);
    await waitFor(() => events.length === 2);
    sub.unsubscribe();
    expect(events.map((e) => [e.type, e.peer.id])).toEqual([
      ['connected', b.id],
      ['disconnected', b.id],
    ]);
  });
});

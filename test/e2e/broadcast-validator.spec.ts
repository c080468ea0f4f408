import { Controller, Injectable } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { afterEach, describe, expect, it } from 'vitest';
import { BroadcastValidator, P2PModule, P2PService, P2P_NODE, type BroadcastToValidate, type BroadcastVerdict, type P2PContext, type Peer } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startApp } from '../nest-helpers.js';
import type { INestApplication } from '@nestjs/common';

@Controller()
class OrdersController {
  readonly heard: unknown[] = [];

  @EventPattern<string>('orders')
  order(@Payload() data: unknown, @Ctx() ctx: P2PContext): void {
    if (ctx.getBroadcast()) this.heard.push(data);
  }
}

/** What a Nest user writes: a provider method decorated with the topic it judges. */
@Injectable()
class OrdersValidator {
  readonly seen: BroadcastToValidate[] = [];

  @BroadcastValidator('orders')
  async check(broadcast: BroadcastToValidate): Promise<BroadcastVerdict> {
    this.seen.push(broadcast);
    const { kind } = broadcast.data as { kind: string };
    if (kind === 'throw') throw new Error('validator bug');
    return kind === 'good' ? 'accept' : kind === 'spam' ? 'ignore' : 'reject';
  }
}

interface Node {
  app: INestApplication;
  service: P2PService;
  node: Peer;
  orders: OrdersController;
}

const apps: INestApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(withValidator: boolean): Promise<Node> {
  const app = await startApp({
    imports: [P2PModule.forRoot({ listen: '127.0.0.1:0', peerExchange: false })],
    controllers: [OrdersController],
    providers: withValidator ? [OrdersValidator] : [],
  });
  apps.push(app);
  return { app, service: app.get(P2PService), node: app.get<Peer>(P2P_NODE), orders: app.get(OrdersController) };
}

describe('@BroadcastValidator: the application decides what is relayed', () => {
  it('accept delivers and relays; ignore drops without penalty; reject drops and costs the relaying neighbour score; a throw ignores', async () => {
    // origin → judge (has the validator) → downstream, in a line.
    const [origin, judge, downstream] = [await start(false), await start(true), await start(false)];
    await origin.service.connect(`${judge.service.id}@${judge.service.address()}`);
    await judge.service.connect(`${downstream.service.id}@${downstream.service.address()}`);
    await waitFor(() => judge.service.peers().length === 2 && downstream.service.peers().length === 1);
    const send = (kind: string) => origin.service.broadcast('orders', { kind }, { scope: 'network', strategy: 'gossip' });

    await send('good');
    await waitFor(() => downstream.orders.heard.length === 1, 3000, 'the accepted broadcast downstream');
    expect(judge.orders.heard).toEqual([{ kind: 'good' }]);
    const validator = judge.app.get(OrdersValidator);
    expect(validator.seen[0]).toMatchObject({ origin: origin.service.id, from: origin.service.id, topic: 'orders', data: { kind: 'good' } });

    await send('spam');
    await send('throw');
    await send('forged');
    await waitFor(() => validator.seen.length === 4, 3000, 'the validator to see all four');
    await new Promise((r) => setTimeout(r, 150));
    expect(judge.orders.heard).toEqual([{ kind: 'good' }]);
    expect(downstream.orders.heard).toEqual([{ kind: 'good' }]);
    expect(judge.service.networkBroadcastStats().dropped).toMatchObject({ ignored: 2, rejected: 1 });
    // One reject costs 10 points (of the 100 that lead to a ban); the origin stays connected.
    expect(judge.node.peerScore(origin.service.id)).toBeLessThan(-9);
    expect(judge.node.peerScore(origin.service.id)).toBeGreaterThan(-11);
    expect(judge.service.bans()).toEqual([]);
    // The origin's own handler is not subject to other nodes' validators.
    expect(origin.orders.heard).toHaveLength(4);
  });

  it('a reject costs the proven origin its score, never the honest relay that forwarded it without this validator', async () => {
    // origin → relay (no validator) → judge
    const [origin, relay, judge] = [await start(false), await start(false), await start(true)];
    await origin.service.connect(`${relay.service.id}@${relay.service.address()}`);
    await relay.service.connect(`${judge.service.id}@${judge.service.address()}`);
    await waitFor(() => relay.service.peers().length === 2 && judge.service.peers().length === 1);
    for (let i = 0; i < 12; i++) await origin.service.broadcast('orders', { kind: 'forged' }, { scope: 'network', strategy: 'gossip' });
    await waitFor(() => judge.service.networkBroadcastStats().dropped.rejected === 12, 3000, 'twelve rejects');
    expect(judge.node.peerScore(relay.service.id)).toBe(0);
    expect(judge.service.peers().map((p) => p.id)).toEqual([relay.service.id]);
    // The origin is banned at the judge, though it never connected to it: if it dials, it is refused.
    expect(judge.service.bans().map((b) => b.peerId)).toEqual([origin.service.id]);
    await expect(origin.service.connect(`${judge.service.id}@${judge.service.address()}`)).rejects.toThrow(/banned/);
  });

  it('P2PService.setBroadcastValidator sets one by hand, and undefined removes it', async () => {
    const [origin, judge] = [await start(false), await start(false)];
    await origin.service.connect(`${judge.service.id}@${judge.service.address()}`);
    await waitFor(() => judge.service.peers().length === 1);
    judge.service.setBroadcastValidator('orders', () => 'ignore');
    await origin.service.broadcast('orders', { kind: 'a' }, { scope: 'network' });
    await waitFor(() => judge.service.networkBroadcastStats().dropped.ignored === 1, 3000, 'the ignore');
    judge.service.setBroadcastValidator('orders', undefined);
    await origin.service.broadcast('orders', { kind: 'b' }, { scope: 'network' });
    await waitFor(() => judge.orders.heard.length === 1, 3000, 'the delivery');
    expect(judge.orders.heard).toEqual([{ kind: 'b' }]);
  });
});

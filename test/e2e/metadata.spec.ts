import { Controller } from '@nestjs/common';
import { ClientProxy, ClientsModule, Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom } from 'rxjs';
import { createNetworkMessage } from '../../src/broadcast/codec.js';
import { P2PClient, P2PMetadataError, type P2PContext, type Peer } from '../../src/index.js';
import { encodeFrame, encodeTopic, parseMessage } from '../../src/wire/codec.js';
import { Encoding } from '../../src/wire/constants.js';
import { withMetadata } from '../../src/wire/metadata.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';
import { Test } from '@nestjs/testing';
import { connectAndWait, NodeController, startNode, type TestNode } from '../nest-helpers.js';
import { RawPeer } from '../raw-peer.js';
import type { INestApplication } from '@nestjs/common';

/** Issue 14: Nest's packet metadata (a trace id…) travels with requests, events and broadcasts. */
interface Seen {
  pattern: string;
  metadata: Record<string, string> | undefined;
}

@Controller()
class TraceController {
  readonly seen: Seen[] = [];

  @MessagePattern('traced')
  traced(@Ctx() ctx: P2PContext): Record<string, string> | null {
    this.seen.push({ pattern: 'traced', metadata: ctx.getMetadata() });
    return ctx.getMetadata() ?? null;
  }

  @EventPattern<string>('traced.event')
  event(@Payload() _data: unknown, @Ctx() ctx: P2PContext): void {
    this.seen.push({ pattern: ctx.getBroadcast() ? 'broadcast' : 'event', metadata: ctx.getMetadata() });
  }
}

const nodes: TestNode[] = [];
const apps: INestApplication[] = [];
const peers: Peer[] = [];
const raws: RawPeer[] = [];
afterEach(async () => {
  raws.splice(0).forEach((r) => r.destroy());
  await Promise.all([...apps.splice(0).map((a) => a.close()), ...nodes.splice(0).map((n) => n.app.close()), ...peers.splice(0).map((p) => p.close())]);
});

async function pair(): Promise<[TestNode, TestNode]> {
  const a = await startNode({ peerExchange: false }, [NodeController, TraceController]);
  const b = await startNode({ peerExchange: false }, [NodeController, TraceController]);
  nodes.push(a, b);
  await connectAndWait(a, b);
  return [a, b];
}

describe('packet metadata', () => {
  it('reaches ctx.getMetadata() on requests, events, neighbour and network broadcasts', async () => {
    const [a, b] = await pair();
    const seen = () => b.app.get(TraceController).seen;
    expect(await a.service.request(b.id, 'traced', null, { metadata: { traceId: 't-1' } })).toEqual({ traceId: 't-1' });
    expect(await a.service.request(b.id, 'traced', null)).toBeNull();
    await a.service.send(b.id, 'traced.event', 1, { metadata: { traceId: 't-2' } });
    await a.service.broadcast('traced.event', 2, { metadata: { traceId: 't-3' } });
    await a.service.broadcast('traced.event', 3, { scope: 'network', metadata: { traceId: 't-4', tenant: 'acme' } });
    await waitFor(() => seen().length === 5, 3000, 'every message at b');
    // The originator's own handler got the network broadcast too, and counts it as delivered.
    expect(a.service.networkBroadcastStats()).toMatchObject({ originated: 1, delivered: 1 });
    expect(seen()).toEqual([
      { pattern: 'traced', metadata: { traceId: 't-1' } },
      { pattern: 'traced', metadata: undefined },
      { pattern: 'event', metadata: { traceId: 't-2' } },
      { pattern: 'event', metadata: { traceId: 't-3' } },
      { pattern: 'broadcast', metadata: { traceId: 't-4', tenant: 'acme' } },
    ]);
  });

  it('P2PClient sends what a Nest 12 dispatch hook puts on packet.metadata', async () => {
    const [, b] = await pair();
    // A client-only app: no P2PModule, so the client runs a private node.
    const moduleRef = await Test.createTestingModule({
      imports: [ClientsModule.register([{ name: 'B', customClass: P2PClient, options: { peer: `${b.id}@${b.address}` } }])],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    apps.push(app);
    const client = app.get<ClientProxy>('B');
    const hookable = client as ClientProxy & { setOnDispatchHook?: (hook: (packet: { metadata?: Record<string, string> }) => void) => void };
    if (!hookable.setOnDispatchHook) {
      // Nest 11 has no dispatch hook: packets carry no metadata, and that still works.
      expect(await lastValueFrom(client.send('traced', {}))).toBeNull();
      return;
    }
    hookable.setOnDispatchHook((packet) => (packet.metadata = { traceId: 'from-hook' }));
    expect(await lastValueFrom(client.send('traced', {}))).toEqual({ traceId: 'from-hook' });
    await lastValueFrom(client.emit('traced.event', 'x'));
    await waitFor(() => b.app.get(TraceController).seen.some((s) => s.pattern === 'event'), 3000, 'the event');
    expect(b.app.get(TraceController).seen.find((s) => s.pattern === 'event')?.metadata).toEqual({ traceId: 'from-hook' });
  });

  it('is bounded and typed: too large or not strings is P2PMetadataError at the call', async () => {
    const [a, b] = await pair();
    await expect(a.service.send(b.id, 'traced.event', 1, { metadata: { big: 'x'.repeat(5000) } })).rejects.toBeInstanceOf(P2PMetadataError);
    await expect(a.service.request(b.id, 'traced', null, { metadata: { n: 1 as unknown as string } })).rejects.toBeInstanceOf(P2PMetadataError);
    expect(await a.service.request(b.id, 'traced', null, { metadata: { ok: 'yes' } })).toEqual({ ok: 'yes' });
  });

  it('a network broadcast\'s metadata is signed: a relay that changes it is caught', async () => {
    const w = await startEchoPeer({ peerExchange: false }, peers);
    const heard: unknown[] = [];
    w.setHandler({ onEvent: (_p, _t, _d, _b, metadata) => void heard.push(metadata), onRequest: (_p, _t, d, r) => (r.next(d), r.complete()) });
    const attacker = await RawPeer.open(w.address()!, { tls: true });
    raws.push(attacker);
    await waitFor(() => w.peers().length === 1);
    const origin = (await startEchoPeer({ peerExchange: false }, peers)).identity;
    const fields = { timestampUs: Date.now() * 1000, strategy: 'gossip' as const, encoding: Encoding.Json, topic: 'news', payload: Buffer.from('1') };
    const genuine = createNetworkMessage(origin, { ...fields, metadata: { role: 'user' } });
    const altered = createNetworkMessage(origin, { ...fields, metadata: { role: 'admin' } });
    attacker.sendBroadcast({ ...altered, signature: genuine.signature });
    await attacker.whenClosed();
    expect(w.networkBroadcastStats().dropped.invalidSignature).toBe(1);
    expect(heard).toEqual([]);
    const honest = await RawPeer.open(w.address()!, { tls: true });
    raws.push(honest);
    await waitFor(() => w.peers().length === 1);
    honest.sendBroadcast(genuine);
    await waitFor(() => heard.length === 1, 3000, 'the genuine broadcast');
    expect(heard).toEqual([{ role: 'user' }]);
    expect(await echo(w, honest.identity.peerId, 'x').catch(() => 'raw peers do not answer')).toBe('raw peers do not answer');
  });

  it('golden vector: an event with metadata (docs/wire-format.md)', () => {
    const frame = Buffer.concat(encodeFrame(0x12, 0, withMetadata(encodeTopic('t'), { a: 'b' }), Buffer.from('1')).chunks);
    expect(frame.toString('hex')).toBe('12' + '00000000' + '0000000f' + '8001' + '74' + '0009' + '7b2261223a2262227d' + '31');
    const message = parseMessage(0x12, 0, frame.subarray(9));
    expect(message).toMatchObject({ topic: 't', metadata: { a: 'b' } });
    expect(message.payload.toString()).toBe('1');
  });
});

import { Inject, Injectable } from '@nestjs/common';
import { ClientsModule, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { P2PClient, P2PDialError, P2PModule, P2PService, type Peer } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startApp, startNode, type TestNode } from '../nest-helpers.js';

@Injectable()
class UsesPeerB {
  constructor(@Inject('PEER_B') readonly client: ClientProxy) {}
}

const nodes: TestNode[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await Promise.all(nodes.splice(0).map((n) => n.app.close()));
});

describe('P2PClient (a ClientProxy)', () => {
  it('works through ClientsModule in an app that runs P2PModule, reusing its node', async () => {
    const b = await startNode();
    nodes.push(b);
    const app = await startApp({
      imports: [
        P2PModule.forRoot({ listen: '127.0.0.1:0' }),
        ClientsModule.registerAsync([{ name: 'PEER_B', useFactory: () => ({ customClass: P2PClient, options: { peer: `${b.id}@${b.address}` } }) }]),
      ],
      providers: [UsesPeerB],
    });
    closers.push(() => app.close());
    const a = app.get(P2PService);
    const { client } = app.get(UsesPeerB);

    expect(await firstValueFrom(client.send('echo', { hello: 'b' }))).toEqual({ hello: 'b' });
    expect(await lastValueFrom(client.send('count', 3).pipe(toArray()))).toEqual([1, 2, 3]);
    expect(await firstValueFrom(client.send({ cmd: 'sum' }, [1, 2, 3]))).toBe(6);
    // The app's own node made the connection: B sees A's id, and there is a single connection.
    expect(await firstValueFrom(client.send('whoami', {}))).toBe(a.id);
    expect(a.peers().map((p) => p.id)).toEqual([b.id]);
    expect(client.unwrap<Peer>().id).toBe(a.id);

    await firstValueFrom(client.emit('note', 'via emit'), { defaultValue: undefined });
    await waitFor(() => b.controller.received.some((r) => r.data === 'via emit'));
    expect(b.controller.received.find((r) => r.data === 'via emit')!.from).toBe(a.id);

    // A handler's RpcException reaches the caller as its error object, as with Nest's TCP client.
    await expect(firstValueFrom(client.send('reject', {}))).rejects.toEqual({ code: 'E_BAD_INPUT', message: 'bad input' });
  });

  it('starts a private, non-listening node when no other node runs in the process, and closes it', async () => {
    const b = await startNode();
    nodes.push(b);
    // B's node is the only one running here, and it is the target: the client starts its own.
    const client = new P2PClient({ peer: `${b.id}@${b.address}`, timeoutMs: 300 });
    closers.push(() => client.close());
    expect(await firstValueFrom(client.send('echo', 'standalone'))).toBe('standalone');
    const own = client.unwrap<Peer>();
    expect(own.address()).toBeNull();
    expect(b.service.peers().map((p) => p.id)).toEqual([own.id]);
    // Timeouts and transport failures arrive as typed errors.
    await expect(firstValueFrom(client.send('never', {}))).rejects.toMatchObject({ code: 'P2P_TIMEOUT' });
    await client.close();
    expect(own.isRunning).toBe(false);
    await waitFor(() => b.service.peers().length === 0);
  });

  it('rejects a refused dial with code ECONNREFUSED, as Nest\'s TCP client does, keeping p2pCode', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const client = new P2PClient({ peer: `127.0.0.1:${port}`, node: 'private' });
    closers.push(() => client.close());
    const err = await firstValueFrom(client.send('echo', 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PDialError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', p2pCode: 'P2P_DIAL', address: `127.0.0.1:${port}` });
    expect((err as P2PDialError).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });
});

type Step = 'connect' | 'close';

describe('P2PClient: connect() and close() in any order (ClientTCP semantics)', () => {
  const interleavings: Array<{ name: string; connectedFirst?: boolean; steps: Step[] }> = [
    { name: 'close → connect', connectedFirst: true, steps: ['close', 'connect'] },
    { name: 'connect → close → connect', steps: ['connect', 'close', 'connect'] },
    { name: 'connect × 3', steps: ['connect', 'connect', 'connect'] },
    { name: 'close during connect', steps: ['connect', 'close'] },
    { name: 'connected, then close → connect → close', connectedFirst: true, steps: ['close', 'connect', 'close'] },
    { name: 'close → connect → connect → close → connect', steps: ['close', 'connect', 'connect', 'close', 'connect'] },
  ];

  it.each(interleavings)('$name: ends with one live node after a last connect, none after a last close, none leaked', async ({ connectedFirst, steps }) => {
    const b = await startNode();
    nodes.push(b);
    const baseline = handles();
    // B is the only node in the process and the target, so the client runs private nodes: each one is observable.
    const client = new P2PClient({ peer: `${b.id}@${b.address}`, timeoutMs: 2000 });
    closers.push(() => client.close());
    const seen = new Set<Peer>();
    const note = () => {
      try {
        seen.add(client.unwrap<Peer>());
      } catch {
        // closed: no node
      }
    };
    if (connectedFirst) {
      await client.connect();
      note();
    }
    const calls = steps.map((step) => {
      const call = step === 'connect' ? client.connect() : client.close();
      note();
      return call;
    });
    const results = await Promise.allSettled(calls);
    // As with ClientTCP, every call resolves: a connect that a later close() overtook still made its connection.
    results.forEach((result, i) => expect(result.status, `call ${i} (${steps[i]})`).toBe('fulfilled'));

    const live = [...seen].filter((node) => node.isRunning);
    if (steps.at(-1) === 'connect') {
      expect(live).toHaveLength(1);
      expect(client.unwrap<Peer>()).toBe(live[0]);
      expect(await firstValueFrom(client.send('echo', 'after the last connect'))).toBe('after the last connect');
      await waitFor(() => b.service.peers().length === 1);
      expect(b.service.peers().map((p) => p.id)).toEqual([live[0]!.id]);
      await client.close();
    } else {
      expect(live).toHaveLength(0);
      expect(() => client.unwrap()).toThrow(/not connected/);
    }
    expect([...seen].filter((node) => node.isRunning)).toHaveLength(0);
    await waitFor(() => b.service.peers().length === 0);
    await new Promise((r) => setImmediate(r));
    const after = handles();
    for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout']) {
      expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(baseline[kind] ?? 0);
    }
  });
});

function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

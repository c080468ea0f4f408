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

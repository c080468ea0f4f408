import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadIdentity, P2PConnectionClosedError, P2PPeerNotConnectedError, P2PQueueFullError } from '../../src/index.js';
import { waitFor } from '../helpers.js';
import { startNode, type TestNode } from '../nest-helpers.js';

const fixture = fileURLToPath(new URL('../fixtures/child-node.mjs', import.meta.url));

async function spawnNode(options: object = {}): Promise<{ child: ChildProcess; id: string; address: string }> {
  const child = spawn(process.execPath, [fixture, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([
    once(createInterface({ input: child.stdout! }), 'line'),
    new Promise((_, reject) => setTimeout(() => reject(new Error('child node did not start')), 10_000)),
  ])) as [string];
  return { child, ...JSON.parse(line) };
}

describe('a peer in another process (built package)', () => {
  const nodes: TestNode[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.app.close()));
  });

  it('serves requests, and a kill -9 mid-request rejects the caller promptly', async () => {
    const a = await startNode();
    nodes.push(a);
    const remote = await spawnNode();
    try {
      await a.service.connect(`${remote.id}@${remote.address}`);
      expect(await a.service.request(remote.id, 'echo', { over: 'processes' })).toEqual({ over: 'processes' });
      const pending = a.service.request(remote.id, 'never', null, { timeoutMs: 20_000 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      const killedAt = Date.now();
      remote.child.kill('SIGKILL');
      const err = await pending;
      expect(err).toBeInstanceOf(P2PConnectionClosedError);
      expect((err as P2PConnectionClosedError).peerId).toBe(remote.id);
      expect(Date.now() - killedAt).toBeLessThan(1000);
      await waitFor(() => a.service.peers().length === 0);
      await expect(a.service.send(remote.id, 'echo', 1)).rejects.toBeInstanceOf(P2PPeerNotConnectedError);
    } finally {
      remote.child.kill('SIGKILL');
    }
  });

  it('kill -9 mid-stream: pending requests reject promptly, and the node redials the peer it learned when it returns', async () => {
    const privateKey = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    let remote = await spawnNode({ privateKey });
    const children = [remote.child];
    try {
      // Not a configured peer: A only learned where it listens, from the connection (the address book).
      const a = await startNode({ pexIntervalMs: 100, reconnectBaseMs: 50, reconnectMaxMs: 200 });
      nodes.push(a);
      await a.service.connect(`${remote.id}@${remote.address}`);
      const streaming = (async () => {
        for (let i = 0; i < 100_000; i++) {
          try {
            await a.service.send(remote.id, 'echo', Buffer.alloc(1024));
          } catch (err) {
            // A full queue means "wait", as for any well-behaved sender; anything else ends the stream.
            if (!(err instanceof P2PQueueFullError)) throw err;
            await new Promise((r) => setTimeout(r, 1));
          }
          if (i % 64 === 63) await new Promise((r) => setImmediate(r));
        }
      })().catch((e: unknown) => e);
      const pending = Array.from({ length: 10 }, () => a.service.request(remote.id, 'never', null, { timeoutMs: 20_000 }).catch((e: unknown) => e));
      await new Promise((r) => setTimeout(r, 100));
      const killedAt = Date.now();
      remote.child.kill('SIGKILL');
      const exited = remote.child.exitCode !== null || remote.child.signalCode !== null ? Promise.resolve() : once(remote.child, 'exit');
      for (const err of await Promise.all(pending)) expect(err).toBeInstanceOf(P2PConnectionClosedError);
      expect(Date.now() - killedAt).toBeLessThan(1000);
      // The stream's next send is told: the peer is gone (or its connection is closing).
      const ended = await streaming;
      expect(ended instanceof P2PPeerNotConnectedError || ended instanceof P2PConnectionClosedError).toBe(true);
      await exited;
      remote = await spawnNode({ privateKey, listen: remote.address });
      children.push(remote.child);
      await waitFor(() => a.service.peers().some((p) => p.id === remote.id), 5000, 'A to redial the restarted peer');
      expect(await a.service.request(remote.id, 'echo', 'back')).toBe('back');
    } finally {
      children.forEach((c) => c.kill('SIGKILL'));
    }
  });

  it('drops a frozen peer within ping + pong timeouts, and reconnects when it restarts on its address', async () => {
    const privateKey = loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const keepalive = { pingIntervalMs: 200, pongTimeoutMs: 300 };
    let remote = await spawnNode({ privateKey, ...keepalive });
    const children = [remote.child];
    try {
      const a = await startNode({ peers: [`${remote.id}@${remote.address}`], reconnectBaseMs: 50, reconnectMaxMs: 200, ...keepalive });
      nodes.push(a);
      expect(a.service.peers().map((p) => p.id)).toEqual([remote.id]);
      // SIGSTOP: the process is frozen but its kernel keeps the TCP connection up; only keepalive can tell.
      remote.child.kill('SIGSTOP');
      const frozenAt = Date.now();
      await waitFor(() => a.service.peers().length === 0, 3000, 'the frozen peer to be dropped');
      const noticedMs = Date.now() - frozenAt;
      expect(noticedMs).toBeLessThanOrEqual(keepalive.pingIntervalMs + keepalive.pongTimeoutMs + 250);
      remote.child.kill('SIGKILL');
      await once(remote.child, 'exit');
      // Same key, same address: A redials it on its own.
      remote = await spawnNode({ privateKey, listen: remote.address, ...keepalive });
      children.push(remote.child);
      await waitFor(() => a.service.peers().some((p) => p.id === remote.id), 5000, 'A to reconnect');
      expect(await a.service.request(remote.id, 'echo', 'again')).toBe('again');
    } finally {
      children.forEach((c) => c.kill('SIGKILL'));
    }
  });
});

import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LOOPBACK_LIMITS, report, spawnNode, stopNodes, until, type NodeProcess } from '../net-processes.js';

/**
 * Issue 24, "Tests that must exist": requests and events to a pattern between real processes,
 * each a Nest app of the built package (test/fixtures/pattern-node.mjs). A client node with no
 * handlers talks to two server nodes through a ClientProxy (`ClientsModule`, `customClass:
 * P2PClient`, `options: {}`), as a Nest client of the NATS transport talks to its services.
 */

const fixture = fileURLToPath(new URL('../fixtures/pattern-node.mjs', import.meta.url));

type Answer = { type: 'reply'; values: unknown[] } | { type: 'failed'; error: unknown };

const nodes: NodeProcess[] = [];
afterEach(async () => {
  await stopNodes(nodes.splice(0));
});

async function start(index: number, handlers: boolean, peers: string[]): Promise<NodeProcess> {
  const node = await spawnNode(index, 30_000, fixture);
  nodes.push(node);
  const ready = await node.ask<{ id: string; address: string }>({ op: 'start', options: { ...LOOPBACK_LIMITS, peers }, handlers }, 30_000);
  node.id = ready.id;
  node.address = ready.address;
  return node;
}

async function send(node: NodeProcess, pattern: string, data: unknown, peer?: string): Promise<Answer> {
  const { seq: _seq, ...answer } = await node.ask<Answer & { seq: number }>({ op: 'send', pattern, data, peer }, 15_000);
  return answer as Answer;
}

/** The value of a one-value reply, or throws with what came back instead. */
function value<T>(answer: Answer): T {
  if (answer.type !== 'reply' || answer.values.length !== 1) throw new Error(`expected one value, got ${JSON.stringify(answer)}`);
  return answer.values[0] as T;
}

describe('requests and events to a pattern between processes (Nest apps, built package)', () => {
  it('a client with no handlers: math.sum answered by both servers, streaming.*, an RpcException as from a peer, notification to every handler once; SIGKILL one server, the other answers', async () => {
    const s1 = await start(0, true, []);
    const s2 = await start(1, true, [`${s1.id}@${s1.address}`]);
    // The client is told of s1 only; s2 it finds in the directory of handlers.
    const client = await start(2, false, [`${s1.id}@${s1.address}`]);
    const known = () => client.ask<{ ids: string[] }>({ op: 'handlers', pattern: 'math.sum', kind: 'request' }).then((a) => a.ids.length === 2);
    expect(await until(known, 20_000, 50), 'both servers in the client\'s directory').toBe(true);
    expect(await until(() => client.ask<{ ids: string[] }>({ op: 'handlers', pattern: 'notification', kind: 'event' }).then((a) => a.ids.length === 2), 20_000, 50)).toBe(true);

    // 40 requests in flight: each answered right, and each server answers some (a tenth at least: the choice is by cost, and a busy machine skews costs).
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => send(client, 'math.sum', [i, 1])));
    const by = new Map<string, number>();
    replies.forEach((answer, i) => {
      const reply = value<{ sum: number; by: string }>(answer);
      expect(reply.sum).toBe(i + 1);
      by.set(reply.by, (by.get(reply.by) ?? 0) + 1);
    });
    expect([...by.keys()].sort()).toEqual([s1.id, s2.id].sort());
    for (const n of by.values()) expect(n).toBeGreaterThanOrEqual(4);

    // A streaming handler streams back every value, as to a peer request.
    expect(await send(client, 'streaming.sum', [1, 2, 3, 4, 5])).toEqual({ type: 'reply', values: [1, 2, 3, 4, 5] });

    // The handler's RpcException reaches the client as it does when the client names the peer.
    const fromPeer = await send(client, 'exception', {}, `${s1.id}@${s1.address}`);
    expect(fromPeer).toEqual({ type: 'failed', error: { code: 'E_BAD_INPUT', message: 'bad input' } });
    expect(await send(client, 'exception', {})).toEqual(fromPeer);

    // emit('notification'): on each server both @EventPattern('notification') handlers run, once per event.
    for (const n of [1, 2, 3]) await client.ask({ op: 'emit', pattern: 'notification', data: n });
    const heardAll = (node: NodeProcess) => [1, 2, 3].every((n) => node.heard.has(`first:${n}`) && node.heard.has(`second:${n}`));
    expect(await until(() => heardAll(s1) && heardAll(s2), 20_000), 'every handler heard every event').toBe(true);
    // Time for a duplicate (a repair, a second path) to show up, had there been one.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const node of [s1, s2]) {
      expect(Object.fromEntries(node.heard)).toEqual({ 'first:1': 1, 'second:1': 1, 'first:2': 1, 'second:2': 1, 'first:3': 1, 'second:3': 1 });
    }
    expect(client.heard.size).toBe(0);

    // kill -9 one server while requests are in flight. A request it held fails with the
    // connection's error (at most once: never re-sent); every other one is answered by s1.
    let stop = false;
    const failures: unknown[] = [];
    let after = 0;
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          // Only a request sent once s2 is gone must be s1's: one sent before may have been answered by s2.
          const sentAfterKill = s2.exited;
          const answer = await send(client, 'math.sum', [1, 1]);
          if (answer.type === 'failed') failures.push(answer.error);
          else if (sentAfterKill) {
            expect(value<{ by: string }>(answer).by).toBe(s1.id);
            after++;
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    s2.child.kill('SIGKILL');
    expect(await until(() => s2.exited, 5_000)).toBe(true);
    expect(await until(() => after >= 40, 20_000), `requests answered after the kill (${after})`).toBe(true);
    stop = true;
    await load;
    report(`40 requests: ${[...by.values()].join(" / ")} by the two servers; SIGKILL: ${failures.length} failed, ${after} answered by the other after it`);
    // At most the four in flight there when it died, each with the connection's error.
    expect(failures.length).toBeLessThanOrEqual(4);
    for (const error of failures) expect(error).toMatchObject({ name: 'P2PConnectionClosedError' });
    // And a request after the kill, with s2's record perhaps still in the directory: answered by s1.
    expect(value<{ by: string }>(await send(client, 'math.sum', [2, 2]))).toEqual({ sum: 4, by: s1.id });
  }, 120_000);
});

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers.js';

/**
 * `npm run test:netns` (root only): three node processes, each in its own network
 * namespace, joined by veth pairs to a bridge in a fourth. Cutting one veth
 * partitions a node for longer than the pong timeout; healing it must bring the
 * connections back, and a network broadcast must then reach every node.
 */
const PREFIX = 'p2pt';
const BRIDGE_NS = `${PREFIX}-br`;
const NODES = ['a', 'b', 'c'] as const;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();
const fixture = fileURLToPath(new URL('../fixtures/net-node.mjs', import.meta.url));

function why(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  try {
    ip('netns', 'list');
  } catch {
    return 'the ip command (iproute2) is not available';
  }
  return undefined;
}
const skipReason = why();
if (skipReason) process.stdout.write(`netns partition test skipped: ${skipReason}\n`);

function teardown(): void {
  for (const name of [...NODES.map((n) => `${PREFIX}-${n}`), BRIDGE_NS]) {
    try {
      ip('netns', 'del', name);
    } catch {
      /* not there */
    }
  }
}

function setup(): void {
  teardown();
  ip('netns', 'add', BRIDGE_NS);
  ip('-n', BRIDGE_NS, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', BRIDGE_NS, 'link', 'set', 'br0', 'up');
  NODES.forEach((n, i) => {
    const ns = `${PREFIX}-${n}`;
    ip('netns', 'add', ns);
    ip('link', 'add', `${PREFIX}${n}0`, 'type', 'veth', 'peer', 'name', `${PREFIX}${n}1`);
    ip('link', 'set', `${PREFIX}${n}0`, 'netns', ns);
    ip('link', 'set', `${PREFIX}${n}1`, 'netns', BRIDGE_NS);
    ip('-n', ns, 'addr', 'add', `10.77.0.${i + 1}/24`, 'dev', `${PREFIX}${n}0`);
    ip('-n', ns, 'link', 'set', `${PREFIX}${n}0`, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', BRIDGE_NS, 'link', 'set', `${PREFIX}${n}1`, 'master', 'br0');
    ip('-n', BRIDGE_NS, 'link', 'set', `${PREFIX}${n}1`, 'up');
  });
}

interface NetNode {
  name: string;
  child: ChildProcess;
  id: string;
  lines: Array<Record<string, unknown>>;
}

async function startNode(name: string, index: number, peers: string[]): Promise<NetNode> {
  const options = {
    listen: `10.77.0.${index + 1}:4000`,
    peers,
    pingIntervalMs: 300,
    pongTimeoutMs: 600,
    reconnectBaseMs: 100,
    reconnectMaxMs: 500,
    pexIntervalMs: 200,
    privateKey: Buffer.alloc(32, index + 1).toString('hex'),
  };
  const child = spawn('ip', ['netns', 'exec', `${PREFIX}-${name}`, process.execPath, fixture, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const node: NetNode = { name, child, id: '', lines: [] };
  createInterface({ input: child.stdout! }).on('line', (line) => node.lines.push(JSON.parse(line)));
  await waitFor(() => node.lines.some((l) => l.type === 'ready'), 15_000, `node ${name} to start`);
  node.id = node.lines.find((l) => l.type === 'ready')!.id as string;
  return node;
}

async function peersOf(node: NetNode): Promise<string[]> {
  const before = node.lines.length;
  node.child.stdin!.write(JSON.stringify({ op: 'peers' }) + '\n');
  await waitFor(() => node.lines.slice(before).some((l) => l.type === 'peers'), 5000, `peers of ${node.name}`);
  return node.lines.slice(before).find((l) => l.type === 'peers')!.ids as string[];
}

describe.skipIf(skipReason !== undefined)('partition between network namespaces', () => {
  const nodes: NetNode[] = [];

  beforeAll(async () => {
    setup();
    const a = await startNode('a', 0, []);
    const b = await startNode('b', 1, [`${a.id}@10.77.0.1:4000`]);
    const c = await startNode('c', 2, [`${b.id}@10.77.0.2:4000`]);
    nodes.push(a, b, c);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(
      nodes.map((n) => new Promise<void>((resolve) => (n.child.exitCode !== null ? resolve() : (n.child.once('exit', () => resolve()), n.child.kill('SIGTERM'))))),
    );
    teardown();
  });

  const meshed = async () => (await Promise.all(nodes.map(peersOf))).every((ids) => ids.length === 2);

  it('drops a cut-off node after the pong timeout, reconnects when the link heals, and a network broadcast reaches all', async () => {
    const [a, b, c] = nodes as [NetNode, NetNode, NetNode];
    // Peer exchange turns the chain a <- b <- c into a full mesh.
    for (let i = 0; i < 100 && !(await meshed()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await meshed()).toBe(true);

    ip('-n', BRIDGE_NS, 'link', 'set', `${PREFIX}a1`, 'down');
    const cutAt = Date.now();
    for (let i = 0; i < 50; i++) {
      const [pb, pc] = await Promise.all([peersOf(b), peersOf(c)]);
      if (!pb.includes(a.id) && !pc.includes(a.id)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await peersOf(b)).toEqual([c.id]);
    expect(await peersOf(c)).toEqual([b.id]);
    expect(Date.now() - cutAt).toBeLessThan(300 + 600 + 2000);
    await new Promise((r) => setTimeout(r, 500)); // stay cut a while longer than the pong timeout

    ip('-n', BRIDGE_NS, 'link', 'set', `${PREFIX}a1`, 'up');
    for (let i = 0; i < 100 && !(await meshed()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await meshed()).toBe(true);

    const before = c.lines.length;
    c.child.stdin!.write(JSON.stringify({ op: 'broadcast', data: 'after the partition' }) + '\n');
    await waitFor(() => c.lines.slice(before).some((l) => l.type === 'broadcast'), 5000, 'the broadcast id');
    const id = c.lines.slice(before).find((l) => l.type === 'broadcast')!.id;
    const heard = (n: NetNode) => n.lines.filter((l) => l.type === 'heard' && l.id === id).length;
    await waitFor(() => nodes.every((n) => heard(n) >= 1), 5000, 'every node to hear the broadcast');
    await new Promise((r) => setTimeout(r, 300));
    expect(nodes.map(heard)).toEqual([1, 1, 1]);
  }, 60_000);
});

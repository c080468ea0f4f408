// `npm start`: five demo nodes (child processes, each a Nest app configured from
// config/demo/), configured as a ring that peer exchange fills in to a full mesh, showing
// a send, a request and a broadcast.
// Runs until Ctrl-C, then shuts every node down cleanly. DEMO_EXIT=1 stops after the show.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const NODES = 5;
const color = process.stdout.isTTY ? (code: number, s: string) => `\x1b[${code}m${s}\x1b[0m` : (_: number, s: string) => s;
const palette = [36, 33, 35, 32, 34];

interface DemoNode {
  name: string;
  child: ChildProcess;
  id: string;
  address: string;
  waiting: Map<number, (r: { value?: unknown; error?: string }) => void>;
}

interface PeerRow {
  id: string;
  secure: boolean;
  direction: 'inbound' | 'outbound';
  rttMs: number | null;
}

let seq = 0;
// Connection events are printed once the show is over (the start-up mesh would drown the output).
let showEvents = false;
const nodes: DemoNode[] = [];
const label = (n: DemoNode) => color(palette[nodes.indexOf(n) % palette.length]!, n.name.padEnd(6));
const nameOf = (id: string) => nodes.find((n) => n.id === id)?.name ?? id.slice(0, 8);
const say = (text = '') => process.stdout.write(text + '\n');

function start(index: number): Promise<DemoNode> {
  const name = `node-${index}`;
  const config = fileURLToPath(new URL(`../../../config/demo/${name}.json`, import.meta.url));
  const child = fork(fileURLToPath(new URL('./node.js', import.meta.url)), [config], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const node = { name, child, id: '', address: '', waiting: new Map() } as DemoNode;
    child.on('message', (m: { type: string; id?: string; address?: string; text?: string; seq?: number; value?: unknown; error?: string }) => {
      if (m.type === 'ready') {
        node.id = m.id!;
        node.address = m.address!;
        nodes.push(node);
        resolve(node);
      } else if (m.type === 'peer' && showEvents) {
        const p = m as unknown as { event: string; id: string; reason?: string };
        say(`  ${label(node)} ${p.event} ${nameOf(p.id)}${p.reason ? ` (${p.reason})` : ''}`);
      } else if (m.type === 'log') {
        say(`  ${label(node)} ${m.text}`);
      } else if (m.type === 'result') {
        node.waiting.get(m.seq!)?.(m);
        node.waiting.delete(m.seq!);
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
  });
}

function ask<T>(node: DemoNode, command: Record<string, unknown>): Promise<T> {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    // A table refresh can fire while Ctrl-C stops the nodes: a closed channel rejects (the caller ignores it), never an unhandled 'error'.
    if (stopping || !node.child.connected) return reject(new Error(`${node.name} is stopping`));
    node.waiting.set(id, (r) => (r.error ? reject(new Error(r.error)) : resolve(r.value as T)));
    node.child.send({ ...command, seq: id }, (err) => {
      if (err) reject(err);
    });
  });
}

async function waitForMesh(): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const counts = await Promise.all(nodes.map((n) => ask<PeerRow[]>(n, { op: 'peers' })));
    if (counts.every((peers) => peers.length === NODES - 1)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('peer exchange did not connect every node to every other');
}

let stopping = false;
let refresh: NodeJS.Timeout | undefined;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    clearInterval(refresh);
    say(`\nstopping ${nodes.length} nodes...`);
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.child.exitCode !== null) return resolve();
            n.child.once('exit', () => resolve());
            n.child.kill('SIGTERM');
          }),
      ),
    );
    say('all nodes closed cleanly.');
  }
  process.exit(code);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  say(color(1, `nestjs-p2p demo: ${NODES} nodes on 127.0.0.1, each a Nest app in its own process`));
  // Each node dials the previous one (and node-5 also dials node-1): a ring, so start in order.
  for (let i = 1; i <= NODES; i++) await start(i);
  await waitForMesh();
  say('\nnetwork (each node was configured with its ring neighbours only; peer exchange connected the rest):');
  let secure = 0;
  let links = 0;
  for (const n of nodes) {
    const peers = await ask<PeerRow[]>(n, { op: 'peers' });
    links += peers.length;
    secure += peers.filter((p) => p.secure).length;
    say(`  ${label(n)} id ${n.id}  ${n.address}  peers: ${peers.map((p) => nameOf(p.id)).sort().join(', ')}`);
  }
  say(
    secure === links
      ? `  all ${links / 2} connections: TLS 1.3, each side proved its peer id (Ed25519 certificate)`
      : `  ${links - secure} of ${links} connection ends are plaintext (tls: false)`,
  );
  const [n1, n2, n3, n4] = nodes as [DemoNode, DemoNode, DemoNode, DemoNode];

  say(color(1, '\n1. send: node-1 -> node-2, event "chat.message" (fire-and-forget)'));
  await ask(n1, { op: 'send', to: n2.id, pattern: 'chat.message', data: { text: 'hello node-2' } });
  await new Promise((r) => setTimeout(r, 200));

  say(color(1, '\n2. request: node-3 asks node-4 "math.sum" of 1..10 and awaits the reply'));
  const reply = await ask<{ value: number; ms: number }>(n3, { op: 'request', to: n4.id, pattern: 'math.sum', data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] });
  say(`  ${label(n3)} got reply ${reply.value} in ${reply.ms.toFixed(2)} ms`);

  say(color(1, '\n3. broadcast: node-1 -> every peer it is connected to, event "news"'));
  const result = await ask<{ sent: string[]; failed: unknown[] }>(n1, { op: 'broadcast', pattern: 'news', data: { headline: 'peers, not brokers' } });
  await new Promise((r) => setTimeout(r, 200));
  say(`  ${label(n1)} broadcast queued for ${result.sent.map(nameOf).sort().join(', ')}; ${result.failed.length} failed`);

  await peerTable();
  if (process.env.DEMO_EXIT) return stop(0);
  showEvents = true;
  say(color(1, '\nnetwork running; the peer table refreshes every 10 s. Press Ctrl-C to stop.'));
  refresh = setInterval(() => void peerTable().catch(() => undefined), 10_000);
}

/** Every node's connections with direction and measured round trip (the demo configs ping every 2 s). */
async function peerTable(): Promise<void> {
  say(color(1, `\npeer table at ${new Date().toLocaleTimeString('en-GB')}`));
  say(`  ${'node'.padEnd(6)} ${'peer'.padEnd(6)} ${'direction'.padEnd(9)} ${'rtt'.padStart(7)}  channel`);
  for (const n of nodes) {
    const peers = await ask<PeerRow[]>(n, { op: 'peers' });
    for (const p of peers.sort((x, y) => nameOf(x.id).localeCompare(nameOf(y.id)))) {
      const rtt = p.rttMs === null ? 'pending' : `${p.rttMs} ms`;
      say(`  ${label(n)} ${nameOf(p.id).padEnd(6)} ${p.direction.padEnd(9)} ${rtt.padStart(7)}  ${p.secure ? 'TLS 1.3' : 'plaintext'}`);
    }
  }
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  void stop(1);
});

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// The README's snippets, compiled as they are written there and run as an app would run them:
// two Quick start nodes (microservices: request, send, broadcast, goodbye on SIGINT), a third app
// built from the forRootAsync, metrics and health snippets, the hybrid bootstrap (HTTP too), and
// two nodes of the NATS comparison's service (a request to a pattern, an emit to its handlers),
// all on 127.0.0.1. A README edit that breaks a snippet fails here. Snippets are the ```ts
// fences right after `<!-- snippet: NAME -->`, in the README and in the docs it moved them to
// (the health module is in docs/operations.md).

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const nestVersion: string = JSON.parse(readFileSync(join(root, 'node_modules/@nestjs/core/package.json'), 'utf8')).version;
const nestMajor = Number(nestVersion.split('.')[0]);

export function readmeSnippets(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of text.matchAll(/<!-- snippet: ([\w.-]+) -->\r?\n```ts\r?\n([\s\S]*?)\r?\n```/g)) {
    if (found.has(m[1]!)) throw new Error(`README has two snippets named ${m[1]}`);
    found.set(m[1]!, `${m[2]!}\n`);
  }
  return found;
}

/** Docs that hold snippets moved out of the README (to keep it short), tested as the README's are. */
const snippetDocs = ['docs/operations.md'];
const snippets = readmeSnippets(readme);
for (const doc of snippetDocs) {
  for (const [name, code] of readmeSnippets(readFileSync(join(root, doc), 'utf8'))) {
    if (snippets.has(name)) throw new Error(`two snippets named ${name}: in the README or docs, and in ${doc}`);
    snippets.set(name, code);
  }
}
const snippet = (name: string): string => {
  const code = snippets.get(name);
  if (code === undefined) throw new Error(`neither the README nor ${snippetDocs.join(', ')} has <!-- snippet: ${name} --> before a \`\`\`ts fence`);
  return code;
};

// An app of our own around the snippets that are not a whole app: forRootAsync in place of forRoot,
// with the metrics controller and the health module (which relies on isGlobal) next to it.
const opsMain = (): string => `import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { P2PModule, P2PServer } from 'nestjs-p2p';
import { P2PMetrics } from 'nestjs-p2p/metrics';
import { GreetingController } from './app.module.js';
import { HealthModule } from './health.module.js';
import { MetricsController } from './metrics.controller.js';

const p2p = { listen: '127.0.0.1:0', peers: (process.env.P2P_PEERS ?? '').split(','), minPeers: 1 };

@Module({
  imports: [
    ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ p2p })] }),
${snippet('for-root-async').replace(/^/gm, '    ')}
    HealthModule,
  ],
  controllers: [MetricsController, GreetingController],
  providers: [P2PMetrics],
})
class OpsModule {}

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(OpsModule);
  app.enableShutdownHooks();
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.listen(Number(process.env.HTTP_PORT), '127.0.0.1');
  console.log('ops app ready');
}
void bootstrap();
`;

// Around the NATS comparison's module: a node that, once the other node's @EventPattern is in its
// directory, asks for the total of NUMBERS (a request to math.sum, then an emit of math.summed).
const mathMain = (): string => `import { NestFactory } from '@nestjs/core';
import { P2PServer, P2PService } from 'nestjs-p2p';
import { MathController, MathModule } from './math.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(MathModule);
  app.enableShutdownHooks();
  app.connectMicroservice({ strategy: app.get(P2PServer) });
  await app.startAllMicroservices();
  await app.init();
  const p2p = app.get(P2PService);
  while (p2p.handlers('math.summed', 'event').length < 2) await new Promise((r) => setTimeout(r, 50));
  const numbers = (process.env.NUMBERS ?? '').split(',').map(Number);
  console.log('total:', await app.get(MathController).total(numbers));
}
void bootstrap();
`;

type Flavour = 'esm' | 'cjs';

const tsconfigs: Record<Flavour, object> = {
  // What an ESM app on Nest 12 would use.
  esm: { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022' },
  // The classic Nest CLI tsconfig: CommonJS with node10 resolution (no exports map: typesVersions).
  cjs: { module: 'commonjs', moduleResolution: 'node', target: 'ES2021' },
};

/** An app directory: the snippets in src/, and node_modules linking the repo's plus nestjs-p2p itself. */
function writeApp(flavour: Flavour): string {
  const dir = mkdtempSync(join(tmpdir(), `p2p-readme-${flavour}-`));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `readme-${flavour}`, private: true, type: flavour === 'esm' ? 'module' : 'commonjs' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        ...tsconfigs[flavour],
        strict: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        esModuleInterop: true,
        skipLibCheck: true,
        types: ['node'],
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
    }),
  );
  mkdirSync(join(dir, 'src'));
  for (const name of ['app.module.ts', 'main.ts', 'metrics.controller.ts', 'health.module.ts', 'hybrid.main.ts', 'math.module.ts']) {
    writeFileSync(join(dir, 'src', name), snippet(name));
  }
  writeFileSync(join(dir, 'src', 'ops.main.ts'), opsMain());
  writeFileSync(join(dir, 'src', 'math.main.ts'), mathMain());
  mkdirSync(join(dir, 'node_modules'));
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (!entry.startsWith('.')) symlinkSync(join(root, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  symlinkSync(root, join(dir, 'node_modules', 'nestjs-p2p'), 'dir');
  return dir;
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

interface Node {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(name: string, dir: string, script: string, env: Record<string, string>): Node {
  const { P2P_PORT, P2P_PEERS, HTTP_PORT, ...inherited } = process.env;
  void P2P_PORT, void P2P_PEERS, void HTTP_PORT;
  const child = spawn(process.execPath, [join('dist', script)], {
    cwd: dir,
    env: { ...inherited, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name, child, output: () => out, exited };
}

async function waitFor<T>(what: string, nodes: Node[], check: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}\n${nodes.map((n) => `--- ${n.name}:\n${n.output()}`).join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function getHttp(port: number, path: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined; // not listening yet
  }
}

describe('README snippets', () => {
  it('are all there, and examples/minimal/ is the Quick start as written in the README', () => {
    expect([...snippets.keys()].sort()).toEqual(['app.module.ts', 'for-root-async', 'health.module.ts', 'hybrid.main.ts', 'main.ts', 'math.module.ts', 'metrics.controller.ts']);
    for (const name of ['app.module.ts', 'main.ts']) {
      expect(readFileSync(join(root, 'examples/minimal', name), 'utf8'), `examples/minimal/${name}`).toBe(snippet(name));
    }
    // The set-up commands stay first.
    expect(readme).toMatch(/^# nestjs-p2p\n\n```sh\nnpm install && npm start\nnpm test\n```\n/);
  });

  // NestJS 11 (CI's second pass) is CommonJS: there the CommonJS app runs too. On NestJS 12 it is
  // only compiled (the classic tsconfig, node10 resolution, which only typesVersions lets see the
  // subpaths), to keep the suite's load down on small CI machines.
  const flavours: Flavour[] = ['esm', 'cjs'];
  const compileOnly = (flavour: Flavour): boolean => flavour === 'cjs' && nestMajor >= 12;
  const dirs: string[] = [];
  const nodes: Node[] = [];
  afterAll(() => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it.each(flavours)(
    `compile as a %s app on NestJS ${nestVersion} (CommonJS runs on NestJS 11 only); two Quick start nodes request, send and broadcast; forRootAsync, metrics, health and the hybrid (HTTP) bootstrap work; the NATS comparison's service asks and emits by pattern`,
    async (flavour) => {
      const dir = writeApp(flavour);
      dirs.push(dir);
      await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir }).catch(
        (err: { stdout?: string; stderr?: string }) => {
          throw new Error(`the README's snippets do not compile as ${flavour}:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
        },
      );

      if (compileOnly(flavour)) return;

      const [pA, pB, pM, hM, hC, pS1, pS2] = await freePorts(7);
      const a = start('node A', dir, 'main.js', { P2P_PORT: String(pA) });
      const b = start('node B', dir, 'main.js', { P2P_PORT: String(pB), P2P_PEERS: `127.0.0.1:${pA}` });
      const c = start('ops app', dir, 'ops.main.js', { P2P_PEERS: `127.0.0.1:${pA}`, HTTP_PORT: String(hC) });
      const m = start('hybrid', dir, 'hybrid.main.js', { P2P_PORT: String(pM), P2P_PEERS: `127.0.0.1:${pA}`, HTTP_PORT: String(hM) });
      const group = [a, b, c, m];
      nodes.push(...group);

      // Each Quick start node greets the other once connected: the reply names the caller, the
      // event sent to a peer names that peer, and the broadcast reaches it too.
      const greeted = (n: Node) => () => {
        const reply = /hello Ada, you are ([0-9a-f]{8})/.exec(n.output());
        const sent = /chat: hi ([0-9a-f]{8})/.exec(n.output());
        return reply && sent && /chat: hi all/.test(n.output()) ? { reply: reply[1]!, sent: sent[1]! } : undefined;
      };
      const fromA = await waitFor('node A to greet and be greeted', group, greeted(a));
      const fromB = await waitFor('node B to greet and be greeted', group, greeted(b));
      expect(fromA.reply).toBe(fromA.sent); // both are A's own id
      expect(fromB.reply).toBe(fromB.sent);
      expect(fromA.reply).not.toBe(fromB.reply);
      // The hybrid node (HTTP and the P2P microservice) listens on both, dials A, and its
      // GreetingController gets the greeting A (and B) send each peer on connecting.
      await waitFor('the hybrid node to be greeted', group, () => /chat: hi [0-9a-f]{8}/.test(m.output()));
      expect((await waitFor('the hybrid node to serve HTTP', group, () => getHttp(hM, '/')))?.status).toBe(404); // Nest's HTTP server, no routes

      // forRootAsync (ConfigService), the health module in a feature module (isGlobal), metrics.
      const health = await waitFor('the ops app to be healthy', group, async () => {
        const res = await getHttp(hC, '/health');
        return res?.status === 200 ? res : undefined;
      });
      expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', info: { p2p: { status: 'up', running: true, minPeers: 1 } } });
      const metrics = await getHttp(hC, '/metrics');
      expect(metrics?.status).toBe(200);
      expect(metrics?.body).toMatch(/^p2p_connected_peers\{direction="outbound"\} [1-9]$/m); // A, and B by peer exchange
      expect(metrics?.body).toMatch(/^p2p_frames_total\{direction="in",kind="control"\} [1-9]/m);

      // The NATS comparison's service, a network of its own (started now: eight Nest processes
      // starting at once are too many for a small CI machine): two nodes, each asks for a total and emits it.
      const s1 = start('math node 1', dir, 'math.main.js', { P2P_PORT: String(pS1), NUMBERS: '1,2,3' });
      const s2 = start('math node 2', dir, 'math.main.js', { P2P_PORT: String(pS2), P2P_PEERS: `127.0.0.1:${pS1}`, NUMBERS: '4,5,6' });
      group.push(s1, s2);
      nodes.push(s1, s2);
      // The math nodes: each got its total from a node that handles math.sum, and each node's
      // @EventPattern('math.summed') heard both totals, once each (its own emit and the other's).
      const summed = (n: Node) => n.output().match(/^math\.summed: \d+$/gm)?.sort() ?? [];
      await waitFor('the math nodes to ask and to hear both totals', group, () =>
        [s1, s2].every((n) => summed(n).length >= 2) && /^total: 6$/m.test(s1.output()) && /^total: 15$/m.test(s2.output()),
      );
      await new Promise((r) => setTimeout(r, 500)); // a duplicate would show by now
      for (const n of [s1, s2]) expect(summed(n), n.output()).toEqual(['math.summed: 15', 'math.summed: 6']);

      // Ctrl-C on A: enableShutdownHooks closes the app, which says goodbye to its peers.
      a.child.kill('SIGINT');
      const exitA = await a.exited;
      expect(exitA.signal === 'SIGINT' || exitA.code === 0, `node A exit: ${JSON.stringify(exitA)}\n${a.output()}`).toBe(true);
      await waitFor("node B to see A's goodbye", group, () => /disconnected from [0-9a-f]{40} at .*: peer said goodbye/.test(b.output()));
      for (const n of [b, c, m, s1, s2]) n.child.kill('SIGINT');
      for (const n of [b, c, m, s1, s2]) {
        const exit = await n.exited;
        expect(exit.signal === 'SIGINT' || exit.code === 0, `${n.name} exit: ${JSON.stringify(exit)}\n${n.output()}`).toBe(true);
      }
    },
    60_000,
  );
});

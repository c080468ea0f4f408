import { freePort } from '../helpers.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The README's install, as a new user does it: the packed tarball and exactly the packages the
// README's `npm install nestjs-p2p …` line lists, in an empty project, then the Quick start
// (two nodes) and `npx nestjs-p2p node`. Neither may need an HTTP driver (@nestjs/platform-express),
// which that line does not list (issue 23: both exited with Nest's "No driver (HTTP) has been selected").
//
// The @nestjs/* packages are pinned to the major this suite runs on (12 here, 11 in CI's second
// pass), so each pass tries the package against its own Nest. npm installs with --prefer-offline:
// from the local npm cache (which `npm ci` filled) when it has the packages, from the registry
// only for what it lacks; a run on an empty cache therefore needs the registry once.

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const nestMajor = Number(JSON.parse(readFileSync(join(root, 'node_modules/@nestjs/core/package.json'), 'utf8')).version.split('.')[0]);
// Nest 12 apps are ESM; Nest 11 is CommonJS, and so are most of its apps (the Nest CLI's tsconfig).
const flavour: 'esm' | 'cjs' = nestMajor >= 12 ? 'esm' : 'cjs';

/** The README's install line, less `nestjs-p2p`: the packages a user adds beside it. */
function readmePackages(): string[] {
  const line = /^npm install nestjs-p2p (.+)$/m.exec(readme)?.[1];
  if (!line) throw new Error('the README has no `npm install nestjs-p2p …` line');
  return line.trim().split(/\s+/);
}

function snippet(name: string): string {
  const m = new RegExp(`<!-- snippet: ${name.replace(/\./g, '\\.')} -->\\r?\\n\`\`\`ts\\r?\\n([\\s\\S]*?)\\r?\\n\`\`\``).exec(readme);
  if (!m) throw new Error(`the README has no <!-- snippet: ${name} -->`);
  return `${m[1]!}\n`;
}

/** The environment without npm's own variables (set when the suite runs under `npm test`), which would steer the nested npm. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && !['P2P_PORT', 'P2P_PEERS', 'HTTP_PORT'].includes(k)) env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}


interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const procs: Proc[] = [];
function start(name: string, cwd: string, command: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command, args, { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const proc = { name, child, output: () => out, exited };
  procs.push(proc);
  return proc;
}

async function waitFor(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${procs.map((p) => `--- ${p.name}:\n${p.output()}`).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe(`the README's install (packed tarball, NestJS ${nestMajor}, ${flavour})`, () => {
  const dir = mkdtempSync(join(tmpdir(), `p2p-install-${flavour}-`));
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeAll(async () => {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'install-test', private: true, type: flavour === 'esm' ? 'module' : 'commonjs' }));
    // dist/ is built (npm test's pretest): pack it as published, without running prepack again.
    const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: root, env: cleanEnv(), maxBuffer: 16 << 20 });
    const tarball = join(dir, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
    const packages = readmePackages().map((name) => (name.startsWith('@nestjs/') ? `${name}@^${nestMajor}` : name));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...packages], { cwd: dir, env: cleanEnv(), maxBuffer: 16 << 20 }).catch(
      (err: { stdout?: string; stderr?: string }) => {
        throw new Error(`npm install of the README's packages failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      },
    );
    // The Quick start, compiled as a user's project would (TypeScript and @types/node from this repo).
    mkdirSync(join(dir, 'src'));
    for (const name of ['app.module.ts', 'main.ts']) writeFileSync(join(dir, 'src', name), snippet(name));
    const compiler = flavour === 'esm' ? { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022' } : { module: 'commonjs', moduleResolution: 'node', target: 'ES2021' };
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...compiler, strict: true, experimentalDecorators: true, emitDecoratorMetadata: true, esModuleInterop: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules/@types')], rootDir: 'src', outDir: 'dist' },
        include: ['src'],
      }),
    );
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`the Quick start does not compile in the installed project:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
  }, 180_000);

  it('installs the peers the README lists, and no HTTP driver', () => {
    const installed = (name: string) => existsSync(join(dir, 'node_modules', name, 'package.json'));
    for (const name of readmePackages()) expect(installed(name), name).toBe(true);
    expect(installed('nestjs-p2p')).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'node_modules/@nestjs/core/package.json'), 'utf8')).version).toMatch(new RegExp(`^${nestMajor}\\.`));
    expect(readdirSync(join(dir, 'node_modules/@nestjs')).sort()).toEqual(['common', 'core', 'microservices']);
  });

  it('runs two Quick start nodes that greet each other, and a `npx nestjs-p2p node` that joins them; all stop cleanly', async () => {
    const [pA, pB] = [await freePort(), await freePort()];
    const a = start('quick start A', dir, process.execPath, ['dist/main.js'], { P2P_PORT: String(pA) });
    const b = start('quick start B', dir, process.execPath, ['dist/main.js'], { P2P_PORT: String(pB), P2P_PEERS: `127.0.0.1:${pA}` });
    // Each greets the other once connected: a request answered by the other's @MessagePattern, an event, a broadcast.
    const greeted = (p: Proc) => () => /hello Ada, you are [0-9a-f]{8}/.test(p.output()) && /chat: hi [0-9a-f]{8}/.test(p.output()) && /chat: hi all/.test(p.output());
    await waitFor('the Quick start nodes to greet each other', () => greeted(a)() && greeted(b)());

    // The CLI node, through npx as the README says, from the installed package's bin.
    const cli = start('npx nestjs-p2p node', dir, 'npx', ['--no-install', 'nestjs-p2p', 'node', '--listen', '127.0.0.1:0', '--peer', `127.0.0.1:${pA}`, '--key-file', join(dir, 'cli.pem'), '--json']);
    await waitFor('the CLI node to start and connect to A', () => /"ready: id [0-9a-f]{40}/.test(cli.output()) && /"connected to [0-9a-f]{40} at 127\.0\.0\.1:\d+/.test(cli.output()));
    // A greets every peer that connects: the CLI node, a bare node, answers that it has no handler (a reply, not a hang).
    await waitFor("A to hear the CLI node's answer", () => /no matching message handler/i.test(a.output()));

    for (const p of [a, b, cli]) expect(p.output(), p.name).not.toMatch(/No driver \(HTTP\)|platform-express/);
    // SIGTERM to the node itself, as a supervisor that runs `node dist/cli/main.js` would send it
    // (npx, an npm process between, is left out of this test: it ends when the node does).
    const nodePid = Number(/"pid":(\d+)[^\n]*"ready: id/.exec(cli.output())![1]);
    process.kill(nodePid, 'SIGTERM');
    await waitFor('the CLI node to close', () => /"SIGTERM: closing"/.test(cli.output()));
    for (const p of [b, a]) p.child.kill('SIGINT');
    for (const p of [a, b, cli]) {
      const exit = await p.exited;
      expect(exit.code === 0 || exit.signal === 'SIGINT', `${p.name}: ${JSON.stringify(exit)}\n${p.output()}`).toBe(true);
    }
  }, 90_000);
});

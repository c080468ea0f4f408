import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Folders of the repository that the package does not ship; the README says they are in the repository. */
const repositoryOnly = ['examples/', 'bench/'];

/** Markdown without its fenced code blocks (a `[x](y)` or `# x` inside one is code, not a link or heading). */
const prose = (markdown: string): string => markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');

/** GitHub's heading anchors: lower case, punctuation dropped, each space a hyphen, -1, -2… for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const counts = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of prose(markdown).matchAll(/^#{1,6} +(.+?) *$/gm)) {
    const slug = m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-');
    const seen = counts.get(slug) ?? 0;
    counts.set(slug, seen + 1);
    anchors.add(seen === 0 ? slug : `${slug}-${seen}`);
  }
  return anchors;
}

/** Every relative link of a shipped markdown file that does not resolve: a missing file or anchor, or a file the package does not ship. */
function brokenLinks(file: string, packed: Set<string>): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const broken: string[] = [];
  for (const m of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
    const href = m[1]!;
    if (/^[a-z]+:/i.test(href)) continue; // https:, mailto:
    const [path, anchor] = href.split('#') as [string, string | undefined];
    const target = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path)).replace(/\/$/, '');
    if (!existsSync(join(root, target))) {
      broken.push(`${file}: ${href} (no such file)`);
      continue;
    }
    if (!packed.has(target) && !repositoryOnly.some((dir) => target.startsWith(dir))) {
      broken.push(`${file}: ${href} (not in the package)`);
    }
    if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(readFileSync(join(root, target), 'utf8')).has(anchor)) {
      broken.push(`${file}: ${href} (no such heading)`);
    }
  }
  return broken;
}

describe('the built package (dist/), as an app would load it', () => {
  // An app directory with nestjs-p2p installed as a link to this repo.
  const app = mkdtempSync(join(tmpdir(), 'p2p-app-'));
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(root, join(app, 'node_modules', 'nestjs-p2p'), 'dir');
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('loads with require() from a CommonJS app', async () => {
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'cjs-app', type: 'commonjs' }));
    writeFileSync(
      join(app, 'main.cjs'),
      `const p2p = require('nestjs-p2p');
       const { P2PHealthIndicator } = require('nestjs-p2p/health');
       const { P2PMetrics } = require('nestjs-p2p/metrics');
       const peer = new p2p.Peer();
       console.log(JSON.stringify({ module: typeof p2p.P2PModule.forRoot, server: typeof p2p.P2PServer, client: typeof p2p.P2PClient, health: typeof P2PHealthIndicator, metrics: typeof P2PMetrics, id: peer.id }));`,
    );
    const { stdout } = await run(process.execPath, ['main.cjs'], { cwd: app });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({ module: 'function', server: 'function', client: 'function', health: 'function', metrics: 'function' });
    expect(out.id).toMatch(/^[0-9a-f]{40}$/);
  });

  it('loads with import from an ESM app', async () => {
    writeFileSync(
      join(app, 'main.mjs'),
      `import { P2PModule, P2PService, validateConfig } from 'nestjs-p2p';
       import { P2PHealthIndicator } from 'nestjs-p2p/health';
       console.log(JSON.stringify({ module: typeof P2PModule.forRootAsync, service: typeof P2PService, health: typeof P2PHealthIndicator, inbound: validateConfig({}).maxInbound }));`,
    );
    const { stdout } = await run(process.execPath, ['main.mjs'], { cwd: app });
    expect(JSON.parse(stdout.trim())).toEqual({ module: 'function', service: 'function', health: 'function', inbound: 40 });
  });
});

describe('the subpaths nestjs-p2p/core and nestjs-p2p/sim', () => {
  const app = mkdtempSync(join(tmpdir(), 'p2p-core-app-'));
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(root, join(app, 'node_modules', 'nestjs-p2p'), 'dir');
  afterAll(() => rmSync(app, { recursive: true, force: true }));
  // Refuses to resolve any @nestjs/* module: the core must run without Nest (reflect-metadata it may
  // load: @peculiar/x509, which makes the TLS certificates, needs it).
  writeFileSync(
    join(app, 'no-nest.mjs'),
    `export async function resolve(specifier, context, next) {
       if (specifier.startsWith('@nestjs/')) throw new Error('the core loaded ' + specifier);
       return next(specifier, context);
     }`,
  );
  writeFileSync(join(app, 'register.mjs'), `import { register } from 'node:module'; register('./no-nest.mjs', import.meta.url);`);

  it('load from ESM and CommonJS apps, and the core without NestJS', async () => {
    writeFileSync(
      join(app, 'core.mjs'),
      `import { Peer, loadIdentity, P2PError } from 'nestjs-p2p/core';
       import { SimNet, rng } from 'nestjs-p2p/sim';
       const peer = new Peer({ privateKey: loadIdentity().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() });
       console.log(JSON.stringify({ id: peer.id.length, error: typeof P2PError, sim: typeof SimNet, rng: typeof rng(1)() }));`,
    );
    const esm = await run(process.execPath, ['--import', './register.mjs', 'core.mjs'], { cwd: app });
    expect(JSON.parse(esm.stdout.trim())).toEqual({ id: 40, error: 'function', sim: 'function', rng: 'number' });
    writeFileSync(
      join(app, 'core.cjs'),
      `const { Peer } = require('nestjs-p2p/core');
       const { FAULT_MIXES } = require('nestjs-p2p/sim');
       console.log(JSON.stringify({ id: new Peer().id.length, mixes: FAULT_MIXES.length > 0 }));`,
    );
    const cjs = await run(process.execPath, ['--import', './register.mjs', 'core.cjs'], { cwd: app });
    expect(JSON.parse(cjs.stdout.trim())).toEqual({ id: 40, mixes: true });
  });

  it('resolve their types under NodeNext (exports) and node10 (typesVersions)', async () => {
    writeFileSync(
      join(app, 'types.ts'),
      `import { Peer, type PeerOptions } from 'nestjs-p2p/core';
       import { SimNet } from 'nestjs-p2p/sim';
       import { P2PHealthIndicator } from 'nestjs-p2p/health';
       import { P2PMetrics } from 'nestjs-p2p/metrics';
       const options: PeerOptions = { listen: '127.0.0.1:0' };
       export const all = [new Peer(options), SimNet, P2PHealthIndicator, P2PMetrics];`,
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const common = ['--noEmit', '--strict', '--skipLibCheck', '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), 'types.ts'];
    await run(process.execPath, [tsc, '--module', 'nodenext', '--moduleResolution', 'nodenext', ...common], { cwd: app });
    await run(process.execPath, [tsc, '--module', 'commonjs', '--moduleResolution', 'node10', ...common], { cwd: app });
  }, 60_000);
});

describe('the packed tarball (npm pack)', () => {
  it('ships what the source maps, the CLI and the README point at', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, maxBuffer: 16 << 20 });
    const packed = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    expect(packed).toContain('dist/cli/main.js');
    expect(packed).toContain('config/node.example.json'); // the README's CLI example copies it
    // The README and docs ship; the relative links of every shipped markdown file resolve to files
    // and headings that ship too, except into examples/ and bench/, which the README says are in
    // the repository only.
    const markdown = [...packed].filter((path) => path.endsWith('.md'));
    expect(markdown).toEqual(expect.arrayContaining(['README.md', 'docs/api.md', 'docs/configuration.md', 'docs/performance.md', 'docs/development.md']));
    expect(markdown.flatMap((file) => brokenLinks(file, packed))).toEqual([]);
    // Every shipped source map names sources that ship too (dist/x.js.map -> ../src/x.ts).
    const maps = [...packed].filter((path) => path.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(20);
    const missing = maps.flatMap((map) => {
      const { sources } = JSON.parse(readFileSync(join(root, map), 'utf8')) as { sources: string[] };
      return sources.map((source) => posix.join(posix.dirname(map), source)).filter((path) => !packed.has(path));
    });
    expect(missing).toEqual([]);
    // Nor does a built file point at a map that is not shipped.
    const js = [...packed].filter((path) => path.endsWith('.js'));
    const dangling = js.filter((path) => {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(root, path), 'utf8'))?.[1];
      return url !== undefined && !packed.has(posix.join(posix.dirname(path), url));
    });
    expect(dangling).toEqual([]);
  });
});

describe('npm start (the demo)', () => {
  it('runs five node processes that show a send, a request and a broadcast, then stops cleanly', async () => {
    const { stdout } = await run(process.execPath, ['examples/dist/demo/run-demo.js'], {
      cwd: root,
      env: { ...process.env, DEMO_EXIT: '1' },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/node-1 .*id 1271d106[0-9a-f]{32} .*peers: node-2, node-3, node-4, node-5/);
    expect(stdout).toMatch(/all 10 connections: TLS 1\.3, each side proved its peer id/);
    expect(stdout).toMatch(/node-2 .*received event chat\.message from 1271d106: "hello node-2"/);
    expect(stdout).toMatch(/node-3 .*got reply 55 in/);
    expect(stdout).toMatch(/node-2 .*received broadcast news/);
    expect(stdout).toMatch(/node-5 .*received broadcast news/);
    expect(stdout).toMatch(/broadcast queued for node-2, node-3, node-4, node-5; 0 failed/);
    for (const n of [3, 4]) expect(stdout).toMatch(new RegExp(`node-${n} .*received broadcast news`));
    expect(stdout).toMatch(/peer table at/);
    expect(stdout.match(/^ {2}node-\d +node-\d +(inbound|outbound) +(pending|\d+ ms) +TLS 1\.3$/gm)).toHaveLength(20);
    expect(stdout).toMatch(/all nodes closed cleanly/);
  }, 90_000);
});

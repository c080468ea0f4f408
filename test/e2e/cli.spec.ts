import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNodeConfig } from '../../src/cli/run-node.js';
import { validateConfig } from '../../src/nest/p2p.config.js';
import type { Peer } from '../../src/node/peer.js';
import { echo, startEchoPeer, waitFor } from '../helpers.js';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const dirs: string[] = [];
const open: Peer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-cli-'));
  dirs.push(dir);
  return dir;
}

interface CliRun {
  child: ChildProcess;
  lines: Array<{ level: string; message: string; context: string }>;
  /** Resolves with the node's id once it logged `ready:`. */
  ready(): Promise<string>;
}

function startCli(args: string[]): CliRun {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: CliRun['lines'] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line)));
  const ready = async () => {
    await waitFor(() => lines.some((l) => l.message.startsWith('ready:')), 15_000, 'a CLI node to start');
    return /ready: id ([0-9a-f]{40})/.exec(lines.find((l) => l.message.startsWith('ready:'))!.message)![1]!;
  };
  return { child, lines, ready };
}

describe('nestjs-p2p CLI (built package)', () => {
  it('id: creates a key file (mode 0600) and prints the same peer id every time', () => {
    const keyFile = join(tempDir(), 'keys', 'node.pem');
    const first = spawnSync(process.execPath, [cli, 'id', '--key-file', keyFile], { encoding: 'utf8' });
    expect(first.status).toBe(0);
    expect(first.stdout.trim()).toMatch(/^[0-9a-f]{40}$/);
    expect(first.stderr).toMatch(/wrote a new key/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const second = spawnSync(process.execPath, [cli, 'id', '--key-file', keyFile], { encoding: 'utf8' });
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toBe('');
  });

  it('id: a key file that holds no key names the file and the formats it expects', () => {
    const keyFile = join(tempDir(), 'bad.pem');
    writeFileSync(keyFile, '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
    const run = spawnSync(process.execPath, [cli, 'id', '--key-file', keyFile], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`key file ${keyFile} is not an Ed25519 private key`);
    expect(run.stderr).toContain('expected a PKCS#8 PEM or 64 hex characters');
  });

  it('node: starts from a config file with flag overrides, logs JSON, serves peers, stops cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const config = join(dir, 'node.json');
    const peer = await startEchoPeer({}, open);
    writeFileSync(config, JSON.stringify({ listen: '10.255.255.1:9', maxInbound: 5, pingIntervalMs: 1000 }));
    const child = spawn(
      process.execPath,
      [cli, 'node', '--config', config, '--listen', '127.0.0.1:0', '--key-file', join(dir, 'k.pem'), '--peer', `${peer.id}@${peer.address()}`, '--external-address', '198.51.100.7:4100', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: Array<{ level: string; message: string; context: string }> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line)));
    try {
      await waitFor(() => lines.some((l) => l.message.startsWith('ready:')), 15_000, 'the node to start');
      const [, id, address] = /ready: id ([0-9a-f]{40}), address (\S+)/.exec(lines.find((l) => l.message.startsWith('ready:'))!.message)!;
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/); // --listen replaced the config's address
      // --peer: the node dialed our peer, which can now ask it things.
      await waitFor(() => peer.peers().some((p) => p.id === id), 5000, 'the CLI node to dial the peer');
      expect(peer.peers().find((p) => p.id === id)!.listenAddress).toBe('198.51.100.7:4100'); // --external-address, announced
      expect(lines.filter((l) => l.message.startsWith(`connected to ${peer.id}`)).map((l) => l.context)).toEqual(['P2P']); // once
      await expect(echo(peer, id!, 'hi')).rejects.toThrow(/no matching message handler/); // a bare node has no handlers
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
      expect(lines.some((l) => l.message === 'SIGTERM: closing')).toBe(true);
      expect(lines.some((l) => /node [0-9a-f]{40} closed/.test(l.message))).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('node: a mesh of three nodes, one restarted, logs each connect once, no reconnect for a duplicate, no address "unknown"', async () => {
    const dir = tempDir();
    const config = join(dir, 'mesh.json');
    // Every node dials the other two (simultaneous dials, hence duplicates), and redials soon after a loss.
    writeFileSync(config, JSON.stringify({ reconnectBaseMs: 100, reconnectMaxMs: 400 }));
    const ports = [27211, 27212, 27213]; // below the ephemeral range, like the demo's
    const args = (i: number) => [
      cli, 'node', '--json', '--config', config, '--key-file', join(dir, `k${i}.pem`), '--listen', `127.0.0.1:${ports[i]}`,
      ...ports.filter((_, j) => j !== i).flatMap((port) => ['--peer', `127.0.0.1:${port}`]),
    ];
    const runs: CliRun[] = [];
    const run = (i: number) => {
      const r = startCli(args(i));
      runs.push(r);
      return r;
    };
    try {
      const nodes = [run(0), run(1), run(2)];
      const ids = await Promise.all(nodes.map((n) => n.ready()));
      const connected = (n: CliRun, id: string) => n.lines.filter((l) => l.message.startsWith(`connected to ${id} `)).length;
      await waitFor(() => nodes.every((n, i) => ids.every((id, j) => i === j || connected(n, id) === 1)), 10_000, 'the full mesh');

      // The healthy mesh: no warnings but the new key files and dials to a node not up yet (start order).
      const expected = /^(node [0-9a-f]{40}: wrote a new private key|could not connect to 127\.0\.0\.1:2721[123]: connect ECONNREFUSED)/;
      for (const n of nodes) expect(n.lines.filter((l) => l.level === 'warn' && !expected.test(l.message)).map((l) => l.message)).toEqual([]);

      // Restart node 1 on the same address and key: 0 and 2 see it leave and come back.
      nodes[1]!.child.kill('SIGTERM');
      await once(nodes[1]!.child, 'exit');
      const gone = (n: CliRun) => n.lines.some((l) => l.message.startsWith(`disconnected from ${ids[1]} `));
      await waitFor(() => gone(nodes[0]!) && gone(nodes[2]!), 5000, 'the others to see node 1 leave');
      const again = run(1);
      expect(await again.ready()).toBe(ids[1]);
      await waitFor(() => connected(nodes[0]!, ids[1]!) === 2 && connected(nodes[2]!, ids[1]!) === 2, 10_000, 'node 1 back in the mesh');
      await waitFor(() => connected(again, ids[0]!) === 1 && connected(again, ids[2]!) === 1, 5000, 'node 1 connected to both');
      await new Promise((r) => setTimeout(r, 1500)); // late redials and duplicates, if any, get logged

      for (const r of runs) {
        const text = r.lines.map((l) => `${l.level} [${l.context}] ${l.message}`);
        expect(text.filter((l) => / at unknown\b/.test(l))).toEqual([]);
        expect(r.lines.filter((l) => l.context !== 'P2P' && /connected/.test(l.message))).toEqual([]); // not echoed by the CLI
        // A reconnect is logged only right after this node's own dial opened the connection.
        r.lines.forEach((line, k) => {
          const id = /^reconnected to ([0-9a-f]{40})/.exec(line.message)?.[1];
          if (!id) return;
          const before = r.lines.slice(0, k).reverse().find((l) => l.message.includes(id) && /^(connected to|duplicate connection to)/.test(l.message));
          expect(before?.message, text.join('\n')).toMatch(/^connected to .*\(outbound\)$/);
        });
      }
      // Each connect once: per node and peer, one more connect than disconnects while it ran.
      for (const [i, n] of nodes.entries()) {
        if (i === 1) continue;
        expect(connected(n, ids[1]!)).toBe(2);
        expect(connected(n, ids[2 - i]!)).toBe(1);
      }
    } finally {
      for (const r of runs) r.child.kill('SIGKILL');
    }
  }, 40_000);

  it('node: no debug lines unless --verbose; JSON lines carry the node\'s event, peerId and address fields, text lines do not; no ANSI colours when redirected (issue 23)', async () => {
    const dir = tempDir();
    const config = join(dir, 'full.json');
    // At maxPeers 1 once it dialed `first`, each node refuses `second` and logs why at debug level.
    writeFileSync(config, JSON.stringify({ maxPeers: 1 }));
    const first = await startEchoPeer({}, open);
    const second = await startEchoPeer({ peerExchange: false }, open);
    const args = (name: string, ...extra: string[]) => [cli, 'node', '--config', config, '--listen', '127.0.0.1:0', '--key-file', join(dir, `${name}.pem`), '--peer', `${first.id}@${first.address()}`, ...extra];
    const quiet = startCli(args('quiet', '--json'));
    const verbose = startCli(args('verbose', '--json', '--verbose'));
    const text = spawn(process.execPath, args('text'), { stdio: ['ignore', 'pipe', 'pipe'] }); // stdout is a pipe, not a TTY
    let out = '';
    text.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    try {
      for (const run of [quiet, verbose]) {
        const id = await run.ready();
        const address = /address (\S+)/.exec(run.lines.find((l) => l.message.startsWith('ready:'))!.message)![1]!;
        await waitFor(() => first.peers().some((p) => p.id === id), 5000, 'the CLI node to dial the first peer');
        await second.connect(`${id}@${address}`); // opens, then the full node says goodbye
        await waitFor(() => !second.peers().some((p) => p.id === id), 5000, 'the refusal');
      }
      await waitFor(() => verbose.lines.some((l) => l.level === 'debug' && l.message.startsWith(`refusing ${second.id}`)), 5000, 'the debug line of the refusal');
      const refusal = verbose.lines.find((l) => l.message.startsWith(`refusing ${second.id}`)) as Record<string, unknown>;
      expect(refusal).toMatchObject({ event: 'refused', peerId: second.id, address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      expect(quiet.lines.filter((l) => l.level === 'debug' || l.level === 'verbose')).toEqual([]);
      const connected = quiet.lines.find((l) => l.message.startsWith(`connected to ${first.id}`)) as Record<string, unknown>;
      expect(connected).toMatchObject({ level: 'log', context: 'P2P', event: 'connected', peerId: first.id, address: first.address() });
      // From the node's fields, not its text: the listening line names the node's own id, yet is about no peer.
      const listening = quiet.lines.find((l) => / listening on /.test(l.message)) as Record<string, unknown>;
      expect(listening).toMatchObject({ context: 'P2P', event: 'listening' });
      expect(listening).not.toHaveProperty('peerId');
      const ready = quiet.lines.find((l) => l.message.startsWith('ready:')) as Record<string, unknown>;
      expect(ready).not.toHaveProperty('event'); // the CLI's own line: no node event
      await waitFor(() => out.includes(`connected to ${first.id}`), 15_000, 'the text node to connect');
      expect(out).not.toContain('\u001b[');
      const textLine = out.split('\n').find((l) => l.includes(`connected to ${first.id}`))!;
      expect(textLine).toMatch(/\[P2P\] connected to [0-9a-f]{40} at \S+ \(outbound\)( \+\d+ms)?$/); // no fields appended
    } finally {
      for (const child of [quiet.child, verbose.child, text]) child.kill('SIGKILL');
    }
  }, 40_000);

  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const run = spawnSync(process.execPath, [cli, flag], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stdout.trim()).toBe(pkg.version);
    }
  });

  it('node: the shipped example config is valid and announces no placeholder address', () => {
    const example = fileURLToPath(new URL('../../config/node.example.json', import.meta.url));
    const config = loadNodeConfig({ config: example, json: false });
    expect(config.externalAddress).toBeUndefined();
    expect(config.peers).toEqual([]);
    expect(loadNodeConfig({ config: example, externalAddress: '198.51.100.7:4100', json: false }).externalAddress).toBe('198.51.100.7:4100');
    // A restarted node redials the peers it knew (issue 23): the example keeps them next to its key; --peer-store overrides.
    expect(config.peerStoreFile).toBe('./data/peers.json');
    expect(loadNodeConfig({ config: example, peerStore: '/var/lib/p2p/peers.json', json: false }).peerStoreFile).toBe('/var/lib/p2p/peers.json');
    expect(() => validateConfig({ peerStoreMaxPeers: 0 })).toThrow(/peerStoreMaxPeers/);
    expect(() => validateConfig({ peerStoreFile: 42 })).toThrow(/peerStoreFile/);
  });

  it('node: an invalid config exits with code 2 and names every bad key', () => {
    const config = join(tempDir(), 'bad.json');
    writeFileSync(config, JSON.stringify({ listen: 'nope', maxInbound: -1, colour: 'blue' }));
    const run = spawnSync(process.execPath, [cli, 'node', '--config', config], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/listen/);
    expect(run.stderr).toMatch(/maxInbound/);
    expect(run.stderr).toMatch(/colour/);
  });
});

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from '../../src/core/index.js';
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
      [cli, 'node', '--config', config, '--listen', '127.0.0.1:0', '--key-file', join(dir, 'k.pem'), '--peer', `${peer.id}@${peer.address()}`, '--json'],
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
      expect(lines.some((l) => l.context === 'peers' && l.message.startsWith(`connected ${peer.id}`))).toBe(true);
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

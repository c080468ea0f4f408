import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm run test:soak` (CI runs it as its own step, about 2 minutes): the soak's short mode
 * (bench/soak.ts --ci) in a child process, 10 Nest apps with mixed traffic, random disconnects and
 * network broadcasts. Every accepted request must end in a reply or a typed error, and the heap
 * after GC must stay flat once the replay windows are full (issue 22). Not part of `npm test`:
 * its own config, vitest.soak.config.ts.
 */
const soak = fileURLToPath(new URL('../../bench/dist/soak.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'p2p-soak-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface SoakResult {
  ok: boolean;
  requestsOk: boolean;
  growthOk: boolean;
  growthMiBPerMin: number;
  maxGrowthMiBPerMin: number;
  fittedSamples: number;
  requests: { sent: number; replies: number; wrong: number; pending: number; settled: number };
  samples: Array<{ t: number; heapMiB: number }>;
}

describe('soak (short)', () => {
  it('ends every request and keeps the heap after GC flat once the caches are full', async () => {
    if (!existsSync(soak)) throw new Error(`${soak} is missing: run npm run build && npm run build:bench first (npm run test:soak does)`);
    const json = join(dir, 'result.json');
    let output = '';
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, ['--expose-gc', soak, '--ci', '--json', json], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (chunk: Buffer) => (output += chunk));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk));
      child.on('error', reject);
      child.on('exit', resolve);
    });
    process.stdout.write(output.split('\n').slice(-10).join('\n'));
    expect(existsSync(json), `the soak wrote no result (exit ${code}):\n${output}`).toBe(true);
    const result = JSON.parse(readFileSync(json, 'utf8')) as SoakResult;
    const heap = result.samples.map((s) => `${s.t.toFixed(0)} s ${s.heapMiB.toFixed(1)}`).join(', ');
    expect(result.requests.sent).toBeGreaterThan(10_000);
    expect(result.requestsOk, `requests: ${JSON.stringify(result.requests)}`).toBe(true);
    expect(result.fittedSamples).toBeGreaterThanOrEqual(5);
    expect(result.growthMiBPerMin, `heap after GC (MiB): ${heap}`).toBeLessThanOrEqual(result.maxGrowthMiBPerMin);
    expect(code, output).toBe(0);
  }, 240_000);
});

import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { P2PIdentityConflictError } from './errors.js';

/** Key files this process holds a lock on (a second node in this process with one of them is refused too). */
const held = new Set<string>();

/**
 * `<privateKeyFile>.lock`, holding the pid of the running node that uses the key: a second node
 * started with the same key file on this host (the shipped example config copied for a second
 * node, say) fails at start with a P2PIdentityConflictError, instead of running with the same
 * peer id. Best effort, for one host: a lock whose process is gone (kill -9) is taken over; nodes
 * on other hosts, or in other pid namespaces, are caught on the network (goodbye 13).
 */
export class KeyFileLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(readonly path: string, private readonly keyFile: string) {
    held.add(keyFile);
    process.once('exit', this.onExit);
  }

  /** Takes the lock for `keyFile` (whose peer id is `peerId`), or throws P2PIdentityConflictError naming the process that holds it. */
  static acquire(keyFile: string, peerId: string): KeyFileLock {
    const path = `${keyFile}.lock`;
    const refuse = (holder: string) =>
      new P2PIdentityConflictError(peerId, undefined, {}, `key file ${keyFile} is in use by ${holder} (${path}; it is removed when that node closes)`);
    if (held.has(keyFile)) throw refuse('another node in this process');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return new KeyFileLock(path, keyFile);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number.parseInt(readOrEmpty(path), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw refuse(`process ${pid}`);
      // Left by a node that did not close (killed), or by an earlier process with our pid (a container's pid 1): stale.
      try {
        unlinkSync(path);
      } catch {
        // Another starting node removed it first; the next exclusive create decides.
      }
    }
    throw refuse('another node starting at the same time');
  }

  /** Removes the lock (on close, or at process exit). */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this.keyFile);
    process.off('exit', this.onExit);
    try {
      if (Number.parseInt(readOrEmpty(this.path), 10) === process.pid) unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Whether a process with this pid runs (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

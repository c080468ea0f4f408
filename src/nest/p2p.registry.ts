import type { Peer } from '../node/peer.js';

/**
 * Nodes started by P2PServer in this process, so that a P2PClient created by
 * ClientsModule (outside Nest's DI) can reuse the app's node and connections.
 */
const running: Peer[] = [];

export function registerNode(node: Peer): void {
  if (!running.includes(node)) running.push(node);
}

export function unregisterNode(node: Peer): void {
  const i = running.indexOf(node);
  if (i >= 0) running.splice(i, 1);
}

/** The most recently started node that is still running, other than `except` (a node cannot be its own client). */
export function runningNode(except?: string): Peer | undefined {
  for (let i = running.length - 1; i >= 0; i--) {
    const node = running[i]!;
    if (node.isRunning && node.id !== except) return node;
  }
  return undefined;
}

import { subjectMatches } from '../src/common/subject.js';
import type { Peer } from '../src/node/peer.js';
import type { HandlerInfo, HandlerLookup } from '../src/node/pattern-requests.js';

/**
 * A directory of handlers kept by hand, for testing requests to a pattern on real nodes before
 * (and apart from) the directory that nodes publish: the test says which node handles what.
 */
export class HandlerTable {
  private readonly rows: Array<{ pattern: string; node: Peer }> = [];
  private readonly listeners = new Set<(change?: { id: string; change: 'added' | 'replaced' | 'removed' }) => void>();

  /** `node` handles `pattern` (exact, or a NATS-style wildcard). */
  add(pattern: string, node: Peer): void {
    this.rows.push({ pattern, node });
    for (const listener of [...this.listeners]) listener();
  }

  /** `node` no longer handles anything (its record is gone, as the directory says of a node that left). */
  remove(node: Peer): void {
    for (let i = this.rows.length - 1; i >= 0; i--) if (this.rows[i]!.node === node) this.rows.splice(i, 1);
    for (const listener of [...this.listeners]) listener({ id: node.id, change: 'removed' });
  }

  /** The lookup as `viewer` sees it (itself flagged `self`). */
  lookupFor(viewer: Peer): HandlerLookup {
    return {
      handlers: (subject) => {
        const out = new Map<string, HandlerInfo>();
        for (const { pattern, node } of this.rows) {
          if (subjectMatches(pattern, subject)) out.set(node.id, { id: node.id, address: node.address(), self: node === viewer });
        }
        return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
      },
      onChange: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
    };
  }

  /** Gives every node its view of the table. */
  attach(...nodes: Peer[]): void {
    for (const node of nodes) node.setHandlerLookup(this.lookupFor(node));
  }
}

/**
 * Partial views for the simulator (src/sim/topology.ts): each node knows about a
 * fraction f of the others. Views are drawn per group of nodes, not per node,
 * because 100 000 views of 90 000 ids each would not fit: there are min(N, 50)
 * groups, a fraction 1 − f of the pairs of groups do not know each other, and
 * a view is the ids of the groups its group knows (its own included). Knowing
 * is mutual, so that a node knows every node connected to it, as a node's
 * view holds its connections.
 */

const GROUPS = 50;
/** Draws of the unknown pairs before giving up on every group knowing another. */
const DRAWS = 16;

/** Which simulated nodes know which: views drawn per group of nodes, a fraction of the group pairs blocked. */
export class GroupViews {
  /** How many groups the nodes fall in: min(N, 50). */
  readonly groups: number;
  private readonly blocked: Uint8Array;
  private readonly group: number[] = [];
  private views: string[][] = [];

  /**
   * @param n - Nodes at the start (later ones are assigned too).
   * @param fraction - About the fraction of the others each node knows: the share of group pairs that know each other.
   */
  constructor(
    n: number,
    readonly fraction: number,
    private readonly random: () => number,
  ) {
    const groups = (this.groups = Math.max(1, Math.min(n, GROUPS)));
    const pairs: Array<[number, number]> = [];
    for (let a = 0; a < groups; a++) for (let b = a + 1; b < groups; b++) pairs.push([a, b]);
    const count = Math.round((1 - fraction) * pairs.length);
    this.blocked = new Uint8Array(groups * groups);
    // Drawn again while a group would know no other: a node that knows nobody cannot join.
    for (let draw = 0; draw < DRAWS; draw++) {
      this.blocked.fill(0);
      for (let i = 0; i < count; i++) {
        const j = i + Math.floor(random() * (pairs.length - i));
        [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
        const [a, b] = pairs[i]!;
        this.blocked[a * groups + b] = this.blocked[b * groups + a] = 1;
      }
      if (groups === 1 || this.everyGroupKnowsAnother()) return;
    }
  }

  /** Puts node `node` (numbered from 0, in random ring order) in a group: the first ones each in its own, so none is empty. */
  assign(node: number): void {
    this.group[node] = node < this.groups ? node : Math.floor(this.random() * this.groups);
  }

  /** Whether nodes `a` and `b` know each other (mutual). */
  knows(a: number, b: number): boolean {
    return !this.blocked[this.group[a]! * this.groups + this.group[b]!];
  }

  /** Recomputes each group's view from the ids nodes know of (sorted), `index` giving each id's node. */
  refresh(sorted: readonly string[], index: ReadonlyMap<string, number>): void {
    this.views = [];
    for (let g = 0; g < this.groups; g++) this.views.push(sorted.filter((id) => !this.blocked[g * this.groups + this.group[index.get(id)!]!]));
  }

  /** The sorted ids `node` knows: those of the groups its group knows, its own included. */
  of(node: number): readonly string[] {
    return this.views[this.group[node]!]!;
  }

  private everyGroupKnowsAnother(): boolean {
    for (let a = 0; a < this.groups; a++) {
      let known = 0;
      for (let b = 0; b < this.groups; b++) if (b !== a && !this.blocked[a * this.groups + b]) known++;
      if (known === 0) return false;
    }
    return true;
  }
}

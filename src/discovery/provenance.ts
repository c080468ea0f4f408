/**
 * The ids a node learned of from a source the id does not control (issue 22, eclipse): a configured
 * peer, a peer the node connected to itself (other than by discovery's own dial of an id it knew only
 * by its word), and the ids an outbound neighbour of that kind names in its peer exchange. Not an id's
 * own hello, nor an inbound neighbour's peer exchange: ids ground into a node's thirds dial in, announce
 * an address and name each other. Only these ids may be the node's own choice in a third
 * (src/discovery/ring-topology.ts). Bounded: the least recently confirmed id goes first.
 */
export class Provenance {
  private readonly ids = new Set<string>();

  constructor(private readonly max: number) {}

  /** `id` was learned from a source it does not control (again: it becomes the most recent). */
  vouch(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    while (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value!);
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** How many ids it holds. */
  get size(): number {
    return this.ids.size;
  }
}

import { MIN_DEGREE } from '../discovery/discovery.js';
import type { Arc } from '../ring/raintree.js';
import { coverNeeds, planTopology, type CoverNeed } from '../discovery/ring-topology.js';
import { degreeBound, randomId, randomIds } from './ids.js';
import { GroupViews } from './views.js';

/**
 * The connections a simulated network holds (src/sim/network-sim.ts): every node runs
 * the node's own planTopology (src/discovery/ring-topology.ts) once per peer-exchange interval,
 * dials what it says (at most maxOutbound outbound connections), fills up to the
 * least degree, closes what it calls redundant, and refuses inbound connections
 * once it holds maxDegree, as src/discovery/discovery.ts and src/node/peer.ts do. No sockets.
 */

export interface SimNetOptions {
  /** Fraction of the other nodes each node knows: 1, or less for partial views (src/sim/views.ts). */
  viewFraction?: number;
  /** maxPeers: the most connections a node holds; degreeBound(n) by default. */
  maxDegree?: number;
  /** maxOutbound: the most outbound connections; maxDegree by default (bench/simulate.ts passes the node's default, 24). */
  maxOutbound?: number;
}

/** How a simulated topology stands (SimNet.stats): degrees, and how much of the ring the connections cover. */
export interface TopologyStats {
  /** Mean connections of a live node. */
  meanDegree: number;
  /** Most connections of one live node. */
  maxDegree: number;
  /** Cover needs (thirds with a known node) that no connection covers, as a fraction of all needs. */
  uncovered: number;
  /** Mean fraction of the other nodes a node knows. */
  viewFraction: number;
  /** Mean cover needs per node. */
  needs: number;
}

/**
 * A simulated network: ids, who knows whom (all, or partial views drawn by
 * src/sim/views.ts), and the connections. Node numbers are stable (joiners get new
 * ones); `sorted` holds the ids nodes know of: the live ones and those that
 * left at the last churn (still in views, as a node keeps ids connected in the
 * last 5 minutes).
 */
export class SimNet {
  /** Each node's peer id, by node number (nodes that left included). */
  readonly ids: string[] = [];
  /** Each peer id's node number. */
  readonly index = new Map<string, number>();
  /** Whether each node is live (false once it left at a churn). */
  readonly alive: boolean[] = [];
  /** The peer ids each node accepted a connection from. */
  readonly inbound: string[][] = [];
  /** The peer ids each node dialed. */
  readonly outbound: string[][] = [];
  /** Connections in the order they opened (the node's connections map): the router walks them in this order. */
  readonly links: string[][] = [];
  /** The same connections by node number. */
  readonly linkNodes: number[][] = [];
  /** The ids nodes know of, sorted: the live ones and those that left at the last churn. */
  sorted: string[] = [];
  /** maxPeers: the most connections a node holds; past it, it refuses inbound ones. */
  readonly maxDegree: number;
  /** maxOutbound: the most connections a node dials. */
  readonly maxOutbound: number;
  /** Fraction of the other nodes each node knows (1: all). */
  viewFraction: number;
  /** Peer-exchange intervals run so far. */
  round = 0;
  private readonly opened: Array<Map<string, number>> = [];
  private readonly failures: Array<Map<string, { until: number; count: number }> | undefined> = [];
  private views: GroupViews | undefined;
  private departed: string[] = [];
  /** Nodes whose connections changed (planned again if that happened after their last plan), and nodes woken at a round. */
  private readonly dirty = new Set<number>();
  private readonly wake = new Map<number, number[]>();
  private readonly changedAt: number[] = [];
  private readonly plannedAt: number[] = [];
  private seq = 0;
  /** coverNeeds per node for the current views, the needs shared between nodes (100 000 nodes × 21 needs would not fit otherwise). */
  private needs: Array<readonly CoverNeed[] | undefined> = [];
  /**
   * For each node, the sorted ids of the nodes sharing each of its event patterns (TopologyState.topics), fewest first:
   * its covers prefer them, as the node's discovery does with eventCoverPatterns. None: every node plans as before.
   */
  topics: ((node: number) => ReadonlyArray<readonly string[]> | undefined) | undefined;
  /** The least neighbours each node keeps among the nodes of each of its `topics` (TopologyState.topicFloor, eventPatternLinks). */
  topicFloor = 0;
  private interned = new Map<string, Arc>();

  /**
   * @param n - Nodes at the start, with random ids; none is connected until settle() or step() runs.
   * @param random - The random source (ids, views, plan order, churn): `rng(seed)` for a network a seed reproduces.
   */
  constructor(
    n: number,
    readonly random: () => number,
    options: SimNetOptions = {},
  ) {
    this.viewFraction = options.viewFraction ?? 1;
    this.maxDegree = options.maxDegree ?? degreeBound(n);
    this.maxOutbound = options.maxOutbound ?? this.maxDegree;
    if (this.viewFraction < 1) this.views = new GroupViews(n, this.viewFraction, random);
    const ids = randomIds(n, random);
    // Shuffled, so that node numbers (and groups) say nothing about where an id lies on the ring.
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    for (const id of ids) this.add(id);
    this.refreshViews();
  }

  /** Nodes ever added, those that left included: the bound of node numbers. */
  get size(): number {
    return this.ids.length;
  }

  /** The sorted ids `node` knows of, itself and its connections included: planTopology's and the router's `known`. */
  known(node: number): readonly string[] {
    return this.views ? this.views.of(node) : this.sorted;
  }

  /** The node numbers of the live nodes, in order. */
  liveNodes(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.alive[i]) out.push(i);
    return out;
  }

  /**
   * Narrows every view to about `fraction` of the others, closes the
   * connections between nodes that no longer know each other, and lets each
   * node plan again: a settled network whose views shrank. Settling from there
   * costs a fraction of building a partial-view network from nothing at 100 000
   * nodes, and the same rules hold either way.
   */
  narrowViews(fraction: number): void {
    if (this.views || fraction >= 1) throw new Error(`narrowViews(${fraction}) of views that are already partial, or to 1`);
    this.viewFraction = fraction;
    const views = (this.views = new GroupViews(this.size, fraction, this.random));
    for (let node = 0; node < this.size; node++) views.assign(node);
    this.refreshViews();
    for (let node = 0; node < this.size; node++) {
      if (!this.alive[node]) continue;
      for (const other of [...this.linkNodes[node]!]) if (!views.knows(node, other)) this.close(node, other);
      this.changed(node);
    }
  }

  /**
   * Runs peer-exchange intervals until 3 in a row change (almost) nothing, at
   * most `maxRounds`: below 2 000 nodes nothing; above, at most one connection
   * per 2 000 nodes, because a large network never stops trading a few. Returns
   * the intervals run.
   */
  settle(maxRounds = 40): number {
    const threshold = Math.floor(this.liveNodes().length / 2000);
    let quiet = 0;
    let r = 0;
    for (; r < maxRounds && quiet < 3 && (this.dirty.size > 0 || this.wake.size > 0); r++) quiet = this.step() > threshold ? 0 : quiet + 1;
    return r;
  }

  /**
   * One peer-exchange interval: each node with something to do runs fill(), in
   * random order. A node whose plan cannot have changed is left out (it is
   * deterministic in the node's connections, its view and its backoffs), which
   * is what makes 100 000 nodes affordable. Returns how many connections opened or closed.
   */
  step(): number {
    this.round++;
    const woken = new Set(this.wake.get(this.round));
    this.wake.delete(this.round);
    const order = [...new Set([...this.dirty, ...woken])];
    this.dirty.clear();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let changed = 0;
    for (const node of order) {
      if (!this.alive[node] || (!woken.has(node) && this.changedAt[node]! < this.plannedAt[node]!)) continue;
      changed += this.plan(node);
    }
    return changed;
  }

  /** Degrees and cover of the live nodes' connections as they stand. */
  stats(): TopologyStats {
    let degrees = 0;
    let max = 0;
    let needs = 0;
    let uncovered = 0;
    let known = 0;
    const live = this.liveNodes();
    for (const node of live) {
      const degree = this.links[node]!.length;
      degrees += degree;
      max = Math.max(max, degree);
      const view = this.known(node);
      known += (view.length - 1) / Math.max(1, this.sorted.length - 1);
      const plan = planTopology({ ...this.state(node), maxDegree: 0 });
      needs += plan.needs;
      uncovered += plan.uncovered;
    }
    return {
      meanDegree: degrees / Math.max(1, live.length),
      maxDegree: max,
      uncovered: uncovered / Math.max(1, needs),
      viewFraction: known / Math.max(1, live.length),
      needs: needs / Math.max(1, live.length),
    };
  }

  /** Churn: `leave` random live nodes leave (their neighbours see the connection close), `join` new nodes join; then the topology settles for `rounds` intervals. */
  churn(leave: number, join: number, rounds: number): void {
    const live = this.liveNodes();
    this.departed = [];
    for (let k = 0; k < leave && live.length > 1; k++) {
      const node = live.splice(Math.floor(this.random() * live.length), 1)[0]!;
      this.alive[node] = false;
      this.departed.push(this.ids[node]!);
      for (const other of [...this.links[node]!]) this.close(node, this.index.get(other)!);
    }
    for (let k = 0; k < join; k++) {
      let id = randomId(this.random);
      while (this.index.has(id)) id = randomId(this.random);
      this.add(id);
    }
    this.refreshViews();
    for (let r = 0; r < rounds; r++) this.step();
  }

  /** Adds a node with id `id` (a new node number); the ids others know of change only at the next refreshViews. */
  protected add(id: string): void {
    const node = this.ids.length;
    this.ids.push(id);
    this.index.set(id, node);
    this.alive.push(true);
    this.inbound.push([]);
    this.outbound.push([]);
    this.links.push([]);
    this.linkNodes.push([]);
    this.opened.push(new Map());
    this.failures.push(undefined);
    this.views?.assign(node);
    this.changedAt.push(0);
    this.plannedAt.push(-1);
    this.changed(node);
  }

  /** Ids known to exist: the live ones and the ones that left at the last churn; and each group's view of them. */
  private refreshViews(): void {
    this.needs = [];
    this.interned = new Map();
    const recent = new Set(this.departed);
    this.sorted = this.ids.filter((id, node) => this.alive[node] || recent.has(id)).sort();
    this.views?.refresh(this.sorted, this.index);
  }

  private needsOf(node: number): readonly CoverNeed[] {
    let needs = this.needs[node];
    if (needs) return needs;
    // Shared between nodes: 100 000 nodes' 2 million needs name far fewer distinct arcs (nodes near each other share their upper thirds).
    const intern = (arc: Arc) => {
      const key = arc.from + arc.to;
      const shared = this.interned.get(key);
      if (shared) return shared;
      this.interned.set(key, arc);
      return arc;
    };
    needs = coverNeeds(this.ids[node]!, this.known(node)).map((need) => ({ arc: intern(need.arc), own: intern(need.own) }));
    return (this.needs[node] = needs);
  }

  private state(node: number) {
    const self = this.ids[node]!;
    const links = this.links[node]!;
    const failures = this.failures[node];
    return {
      self,
      known: this.known(node),
      needs: this.needsOf(node),
      inbound: this.inbound[node]!,
      outbound: this.outbound[node]!,
      maxDegree: this.maxDegree,
      topics: this.topics?.(node),
      topicFloor: this.topicFloor,
      draw: this.random,
      // Every outbound connection here was dialed by discovery for the topology: none is kept regardless.
      keep: () => false,
      // Connected, or a dial failed lately (backing off): the next member of that third is dialed instead.
      skip: (id: string) => id === self || links.includes(id) || (failures?.get(id)?.until ?? 0) > this.round,
    };
  }

  /** A connection of `node` opened or closed (not by its own plan, which knew): it plans again. */
  protected changed(node: number): void {
    this.changedAt[node] = ++this.seq;
    this.dirty.add(node);
  }

  /** Has `node` plan again at `round`. */
  protected schedule(node: number, round: number): void {
    let nodes = this.wake.get(round);
    if (!nodes) this.wake.set(round, (nodes = []));
    nodes.push(node);
  }

  /** Discovery.fill() for one node. Returns how many connections it opened or closed. */
  protected plan(node: number): number {
    this.plannedAt[node] = ++this.seq;
    const state = this.state(node);
    const plan = planTopology(state);
    let changed = 0;
    let room = this.maxOutbound - state.outbound.length;
    let failed = false;
    for (const id of plan.dial) {
      if (room <= 0) break;
      room--;
      if (this.dial(node, id)) changed++;
      else failed = true;
    }
    // Below the least degree (small networks): any known peer will do, as src/discovery/discovery.ts does.
    const floor = Math.min(MIN_DEGREE, this.maxDegree);
    const known = state.known;
    let short = Math.min(room, floor - this.links[node]!.length);
    for (let tries = 0; short > 0 && tries < 4 * floor; tries++) {
      const id = known[Math.floor(this.random() * known.length)]!;
      if (state.skip(id)) continue;
      short--;
      if (this.dial(node, id)) changed++;
      else failed = true;
    }
    let closable = Infinity;
    if (this.links[node]!.length > floor) {
      for (const id of plan.redundant) {
        // Closed once two intervals old, so that a connection that just opened is not closed before its far end counts it.
        const at = (this.opened[node]!.get(id) ?? 0) + 2;
        if (at <= this.round) {
          this.close(node, this.index.get(id)!);
          changed++;
        } else closable = Math.min(closable, at);
      }
    }
    // Planned again: after a failed dial (the next member of that third), when a redundant connection is old enough to close,
    // and, lacking cover it has room for, when a backoff ends. Otherwise when a connection opens or closes at the far end.
    if (failed) this.schedule(node, this.round + 1);
    if (closable < Infinity) this.schedule(node, closable);
    const hasRoom = plan.uncovered > 0 && this.outbound[node]!.length < this.maxOutbound && this.links[node]!.length < this.maxDegree;
    const backoff = hasRoom ? this.backoffEnds(node) : Infinity;
    if (backoff < Infinity) this.schedule(node, backoff);
    return changed;
  }

  /** The first round at which a dial this node backs off from is due again. */
  private backoffEnds(node: number): number {
    let first = Infinity;
    for (const failure of this.failures[node]?.values() ?? []) if (failure.until > this.round) first = Math.min(first, failure.until);
    return first;
  }

  /**
   * A connection outside the topology's plan, for experiments (bench/simulate-events.ts `--topic-links`): `a`
   * dials `b` whatever the degree bound. The plan leaves it alone as long as nothing else changes at either end.
   * @returns false when they are connected already, are one node, or one has left.
   */
  link(a: number, b: number): boolean {
    const idB = this.ids[b];
    if (a === b || idB === undefined || !this.alive[a] || !this.alive[b] || this.links[a]!.includes(idB)) return false;
    this.connect(a, b);
    return true;
  }

  /** Closes a connection link() made, for experiments; unlike a close by the topology, neither end plans again. */
  unlink(a: number, b: number): void {
    if (!this.links[a]!.includes(this.ids[b]!)) return;
    this.close(a, b, false);
  }

  /** Records a connection `node` dialed to `target`, in both ends' lists. */
  private connect(node: number, target: number): void {
    const id = this.ids[target]!;
    const self = this.ids[node]!;
    this.outbound[node]!.push(id);
    this.inbound[target]!.push(self);
    this.links[node]!.push(id);
    this.links[target]!.push(self);
    this.linkNodes[node]!.push(target);
    this.linkNodes[target]!.push(node);
    this.opened[node]!.set(id, this.round);
  }

  /** Whether `target` takes a connection `dialer` dials: it is live and holds fewer than maxDegree connections. */
  protected admits(dialer: number, target: number): boolean {
    return this.alive[target]! && this.links[target]!.length < this.maxDegree;
  }

  /** Whether `node` backs off from dialing `id` now (a dial of it failed lately). */
  protected backingOff(node: number, id: string): boolean {
    return (this.failures[node]?.get(id)?.until ?? 0) > this.round;
  }

  /** A dial: refused by a node that does not admit it (left, or holds maxDegree connections); the dialer backs off from it. */
  protected dial(node: number, id: string): boolean {
    const target = this.index.get(id);
    if (target === undefined || !this.admits(node, target)) {
      const failures = (this.failures[node] ??= new Map());
      const count = (failures.get(id)?.count ?? 0) + 1;
      // Skipped for 1, 2, 4, then 8 intervals. A node backs off at most 30 s (an interval) but runs fill() on every peer exchange
      // it gets, so it tries the next member of the third within the interval; a round here plans once, so it skips for longer.
      failures.set(id, { until: this.round + Math.min(8, 2 ** (count - 1)), count });
      return false;
    }
    this.connect(node, target);
    this.failures[node]?.delete(id);
    this.changed(target);
    return true;
  }

  /** Closes the connection between nodes `a` and `b`; `b` plans again. */
  protected close(a: number, b: number, replan = true): void {
    const idA = this.ids[a]!;
    const idB = this.ids[b]!;
    const drop = (list: string[], id: string) => {
      const at = list.indexOf(id);
      if (at >= 0) list.splice(at, 1);
    };
    const unlink = (node: number, id: string) => {
      const at = this.links[node]!.indexOf(id);
      this.links[node]!.splice(at, 1);
      this.linkNodes[node]!.splice(at, 1);
    };
    drop(this.outbound[a]!, idB);
    drop(this.inbound[a]!, idB);
    unlink(a, idB);
    drop(this.outbound[b]!, idA);
    drop(this.inbound[b]!, idA);
    unlink(b, idA);
    this.opened[a]!.delete(idB);
    this.opened[b]!.delete(idA);
    if (replan) this.changed(b);
  }
}

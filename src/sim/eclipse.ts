import { DEFAULTS } from '../common/defaults.js';
import { belowFloorShare, MIN_DEGREE, type InboundStanding } from '../discovery/discovery.js';
import { coverNeeds, facingMember, planTopology, type CoverNeed } from '../discovery/ring-topology.js';
import { arcLength, branchOf, inArc, lowerBound, type Arc } from '../ring/raintree.js';
import { thirdRefusal } from '../trust/inbound-admission.js';
import { simulateBroadcast } from './broadcast.js';
import { SimNet } from './topology.js';

/**
 * Eclipse in the simulator (issue 22, item 3; docs/security.md, Eclipse): K attacker ids ground into
 * the thirds of the ring a victim V covers dial V, drop everything and announce each broadcast to V
 * first without serving it. The honest network is SimNet's (the node's planTopology at maxPeers);
 * each victim runs the node's own eclipse policy: InboundAdmission's maxInbound and
 * Connections.refusal (src/node/connections.ts) on each inbound dial, Discovery.fill
 * (src/discovery/discovery.ts) each peer-exchange interval, through the same pure functions
 * (planTopology, facingMember, branchOf, thirdRefusal). The arithmetic around them (the share of
 * inbound connections not of V's choosing, the dials that keep it, the connections let go) is
 * copied from those methods, which belong to classes that hold sockets.
 */

/** One victim and its attackers (simulateEclipse runs several in one network). */
export interface EclipseAttack {
  /** Attacker ids (K), ground into V's thirds round robin, largest third first, as test/net/eclipse.spec.ts does. */
  attackers: number;
  /** V's maxInbound (default 40). */
  maxInbound?: number;
  /** V's maxInboundPerThird (default 4); at maxInbound or above it turns both admission limits off, as on the node. */
  maxInboundPerThird?: number;
  /**
   * Where in each third the ids are ground: 'third', anywhere in it (default, as test/net/eclipse.spec.ts); 'cover', just
   * after V's cover there (between it and the next id V knows), which moves the member V would choose there by rank.
   */
  placement?: 'third' | 'cover';
  /**
   * Whether the attackers announce an address V could dial them at (default false, as test/raw-peer.ts): then V keeps
   * them in its book once they dial, may dial them itself, and one at the rank V would choose in its third counts as its own choice.
   */
  announce?: boolean;
}

/** What simulateEclipse takes. Limits default to the node's (DEFAULTS). */
export interface EclipseOptions {
  /** Honest nodes, the victims among them. */
  nodes: number;
  /** The victims, one per attack, distinct random honest nodes, each with attackers of its own. */
  attacks: readonly EclipseAttack[];
  /** The random source: `rng(seed)` for a run that a seed reproduces. */
  random: () => number;
  /** maxPeers of every node (default 50). */
  maxPeers?: number;
  /** maxOutbound of every node (default 24). */
  maxOutbound?: number;
  /** Peer-exchange intervals the attack runs before the broadcasts (default 10); attackers refused redial every interval. */
  rounds?: number;
  /** Honest broadcasts, each from a random honest node that is no victim (default 20). Every victim is watched in each. */
  broadcasts?: number;
  /** Repair interval in rounds (default 20: 500 ms at 25 ms a hop). */
  repairRounds?: number;
  /** Milliseconds a round stands for (default 25). */
  hopMs?: number;
}

/** What an eclipse did to its victim V: V's connections under attack, and its delivery of honest broadcasts. */
export interface EclipseResult {
  /** Attackers that dialed V. */
  attackers: number;
  /** Where their ids were ground (EclipseAttack.placement). */
  placement: 'third' | 'cover';
  /** Whether they announced an address (EclipseAttack.announce). */
  announce: boolean;
  /** V's maxInbound. */
  maxInbound: number;
  /** V's maxInboundPerThird (at maxInbound or above: the share and the per-third limit are off). */
  maxInboundPerThird: number;
  /** V's connections before the attack. */
  degreeBefore: number;
  /** V's connections after the attack rounds. */
  degree: number;
  /** How many of them are attackers'. */
  attackerLinks: number;
  /** Of those, how many V dialed itself (announcing attackers only: V can dial them). */
  attackersDialed: number;
  /** Of those, how many dialed V and count as V's own choice in their third (announcing attackers only). */
  attackersChosen: number;
  /** Attackers' share of V's connections after the attack rounds. */
  share: number;
  /** Most attackers' share of V's connections at the end of any attack round. */
  maxShare: number;
  /** Attacker dials V refused, for any reason (each attacker redials every interval while not connected). */
  refused: number;
  /** Honest broadcasts run. */
  broadcasts: number;
  /** Of them, how many V delivered. */
  delivered: number;
  /** How many V delivered by RainTree alone, before repair. */
  byTree: number;
  /** How many V delivered within one repair interval of the origin's send. */
  withinOne: number;
  /** How many V delivered within two repair intervals of the origin's send. */
  withinTwo: number;
  /** Latest delivery at V, in rounds from the origin's send (-1 if V missed one). */
  latestRound: number;
}

/** One victim's state: what its Discovery and Connections hold. */
class Victim {
  readonly attackers = new Set<number>();
  readonly attackerIds = new Set<string>();
  /** Inbound neighbours that stood better than 'unchosen' while connected (Discovery's `standing`). */
  readonly standing = new Map<string, InboundStanding>();
  /** Round each connection opened (connectedAt): those from before the attack count as old. */
  readonly since = new Map<string, number>();
  /** Announcing attackers that dialed V: in its book (proven, or a candidate when refused), so in its view. */
  readonly heard = new Set<string>();
  known: string[] | undefined;
  refused = 0;

  constructor(
    readonly node: number,
    readonly maxInbound: number,
    readonly maxInboundPerThird: number,
    readonly placement: 'third' | 'cover',
    readonly announce: boolean,
  ) {}
}

/** A SimNet whose victims hold the node's eclipse policy, and whose attacker nodes only dial their victim. */
class EclipseNet extends SimNet {
  private readonly victims = new Map<number, Victim>();
  private readonly attackerOf = new Map<number, Victim>();
  /** Each attacker id's victim. */
  private readonly attackerIds = new Map<string, Victim>();

  constructor(
    n: number,
    random: () => number,
    readonly maxPeers: number,
    maxOutbound: number,
  ) {
    super(n, random, { maxDegree: maxPeers, maxOutbound });
  }

  /** Makes `node` a victim and adds its attacker nodes, ground into its thirds; no honest node but V learns of them (V names announcing ones in its peer exchange: not modelled). */
  attack(node: number, attack: EclipseAttack): Victim {
    const k = attack.attackers;
    const victim = new Victim(
      node,
      attack.maxInbound ?? DEFAULTS.maxInbound,
      attack.maxInboundPerThird ?? DEFAULTS.maxInboundPerThird,
      attack.placement ?? 'third',
      attack.announce ?? false,
    );
    const self = this.ids[node]!;
    const known = this.known(node);
    const needs = coverNeeds(self, known);
    const plan = planTopology({ self, known, inbound: this.inbound[node]!, outbound: this.outbound[node]!, maxDegree: this.maxPeers, keep: () => false, skip: () => false });
    // Just after V's cover in the third (else the member it would dial there), before the next id V knows.
    const near = (need: CoverNeed): Arc => {
      const cover = plan.covers.find((id) => inArc(id, need.arc)) ?? facingMember(self, need, known, () => false)!;
      const after = known[(lowerBound(known, cover) + 1) % known.length]!;
      const from = step(cover);
      const to = inArc(after, need.arc) ? after : need.arc.to;
      return from === to ? need.arc : { from, to };
    };
    this.victims.set(node, victim);
    for (let i = 0; i < k && needs.length > 0; i++) {
      const need = needs[i % needs.length]!;
      const arc = victim.placement === 'cover' ? near(need) : need.arc;
      let id = idIn(arc, this.random);
      while (this.index.has(id)) id = idIn(arc, this.random);
      const attacker = this.size;
      this.add(id);
      victim.attackers.add(attacker);
      victim.attackerIds.add(id);
      this.attackerOf.set(attacker, victim);
      this.attackerIds.set(id, victim);
    }
    return victim;
  }

  /**
   * A victim knows the honest ids and the attackers connected to it (Discovery.routingView), and, when they announce an
   * address, every one that dialed it (its book and candidates).
   */
  override known(node: number): readonly string[] {
    const victim = this.victims?.get(node);
    if (!victim) return super.known(node);
    if (victim.known) return victim.known;
    const extra = victim.announce ? [...victim.heard] : this.links[node]!.filter((id) => victim.attackerIds.has(id));
    return (victim.known = extra.length === 0 ? [...super.known(node)] : [...super.known(node), ...extra].sort());
  }

  /** Attackers' share of a victim's connections. */
  share(victim: Victim): number {
    const links = this.links[victim.node]!;
    return links.filter((id) => victim.attackerIds.has(id)).length / Math.max(1, links.length);
  }

  /** A victim's connections to attackers that it dialed, and those that dialed it and stand as its own choice. */
  attackersOwn(victim: Victim): { dialed: number; chosen: number } {
    const dialed = this.outbound[victim.node]!.filter((id) => victim.attackerIds.has(id)).length;
    const chosen = this.inbound[victim.node]!.filter((id) => victim.attackerIds.has(id) && this.inboundStanding(victim, id) === 'own').length;
    return { dialed, chosen };
  }

  protected override plan(node: number): number {
    const target = this.attackerOf.get(node);
    if (target) {
      // An attacker redials its victim every interval while it is not connected.
      this.schedule(node, this.round + 1);
      const id = this.ids[target.node]!;
      return !this.links[node]!.includes(id) && this.dial(node, id) ? 1 : 0;
    }
    const victim = this.victims.get(node);
    if (!victim) return super.plan(node);
    // A node runs fill() every interval (and on every peer exchange it gets).
    this.schedule(node, this.round + 1);
    return this.fill(victim);
  }

  protected override admits(dialer: number, target: number): boolean {
    const victim = this.victims.get(target);
    if (!victim) return super.admits(dialer, target);
    if (victim.announce && victim.attackers.has(dialer) && !victim.heard.has(this.ids[dialer]!)) {
      victim.heard.add(this.ids[dialer]!);
      victim.known = undefined;
    }
    const refused = !super.admits(dialer, target) || this.refusal(victim, this.ids[dialer]!) !== undefined;
    if (refused && victim.attackers.has(dialer)) victim.refused++;
    return !refused;
  }

  protected override dial(node: number, id: string): boolean {
    const ok = super.dial(node, id);
    if (!ok) return false;
    const target = this.index.get(id)!;
    this.victims.get(node)?.since.set(id, this.round);
    this.victims.get(target)?.since.set(this.ids[node]!, this.round);
    const victim = this.victims.get(target);
    if (victim) victim.known = undefined;
    return true;
  }

  protected override close(a: number, b: number): void {
    super.close(a, b);
    for (const [node, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const victim = this.victims.get(node);
      if (!victim) continue;
      const id = this.ids[other]!;
      victim.standing.delete(id);
      victim.since.delete(id);
      victim.known = undefined;
    }
  }

  /** Whether a victim could dial `id`: an honest node, or an attacker that announces an address. */
  private dialable(id: string): boolean {
    return this.attackerIds.get(id)?.announce ?? true;
  }

  /**
   * Discovery's provenance: V learned of honest nodes from the peer exchange of its own neighbours (the network's), of
   * attackers only from their own hello (no honest node knows them).
   */
  private trusted(victim: Victim, id: string): boolean {
    return !victim.attackerIds.has(id);
  }

  /** Discovery.isOwnChoice: `id` is the member V's topology would choose in its third, among those it learned of from others. */
  private isOwnChoice(victim: Victim, id: string): boolean {
    const v = victim.node;
    const self = this.ids[v]!;
    const branch = branchOf(self, id);
    if (!branch || !this.dialable(id) || !this.trusted(victim, id)) return false;
    const links = this.links[v]!;
    let known: readonly string[] = this.known(v);
    const at = lowerBound(known, id);
    if (known[at] !== id) known = [...known.slice(0, at), id, ...known.slice(at)];
    const skip = (other: string) => other !== id && (!this.trusted(victim, other) || (links.includes(other) ? !this.dialable(other) : this.backingOff(v, other)));
    return facingMember(self, { arc: branch.arc, own: branch.own }, known, skip) === id;
  }

  /** Discovery.isVouched: one of V's outbound neighbours names `id` in its peer exchange (its connections that announce an address). */
  private isVouched(victim: Victim, id: string): boolean {
    if (!this.dialable(id)) return false;
    for (const neighbour of this.outbound[victim.node]!) if (neighbour !== id && this.trusted(victim, neighbour) && this.links[this.index.get(neighbour)!]!.includes(id)) return true;
    return false;
  }

  /** Discovery.inboundStanding: a connected neighbour keeps the best standing it had. */
  private inboundStanding(victim: Victim, id: string): InboundStanding {
    const was = victim.standing.get(id);
    if (was === 'own') return was;
    const now: InboundStanding = this.isOwnChoice(victim, id) ? 'own' : this.isVouched(victim, id) ? 'vouched' : (was ?? 'unchosen');
    if (now !== 'unchosen' && this.links[victim.node]!.includes(id)) victim.standing.set(id, now);
    return now;
  }

  /** Discovery.hasOwnChoice: room under maxOutbound, and a peer it learned of from others that V is not connected to (V knows every honest node). */
  private hasOwnChoice(victim: Victim): boolean {
    const v = victim.node;
    const honestLinks = this.links[v]!.filter((id) => this.trusted(victim, id)).length;
    return this.outbound[v]!.length < this.maxOutbound && super.known(v).length - 1 > honestLinks;
  }

  /** InboundAdmission.refusal (maxInbound) and Connections.refusal: why V refuses an inbound dial from `remote`. */
  private refusal(victim: Victim, remote: string): string | undefined {
    const v = victim.node;
    const links = this.links[v]!;
    if (this.inbound[v]!.length >= victim.maxInbound) return 'maxInbound';
    if (links.length >= this.maxPeers) return 'maxPeers';
    if (victim.maxInboundPerThird >= victim.maxInbound) return undefined;
    const floor = Math.min(MIN_DEGREE, this.maxPeers);
    if (this.inboundStanding(victim, remote) !== 'unchosen' || !this.hasOwnChoice(victim)) return undefined;
    const unchosen: string[] = [];
    // Outbound links to ids V knows only by their own word are not of its choosing (Discovery.outboundStanding).
    let own = 0;
    for (const id of this.outbound[v]!) if (this.trusted(victim, id)) own++;
    else unchosen.push(id);
    for (const id of this.inbound[v]!) {
      const standing = this.inboundStanding(victim, id);
      if (standing === 'own') own++;
      else if (standing === 'unchosen') unchosen.push(id);
    }
    // Below its least degree, a third of it (Connections.refusal).
    if (links.length < floor) return unchosen.length + 1 > belowFloorShare(floor) ? 'share' : undefined;
    if (2 * (unchosen.length + 1) > own) return 'share';
    return thirdRefusal(this.ids[v]!, remote, unchosen, victim.maxInboundPerThird);
  }

  /** Discovery.fill for a victim. Returns how many connections it opened or closed. */
  private fill(victim: Victim): number {
    const v = victim.node;
    const { maxPeers, maxOutbound } = this;
    const self = this.ids[v]!;
    const inbound = [...this.inbound[v]!];
    const outbound = [...this.outbound[v]!];
    const links = this.links[v]!;
    const skip = (id: string) => id === self || links.includes(id) || this.backingOff(v, id);
    const trusted = (id: string) => this.trusted(victim, id);
    const state = { self, known: this.known(v), maxDegree: maxPeers, keep: () => false, skip, dialable: (id: string) => this.dialable(id), trusted };
    const plan = planTopology({ ...state, inbound, outbound });
    let changed = 0;
    let room = maxOutbound - outbound.length;
    // Dials complete at once here; the node counts them as `dialing` until they do.
    const dialing: string[] = [];
    const dial = (id: string) => {
      if (!this.dial(v, id)) return;
      dialing.push(id);
      changed++;
    };
    const floor = Math.min(MIN_DEGREE, maxPeers);
    const chosen = new Set(plan.chosen);
    for (const id of chosen) victim.standing.set(id, 'own');
    const standing = (id: string) => (chosen.has(id) ? 'own' : this.inboundStanding(victim, id));
    const ownIn = (ids: string[]) => ids.filter((id) => standing(id) === 'own').length;
    const unchosen = (ids: string[]) => ids.filter((id) => standing(id) === 'unchosen').length;
    // Outbound links to ids V knows only by their own word are not of its choosing (Discovery.outboundStanding), and V dials
    // such an id only within the share's room while it has a choice of its own (Discovery.fill, unchosenRoom).
    const ownOut = (ids: string[]) => ids.filter(trusted).length;
    let unchosenRoom = (links.length < floor ? belowFloorShare(floor) : Math.floor((ownOut(outbound) + ownIn(inbound)) / 2)) - unchosen(inbound) - (outbound.length - ownOut(outbound));
    for (const id of plan.dial) {
      if (room <= 0) break;
      if (!trusted(id)) {
        if (unchosenRoom <= 0 && this.hasOwnChoice(victim)) continue;
        unchosenRoom--;
      }
      dial(id);
      room--;
    }
    const unchosenOut = outbound.length - ownOut(outbound);
    const degree = inbound.length + outbound.length + dialing.length;
    const reserve = Math.min(2 * (unchosen(inbound) + unchosenOut) - (ownOut([...outbound, ...dialing]) + ownIn(inbound)), maxPeers - plan.needs - degree);
    let short = Math.min(room, Math.max(floor - degree, reserve), maxPeers - links.length);
    // The address book's due peers (book.due), those it learned of from others first: any known honest peer not connected; V knows them all.
    const known = this.known(v);
    for (let tries = 0; short > 0 && tries < 4 * (short + floor); tries++) {
      const id = known[Math.floor(this.random() * known.length)]!;
      if (skip(id) || !this.dialable(id) || !trusted(id)) continue;
      short--;
      dial(id);
    }
    // Only connections two intervals old count toward what is let go, and no more go than keep the least degree and the share.
    const lasting = (id: string) => (victim.since.get(id) ?? 0) + 2 <= this.round;
    const lastingIn = inbound.filter(lasting);
    const lastingOut = outbound.filter(lasting);
    const ownLasting = ownOut(lastingOut) + ownIn(lastingIn);
    let spare = Math.min(lastingIn.length + lastingOut.length - floor, ownLasting - 2 * (unchosen(inbound) + unchosenOut));
    if (degree >= maxPeers) {
      // Discovery.swaps: at maxPeers, one per third with no connection at all (backing off from the full ones).
      spare = Math.max(spare, planTopology({ ...state, inbound, outbound: [...outbound, ...dialing], maxDegree: Infinity }).dialUncovered);
    }
    if (spare <= 0) return changed;
    const { redundant } = planTopology({ ...state, inbound: lastingIn, outbound: lastingOut });
    for (const id of redundant.slice(0, spare)) {
      if (!links.includes(id)) continue;
      this.close(v, this.index.get(id)!);
      changed++;
    }
    return changed;
  }
}

/** The id after `id` on the ring. */
function step(id: string): string {
  return ((BigInt(`0x${id}`) + 1n) % (1n << 160n)).toString(16).padStart(40, '0');
}

/** A random id in `arc`: a key ground until its id falls there, without the grinding. */
function idIn(arc: Arc, random: () => number): string {
  let r = 0n;
  for (let i = 0; i < 5; i++) r = (r << 32n) | BigInt(Math.floor(random() * 2 ** 32));
  const at = (BigInt(`0x${arc.from}`) + (r % arcLength(arc))) % (1n << 160n);
  return at.toString(16).padStart(40, '0');
}

/**
 * Runs eclipses: a settled network of `nodes` honest nodes at maxPeers, one random victim per
 * attack, each with its attackers ground into its thirds, dialing it every interval for `rounds`
 * intervals (the honest nodes go on planning meanwhile); then `broadcasts` honest broadcasts from
 * random honest origins with RainTree and repair, the attackers dropping them and announcing each to
 * their victim first without serving it. One result per attack, in order.
 */
export function simulateEclipse(options: EclipseOptions): EclipseResult[] {
  const { random } = options;
  const repairRounds = options.repairRounds ?? 20;
  const net = new EclipseNet(options.nodes, random, options.maxPeers ?? DEFAULTS.maxPeers, options.maxOutbound ?? DEFAULTS.maxOutbound);
  net.settle();
  const honest = net.liveNodes();
  const pool = [...honest];
  const victims = options.attacks.map((attack) => {
    const node = pool.splice(Math.floor(random() * pool.length), 1)[0]!;
    const degreeBefore = net.links[node]!.length;
    const victim = net.attack(node, attack);
    return { victim, degreeBefore, maxShare: 0 };
  });
  for (let r = 0; r < (options.rounds ?? 10); r++) {
    net.step();
    for (const v of victims) v.maxShare = Math.max(v.maxShare, net.share(v.victim));
  }
  const results: EclipseResult[] = victims.map(({ victim, degreeBefore, maxShare }) => {
    const links = net.links[victim.node]!;
    const attackerLinks = links.filter((id) => victim.attackerIds.has(id)).length;
    const { dialed, chosen } = net.attackersOwn(victim);
    return {
      attackers: victim.attackers.size,
      placement: victim.placement,
      announce: victim.announce,
      maxInbound: victim.maxInbound,
      maxInboundPerThird: victim.maxInboundPerThird,
      degreeBefore,
      degree: links.length,
      attackerLinks,
      attackersDialed: dialed,
      attackersChosen: chosen,
      share: attackerLinks / Math.max(1, links.length),
      maxShare,
      refused: victim.refused,
      broadcasts: options.broadcasts ?? 20,
      delivered: 0,
      byTree: 0,
      withinOne: 0,
      withinTwo: 0,
      latestRound: 0,
    };
  });
  const withholders = new Set(victims.flatMap(({ victim }) => [...victim.attackers]));
  const watch = victims.map(({ victim }) => victim.node);
  const origins = honest.filter((node) => !watch.includes(node));
  for (let b = 0; b < (options.broadcasts ?? 20); b++) {
    const origin = origins[Math.floor(random() * origins.length)]!;
    const { watched } = simulateBroadcast(net, { origin, strategy: 'raintree', faults: { withholders }, repairRounds, hopMs: options.hopMs, random, watch });
    watched!.forEach(({ round, byTree }, i) => {
      const result = results[i]!;
      if (round < 0) return void (result.latestRound = -1);
      result.delivered++;
      if (byTree) result.byTree++;
      if (round <= repairRounds) result.withinOne++;
      if (round <= 2 * repairRounds) result.withinTwo++;
      if (result.latestRound >= 0) result.latestRound = Math.max(result.latestRound, round);
    });
  }
  return results;
}

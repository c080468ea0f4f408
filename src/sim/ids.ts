import { MIN_DEGREE } from '../discovery/discovery.js';

/** Ids, randomness and the degree bound for the simulator (src/sim/network-sim.ts). */

/** Deterministic PRNG (mulberry32), so that a seed reproduces a network. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random 160-bit peer id (40 hex digits). */
export function randomId(random: () => number): string {
  let id = '';
  for (let i = 0; i < 5; i++) id += Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0');
  return id;
}

/** `n` distinct random ids, sorted. */
export function randomIds(n: number, random: () => number): string[] {
  const ids = new Set<string>();
  while (ids.size < n) ids.add(randomId(random));
  return [...ids].sort();
}

/** The degree bound of issue 15, what maxPeers is set to: max(8, 2·⌈log3 N⌉ + 2). */
export function degreeBound(n: number): number {
  let levels = 0;
  for (let span = 1; span < n && levels < 64; span *= 3) levels++;
  return Math.max(MIN_DEGREE, 2 * levels + 2);
}

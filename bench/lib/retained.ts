/**
 * What a node holds, by where it holds it: walks the object graph from a root (a core `Peer`)
 * and sums the sizes of its collections (Map, Set, array) by path, with `[]` for "any element"
 * (so `broadcasts.seen.origins[].queue` is the length of every origin's queue together). Soak's
 * `--probe` prints the paths that grew between reports: a heap snapshot diff without the
 * snapshot, cheap enough to run every 30 s on ten nodes.
 *
 * It follows own enumerable properties (TypeScript's `private` fields are ordinary properties)
 * and collection entries; it stops at what is not the node's own state: Node's sockets, servers,
 * timers, keys and streams, functions, and buffers (counted as bytes, not walked).
 */

export interface Holding {
  /** Path from the root, `[]` standing for any element of a collection. */
  path: string;
  /** Entries summed over every collection at this path (array length, Map/Set size). */
  entries: number;
  /** Collections at this path (one per origin, per socket...). */
  collections: number;
}

export interface Retained {
  holdings: Map<string, Holding>;
  /** Bytes of Buffers reachable (their own length, not the pool slab they may pin). */
  bufferBytes: number;
  objects: number;
}

const STOP = new Set(['Socket', 'TLSSocket', 'Server', 'Timeout', 'Immediate', 'KeyObject', 'PublicKeyObject', 'PrivateKeyObject', 'SecretKeyObject', 'EventEmitter', 'Promise', 'WeakMap', 'WeakSet', 'WeakRef', 'Date', 'RegExp']);

/** Walks at most `maxObjects` objects (a guard against walking into something huge by mistake). */
export function retainedBy(root: object, maxObjects = 2_000_000): Retained {
  const seen = new Set<object>();
  const holdings = new Map<string, Holding>();
  let bufferBytes = 0;
  const stack: Array<[unknown, string]> = [[root, '']];
  const hold = (path: string, entries: number) => {
    const h = holdings.get(path) ?? { path, entries: 0, collections: 0 };
    h.entries += entries;
    h.collections++;
    holdings.set(path, h);
  };
  while (stack.length > 0 && seen.size < maxObjects) {
    const [value, path] = stack.pop()!;
    if (value === null || typeof value !== 'object' || seen.has(value)) continue;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      bufferBytes += value.byteLength;
      continue;
    }
    const name = (value as object).constructor?.name ?? '';
    if (STOP.has(name) || value instanceof ArrayBuffer) continue;
    if (value instanceof Map) {
      hold(path, value.size);
      for (const [k, v] of value) {
        if (typeof k === 'object') stack.push([k, `${path}[]key`]);
        stack.push([v, `${path}[]`]);
      }
    } else if (value instanceof Set) {
      hold(path, value.size);
      for (const v of value) stack.push([v, `${path}[]`]);
    } else if (Array.isArray(value)) {
      hold(path, value.length);
      for (const v of value) stack.push([v, `${path}[]`]);
    } else {
      // Reversed onto the stack: the first property is walked first, and names the paths it shares.
      for (const key of Object.keys(value).reverse()) {
        // The EventEmitter's own bookkeeping and the logger are not the node's state.
        if (key === '_events' || key === '_eventsCount' || key === 'logger') continue;
        stack.push([(value as Record<string, unknown>)[key], path ? `${path}.${key}` : key]);
      }
    }
  }
  return { holdings, bufferBytes, objects: seen.size };
}

/** Sums holdings of several roots (the soak's nodes) path by path. */
export function sumRetained(all: readonly Retained[]): Retained {
  const holdings = new Map<string, Holding>();
  let bufferBytes = 0;
  let objects = 0;
  for (const r of all) {
    bufferBytes += r.bufferBytes;
    objects += r.objects;
    for (const h of r.holdings.values()) {
      const sum = holdings.get(h.path) ?? { path: h.path, entries: 0, collections: 0 };
      sum.entries += h.entries;
      sum.collections += h.collections;
      holdings.set(h.path, sum);
    }
  }
  return { holdings, bufferBytes, objects };
}

/** The `top` paths holding the most entries, then (given `before`) the `top` that grew most since. */
export function describeHoldings(now: Retained, before: Retained | undefined, top = 8): string[] {
  const delta = (h: Holding) => h.entries - (before?.holdings.get(h.path)?.entries ?? 0);
  const line = (h: Holding) => {
    const d = before ? `(${delta(h) >= 0 ? '+' : ''}${delta(h)})` : '';
    return `    ${String(h.entries).padStart(9)} ${d.padEnd(10)}  ${h.path || '(root)'}  in ${h.collections}`;
  };
  const all = [...now.holdings.values()];
  const largest = all.sort((a, b) => b.entries - a.entries).slice(0, top);
  const lines = largest.map(line);
  if (before) {
    const grew = all.filter((h) => delta(h) > 0 && !largest.includes(h)).sort((a, b) => delta(b) - delta(a)).slice(0, top);
    if (grew.length > 0) lines.push('    grew most since the last report:', ...grew.map(line));
  }
  return lines;
}

/**
 * NATS-style subjects, as Nest's NATS transport matches them: a pattern's `.`-separated
 * tokens match a subject's one by one, `*` matches any one token, and `>` (last token only)
 * matches one or more trailing tokens. `math.*` handles `math.sum`; `orders.>` handles
 * `orders.eu.created`. Anything else matches only itself, and so does every object pattern
 * (`{"cmd":"sum"}`, as Nest normalises it): its dots and stars are JSON, not tokens.
 */

/** True when `pattern` has a `*` token or ends with a `>` token (and is not an object pattern). */
export function isWildcard(pattern: string): boolean {
  if (pattern.length === 0 || pattern[0] === '{' || (!pattern.includes('*') && !pattern.includes('>'))) return false;
  const tokens = pattern.split('.');
  return tokens.some((t, i) => t === '*' || (t === '>' && i === tokens.length - 1));
}

/** Whether the handler pattern `pattern` handles the subject `subject` (exact, or by wildcard). */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  if (!isWildcard(pattern) || subject[0] === '{') return false;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i]!;
    if (token === '>' && i === p.length - 1) return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
    // An empty subject token (`a..b`) is not a token a `*` can stand for.
    if (token === '*' && s[i] === '') return false;
  }
  return p.length === s.length;
}

interface TrieNode<T> {
  children: Map<string, TrieNode<T>>;
  /** Values whose pattern ends at this node. */
  here: Set<T>;
  /** Values whose pattern ends with `>` below this node. */
  tail: Set<T>;
}

function trieNode<T>(): TrieNode<T> {
  return { children: new Map(), here: new Set(), tail: new Set() };
}

/**
 * Which values (handlers, nodes) a subject reaches: exact patterns in a map, wildcard
 * patterns in a token trie (as NATS's sublist), so a lookup costs one map probe plus a
 * walk as deep as the subject, however many patterns are indexed.
 */
export class SubjectIndex<T> {
  private readonly exact = new Map<string, Set<T>>();
  private readonly root = trieNode<T>();
  private wildcards = 0;

  /** Indexes `value` under `pattern`. */
  add(pattern: string, value: T): void {
    if (!isWildcard(pattern)) {
      let set = this.exact.get(pattern);
      if (!set) this.exact.set(pattern, (set = new Set()));
      set.add(value);
      return;
    }
    const tokens = pattern.split('.');
    let node = this.root;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token === '>' && i === tokens.length - 1) {
        if (!node.tail.has(value)) this.wildcards++;
        node.tail.add(value);
        return;
      }
      let next = node.children.get(token);
      if (!next) node.children.set(token, (next = trieNode()));
      node = next;
    }
    if (!node.here.has(value)) this.wildcards++;
    node.here.add(value);
  }

  /** Removes `value` from `pattern`; true when it was there. */
  delete(pattern: string, value: T): boolean {
    if (!isWildcard(pattern)) {
      const set = this.exact.get(pattern);
      if (!set?.delete(value)) return false;
      if (set.size === 0) this.exact.delete(pattern);
      return true;
    }
    const tokens = pattern.split('.');
    const path: Array<[TrieNode<T>, string]> = [];
    let node = this.root;
    let removed = false;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token === '>' && i === tokens.length - 1) {
        removed = node.tail.delete(value);
        break;
      }
      const next = node.children.get(token);
      if (!next) return false;
      path.push([node, token]);
      node = next;
      if (i === tokens.length - 1) removed = node.here.delete(value);
    }
    if (!removed) return false;
    this.wildcards--;
    // Prune the branch back up while it holds nothing.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, token] = path[i]!;
      const child = parent.children.get(token)!;
      if (child.children.size > 0 || child.here.size > 0 || child.tail.size > 0) break;
      parent.children.delete(token);
    }
    return true;
  }

  /** Every value whose pattern matches `subject`, each once. */
  match(subject: string): Set<T> {
    const out = new Set<T>(this.exact.get(subject));
    if (this.wildcards === 0 || subject.length === 0 || subject[0] === '{') return out;
    const tokens = subject.split('.');
    if (tokens.includes('')) return out;
    this.walk(this.root, tokens, 0, out);
    return out;
  }

  /** Patterns indexed (exact and wildcard), counting each value once per pattern. */
  get size(): number {
    let n = this.wildcards;
    for (const set of this.exact.values()) n += set.size;
    return n;
  }

  private walk(node: TrieNode<T>, tokens: string[], i: number, out: Set<T>): void {
    if (i < tokens.length) for (const v of node.tail) out.add(v);
    if (i === tokens.length) {
      for (const v of node.here) out.add(v);
      return;
    }
    const literal = node.children.get(tokens[i]!);
    if (literal) this.walk(literal, tokens, i + 1, out);
    const star = node.children.get('*');
    if (star) this.walk(star, tokens, i + 1, out);
  }
}

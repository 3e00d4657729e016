/**
 * The subject trie (nats-server calls it a sublist): one level per token, with separate children
 * for `*` and `>`, plain entries and queue-group entries per node, and a bounded cache of match
 * results keyed by the published subject.
 *
 * Cache policy: at most MATCH_CACHE_MAX_ENTRIES results, evicted oldest-first (a Map keeps
 * insertion order; no randomness needed). An insert or remove with a literal subject drops that
 * one entry; with a wildcard subject it drops every cached subject the pattern matches. Cached
 * results are immutable arrays shared by every caller: never modify them.
 *
 * Memory is bounded by the entries themselves (the owner bounds those) plus the cache: at most
 * MATCH_CACHE_MAX_ENTRIES keys of at most a control line each, and result arrays that point at
 * existing entries.
 */
import { subjectHasWildcard, subjectMatches } from "./subject.js";

/** Match results kept at most. nats-server keeps 1024 too. */
export const MATCH_CACHE_MAX_ENTRIES = 1024;

export interface QueueGroupMatch<T> {
  readonly name: string;
  readonly members: readonly T[];
}

export interface MatchResult<T> {
  readonly plain: readonly T[];
  readonly queues: readonly QueueGroupMatch<T>[];
}

const EMPTY: MatchResult<never> = Object.freeze({ plain: Object.freeze([]) as readonly never[], queues: Object.freeze([]) as readonly never[] });

class TrieNode<T> {
  literal: Map<string, TrieNode<T>> | undefined;
  star: TrieNode<T> | undefined;
  rest: TrieNode<T> | undefined;
  plain: Set<T> | undefined;
  queues: Map<string, Set<T>> | undefined;

  isEmpty(): boolean {
    return (
      (this.literal === undefined || this.literal.size === 0) &&
      this.star === undefined &&
      this.rest === undefined &&
      (this.plain === undefined || this.plain.size === 0) &&
      (this.queues === undefined || this.queues.size === 0)
    );
  }
}

export interface TrieStats {
  entries: number;
  cacheEntries: number;
  inserts: number;
  removes: number;
  matches: number;
  cacheHits: number;
}

export class SubjectTrie<T> {
  private readonly root = new TrieNode<T>();
  private readonly cache = new Map<string, MatchResult<T>>();
  private entries = 0;
  private inserts = 0;
  private removes = 0;
  private matches = 0;
  private cacheHits = 0;

  constructor(private readonly cacheLimit = MATCH_CACHE_MAX_ENTRIES) {}

  get size(): number {
    return this.entries;
  }

  /** Adds `entry` under a valid subject (and queue group). Adding the same entry twice is a no-op. */
  insert(subject: string, queue: string | undefined, entry: T): void {
    let node = this.root;
    for (const token of subject.split(".")) {
      if (token === "*") node = node.star ??= new TrieNode<T>();
      else if (token === ">") node = node.rest ??= new TrieNode<T>();
      else {
        node.literal ??= new Map();
        let next = node.literal.get(token);
        if (next === undefined) node.literal.set(token, (next = new TrieNode<T>()));
        node = next;
      }
    }
    let set: Set<T>;
    if (queue === undefined) set = node.plain ??= new Set();
    else {
      node.queues ??= new Map();
      let group = node.queues.get(queue);
      if (group === undefined) node.queues.set(queue, (group = new Set()));
      set = group;
    }
    if (set.has(entry)) return;
    set.add(entry);
    this.entries++;
    this.inserts++;
    this.invalidate(subject);
  }

  /** Removes `entry`; returns false when it was not there. Prunes empty nodes. */
  remove(subject: string, queue: string | undefined, entry: T): boolean {
    const path: { node: TrieNode<T>; token: string }[] = [];
    let node: TrieNode<T> | undefined = this.root;
    for (const token of subject.split(".")) {
      path.push({ node, token });
      if (token === "*") node = node.star;
      else if (token === ">") node = node.rest;
      else node = node.literal?.get(token);
      if (node === undefined) return false;
    }
    let removed: boolean;
    if (queue === undefined) removed = node.plain?.delete(entry) ?? false;
    else {
      const group = node.queues?.get(queue);
      removed = group?.delete(entry) ?? false;
      if (removed && group!.size === 0) node.queues!.delete(queue);
    }
    if (!removed) return false;
    this.entries--;
    this.removes++;
    for (let i = path.length - 1; i >= 0; i--) {
      const { node: parent, token } = path[i]!;
      const child = token === "*" ? parent.star : token === ">" ? parent.rest : parent.literal?.get(token);
      if (child === undefined || !child.isEmpty()) break;
      if (token === "*") parent.star = undefined;
      else if (token === ">") parent.rest = undefined;
      else parent.literal!.delete(token);
    }
    this.invalidate(subject);
    return true;
  }

  /**
   * Everything whose pattern matches the literal `subject`. A subject with an empty token (e.g.
   * `a..b`, only possible from a non-pedantic NATS client) matches nothing, as in nats-server.
   */
  match(subject: string): MatchResult<T> {
    this.matches++;
    const cached = this.cache.get(subject);
    if (cached !== undefined) {
      this.cacheHits++;
      return cached;
    }
    const tokens = subject.split(".");
    for (const token of tokens) if (token.length === 0) return EMPTY;
    const plain: T[] = [];
    let queues: Map<string, T[]> | undefined;
    const collect = (node: TrieNode<T>): void => {
      if (node.plain !== undefined) for (const entry of node.plain) plain.push(entry);
      if (node.queues !== undefined) {
        for (const [name, members] of node.queues) {
          queues ??= new Map();
          let list = queues.get(name);
          if (list === undefined) queues.set(name, (list = []));
          for (const member of members) list.push(member);
        }
      }
    };
    const walk = (node: TrieNode<T>, index: number): void => {
      if (node.rest !== undefined) collect(node.rest);
      const token = tokens[index]!;
      const last = index === tokens.length - 1;
      const literal = node.literal?.get(token);
      if (literal !== undefined) {
        if (last) collect(literal);
        else walk(literal, index + 1);
      }
      if (node.star !== undefined) {
        if (last) collect(node.star);
        else walk(node.star, index + 1);
      }
    };
    walk(this.root, 0);
    let result: MatchResult<T>;
    if (plain.length === 0 && queues === undefined) result = EMPTY;
    else {
      const groups: QueueGroupMatch<T>[] = [];
      if (queues !== undefined) for (const [name, members] of queues) groups.push(Object.freeze({ name, members: Object.freeze(members) }));
      result = Object.freeze({ plain: Object.freeze(plain), queues: Object.freeze(groups) });
    }
    if (this.cacheLimit > 0) {
      if (this.cache.size >= this.cacheLimit) {
        // Oldest first: Map iteration order is insertion order.
        const oldest = this.cache.keys().next();
        if (oldest.done !== true) this.cache.delete(oldest.value);
      }
      this.cache.set(subject, result);
    }
    return result;
  }

  /** Every entry with its subject and queue, depth first (for monitoring and re-announcement). */
  *entriesWithSubjects(): Generator<{ subject: string; queue: string | undefined; entry: T }> {
    const stack: { node: TrieNode<T>; prefix: string }[] = [{ node: this.root, prefix: "" }];
    while (stack.length > 0) {
      const { node, prefix } = stack.pop()!;
      const subject = prefix.slice(0, -1);
      if (node.plain !== undefined) for (const entry of node.plain) yield { subject, queue: undefined, entry };
      if (node.queues !== undefined) for (const [queue, members] of node.queues) for (const entry of members) yield { subject, queue, entry };
      if (node.rest !== undefined) stack.push({ node: node.rest, prefix: `${prefix}>.` });
      if (node.star !== undefined) stack.push({ node: node.star, prefix: `${prefix}*.` });
      if (node.literal !== undefined) for (const [token, child] of node.literal) stack.push({ node: child, prefix: `${prefix}${token}.` });
    }
  }

  stats(): TrieStats {
    return {
      entries: this.entries,
      cacheEntries: this.cache.size,
      inserts: this.inserts,
      removes: this.removes,
      matches: this.matches,
      cacheHits: this.cacheHits,
    };
  }

  private invalidate(subject: string): void {
    if (this.cache.size === 0) return;
    if (!subjectHasWildcard(subject)) {
      this.cache.delete(subject);
      return;
    }
    for (const key of this.cache.keys()) if (subjectMatches(subject, key)) this.cache.delete(key);
  }
}

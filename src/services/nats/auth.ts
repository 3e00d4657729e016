/**
 * Authentication and permissions of the NATS port, as nats-server's `authorization { }` block
 * has them without accounts, nkeys or JWTs: one user/password, or one token, or a list of users
 * each with optional publish/subscribe permissions (allow and deny lists of subjects, wildcards
 * allowed), plus `default_permissions` for users without their own.
 *
 * Semantics (nats-server's canPublish / canSubscribe):
 *   - publish to S is allowed when (no allow list, or S matches an allow entry) and S matches no deny entry;
 *   - SUB S is checked the same way with S's tokens taken literally (`foo.*` is allowed by
 *     `foo.>` but `>` is not), and a wildcard subscription that overlaps a deny entry is allowed
 *     but filtered: messages on denied subjects are not delivered to it.
 * Not supported (refused at config time with a clear error): bcrypt passwords, nkeys, accounts,
 * `allow_responses`.
 */
import { timingSafeEqual } from "node:crypto";
import { subjectHasWildcard, subjectsIntersect } from "../../features/pubsub/subject.js";
import { SubjectTrie } from "../../features/pubsub/trie.js";
import type { ConnectOptions } from "./protocol.js";

export interface SubjectPermission {
  allow?: string[];
  deny?: string[];
}

export interface PermissionsSpec {
  publish?: SubjectPermission;
  subscribe?: SubjectPermission;
}

export interface UserSpec {
  user: string;
  password: string;
  permissions?: PermissionsSpec;
}

export interface AuthorizationSpec {
  user?: string;
  password?: string;
  token?: string;
  users?: UserSpec[];
  defaultPermissions?: PermissionsSpec;
  /** How long a client has to send CONNECT (default 2000 ms). */
  timeoutMs?: number;
}

/** Permission checks cached per subject, at most this many. */
const PERMISSION_CACHE_ENTRIES = 1024;

class SubjectList {
  private readonly trie = new SubjectTrie<string>(0);
  private readonly cache = new Map<string, boolean>();
  readonly patterns: readonly string[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
    for (const pattern of patterns) this.trie.insert(pattern, undefined, pattern);
  }

  /** Does some pattern match `subject` (its tokens taken literally)? */
  matches(subject: string): boolean {
    const cached = this.cache.get(subject);
    if (cached !== undefined) return cached;
    const result = this.trie.match(subject).plain.length > 0;
    if (this.cache.size >= PERMISSION_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(subject, result);
    return result;
  }
}

class Direction {
  private readonly allow: SubjectList | undefined;
  private readonly deny: SubjectList | undefined;

  constructor(spec: SubjectPermission | undefined) {
    this.allow = spec?.allow === undefined ? undefined : new SubjectList(spec.allow);
    this.deny = spec?.deny === undefined || spec.deny.length === 0 ? undefined : new SubjectList(spec.deny);
  }

  allowed(subject: string): boolean {
    if (this.allow !== undefined && !this.allow.matches(subject)) return false;
    return this.deny === undefined || !this.deny.matches(subject);
  }

  /** A wildcard subject that some deny entry overlaps: its messages are checked one by one. */
  needsFilter(subject: string): boolean {
    if (this.deny === undefined || !subjectHasWildcard(subject)) return false;
    return this.deny.patterns.some((pattern) => subjectsIntersect(pattern, subject));
  }

  denies(subject: string): boolean {
    return this.deny !== undefined && this.deny.matches(subject);
  }
}

export class Permissions {
  private readonly publish: Direction;
  private readonly subscribe: Direction;

  constructor(readonly spec: PermissionsSpec) {
    this.publish = new Direction(spec.publish);
    this.subscribe = new Direction(spec.subscribe);
  }

  canPublish(subject: string): boolean {
    return this.publish.allowed(subject);
  }

  canSubscribe(subject: string): boolean {
    return this.subscribe.allowed(subject);
  }

  /** Whether a subscription on `subject` must have each message checked with `deliverable`. */
  subscriptionNeedsFilter(subject: string): boolean {
    return this.subscribe.needsFilter(subject);
  }

  deliverable(subject: string): boolean {
    return !this.subscribe.denies(subject);
  }
}

export type AuthResult = { ok: true; user: string | undefined; permissions: Permissions | undefined } | { ok: false };

function equalSecrets(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(given, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Refuses configurations skein cannot honour; returns the reason or undefined. */
export function checkAuthorization(spec: AuthorizationSpec): string | undefined {
  const bcrypt = (secret: string | undefined): boolean => secret !== undefined && /^\$2[abxy]?\$/.test(secret);
  if (spec.token !== undefined && (spec.user !== undefined || spec.users !== undefined)) {
    return "authorization: a token cannot be combined with a user or a users list (nats-server refuses it too)";
  }
  if (spec.user !== undefined && spec.users !== undefined) return "authorization: use either user/password or a users list, not both";
  if (spec.user !== undefined && spec.password === undefined) return `authorization: user "${spec.user}" has no password`;
  if (bcrypt(spec.password) || bcrypt(spec.token) || spec.users?.some((user) => bcrypt(user.password))) {
    return "authorization: bcrypt-hashed passwords and tokens are not supported by skein yet; give them in clear text";
  }
  const seen = new Set<string>();
  for (const user of spec.users ?? []) {
    if (seen.has(user.user)) return `authorization: user "${user.user}" is listed twice`;
    seen.add(user.user);
  }
  return undefined;
}

export class Authenticator {
  readonly required: boolean;
  readonly timeoutMs: number | undefined;
  private readonly users = new Map<string, { password: string; permissions: Permissions | undefined }>();

  constructor(readonly spec: AuthorizationSpec) {
    this.timeoutMs = spec.timeoutMs;
    this.required = spec.token !== undefined || spec.user !== undefined || (spec.users !== undefined && spec.users.length > 0);
    const defaults = spec.defaultPermissions === undefined ? undefined : new Permissions(spec.defaultPermissions);
    if (spec.user !== undefined) this.users.set(spec.user, { password: spec.password ?? "", permissions: defaults });
    for (const user of spec.users ?? []) {
      this.users.set(user.user, { password: user.password, permissions: user.permissions === undefined ? defaults : new Permissions(user.permissions) });
    }
  }

  authenticate(options: ConnectOptions): AuthResult {
    if (!this.required) return { ok: true, user: undefined, permissions: undefined };
    if (this.spec.token !== undefined) {
      return equalSecrets(this.spec.token, options.authToken) ? { ok: true, user: undefined, permissions: undefined } : { ok: false };
    }
    if (options.user === undefined) return { ok: false };
    const user = this.users.get(options.user);
    if (user === undefined || !equalSecrets(user.password, options.pass)) return { ok: false };
    return { ok: true, user: options.user, permissions: user.permissions };
  }
}

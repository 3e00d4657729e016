/**
 * Subjects exactly as NATS has them: dot-separated, non-empty tokens; `*` as a whole token matches
 * one token, `>` as the whole last token matches one or more trailing tokens. `*` or `>` inside a
 * longer token (`foo*`, `a>b`) are plain characters. Whitespace (space, tab, CR, LF, FF) is never
 * allowed. These are nats-server's `IsValidSubject` / `IsValidLiteralSubject` rules.
 *
 * The `check…` functions return the reason a subject is bad (or undefined); the `validate…`
 * functions throw a SkeinError with code BAD_SUBJECT and a message that says what to do.
 */
import { SkeinError } from "../../core/errors.js";

const DOT = 0x2e;
const STAR = 0x2a;
const GT = 0x3e;

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a || code === 0x0c;
}

/** Why `subject` is not a valid subscription subject (wildcards allowed), or undefined. */
export function checkSubject(subject: string): string | undefined {
  if (typeof subject !== "string") return "a subject must be a string";
  if (subject.length === 0) return "the subject is empty";
  let tokenStart = 0;
  let tokenIndex = 1;
  let sawFullWildcard = false;
  for (let i = 0; i <= subject.length; i++) {
    const code = i === subject.length ? DOT : subject.charCodeAt(i);
    if (code === DOT) {
      const length = i - tokenStart;
      if (length === 0) return `token ${tokenIndex} is empty (two dots in a row, or a leading or trailing dot)`;
      if (sawFullWildcard) return `">" must be the last token (it matches one or more trailing tokens)`;
      if (length === 1 && subject.charCodeAt(tokenStart) === GT) sawFullWildcard = true;
      tokenStart = i + 1;
      tokenIndex++;
      continue;
    }
    if (isSpace(code)) return "subjects cannot contain whitespace";
  }
  return undefined;
}

/** Why `subject` is not a valid publish subject (no wildcard tokens), or undefined. */
export function checkPublishSubject(subject: string): string | undefined {
  const reason = checkSubject(subject);
  if (reason !== undefined) return reason;
  if (subjectHasWildcard(subject)) return `publish subjects cannot contain wildcards ("*" or ">" as a whole token)`;
  return undefined;
}

export function isValidSubject(subject: string): boolean {
  return checkSubject(subject) === undefined;
}

export function isValidPublishSubject(subject: string): boolean {
  return checkPublishSubject(subject) === undefined;
}

/** True when some token is exactly `*` or `>`. Assumes nothing about validity. */
export function subjectHasWildcard(subject: string): boolean {
  const n = subject.length;
  for (let i = 0; i < n; i++) {
    const code = subject.charCodeAt(i);
    if (code !== STAR && code !== GT) continue;
    const startsToken = i === 0 || subject.charCodeAt(i - 1) === DOT;
    const endsToken = i === n - 1 || subject.charCodeAt(i + 1) === DOT;
    if (startsToken && endsToken) return true;
  }
  return false;
}

const HELP = 'subjects are dot-separated tokens such as "orders.eu.new"; "*" matches one token and ">" the remaining ones';

export function validateSubject(subject: string): void {
  const reason = checkSubject(subject);
  if (reason !== undefined) throw new SkeinError("BAD_SUBJECT", `bad subject ${JSON.stringify(subject)}: ${reason}; ${HELP}`);
}

export function validatePublishSubject(subject: string, what = "subject"): void {
  const reason = checkPublishSubject(subject);
  if (reason !== undefined) {
    throw new SkeinError("BAD_SUBJECT", `bad publish ${what} ${JSON.stringify(subject)}: ${reason}; ${HELP}`);
  }
}

/** Why `queue` is not a usable queue group name, or undefined (a non-empty token without whitespace). */
export function checkQueueName(queue: string): string | undefined {
  if (typeof queue !== "string") return "a queue group name must be a string";
  if (queue.length === 0) return "the queue group name is empty";
  for (let i = 0; i < queue.length; i++) if (isSpace(queue.charCodeAt(i))) return "queue group names cannot contain whitespace";
  return undefined;
}

export function validateQueueName(queue: string): void {
  const reason = checkQueueName(queue);
  if (reason !== undefined) throw new SkeinError("BAD_SUBJECT", `bad queue group ${JSON.stringify(queue)}: ${reason}`);
}

export function tokenize(subject: string): string[] {
  return subject.split(".");
}

/**
 * Does the (valid) pattern match the subject? The subject's tokens are taken literally, so a
 * published `foo.*` is matched by `foo.*` and `foo.>` but `*` in the subject matches nothing more.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = tokenize(pattern);
  const s = tokenize(subject);
  for (let i = 0; i < p.length; i++) {
    const token = p[i]!;
    if (token === ">" && i === p.length - 1) return s.length > i;
    if (i >= s.length) return false;
    const other = s[i]!;
    if (other.length === 0) return false;
    if (token !== "*" && token !== other) return false;
  }
  return p.length === s.length;
}

/**
 * Can some literal subject match both patterns? Used to decide whether a wildcard subscription
 * overlaps a deny-listed subject (then messages are filtered one by one).
 */
export function subjectsIntersect(a: string, b: string): boolean {
  const x = tokenize(a);
  const y = tokenize(b);
  for (let i = 0; ; i++) {
    const xi = x[i];
    const yi = y[i];
    if (xi === ">" || yi === ">") return xi !== undefined && yi !== undefined;
    if (xi === undefined || yi === undefined) return xi === yi;
    if (xi !== "*" && yi !== "*" && xi !== yi) return false;
  }
}

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkPublishSubject,
  checkSubject,
  subjectHasWildcard,
  subjectMatches,
  subjectsIntersect,
  validatePublishSubject,
  validateSubject,
} from "../../src/features/pubsub/subject.js";
import { MATCH_CACHE_MAX_ENTRIES, SubjectTrie } from "../../src/features/pubsub/trie.js";

test("subject validity follows nats-server's IsValidSubject", () => {
  const valid = ["foo", "foo.bar", "*", ">", "foo.*", "foo.>", "*.*", "foo.*.baz", "foo.bar*", "foo.*bar", "fo>o", "a>.b", "$SYS.x", "_INBOX.abc.1", "ünï.cødé"];
  const invalid = ["", ".", "foo.", ".foo", "foo..bar", "foo.>.bar", "a.>.>", ">.a", "foo bar", "foo\tbar", "foo\r", "foo\n.bar", "foo\f"];
  for (const subject of valid) assert.equal(checkSubject(subject), undefined, subject);
  for (const subject of invalid) assert.notEqual(checkSubject(subject), undefined, JSON.stringify(subject));
});

test("publish subjects are literal: no * or > token", () => {
  assert.equal(checkPublishSubject("foo.bar*"), undefined);
  assert.equal(checkPublishSubject("a>b"), undefined);
  assert.match(checkPublishSubject("foo.*")!, /wildcards/);
  assert.match(checkPublishSubject(">")!, /wildcards/);
  assert.equal(subjectHasWildcard("foo.*.bar"), true);
  assert.equal(subjectHasWildcard("foo.x*"), false);
});

test("errors name the subject, the problem and the rule", () => {
  assert.throws(() => validateSubject("a..b"), (error: Error & { code?: string }) => {
    assert.equal(error.code, "BAD_SUBJECT");
    assert.match(error.message, /"a\.\.b": token 2 is empty/);
    assert.match(error.message, /dot-separated tokens/);
    return true;
  });
  assert.throws(() => validateSubject("a.>.b"), /">" must be the last token/);
  assert.throws(() => validatePublishSubject("a.*"), /bad publish subject "a\.\*": publish subjects cannot contain wildcards/);
  assert.throws(() => validateSubject("a b"), /cannot contain whitespace/);
});

test("subjectMatches: * is one token, > one or more, subject tokens literal", () => {
  const cases: [string, string, boolean][] = [
    ["foo", "foo", true],
    ["foo", "foo.bar", false],
    ["foo.*", "foo.bar", true],
    ["foo.*", "foo", false],
    ["foo.*", "foo.bar.baz", false],
    ["foo.>", "foo.bar.baz", true],
    ["foo.>", "foo", false],
    [">", "a", true],
    ["*", "a.b", false],
    ["*.b", "a.b", true],
    ["foo.*", "foo.*", true],
    ["foo.bar", "foo.*", false],
  ];
  for (const [pattern, subject, expected] of cases) assert.equal(subjectMatches(pattern, subject), expected, `${pattern} vs ${subject}`);
});

test("subjectsIntersect", () => {
  assert.equal(subjectsIntersect("foo.*", "*.bar"), true);
  assert.equal(subjectsIntersect("foo.>", "bar.>"), false);
  assert.equal(subjectsIntersect("foo.>", "foo"), false);
  assert.equal(subjectsIntersect(">", "a.b.c"), true);
  assert.equal(subjectsIntersect("a.*", "a.b.c"), false);
  assert.equal(subjectsIntersect("a.*.c", "a.>"), true);
});

const token = fc.constantFrom("a", "b", "c", "dd");
const literal = fc.array(token, { minLength: 1, maxLength: 4 }).map((tokens) => tokens.join("."));
const pattern = fc
  .tuple(fc.array(fc.constantFrom("a", "b", "c", "dd", "*"), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([tokens, rest]) => (rest ? [...tokens.slice(0, -1), ">"] : tokens).join("."));

test("trie match equals brute-force matching, through inserts, removes and the cache", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), pattern, fc.option(fc.constantFrom("q1", "q2"), { nil: undefined })), { maxLength: 40 }),
      fc.array(literal, { minLength: 1, maxLength: 20 }),
      (ops, subjects) => {
        const trie = new SubjectTrie<number>(8);
        const live = new Map<number, { subject: string; queue: string | undefined }>();
        let id = 0;
        for (const [add, subject, queue] of ops) {
          if (add || live.size === 0) {
            trie.insert(subject, queue, ++id);
            live.set(id, { subject, queue });
          } else {
            const victim = [...live.keys()][subject.length % live.size]!;
            const entry = live.get(victim)!;
            assert.equal(trie.remove(entry.subject, entry.queue, victim), true);
            live.delete(victim);
          }
          for (const subject of subjects) {
            const result = trie.match(subject);
            const plain = [...result.plain].sort((a, b) => a - b);
            const expectedPlain = [...live].filter(([, e]) => e.queue === undefined && subjectMatches(e.subject, subject)).map(([k]) => k);
            assert.deepEqual(plain, expectedPlain);
            for (const queue of ["q1", "q2"]) {
              const group = result.queues.find((candidate) => candidate.name === queue);
              const members = group === undefined ? [] : [...group.members].sort((a, b) => a - b);
              const expected = [...live].filter(([, e]) => e.queue === queue && subjectMatches(e.subject, subject)).map(([k]) => k);
              assert.deepEqual(members, expected);
            }
          }
        }
        assert.equal(trie.size, live.size);
      },
    ),
    { numRuns: 150 },
  );
});

test("the match cache is bounded and subjects with empty tokens match nothing", () => {
  const trie = new SubjectTrie<string>();
  trie.insert(">", undefined, "all");
  for (let i = 0; i < MATCH_CACHE_MAX_ENTRIES * 3; i++) assert.equal(trie.match(`s.${i}`).plain.length, 1);
  assert.equal(trie.stats().cacheEntries, MATCH_CACHE_MAX_ENTRIES);
  assert.equal(trie.match("a..b").plain.length, 0);
  assert.equal(trie.match("a.").plain.length, 0);
  // Removing prunes: nothing left behind.
  assert.equal(trie.remove(">", undefined, "all"), true);
  assert.equal(trie.remove(">", undefined, "all"), false);
  assert.deepEqual([...trie.entriesWithSubjects()], []);
  assert.equal(trie.match("s.1").plain.length, 0);
});

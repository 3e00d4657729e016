/**
 * Discovery by tags, options side: --local-tags / --connect-tags from flags, SKEIN_* variables and
 * config files, bad tags refused with one clear line, createNode's validation, and which tags a
 * node advertises in CA mode (the certificate's tags are authoritative).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nodeFlagHelp, resolveNodeOptions, type ResolveInput } from "../../src/cli/options.js";
import { SkeinError } from "../../src/core/errors.js";
import { MAX_TAGS, carriesAny, effectiveLocalTags, parseTagList, tagError, tagsAllowedByCertificate } from "../../src/link/tags.js";
import type { NodeOptions } from "../../src/node/options.js";
import { assertUsage } from "./helpers.js";
import { validateNodeOptions } from "../../src/runtime/node.js";


describe("tag syntax", () => {
  it("accepts a-z 0-9 . _ - up to 32 characters, nothing else", () => {
    for (const good of ["edge", "eu-west-1", "gpu.a100", "x_y", "0", "a".repeat(32)]) assert.equal(tagError(good), undefined, good);
    for (const bad of ["", "Edge", "eu west", "a:b", "a/b", "é", "a".repeat(33), "tag!", " edge"]) assert.match(tagError(bad) ?? "", /must be 1\.\.32 characters from a-z 0-9 \. _ -/, bad);
  });

  it("parses lists: commas, blanks skipped, duplicates once, sorted, at most 8", () => {
    assert.deepEqual(parseTagList("b, a,,b ,c"), { ok: true, value: ["a", "b", "c"] });
    assert.deepEqual(parseTagList(["x", "y,z"]), { ok: true, value: ["x", "y", "z"] });
    assert.deepEqual(parseTagList(""), { ok: true, value: [] });
    const nine = Array.from({ length: MAX_TAGS + 1 }, (_, index) => `t${index}`).join(",");
    assert.deepEqual(parseTagList(nine), { ok: false, error: "9 tags, at most 8" });
    assert.equal(parseTagList([1]).ok, false);
    assert.equal(parseTagList({ tags: "a" }).ok, false);
  });

  it("carriesAny and the certificate filter", () => {
    assert.equal(carriesAny(["a", "b"], ["c", "b"]), true);
    assert.equal(carriesAny(["a"], ["b"]), false);
    assert.equal(carriesAny(undefined, ["b"]), false);
    assert.equal(carriesAny(["a"], []), false);
    assert.deepEqual(tagsAllowedByCertificate(["edge", "gpu"], ["edge", "Other:x"]), { kept: ["edge"], refused: ["gpu"] });
  });

  it("CA mode: the certificate's tags are authoritative", () => {
    // No certificate: the local tags as given.
    assert.deepEqual(effectiveLocalTags(["b", "a"], undefined), { tags: ["a", "b"], refused: [] });
    assert.deepEqual(effectiveLocalTags(undefined, undefined), { tags: [], refused: [] });
    // A certificate and --local-tags: only those it carries.
    assert.deepEqual(effectiveLocalTags(["edge", "gpu"], ["edge", "eu"]), { tags: ["edge"], refused: ["gpu"] });
    // A certificate without --local-tags: its tags that are discovery tags.
    assert.deepEqual(effectiveLocalTags(undefined, ["eu", "edge", "Upper:Case"]), { tags: ["edge", "eu"], refused: [] });
    // An explicit empty list advertises nothing.
    assert.deepEqual(effectiveLocalTags([], ["edge"]), { tags: [], refused: [] });
  });
});

describe("resolveNodeOptions: tags", () => {
  it("reads --local-tags and --connect-tags from flags, env and config files", () => {
    const fromFlags = resolveNodeOptions({ flags: { localTags: "edge, eu-west", connectTags: "gpu" } });
    assert.deepEqual(fromFlags.localTags, ["edge", "eu-west"]);
    assert.deepEqual(fromFlags.connectTags, ["gpu"]);
    const fromEnv = resolveNodeOptions({ flags: {}, env: { SKEIN_LOCAL_TAGS: "b,a", SKEIN_CONNECT_TAGS: "c" } });
    assert.deepEqual([fromEnv.localTags, fromEnv.connectTags], [["a", "b"], ["c"]]);
    const fromYaml = resolveNodeOptions({ flags: {}, configText: "local-tags: [edge, eu]\nconnectTags: gpu,cpu\n", configPath: "node.yaml" });
    assert.deepEqual([fromYaml.localTags, fromYaml.connectTags], [["edge", "eu"], ["cpu", "gpu"]]);
    const fromJson = resolveNodeOptions({ flags: {}, configText: '{"localTags": ["x"]}', configPath: "node.json" });
    assert.deepEqual(fromJson.localTags, ["x"]);
    assert.equal(fromJson.connectTags, undefined);
  });

  it("bad tags name the value, the bad tag and the syntax", () => {
    assertUsage({ flags: { localTags: "edge,Bad!" } }, 'bad --local-tags value "edge,Bad!": tag "Bad!" must be 1..32 characters from a-z 0-9 . _ -');
    assertUsage({ flags: { connectTags: "eu west" } }, 'bad --connect-tags value "eu west": tag "eu west" must be 1..32 characters from a-z 0-9 . _ -');
    assertUsage({ flags: { connectTags: "a".repeat(33) } }, `bad --connect-tags value "${"a".repeat(33)}": tag "${"a".repeat(33)}" must be 1..32 characters from a-z 0-9 . _ -`);
    assertUsage({ flags: { localTags: "a,b,c,d,e,f,g,h,i" } }, 'bad --local-tags value "a,b,c,d,e,f,g,h,i": 9 tags, at most 8');
    assertUsage({ flags: {}, env: { SKEIN_LOCAL_TAGS: "UP" } }, 'bad SKEIN_LOCAL_TAGS value "UP": tag "UP" must be 1..32 characters from a-z 0-9 . _ -');
    assertUsage(
      { flags: {}, configText: "localTags: [1, 2]\n", configPath: "node.yaml" },
      'bad "localTags" value [1,2] in config file "node.yaml": expected comma-separated tags such as "edge,eu-west" (each 1..32 characters from a-z 0-9 . _ -)',
      "BAD_CONFIG",
    );
  });

  it("--help lists both flags", () => {
    const flags = nodeFlagHelp().map((entry) => entry.flags);
    assert.ok(flags.includes("--local-tags <TAG,…>"));
    assert.ok(flags.includes("--connect-tags <TAG,…>"));
  });
});

describe("createNode options: tags", () => {
  function expectBadOption(options: unknown, pattern: RegExp): void {
    assert.throws(
      () => validateNodeOptions(options as NodeOptions),
      (error: unknown) => error instanceof SkeinError && error.code === "BAD_OPTION" && pattern.test(error.message),
    );
  }

  it("validates and normalizes localTags and connectTags", () => {
    const resolved = validateNodeOptions({ localTags: ["eu", "edge", "eu"], connectTags: ["gpu"] });
    assert.deepEqual(resolved.localTags, ["edge", "eu"]);
    assert.deepEqual(resolved.connectTags, ["gpu"]);
    const none = validateNodeOptions({});
    assert.equal(none.localTags, undefined);
    assert.deepEqual(none.connectTags, []);
    expectBadOption({ localTags: ["Edge"] }, /^bad localTags \["Edge"\]: tag "Edge" must be 1\.\.32 characters from a-z 0-9 \. _ -$/);
    expectBadOption({ connectTags: [42] }, /^bad connectTags \[42\]: expected comma-separated tags/);
    expectBadOption({ connectTags: Array.from({ length: 9 }, (_, index) => `t${index}`) }, /9 tags, at most 8/);
  });
});

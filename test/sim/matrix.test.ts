import { test } from "node:test";
import assert from "node:assert/strict";
import { formatMatrix, matrixNames, parseMatrix, relayOpportunities, subMatrix, symmetricRtt } from "../../src/sim/matrix.js";

function errorOf(json: unknown): string {
  const result = parseMatrix(json);
  assert.equal(result.ok, false, `expected an error for ${JSON.stringify(json)}`);
  return result.ok ? "" : result.error;
}

test("parseMatrix accepts a full matrix and sorts names", () => {
  const result = parseMatrix({ b: { a: 12, b: 1 }, a: { b: 10, a: 0.5 } });
  assert.ok(result.ok);
  assert.deepEqual(Object.keys(result.value), ["a", "b"]);
  assert.deepEqual(result.value, { a: { a: 0.5, b: 10 }, b: { a: 12, b: 1 } });
  assert.equal(symmetricRtt(result.value, "a", "b"), 11);
  assert.equal(symmetricRtt(result.value, "b", "a"), 11);
});

test("parseMatrix fills a missing direction from the reverse one", () => {
  const result = parseMatrix({ a: { b: 10, c: 20 }, b: { c: 30 } });
  assert.ok(result.ok);
  assert.deepEqual(matrixNames(result.value), ["a", "b", "c"]);
  assert.equal(result.value.b!.a, 10);
  assert.equal(result.value.c!.a, 20);
  assert.equal(result.value.c!.b, 30);
  assert.equal(symmetricRtt(result.value, "c", "a"), 20);
});

test("parseMatrix names the missing pair", () => {
  const error = errorOf({ a: { b: 10 }, c: { a: 5 } });
  assert.match(error, /"b" and "c"/);
});

test("parseMatrix rejects non-numeric, negative, non-finite and odd shapes", () => {
  assert.match(errorOf({ a: { b: "10" } }), /from "a" to "b" is not a finite number: "10"/);
  assert.match(errorOf({ a: { b: null } }), /from "a" to "b" is not a finite number: null/);
  assert.match(errorOf({ a: { b: -1 } }), /from "a" to "b" is negative: -1/);
  assert.match(errorOf({ a: { b: 1e12 } }), /milliseconds/);
  assert.match(errorOf([]), /JSON object of objects/);
  assert.match(errorOf(null), /JSON object of objects/);
  assert.match(errorOf(42), /JSON object of objects/);
  assert.match(errorOf({ a: [1, 2] }), /row "a" must be an object/);
  assert.match(errorOf({ a: 3 }), /row "a" must be an object/);
  assert.match(errorOf({}), /empty/);
  assert.match(errorOf({ "": { a: 1 } }), /empty node name/);
});

test("a single node with no pairs is a valid matrix", () => {
  const result = parseMatrix({ solo: {} });
  assert.ok(result.ok);
  assert.deepEqual(matrixNames(result.value), ["solo"]);
});

test("formatMatrix round-trips through JSON and parseMatrix", () => {
  const matrix = { b: { a: 12.25, b: 1 }, a: { b: 10 } };
  const text = formatMatrix(matrix);
  const result = parseMatrix(JSON.parse(text));
  assert.ok(result.ok);
  assert.deepEqual(result.value, { a: { b: 10 }, b: { a: 12.25, b: 1 } });
});

test("subMatrix keeps the named nodes", () => {
  const result = parseMatrix({ a: { b: 1, c: 2 }, b: { c: 3 } });
  assert.ok(result.ok);
  assert.deepEqual(subMatrix(result.value, ["c", "a"]), { a: { c: 2 }, c: { a: 2 } });
});

test("relayOpportunities counts pairs with a faster one-hop relay", () => {
  // a-c direct 100, via b 30 + 40 = 70: one pair of three wins, by 30 ms.
  const result = parseMatrix({ a: { b: 30, c: 100 }, b: { c: 40 } });
  assert.ok(result.ok);
  const plain = relayOpportunities(result.value);
  assert.deepEqual(plain, { pairs: 3, fasterViaRelay: 1, fraction: 1 / 3, gain10pct: 1, maxGainMs: 30 });
  assert.equal(relayOpportunities(result.value, { relayCostMs: 30 }).fasterViaRelay, 0);
});

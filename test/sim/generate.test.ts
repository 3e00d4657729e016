import { test } from "node:test";
import assert from "node:assert/strict";
import { generateInternetMatrix, generateInternetMatrixJson, generateInternetTopology } from "../../src/sim/generate.js";
import { matrixNames, parseMatrix, relayOpportunities, symmetricRtt } from "../../src/sim/matrix.js";

test("same seed gives an identical matrix; another seed a different one", () => {
  const a = generateInternetMatrixJson({ nodes: 25, seed: 7 });
  const b = generateInternetMatrixJson({ nodes: 25, seed: 7 });
  const c = generateInternetMatrixJson({ nodes: 25, seed: 8 });
  assert.equal(a, b);
  assert.notEqual(a, c);
});

test("a generated matrix is complete, valid and named n01..nNN in index order", () => {
  const matrix = generateInternetMatrix({ nodes: 12, seed: 3 });
  const parsed = parseMatrix(JSON.parse(JSON.stringify(matrix)));
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.error);
  assert.deepEqual(parsed.value, matrix);
  const names = matrixNames(matrix);
  assert.deepEqual(names, Array.from({ length: 12 }, (_, i) => `n${String(i + 1).padStart(2, "0")}`));
  for (const a of names) {
    for (const b of names) {
      const rtt = matrix[a]![b]!;
      assert.ok(Number.isFinite(rtt) && rtt > 0, `${a}→${b} = ${rtt}`);
      if (a !== b) {
        assert.ok(rtt < 1000, `${a}→${b} = ${rtt} ms is not Internet-like`);
        const reverse = matrix[b]![a]!;
        assert.ok(Math.abs(rtt - reverse) <= 0.05 * Math.max(rtt, reverse) + 0.02, `${a}↔${b} too asymmetric: ${rtt} vs ${reverse}`);
      }
    }
  }
});

test("RTTs follow geography: far pairs are slower than the fibre bound, near pairs are quick", () => {
  const { matrix, sites } = generateInternetTopology({ nodes: 40, seed: 11 });
  const rtts: number[] = [];
  for (let i = 0; i < sites.length; i++) {
    for (let j = i + 1; j < sites.length; j++) rtts.push(symmetricRtt(matrix, sites[i]!.name, sites[j]!.name));
  }
  rtts.sort((x, y) => x - y);
  // Clustered like continents: some pairs are regional (< 30 ms), some intercontinental (> 150 ms).
  assert.ok(rtts[0]! < 30, `fastest pair ${rtts[0]} ms`);
  assert.ok(rtts[rtts.length - 1]! > 150, `slowest pair ${rtts[rtts.length - 1]} ms`);
});

test("a good fraction of pairs (30-80%) has a faster one-hop relay", () => {
  for (const [nodes, seed] of [
    [21, 1],
    [30, 1],
    [30, 2],
    [30, 3],
    [50, 4],
  ] as const) {
    const report = relayOpportunities(generateInternetMatrix({ nodes, seed }));
    assert.ok(report.fraction >= 0.3 && report.fraction <= 0.8, `nodes ${nodes} seed ${seed}: fraction ${report.fraction}`);
    assert.ok(report.gain10pct > 0, `nodes ${nodes} seed ${seed}: no pair gains 10%`);
  }
});

test("bad options are refused", () => {
  assert.throws(() => generateInternetMatrix({ nodes: 0, seed: 1 }), RangeError);
  assert.throws(() => generateInternetMatrix({ nodes: 2.5, seed: 1 }), RangeError);
  assert.throws(() => generateInternetMatrix({ nodes: 3, seed: 0.5 }), RangeError);
});

test("one node gives a one-entry matrix", () => {
  assert.deepEqual(Object.keys(generateInternetMatrix({ nodes: 1, seed: 1 })), ["n1"]);
});

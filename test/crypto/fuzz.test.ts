/**
 * Every crypto decoder is total: random bytes (fast-check) and seeded mutations of real captures
 * (the fuzz harness's mutator) give errors, never exceptions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SeededRng } from "../../src/core/rng.js";
import { mutate } from "../../fuzz/mutate.js";
import { cryptoFuzzTargets } from "./fuzz-targets.js";

const MS_PER_TARGET = 150;

describe("crypto decoders never throw", () => {
  const targets = cryptoFuzzTargets();

  it("every target has a corpus, and the corpus itself is accepted without throwing", () => {
    for (const target of targets) {
      assert.ok(target.corpus.length > 0, target.name);
      for (const input of target.corpus) target.feed(input);
    }
  });

  for (const target of targets) {
    it(`${target.name}: random bytes`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 1500 }), (input) => {
          target.feed(input);
        }),
        { numRuns: 300, seed: 20261121 },
      );
    });

    it(`${target.name}: mutations of valid captures`, () => {
      const rng = new SeededRng(7);
      const deadline = performance.now() + MS_PER_TARGET;
      let inputs = 0;
      // At least two batches whatever the machine's load; more while time allows.
      while (inputs < 100 || performance.now() < deadline) {
        for (let batch = 0; batch < 50; batch += 1) {
          const base = target.corpus[rng.nextInt(target.corpus.length)]!;
          const other = target.corpus[rng.nextInt(target.corpus.length)];
          const input = mutate(rng, base, other);
          try {
            target.feed(input);
          } catch (error) {
            assert.fail(`${target.name} threw on ${Buffer.from(input).toString("hex").slice(0, 200)}: ${String(error)}`);
          }
          inputs += 1;
        }
      }
      assert.ok(inputs > 50);
    });
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { EventQueue } from "../../src/sim/event-queue.js";

test("events come out by time, then by insertion order", () => {
  const queue = new EventQueue<string>();
  queue.push(5, "e");
  queue.push(1, "a");
  queue.push(3, "c1");
  queue.push(3, "c2");
  queue.push(0, "zero");
  queue.push(3, "c3");
  const out: string[] = [];
  for (let event = queue.pop(); event !== undefined; event = queue.pop()) out.push(event.item);
  assert.deepEqual(out, ["zero", "a", "c1", "c2", "c3", "e"]);
  assert.equal(queue.size, 0);
  assert.equal(queue.pop(), undefined);
});

test("the heap order is a stable sort of (time, sequence), whatever the pushes", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), fc.array(fc.boolean(), { maxLength: 200 }), (times, pops) => {
      const queue = new EventQueue<number>();
      const reference: { at: number; seq: number }[] = [];
      let seq = 0;
      const popped: number[] = [];
      const expected: number[] = [];
      times.forEach((at, index) => {
        queue.push(at, seq);
        reference.push({ at, seq });
        seq++;
        if (pops[index]) {
          reference.sort((x, y) => x.at - y.at || x.seq - y.seq);
          expected.push(reference.shift()!.seq);
          popped.push(queue.pop()!.item);
        }
      });
      reference.sort((x, y) => x.at - y.at || x.seq - y.seq);
      for (const entry of reference) expected.push(entry.seq);
      for (let event = queue.pop(); event !== undefined; event = queue.pop()) popped.push(event.item);
      assert.deepEqual(popped, expected);
    }),
    { seed: 42, numRuns: 200 },
  );
});

test("NaN times are refused", () => {
  assert.throws(() => new EventQueue<number>().push(Number.NaN, 1), RangeError);
});

/**
 * A bounded fuzz run as part of the suite (`npm run fuzz -- --seconds N` runs longer): every
 * network decoder takes seeded mutations of real captures without throwing, and a live node under a
 * hail of mutated packets on UDP and TCP keeps its honest links, accepts a newcomer, and keeps its
 * heap bounded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fuzzDecoders } from "../../fuzz/targets.js";
import { fuzzLiveNode } from "../../fuzz/live.js";

test("every decoder survives seeded mutations of real captures", () => {
  const reports = fuzzDecoders({ seed: 20261121, msPerTarget: 300 });
  assert.ok(reports.length >= 7);
  for (const report of reports) {
    assert.ok(report.corpus > 0, `${report.target} has a corpus`);
    assert.ok(report.inputs > report.corpus, `${report.target} ran mutations`);
    assert.deepEqual(report.findings, [], report.target);
  }
});

test("a live node under fuzzing keeps serving its honest neighbours", async () => {
  const report = await fuzzLiveNode({ seconds: 4, seed: 7 });
  assert.ok(report.udp_packets_sent > 1000 && report.tcp_chunks_sent > 100, JSON.stringify(report));
  assert.equal(report.victim_alive, true);
  assert.equal(report.honest_link_downs, 0, "no honest link went down");
  assert.equal(report.honest_links_up, true);
  assert.equal(report.newcomer_joined, true);
  assert.ok(Object.values(report.victim_dropped).reduce((sum, count) => sum + count, 0) > 0, "garbage was seen and dropped");
  // Bounded tables and queues: the heap does not grow with the amount of garbage received.
  assert.ok(report.heap_used_mb.end < report.heap_used_mb.after_warmup + 16, JSON.stringify(report.heap_used_mb));
});

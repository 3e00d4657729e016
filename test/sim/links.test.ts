/**
 * Property tests of the real engine in the simulator: links come up as a full mesh, each link's
 * smoothed RTT matches the matrix, runs replay bit for bit, and links survive loss, partitions and
 * crashes. Generated matrices only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NodeId } from "../../src/core/node-id.js";
import { generateInternetMatrix } from "../../src/sim/generate.js";
import { measureLinks, runLinksScenario } from "../../src/sim/scenarios/links.js";
import { Simulator } from "../../src/sim/simulator.js";
import { upPeers } from "./helpers.js";

const MATRIX_30 = generateInternetMatrix({ nodes: 30, seed: 1 });


test("30 nodes: full mesh, every SRTT within 5% of the matrix, same seed → same report", () => {
  const report = runLinksScenario({ matrix: MATRIX_30, seed: 1 });
  assert.equal(report.nodes, 30);
  assert.equal(report.expected_links, 435);
  assert.equal(report.links_up, 435, JSON.stringify(report));
  assert.equal(report.links_one_sided, 0);
  assert.equal(report.rtt_samples, 870);
  assert.ok(report.rtt_error_pct.max !== null && report.rtt_error_pct.max < 5, JSON.stringify(report));
  assert.deepEqual(Object.keys(report), ["nodes", "links_up", "expected_links", "rtt_error_pct", "seed", "loss", "jitter", "duration_s", "rtt_samples", "links_one_sided"]);
  const again = runLinksScenario({ matrix: MATRIX_30, seed: 1 });
  assert.deepEqual(again, report);
  assert.equal(JSON.stringify(again), JSON.stringify(report));
});

test("30 nodes with 5% loss and 5% jitter: full mesh, every SRTT within 5%", () => {
  const report = runLinksScenario({ matrix: MATRIX_30, seed: 1, loss: 0.05, jitter: { kind: "relative", ratio: 0.05 } });
  assert.equal(report.links_up, 435, JSON.stringify(report));
  assert.equal(report.links_one_sided, 0);
  assert.ok(report.rtt_error_pct.max !== null && report.rtt_error_pct.max < 5, JSON.stringify(report));
  assert.deepEqual(runLinksScenario({ matrix: MATRIX_30, seed: 1, loss: 0.05, jitter: { kind: "relative", ratio: 0.05 } }), report);
  assert.notDeepEqual(runLinksScenario({ matrix: MATRIX_30, seed: 2, loss: 0.05, jitter: { kind: "relative", ratio: 0.05 } }), report);
});

// Engine contract checks: ticks always make progress, and link events alternate per peer.
test("engine: after tick(now), nextDeadline() is past now (no stalled ticks under loss)", () => {
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes: 21, seed: 1 }), seed: 1, network: { loss: 0.05 } });
  sim.runUntil(30_000);
  assert.equal(sim.stats().stalledTicks, 0);
});

test("engine: link_up and link_down alternate for each peer under loss", () => {
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes: 21, seed: 1 }), seed: 1, network: { loss: 0.05 } });
  const up = new Set<string>();
  const problems: string[] = [];
  sim.onEvent(({ at, node, event }) => {
    if (event.kind !== "link_up" && event.kind !== "link_down") return;
    const key = `${node}->${event.peer}`;
    if (event.kind === "link_up" && up.has(key)) problems.push(`${key} link_up twice (at ${at.toFixed(1)} ms)`);
    if (event.kind === "link_down" && !up.has(key)) problems.push(`${key} link_down while down (at ${at.toFixed(1)} ms)`);
    if (event.kind === "link_up") up.add(key);
    else up.delete(key);
  });
  sim.runUntil(30_000);
  assert.deepEqual(problems, []);
});

test("a partition takes the links across it down; healing brings them back", () => {
  const matrix = generateInternetMatrix({ nodes: 12, seed: 2 });
  const sim = new Simulator({ matrix, seed: 3 });
  const downs: [NodeId, NodeId][] = [];
  sim.onEvent((record) => {
    if (record.event.kind === "link_down") downs.push([record.node, record.event.peer]);
  });
  sim.runUntil(20_000);
  assert.equal(sim.upLinks().length, 66);
  const left = [1, 2, 3, 4, 5, 6];
  const handle = sim.partition([left]);
  sim.runFor(20_000);
  const across = (a: NodeId, b: NodeId) => left.includes(a) !== left.includes(b);
  for (let a = 1; a <= 12; a++) {
    for (const b of upPeers(sim, a)) assert.ok(!across(a, b), `link ${a}-${b} is still up across the partition`);
  }
  // Every node saw each of its 6 links across the partition go down; links inside stayed up.
  for (let a = 1; a <= 12; a++) {
    const lost = new Set(downs.filter(([node, peer]) => node === a && across(a, peer)).map(([, peer]) => peer));
    assert.equal(lost.size, 6, `node ${a} lost ${[...lost]}`);
  }
  assert.equal(downs.filter(([a, b]) => !across(a, b)).length, 0, "a link inside one side went down");
  assert.equal(sim.upLinks().length, 30);
  sim.heal(handle);
  const healed = sim.runUntilCondition(() => sim.upLinks().length === 66, sim.now + 90_000);
  assert.ok(healed, `after healing: ${sim.upLinks().length} of 66 links up at ${sim.now} ms`);
  sim.runFor(10_000);
  const report = measureLinks(sim, matrix, { seed: 3, loss: 0, durationS: sim.now / 1000 });
  assert.equal(report.links_up, 66);
  assert.ok(report.rtt_error_pct.max! < 5, JSON.stringify(report));
});

test("a crashed node's links go down; restarted, it rejoins and its links come back", () => {
  const matrix = generateInternetMatrix({ nodes: 12, seed: 4 });
  const sim = new Simulator({ matrix, seed: 5 });
  sim.runUntil(20_000);
  assert.equal(sim.upLinks().length, 66);
  sim.crash(5);
  sim.runFor(15_000);
  for (let a = 1; a <= 12; a++) if (a !== 5) assert.ok(!upPeers(sim, a).includes(5), `node ${a} still has 5 up`);
  assert.equal(sim.upLinks().length, 55);
  sim.restart(5);
  const back = sim.runUntilCondition(() => sim.upLinks().length === 66, sim.now + 60_000);
  assert.ok(back, `after restart: ${sim.upLinks().length} of 66 links up; node 5 sees ${upPeers(sim, 5)}`);
  // The seed itself crashing: the others keep their mesh, and node 1 rejoins through... nobody
  // (it has no seeds), so the others must reconnect to it.
  sim.crash(1);
  sim.runFor(15_000);
  assert.equal(sim.upLinks().length, 55);
  sim.restart(1);
  const seedBack = sim.runUntilCondition(() => sim.upLinks().length === 66, sim.now + 90_000);
  assert.ok(seedBack, `after the seed restarted: ${sim.upLinks().length} of 66 links up; node 1 sees ${upPeers(sim, 1)}`);
});

test("a link that goes down and up again comes back", () => {
  const matrix = generateInternetMatrix({ nodes: 6, seed: 6 });
  const sim = new Simulator({ matrix, seed: 7 });
  sim.runUntil(15_000);
  assert.equal(sim.upLinks().length, 15);
  sim.linkDown(2, 3);
  sim.runFor(15_000);
  assert.ok(!upPeers(sim, 2).includes(3) && !upPeers(sim, 3).includes(2));
  assert.equal(sim.upLinks().length, 14);
  sim.linkUp(2, 3);
  assert.ok(sim.runUntilCondition(() => sim.upLinks().length === 15, sim.now + 60_000), `${sim.upLinks().length} of 15`);
});

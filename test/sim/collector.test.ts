/**
 * The collector module (module 5) in the simulator: collectors advertise themselves, every node
 * reports to every collector, the model matches what the engines hold (links, routes, tags), and
 * a node that stops reporting goes stale, then disappears.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { NodeEngine } from "../../src/node/engine.js";
import { generateInternetMatrix } from "../../src/sim/generate.js";
import { Simulator } from "../../src/sim/simulator.js";
import { FORGET_AFTER_INTERVALS, STALE_AFTER_INTERVALS } from "../../src/features/collector/constants.js";
import type { Topology } from "../../src/features/collector/model.js";

const COLLECTORS = new Set([1, 4]);
const INTERVAL_MS = 500;

function network(nodes: number, seed = 1): Simulator {
  return new Simulator({
    matrix: generateInternetMatrix({ nodes, seed: 11 }),
    seed,
    createEngine: (config) =>
      new NodeEngine({
        ...config,
        collector: COLLECTORS.has(config.nodeId),
        localTags: config.nodeId % 2 === 0 ? ["even", `n${config.nodeId}`] : [`n${config.nodeId}`],
        softwareVersion: "9.9.9-test",
        collectorIntervalMs: INTERVAL_MS,
      }),
  });
}

function topology(sim: Simulator, collector: number): Topology {
  const model = sim.engine(collector)!.collector.model;
  assert.ok(model !== undefined, `node ${collector} is a collector`);
  return model.topology(sim.now);
}

test("collector: every node reports to every collector; the model holds the engines' links, routes and tags", () => {
  const sim = network(7);
  sim.runFor(10_000);
  for (const id of sim.nodeIds()) {
    const engine = sim.engine(id)!;
    assert.deepEqual(engine.collector.collectors(), [...COLLECTORS].filter((c) => c !== id), `node ${id} knows the other collectors`);
    if (!COLLECTORS.has(id)) assert.equal(engine.collector.model, undefined);
  }
  for (const collector of COLLECTORS) {
    const view = topology(sim, collector);
    assert.deepEqual(view.nodes.map((node) => node.id), sim.nodeIds());
    for (const node of view.nodes) {
      assert.equal(node.state, "live");
      assert.equal(node.version, "9.9.9-test");
      assert.equal(node.interval_ms, INTERVAL_MS);
      assert.equal(node.collector, COLLECTORS.has(node.id));
      assert.deepEqual(node.tags, node.id % 2 === 0 ? ["even", `n${node.id}`] : [`n${node.id}`]);
      assert.ok(node.uptime_s >= 9 && node.uptime_s <= 10.5, `uptime ${node.uptime_s}`);
      assert.ok(node.age_ms <= INTERVAL_MS * 1.2, `fresh: ${node.age_ms} ms`);
      assert.ok(node.counters.frames_in > 0 && node.counters.bytes_out > 0);
      // Routes as the node's engine holds them (routing is settled by now).
      const engineRoutes = sim.engine(node.id)!.routes().map((route) => [route.destination, route.nextHop ?? null, route.hops]);
      assert.deepEqual(node.routes.map((route) => [route.destination, route.next_hop, route.hops]), engineRoutes);
    }
    assert.deepEqual(view.links.map((link) => [link.a, link.b]), sim.upLinks());
    for (const link of view.links) {
      assert.equal(link.state, "live");
      assert.ok(link.srtt_ms !== null && link.srtt_ms > 0);
      assert.ok(link.srtt_a_ms !== null && link.srtt_b_ms !== null);
    }
  }
});

test("collector: a crashed node goes stale after 3 intervals, then is forgotten after 10; a restarted one comes back", () => {
  const sim = network(5, 3);
  sim.runFor(8_000);
  const crashedAt = sim.now;
  sim.crash(3);
  const modelOf1 = sim.engine(1)!.collector.model!;
  const last = topology(sim, 1).nodes.find((node) => node.id === 3)!;
  const lastReport = crashedAt - last.age_ms;
  sim.runUntil(lastReport + STALE_AFTER_INTERVALS * INTERVAL_MS - 1);
  assert.equal(modelOf1.state(3), "live", "still live just before 3 intervals");
  sim.runUntil(lastReport + STALE_AFTER_INTERVALS * INTERVAL_MS + 1);
  assert.equal(modelOf1.state(3), "stale");
  const staleView = topology(sim, 1);
  assert.equal(staleView.nodes.find((node) => node.id === 3)?.state, "stale");
  assert.ok(staleView.links.every((link) => link.a === 3 || link.b === 3 ? link.state === "live" || link.state === "stale" : link.state === "live"));
  sim.runUntil(lastReport + FORGET_AFTER_INTERVALS * INTERVAL_MS - 1);
  assert.equal(modelOf1.state(3), "stale");
  sim.runUntil(lastReport + FORGET_AFTER_INTERVALS * INTERVAL_MS + 1);
  assert.equal(modelOf1.state(3), undefined, "forgotten");
  const gone = topology(sim, 1);
  assert.deepEqual(gone.nodes.map((node) => node.id), [1, 2, 4, 5]);
  assert.ok(gone.links.every((link) => link.a !== 3 && link.b !== 3));
  assert.equal(modelOf1.stats().forgotten, 1);

  sim.restart(3);
  sim.runFor(6_000);
  assert.equal(modelOf1.state(3), "live", "the restarted node reports again (its seq starts over)");
  assert.ok(topology(sim, 1).nodes.find((node) => node.id === 3)!.uptime_s < 7);
});

test("collector: a lost collector is forgotten by the nodes once its adverts stop", () => {
  const sim = network(5, 5);
  sim.runFor(6_000);
  assert.deepEqual(sim.engine(2)!.collector.collectors(), [1, 4]);
  sim.crash(4);
  sim.runFor(20_000);
  assert.deepEqual(sim.engine(2)!.collector.collectors(), [1]);
  const stats = sim.engine(2)!.collector.stats();
  assert.ok(stats.snapshotsSent > 0 && stats.malformed === 0);
});

test("collector: without collectors no node reports or floods anything", () => {
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes: 4, seed: 11 }), seed: 2 });
  sim.runFor(5_000);
  for (const id of sim.nodeIds()) {
    const stats = sim.engine(id)!.collector.stats();
    assert.equal(stats.snapshotsSent + stats.advertsIn + stats.advertsForwarded, 0);
    assert.equal(sim.engine(id)!.collector.nextDeadline(), Infinity);
  }
});

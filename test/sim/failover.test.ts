/**
 * Failover in the simulator: relay links and relay nodes that carry traffic fail; every flow they
 * carried gets through again on a new path (found locally from the multipath table, long before
 * the link timeout would have noticed), no frame goes round a loop, and the run replays exactly.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateInternetMatrix } from "../../src/sim/generate.js";
import { runFailoverScenario } from "../../src/sim/scenarios/failover.js";
import { ENGINE_DEFAULTS } from "../../src/node/engine-config.js";

test("failover: relay links and nodes die under traffic; flows move to a new path before the link timeout, without loops", () => {
  // Plaintext links keep it fast (the secure channel has its own tests; routing is the same).
  const options = { matrix: generateInternetMatrix({ nodes: 16, seed: 21 }), seed: 3, failures: 4, flows: 30, warmupS: 20, insecure: true };
  const report = runFailoverScenario(options);
  assert.equal(report.failures, 4);
  assert.ok(report.flows > 0 && report.affected > 0, JSON.stringify(report));
  assert.equal(report.failure_log.filter((failure) => failure.affected_flows > 0).length, 4, "every failure hit traffic");
  assert.deepEqual(
    report.failure_log.map((failure) => failure.kind),
    ["link", "node", "link", "node"],
  );
  assert.equal(report.not_recovered, 0, JSON.stringify(report));
  assert.equal(report.loops, 0);
  // The link timeout is what would notice a dead link without suspicion and multipath failover.
  assert.ok(report.reroute_ms.max! < ENGINE_DEFAULTS.linkTimeoutMs, JSON.stringify(report.reroute_ms));
  assert.ok(report.lost_frames > 0 && report.lost_frames < report.frames_sent / 20, `${report.lost_frames} of ${report.frames_sent} lost`);
  assert.deepEqual(runFailoverScenario(options), report, "same seed, same report");
});

/**
 * `skein route` rendering (pure), and `skein sim routing` / `skein sim failover` as real processes:
 * one JSON line, `--paths FILE` with one line per pair, clear one-line errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type RouteInputs, parseRoute, parseTrace, renderRoute } from "../../src/cli/route.js";
import { formatMatrix } from "../../src/sim/matrix.js";
import { generateInternetMatrix } from "../../src/sim/generate.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

const relayed: RouteInputs = {
  id: 1,
  destination: 4,
  trace: {
    complete: true,
    rttMs: 41.2,
    hops: [
      { node: 2, previousHop: 1, linkRttMs: 20.1, ttl: 1 },
      { node: 4, previousHop: 2, linkRttMs: 20.4, ttl: 2 },
    ],
  },
  route: { nextHop: 2, metricMs: 20.5, hops: 2, alternates: [{ via: 3, metricMs: 30.4, hops: 2, usable: true }, { via: 4, metricMs: 50.2, hops: 1, usable: true }] },
  directRttMs: 100.3,
};

test("skein route: the path hop by hop, and why it beats the direct link", () => {
  assert.equal(
    renderRoute(relayed),
    [
      "route from node 1 to node 4: 2 hops, 41.2 ms round trip (traced now)",
      "  HOP  NODE  FROM  LINK RTT(ms)",
      "    1     2     1          20.1",
      "    2     4     2          20.4",
      "  sum of the links' RTTs: 40.5 ms",
      "direct link 1–4: RTT 100.3 ms; the path via 2 is faster by 59.8 ms (60%)",
      "route table: next hop 2, metric 20.5 ms one way, 2 hops; alternates: via 3 (30.4 ms, 2 hops), via 4 (50.2 ms, 1 hop)",
      "",
    ].join("\n"),
  );
});

test("skein route: a direct route, a route without a direct link, and a trace with a silent hop", () => {
  const direct = renderRoute({
    ...relayed,
    trace: { complete: true, rttMs: 10, hops: [{ node: 4, previousHop: 1, linkRttMs: 10, ttl: 1 }] },
    route: { nextHop: 4, metricMs: 5, hops: 1, alternates: [{ via: 2, metricMs: 20, hops: 2, usable: true }] },
    directRttMs: 10,
  });
  assert.match(direct, /^route from node 1 to node 4: 1 hop, 10\.0 ms round trip/);
  assert.match(direct, /the direct link is the fastest path: RTT 10\.0 ms; no relay beats it \(best relay: via 2, about 40\.0 ms round trip\)/);
  const noDirect = renderRoute({ ...relayed, directRttMs: undefined });
  assert.match(noDirect, /no direct link between 1 and 4 \(they are not neighbours\): the traffic is relayed/);
  const gap = renderRoute({ ...relayed, trace: { complete: false, rttMs: 41, hops: [relayed.trace.hops[1]!] } });
  assert.match(gap, /^ +1 +\? +\? +-$/m);
  assert.match(gap, /some hops did not answer/);
  const none = renderRoute({ ...relayed, trace: { complete: false, rttMs: undefined, hops: [] }, route: undefined });
  assert.match(none, /the destination did not answer/);
  assert.match(none, /has no entry for node 4/);
});

test("skein route: API JSON is parsed leniently", () => {
  assert.deepEqual(parseTrace({ complete: true, rtt_ms: 3, hops: [{ node: 4, previous_hop: 2, link_rtt_ms: null, ttl: 2 }, { node: 2, ttl: 1 }, "junk"] }), {
    complete: true,
    rttMs: 3,
    hops: [
      { node: 2, previousHop: 0, linkRttMs: undefined, ttl: 1 },
      { node: 4, previousHop: 2, linkRttMs: undefined, ttl: 2 },
    ],
  });
  assert.equal(parseTrace({ hops: "no" }), undefined);
  assert.deepEqual(parseRoute({ next_hop: null, metric_ms: null, hops: 0, alternates: [{ via: 3, metric_ms: 1, hops: 2, usable: false }] }), {
    nextHop: undefined,
    metricMs: undefined,
    hops: 0,
    alternates: [{ via: 3, metricMs: 1, hops: 2, usable: false }],
  });
});

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

test("skein sim routing and failover print one JSON line; --paths writes the hops of every pair", { timeout: 60_000 }, async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "skein-route-cli-"));
  try {
    const matrixFile = path.join(tmp, "m6.json");
    writeFileSync(matrixFile, formatMatrix(generateInternetMatrix({ nodes: 6, seed: 4 })));
    const pathsFile = path.join(tmp, "paths.jsonl");
    const routing = await runCli(["sim", "routing", "--matrix", matrixFile, "--seed", "3", "--duration-s", "10", "--paths", pathsFile]);
    assert.equal(routing.code, 0, routing.stderr);
    assert.equal(routing.stdout.split("\n").length, 2, "one line");
    const report = JSON.parse(routing.stdout) as { nodes: number; pairs: number; unreachable_pairs: number; loops: number };
    assert.equal(report.nodes, 6);
    assert.equal(report.pairs, 30);
    const lines = readFileSync(pathsFile, "utf8").trim().split("\n");
    assert.equal(lines.length, report.pairs - report.unreachable_pairs);
    const first = JSON.parse(lines[0]!) as { src: string; dst: string; hops: string[] };
    assert.deepEqual(Object.keys(first), ["src", "dst", "hops"]);
    assert.equal(first.hops[0], first.src);
    assert.equal(first.hops[first.hops.length - 1], first.dst);

    const failover = await runCli(["sim", "failover", "--matrix", matrixFile, "--seed", "3", "--failures", "2", "--flows", "5"]);
    assert.equal(failover.code, 0, failover.stderr);
    const failoverReport = JSON.parse(failover.stdout) as { failures: number; reroute_ms: object; lost_frames: number; loops: number };
    assert.equal(failoverReport.failures, 2);
    assert.deepEqual(Object.keys(failoverReport.reroute_ms), ["p50", "p99", "max"]);

    const bad = await runCli(["sim", "routing", "--matrix", matrixFile, "--max-neighbours", "0"]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'skein: bad --max-neighbours value "0": expected an integer in 1..65535\n');
    // A network joining through three seeds over 2 s: everything routed, no loop.
    const seeded = await runCli(["sim", "routing", "--matrix", matrixFile, "--seed", "3", "--duration-s", "10", "--seed-nodes", "3", "--start-spread-s", "2"]);
    assert.equal(seeded.code, 0, seeded.stderr);
    const seededReport = JSON.parse(seeded.stdout) as { pairs: number; unreachable_pairs: number; loops: number };
    assert.deepEqual([seededReport.pairs, seededReport.unreachable_pairs, seededReport.loops], [30, 0, 0]);
    const tooManySeeds = await runCli(["sim", "routing", "--matrix", matrixFile, "--seed-nodes", "7"]);
    assert.equal(tooManySeeds.code, 2);
    assert.match(tooManySeeds.stderr, /^skein: bad --seed-nodes value "7": expected an integer in 1\.\.6/);
    const missing = await runCli(["sim", "failover"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^skein: missing --matrix/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

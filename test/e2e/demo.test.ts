/**
 * `skein demo` end to end: real node processes, the collector's /api/topology fills with every node,
 * and Ctrl-C (SIGINT) leaves nothing running.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { demoMatrixFromFile } from "../../src/cli/demo.js";
import { alive, startDemo, waitForFullTopology } from "./demo-helpers.js";
import { waitFor } from "./processes.js";

describe("skein demo with the collector", () => {
  const demos: ReturnType<typeof startDemo>[] = [];
  after(() => {
    for (const demo of demos) demo.kill();
  });

  it("prints the web view's URL, the collector sees every node and link, SIGINT stops every child", { timeout: 120_000 }, async () => {
    const demo = startDemo(["--nodes", "4", "--web-addr", "127.0.0.1:0", "--snapshot-s", "0.5"]);
    demos.push(demo);
    const url = await demo.url();
    const topology = await waitForFullTopology(url, 4);
    assert.equal(topology.collector, 1);
    assert.deepEqual(topology.nodes.map((node) => node.id), [1, 2, 3, 4]);
    for (const node of topology.nodes) {
      assert.equal(node.tags.length, 1, "each node of the generated world carries its region tag");
      assert.match(node.version, /^\d+\.\d+\.\d+/);
    }
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/vendor\/cytoscape\.min\.js"><\/script>/);
    const library = await fetch(`${url}/vendor/cytoscape.min.js`);
    assert.equal(library.status, 200);
    assert.ok((await library.text()).length > 100_000, "cytoscape served from node_modules");

    await waitFor("the pids of all 4 nodes in a snapshot table", () => demo.pids().size === 4, 30_000);
    const pids = [...demo.pids().values()];
    assert.ok(pids.every(alive));
    demo.child.kill("SIGINT");
    assert.equal(await demo.exited, 0, demo.stderr());
    for (const pid of pids) assert.equal(alive(pid), false, `child ${pid} is gone`);
    const removed = /removed (\S+)$/m.exec(demo.stderr());
    assert.ok(removed !== null, demo.stderr());
    assert.equal(existsSync(removed[1]!), false, "temp files removed");
  });

  it("refuses a bad --web-addr and a --matrix too small for --nodes", async () => {
    const bad = startDemo(["--web-addr", "nowhere"]);
    demos.push(bad);
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr(), /bad --web-addr value "nowhere"/);
    const dir = mkdtempSync(path.join(tmpdir(), "skein-demo-test-"));
    try {
      const file = path.join(dir, "two.json");
      writeFileSync(file, JSON.stringify({ a: { a: 0, b: 80 }, b: { a: 80, b: 0 } }));
      const small = startDemo(["--nodes", "4", "--matrix", file]);
      demos.push(small);
      assert.equal(await small.exited, 2);
      assert.match(small.stderr(), /has 2 nodes; --nodes 4 needs at least that many/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps a --matrix keyed by NodeIds as it is, and renumbers one keyed by names in sorted order", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "skein-demo-test-"));
    try {
      const byIds = path.join(dir, "ids.json");
      const ids = { "1": { "1": 1, "2": 10, "3": 30 }, "2": { "1": 10, "2": 1, "3": 20 }, "3": { "1": 30, "2": 20, "3": 1 } };
      writeFileSync(byIds, JSON.stringify(ids));
      assert.deepEqual(demoMatrixFromFile(byIds, 3), ids);
      const byNames = path.join(dir, "names.json");
      writeFileSync(byNames, JSON.stringify({ zeta: { zeta: 1, alpha: 30, mid: 20 }, alpha: { zeta: 30, alpha: 1, mid: 10 }, mid: { zeta: 20, alpha: 10, mid: 1 } }));
      assert.deepEqual(demoMatrixFromFile(byNames, 2), ids, "alpha → 1, mid → 2, zeta → 3");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

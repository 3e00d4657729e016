/**
 * Collector over real sockets, in process: node.topology(), GET /api/topology, the server-sent
 * event stream, the web view's files, and 404 NOT_COLLECTOR on a plain node.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createNode, type SkeinNode } from "../../src/index.js";
import { closeAll, waitFor } from "./helpers.js";

const opened: SkeinNode[] = [];
after(() => closeAll(opened));

/** The first `count` topology events of the stream, parsed; the connection is closed after. */
function readEvents(url: string, count: number): Promise<{ contentType: string; events: unknown[] }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, (response) => {
      let buffer = "";
      const events: unknown[] = [];
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!block.startsWith("event: topology\n")) continue;
          events.push(JSON.parse(block.slice(block.indexOf("data: ") + 6)));
          if (events.length === count) {
            request.destroy();
            resolve({ contentType: String(response.headers["content-type"]), events });
          }
        }
      });
      response.on("error", reject);
    });
    request.on("error", (error) => {
      if ((error as NodeJS.ErrnoException).code !== "ECONNRESET") reject(error);
    });
    request.setTimeout(20_000, () => request.destroy(new Error("no topology event within 20 s")));
  });
}

test("collector: topology() and /api/topology hold every node; the stream sends it as events; plain nodes answer 404", { timeout: 60_000 }, async () => {
  const options = { udpPort: 0, logLevel: "silent" as const, probeIntervalMs: 50, linkTimeoutMs: 2000, collectorIntervalMs: 200 };
  const collector = await createNode({ ...options, collector: true, webAddr: "127.0.0.1:0", localTags: ["hub"] });
  opened.push(collector);
  const seeds = [`${collector.id}@${collector.addresses[0]}`];
  const b = await createNode({ ...options, seeds, localTags: ["eu", "gpu"], webAddr: "127.0.0.1:0" });
  const c = await createNode({ ...options, seeds });
  opened.push(b, c);
  const ids = [collector.id, b.id, c.id].sort((x, y) => x - y);
  await waitFor(() => {
    const topology = collector.topology();
    // Every node's own snapshot must list both others: a link seen from one end only is not enough.
    return (
      topology !== undefined &&
      topology.nodes.length === 3 &&
      topology.nodes.every((node) => node.neighbours.length === 2) &&
      topology.links.length === 3 &&
      topology.links.every((link) => link.srtt_ms !== null)
    );
  }, "3 nodes, each reporting 2 neighbours, and 3 measured links in the collector's model", 20_000);
  assert.equal(b.topology(), undefined, "not a collector");

  const response = await fetch(`${collector.webUrl}/api/topology`);
  assert.equal(response.status, 200);
  const topology = (await response.json()) as { collector: number; nodes: { id: number; tags: string[]; collector: boolean; state: string }[]; links: { a: number; b: number }[] };
  assert.equal(topology.collector, collector.id);
  assert.deepEqual(topology.nodes.map((node) => node.id), ids);
  const byId = new Map(topology.nodes.map((node) => [node.id, node]));
  assert.deepEqual(byId.get(collector.id)!.tags, ["hub"]);
  assert.equal(byId.get(collector.id)!.collector, true);
  assert.deepEqual(byId.get(b.id)!.tags, ["eu", "gpu"]);
  assert.deepEqual(byId.get(c.id)!.tags, []);

  const { contentType, events } = await readEvents(`${collector.webUrl}/api/topology/stream`, 2);
  assert.match(contentType, /^text\/event-stream/);
  const [first, second] = events as { version: number; nodes: { id: number; neighbours: unknown[][]; routes: unknown[][] }[] }[];
  assert.ok(second!.version > first!.version, "a later event carries a newer model");
  const node = first!.nodes.find((candidate) => candidate.id === b.id)!;
  assert.equal(node.neighbours.length, 2);
  assert.equal(node.neighbours[0]!.length, 4, "neighbours as [id, srtt_ms, rttvar_ms, loss]");
  assert.equal(node.routes[0]!.length, 4, "routes as [destination, next_hop, metric_ms, hops]");

  const page = await fetch(`${collector.webUrl}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  for (const file of ["/app.js", "/style.css", "/vendor/cytoscape.min.js"]) assert.equal((await fetch(`${collector.webUrl}${file}`)).status, 200, file);

  const plain = await fetch(`${b.webUrl}/api/topology`);
  assert.equal(plain.status, 404);
  assert.equal(((await plain.json()) as { code: string }).code, "NOT_COLLECTOR");
  assert.equal((await fetch(`${b.webUrl}/api/topology/stream`)).status, 404);
});

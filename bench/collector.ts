/**
 * `npm run bench -- collector [--nodes 200] [--neighbours 32] [--chromium /usr/bin/chromium]`
 *
 * What the collector costs at N nodes (default 200), in this process, on a synthetic network (a
 * generated Internet-like matrix; each node linked to `--neighbours` others, a route to every
 * node): the snapshot's size on the wire (bytes per node per second at the default 1 s interval)
 * beside the same snapshot as JSON (the baseline); encoding, and decoding + ingesting one snapshot
 * into the model; building the topology and the stream's JSON event; the collector's CPU share per
 * second. Then, when chromium is installed, the web view itself at N nodes, driven headless by
 * playwright-core against a stream of that model (RTTs moving every second): time to the first
 * drawing (layout included), time to apply one update, the page's JS heap.
 */
import http from "node:http";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { encodeSnapshot, decodeCollectorMessage, type Snapshot } from "../src/features/collector/messages.js";
import { CollectorModel } from "../src/features/collector/model.js";
import { compactTopology } from "../src/runtime/web.js";
import { generateInternetMatrix } from "../src/sim/generate.js";
import { matrixNames } from "../src/sim/matrix.js";

export const COLLECTOR_USAGE = [
  "usage: npm run bench -- collector [options]",
  "  --nodes N          network size (default 200)",
  "  --neighbours K     links per node (default 32, the default --max-neighbours)",
  "  --chromium PATH    browser for the page figures (default /usr/bin/chromium; skipped with a warning when missing)",
].join("\n");

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: "collector", ...line })}\n`);
}

/** Synthetic snapshots: node i (1..n) linked to its `k` nearest ids on a ring, routes through the best neighbour. */
function syntheticSnapshots(n: number, k: number, jitterSeed: number): Snapshot[] {
  const matrix = generateInternetMatrix({ nodes: n, seed: 1 });
  const names = matrixNames(matrix);
  const rtt = (a: number, b: number): number => matrix[names[a - 1]!]![names[b - 1]!]!;
  const wobble = (a: number, b: number): number => 1 + 0.02 * Math.sin(jitterSeed * 7.1 + a * 0.37 + b * 0.11);
  const neighboursOf = (i: number): number[] => {
    const out: number[] = [];
    for (let d = 1; out.length < Math.min(k, n - 1); d++) {
      for (const j of [((i - 1 + d) % n) + 1, ((i - 1 - d + n * 4) % n) + 1]) if (j !== i && !out.includes(j) && out.length < k) out.push(j);
    }
    return out;
  };
  const snapshots: Snapshot[] = [];
  for (let i = 1; i <= n; i++) {
    const neighbours = neighboursOf(i);
    const routes = [];
    for (let d = 1; d <= n; d++) {
      if (d === i) continue;
      let best = { via: neighbours[0]!, cost: Infinity, hops: 2 };
      for (const via of neighbours) {
        const cost = via === d ? rtt(i, d) : rtt(i, via) + rtt(via, d);
        if (cost < best.cost) best = { via, cost, hops: via === d ? 1 : 2 };
      }
      routes.push({ destination: d, nextHop: best.via, metricMs: best.cost / 2, hops: best.hops });
    }
    snapshots.push({
      seq: jitterSeed + 1,
      flags: i === 1 ? 1 : 0,
      intervalMs: 1000,
      uptimeS: 3600 + jitterSeed,
      version: "0.1.0",
      tags: ["europe"],
      counters: { framesIn: 123456, framesOut: 123000, bytesIn: 9876543, bytesOut: 9800000, framesForwarded: 4567, framesDropped: 3 },
      neighbours: neighbours.map((id) => ({ id, srttMs: rtt(i, id) * wobble(i, id), rttvarMs: 2.5, loss: 0 })),
      routes,
    });
  }
  return snapshots;
}

function timeIt(iterations: number, body: () => void): number {
  body();
  const started = performance.now();
  for (let i = 0; i < iterations; i++) body();
  return (performance.now() - started) / iterations;
}

export async function runCollector(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { nodes: { type: "string" }, neighbours: { type: "string" }, chromium: { type: "string" } } });
  const n = Number(values.nodes ?? 200);
  const k = Number(values.neighbours ?? 32);
  if (!Number.isInteger(n) || n < 2 || n > 2000 || !Number.isInteger(k) || k < 1) {
    process.stderr.write(`bench collector: bad --nodes or --neighbours\n${COLLECTOR_USAGE}\n`);
    return 2;
  }
  const snapshots = syntheticSnapshots(n, k, 0);
  const encoded = snapshots.map(encodeSnapshot);
  const bytes = encoded.reduce((sum, payload) => sum + payload.byteLength, 0) / n;
  const jsonBytes = snapshots.reduce((sum, snapshot) => sum + Buffer.byteLength(JSON.stringify(snapshot)), 0) / n;
  emit({ figure: "snapshot_bytes_per_node_per_s", nodes: n, neighbours: k, routes: n - 1, skein: Math.round(bytes), baseline_json: Math.round(jsonBytes), ratio: +(bytes / jsonBytes).toFixed(2), interval_ms: 1000, note: "per collector; ×collectors" });
  emit({ figure: "collector_ingress_bytes_per_s", nodes: n, skein: Math.round(bytes * n), baseline_json: Math.round(jsonBytes * n) });

  const encodeUs = timeIt(20, () => snapshots.forEach(encodeSnapshot)) * 1000 / n;
  const jsonEncodeUs = timeIt(20, () => snapshots.forEach((s) => JSON.stringify(s))) * 1000 / n;
  const model = new CollectorModel(1);
  let seq = 2;
  const ingestUs = timeIt(20, () => {
    seq++;
    for (let i = 0; i < n; i++) {
      const message = decodeCollectorMessage(encoded[i]!);
      if (message instanceof Error || message.type !== "snapshot") throw new Error("decode failed");
      message.snapshot.seq = seq;
      model.ingest(seq * 1000, i + 1, message.snapshot);
    }
  }) * 1000 / n;
  const jsonTexts = snapshots.map((s) => JSON.stringify(s));
  const jsonIngestUs = timeIt(20, () => jsonTexts.forEach((text) => JSON.parse(text))) * 1000 / n;
  emit({ figure: "encode_us_per_snapshot", skein: +encodeUs.toFixed(1), baseline_json: +jsonEncodeUs.toFixed(1) });
  emit({ figure: "decode_and_ingest_us_per_snapshot", skein: +ingestUs.toFixed(1), baseline_json_parse_only: +jsonIngestUs.toFixed(1) });

  const now = seq * 1000 + 10;
  const topologyMs = timeIt(10, () => model.topology(now));
  const topology = model.topology(now);
  let event = "";
  const eventMs = timeIt(10, () => {
    event = JSON.stringify(compactTopology(model.topology(now)));
  }) - topologyMs;
  const fullJson = JSON.stringify(topology);
  emit({ figure: "topology_ms", nodes: n, links: topology.links.length, skein: +topologyMs.toFixed(2) });
  emit({ figure: "stream_event", nodes: n, bytes: event.length, build_ms: +eventMs.toFixed(2), api_topology_bytes: fullJson.length });
  const cpuShare = (n * ingestUs) / 1000 / 1000 + (topologyMs + eventMs) / 1000;
  emit({ figure: "collector_cpu_share_at_1s_interval", nodes: n, skein: `${(cpuShare * 100).toFixed(2)}%`, note: "snapshots ingested + one stream event per second, one core" });

  const chromium = values.chromium ?? "/usr/bin/chromium";
  if (!existsSync(chromium)) {
    process.stderr.write(`bench collector: ${chromium} not found: page figures skipped (apt-get install chromium)\n`);
    return 0;
  }
  await pageFigures(n, k, chromium);
  return 0;
}

/** The web view against a stream of an N-node model whose RTTs move every second. */
async function pageFigures(n: number, k: number, executablePath: string): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const cytoscape = path.join(root, "node_modules/cytoscape/dist/cytoscape.min.js");
  const files: Record<string, [string, string]> = {
    "/": [path.join(root, "web/index.html"), "text/html"],
    "/app.js": [path.join(root, "web/app.js"), "text/javascript"],
    "/style.css": [path.join(root, "web/style.css"), "text/css"],
    "/vendor/cytoscape.min.js": [cytoscape, "text/javascript"],
  };
  // Prepared before the page loads, so that the page's figures do not include building them.
  const prepared: string[] = [];
  for (let round = 0; round < 4; round++) {
    const model = new CollectorModel(1);
    syntheticSnapshots(n, k, round).forEach((snapshot, index) => model.ingest(0, index + 1, snapshot));
    prepared.push(JSON.stringify(compactTopology(model.topology(10))));
  }
  let version = 0;
  const events = (): string => {
    version++;
    const text = prepared[version % prepared.length]!.replace(/"version":\d+/, `"version":${version}`);
    return `event: topology\ndata: ${text}\n\n`;
  };
  const server = http.createServer((request, response) => {
    if (request.url === "/api/topology/stream") {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(events());
      const timer = setInterval(() => response.write(events()), 1000);
      request.on("close", () => clearInterval(timer));
      return;
    }
    const file = files[request.url ?? ""];
    if (file === undefined) {
      response.writeHead(404);
      response.end();
      return;
    }
    response.writeHead(200, { "content-type": file[1] });
    response.end(readFileSync(file[0]));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath, headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 820 } });
    const started = performance.now();
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    await page.waitForFunction((count) => (globalThis as any).skein?.cy.nodes().length === count, n, { timeout: 120_000 });
    const firstMs = performance.now() - started;
    const before = await page.evaluate(() => ({ ...(globalThis as any).skein.state, topology: undefined, byId: undefined }));
    await page.waitForFunction((updates) => (globalThis as any).skein.state.updates >= updates + 10, before.updates, { timeout: 120_000 });
    const after = await page.evaluate(() => ({ ...(globalThis as any).skein.state, topology: undefined, byId: undefined, heap: (performance as any).memory?.usedJSHeapSize }));
    emit({
      figure: "page_at_n_nodes",
      nodes: n,
      links: await page.evaluate(() => (globalThis as any).skein.cy.edges().length),
      first_drawing_ms: Math.round(firstMs),
      first_apply_ms: Math.round(after.firstApplyMs),
      layout_ms: Math.round(after.lastLayoutMs),
      update_apply_ms_mean: +((after.totalUpdateMs - before.totalUpdateMs) / (after.updates - before.updates)).toFixed(1),
      layouts_during_updates: after.layouts - before.layouts,
      js_heap_mib: after.heap === undefined ? null : +(after.heap / 1048576).toFixed(1),
      note: "apply = model → graph (data and class changes); Cytoscape redraws in the next frame",
    });
  } finally {
    await browser.close();
    server.close();
  }
}

/**
 * The collector's web view over HTTP (issue 6): the static page (web/ in the package, Cytoscape.js
 * from node_modules — no CDN, it works offline) and the topology as server-sent events.
 */
import { readFile } from "node:fs/promises";
import type http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import type { Topology } from "../features/collector/model.js";
import { packageRoot } from "./version.js";

/** The stream looks for a new model version this often… */
export const STREAM_CHECK_INTERVAL_MS = 250;
/** …and sends one at most this often (a 200-node model changes with every snapshot). */
export const STREAM_MIN_INTERVAL_MS = 1_000;
/** Even unchanged, the model is sent again this often (fresh ages; proxies keep the stream open). */
export const STREAM_REFRESH_MS = 5_000;
/** A client with more than this still unwritten is skipped until it catches up. */
export const STREAM_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** Streams one node serves at once; more are refused (503). */
export const STREAM_MAX_CLIENTS = 64;

/** The stream's form of the model: neighbours and routes as arrays, times in 0.1 ms: a third of the JSON. */
export function compactTopology(topology: Topology): unknown {
  return {
    ...topology,
    nodes: topology.nodes.map((node) => ({
      ...node,
      neighbours: node.neighbours.map((n) => [n.id, tenth(n.srtt_ms), tenth(n.rttvar_ms), Math.round(n.loss * 1e4) / 1e4]),
      routes: node.routes.map((r) => [r.destination, r.next_hop, tenth(r.metric_ms), r.hops]),
    })),
    links: topology.links.map((link) => ({ ...link, srtt_ms: tenth(link.srtt_ms), srtt_a_ms: tenth(link.srtt_a_ms), srtt_b_ms: tenth(link.srtt_b_ms), rttvar_ms: tenth(link.rttvar_ms) })),
  };
}

/** ms to 0.1 ms: what the page shows, and a shorter stream. */
function tenth(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

export class TopologyStream {
  private readonly clients = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private sentVersion = -1;
  private sentAt = -Infinity;
  private closed = false;

  constructor(private readonly read: () => Topology | undefined) {}

  get size(): number {
    return this.clients.size;
  }

  add(request: http.IncomingMessage, response: http.ServerResponse): void {
    if (this.closed || this.clients.size >= STREAM_MAX_CLIENTS) {
      response.writeHead(503, { "content-type": "application/json; charset=utf-8" });
      response.end(JSON.stringify({ error: `too many topology streams (${STREAM_MAX_CLIENTS}); close some browser tabs` }));
      return;
    }
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive" });
    response.write("retry: 1000\n\n");
    this.clients.add(response);
    const drop = (): void => {
      this.clients.delete(response);
      if (this.clients.size === 0) this.stop();
    };
    request.on("close", drop);
    response.on("close", drop);
    response.on("error", drop);
    const topology = this.read();
    if (topology !== undefined) this.write(response, this.event(topology));
    this.timer ??= setInterval(() => this.check(), STREAM_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    this.stop();
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const now = performance.now();
    if (now - this.sentAt < STREAM_MIN_INTERVAL_MS) return;
    const topology = this.read();
    if (topology === undefined) return;
    if (topology.version === this.sentVersion && now - this.sentAt < STREAM_REFRESH_MS) return;
    this.sentVersion = topology.version;
    this.sentAt = now;
    const event = this.event(topology);
    for (const client of this.clients) this.write(client, event);
  }

  private event(topology: Topology): string {
    return `event: topology\ndata: ${JSON.stringify(compactTopology(topology))}\n\n`;
  }

  private write(client: http.ServerResponse, event: string): void {
    if (client.writableLength > STREAM_MAX_BUFFERED_BYTES) return;
    client.write(event);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** URL path → file. Nothing else is served: no directory walking. */
function staticFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const root = packageRoot();
  if (root !== undefined) {
    const web = path.join(root, "web");
    files.set("/", path.join(web, "index.html"));
    files.set("/index.html", path.join(web, "index.html"));
    files.set("/app.js", path.join(web, "app.js"));
    files.set("/style.css", path.join(web, "style.css"));
  }
  try {
    const main = createRequire(import.meta.url).resolve("cytoscape");
    files.set("/vendor/cytoscape.min.js", path.join(path.dirname(main), "cytoscape.min.js"));
  } catch {
    // Not installed: the page says so.
  }
  return files;
}

let files: Map<string, string> | undefined;
const cache = new Map<string, Buffer>();

/** Serves the web view's files; false when `urlPath` is none of them. */
export async function serveStatic(urlPath: string, request: http.IncomingMessage, response: http.ServerResponse): Promise<boolean> {
  files ??= staticFiles();
  const file = files.get(urlPath);
  if (file === undefined) return false;
  let body = cache.get(file);
  if (body === undefined) {
    try {
      body = await readFile(file);
    } catch (error) {
      response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      response.end(`cannot read ${file}: ${(error as Error).message}\n`);
      return true;
    }
    cache.set(file, body);
  }
  response.writeHead(200, { "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream", "content-length": body.byteLength, "cache-control": "no-cache" });
  response.end(request.method === "HEAD" ? undefined : body);
  return true;
}

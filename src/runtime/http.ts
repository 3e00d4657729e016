/**
 * `--web-addr HOST:PORT`: the node's HTTP API.
 *
 *   GET /api/node  JSON { id, addresses, uptime_s, local_tags, connect_tags, neighbours: [{ id,
 *                  address, transport, state, srtt_ms, rttvar_ms, loss, tags, binding,
 *                  key_fingerprint }], security: { mode, node_id_binding, key_fingerprint,
 *                  static_key_fingerprint, network_key_id, ca_fingerprint, certificate,
 *                  neighbours: [{ id, key_fingerprint, binding }], end_to_end } } (unknown RTTs
 *                  are null; tags: discovery tags, [] when none; a neighbour's binding and
 *                  key_fingerprint are what its handshake authenticated)
 *   GET /api/routes         JSON { id, routes: [{ destination, state, next_hop, metric_ms, hops, seqno,
 *                           alternates: [{ via, metric_ms, hops, feasible, usable }] }] } (metrics:
 *                           one-way delay estimates in ms; null when unreachable)
 *   GET /api/routes/DEST    one of those routes (404 when the table does not know DEST)
 *   GET /api/trace/DEST     the path frames to DEST take now, hop by hop: { destination, complete,
 *                           rtt_ms, hops: [{ node, previous_hop, link_rtt_ms, ttl }] } (404 NO_ROUTE)
 *   GET /api/ping/DEST      one echo round trip over the route: { destination, complete, rtt_ms }
 *   GET /api/topology        (collector, --collector) the collector's model: { collector, version,
 *                           nodes: [{ id, state: live|stale, collector, tags, version, uptime_s, age_ms,
 *                           interval_ms, counters, neighbours: [{ id, srtt_ms, rttvar_ms, loss }],
 *                           routes: [{ destination, next_hop, metric_ms, hops }] }], links: [{ a, b,
 *                           srtt_ms, srtt_a_ms, srtt_b_ms, rttvar_ms, loss, state }] } (404 NOT_COLLECTOR)
 *   GET /api/topology/stream  the same as server-sent events (`event: topology`), at once and then on
 *                           every change, at most every STREAM_MIN_INTERVAL_MS; neighbours and routes
 *                           as arrays ([id, srtt_ms, rttvar_ms, loss], [destination, next_hop,
 *                           metric_ms, hops]) to keep 200-node updates small
 *   GET /  (and /app.js, /style.css, /vendor/cytoscape.min.js)  the live web view (web/), served
 *                           from the installed package: no CDN, works offline
 *   GET /metrics   Prometheus text format, from a Registry of this node's own (never the global
 *                  one, so that several nodes can live in one process): per-link RTT, RTT variance
 *                  and loss gauges, frame and byte counters and drops by reason (read from
 *                  engine.stats() when scraped), runtime drops, and the process default metrics.
 *   anything else  404 JSON { error }
 */
import http from "node:http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import type { EngineStats } from "../node/engine.js";
import { SkeinError } from "../core/errors.js";
import { parseNodeId } from "../core/node-id.js";
import type { NeighbourInfo, ProbeResult, RouteView } from "../node/io.js";
import type { SecurityInfo } from "../node/secure-paths.js";
import { bindError } from "./udp.js";
import type { Topology } from "../features/collector/model.js";
import { TopologyStream, serveStatic } from "./web.js";

/** What the HTTP API reads from the node. */
export interface NodeView {
  readonly id: NodeId;
  readonly addresses: string[];
  /** Monotonic ms when the node started (same clock as `now()`). */
  readonly startedAtMs: number;
  now(): number;
  neighbours(): NeighbourInfo[];
  stats(): EngineStats;
  /** Runtime-level drops and errors by reason (transports, driver, inbox). */
  runtimeCounters(): Map<string, number>;
  /** The node's security settings and keys (engine.securityInfo()); absent in views without an engine. */
  security?: () => SecurityInfo;
  /** Routing: the table, and probes through the data plane. */
  routes(): RouteView[];
  /** Collector (issue 6): the model, undefined on a node that is not a collector. */
  topology?(): Topology | undefined;
  trace(destination: NodeId): Promise<ProbeResult>;
  ping(destination: NodeId): Promise<ProbeResult>;
  /** Discovery by tags: the node's advertised and connect tags. */
  tags?(): { local: string[]; connect: string[] };
}

export function routeJson(route: RouteView): unknown {
  return {
    destination: route.destination,
    state: route.state,
    next_hop: route.nextHop ?? null,
    metric_ms: route.metricMs ?? null,
    hops: route.hops,
    seqno: route.seqno,
    alternates: route.alternates.map((alternate) => ({
      via: alternate.via,
      metric_ms: alternate.metricMs ?? null,
      hops: alternate.hops,
      feasible: alternate.feasible,
      usable: alternate.usable,
    })),
  };
}

export function routesJson(view: NodeView): unknown {
  return { id: view.id, routes: view.routes().map(routeJson) };
}

export function probeJson(result: ProbeResult): unknown {
  return {
    destination: result.destination,
    complete: result.complete,
    rtt_ms: result.rttMs ?? null,
    hops: result.hops.map((hop) => ({ node: hop.node, previous_hop: hop.previousHop, link_rtt_ms: hop.linkRttMs ?? null, ttl: hop.ttl })),
  };
}

import type { WebAddr } from "./web-addr.js";
export { type WebAddr, parseWebAddr } from "./web-addr.js";

export function nodeJson(view: NodeView): unknown {
  const tags = view.tags?.() ?? { local: [], connect: [] };
  const neighbours = view.neighbours();
  return {
    id: view.id,
    addresses: view.addresses,
    uptime_s: Math.max(0, (view.now() - view.startedAtMs) / 1000),
    local_tags: tags.local,
    connect_tags: tags.connect,
    neighbours: neighbours.map((n) => ({
      id: n.id,
      address: n.address,
      transport: n.transport,
      state: n.state,
      srtt_ms: n.srttMs ?? null,
      rttvar_ms: n.rttvarMs ?? null,
      loss: n.loss,
      tags: n.tags ?? [],
      // What the link handshake authenticated (null on plaintext links).
      binding: n.binding ?? null,
      key_fingerprint: n.keyFingerprint ?? null,
    })),
    ...(view.security === undefined ? {} : { security: securityJson(view.security(), view.stats(), neighbours) }),
  };
}

/** GET /api/node's `security` section: the mode, this node's keys, and what end-to-end sealing does. */
export function securityJson(info: SecurityInfo, stats: EngineStats, neighbours: NeighbourInfo[]): unknown {
  const e2e = stats.endToEnd;
  return {
    // "open" (no admission), "network-key", "ca", or "insecure" (plaintext: benchmarks only).
    mode: info.mode.replace("_", "-"),
    node_id_binding: info.nodeIdBinding,
    key_fingerprint: info.signingKey,
    static_key_fingerprint: info.staticKey,
    network_key_id: info.networkKeyId ?? null,
    ca_fingerprint: info.caFingerprint ?? null,
    certificate: info.certificate === undefined ? null : { not_before: info.certificate.notBefore, not_after: info.certificate.notAfter, tags: info.certificate.tags },
    // Each neighbour's key as its link handshake authenticated it (null: not authenticated yet).
    neighbours: neighbours.map((n) => ({ id: n.id, key_fingerprint: n.keyFingerprint ?? null, binding: n.binding ?? null })),
    end_to_end: {
      enabled: info.mode !== "insecure",
      sealed: e2e.sealed,
      opened: e2e.opened,
      forwarded_sealed: e2e.forwardedSealed,
      forwarded_clear: e2e.forwardedClear,
      keys_from_handshakes: e2e.keysFromHandshakes,
      keys_from_records: e2e.keysFromRecords,
      pending_frames: e2e.pendingFrames,
    },
  };
}

/** A per-node Prometheus registry whose metrics are read from the node when scraped. */
export function createMetricsRegistry(view: NodeView, options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  // All the metrics of one scrape come from one stats() snapshot.
  let snapshot: EngineStats | undefined;
  let snapshotAt = -Infinity;
  const stats = (): EngineStats => {
    const now = view.now();
    if (snapshot === undefined || now - snapshotAt > 50) {
      snapshot = view.stats();
      snapshotAt = now;
    }
    return snapshot;
  };
  const registers = [registry];

  const linkGauge = (name: string, help: string, read: (link: EngineStats["links"][number]) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: ["peer"] as const,
      registers,
      collect() {
        this.reset();
        for (const link of stats().links) {
          const value = read(link);
          if (value !== undefined && Number.isFinite(value)) this.set({ peer: String(link.peer) }, value);
        }
      },
    });
  };
  linkGauge("skein_link_rtt_ms", "Smoothed round-trip time of the link to a neighbour, in milliseconds.", (l) => l.srttMs);
  linkGauge("skein_link_rttvar_ms", "Round-trip time variation of the link to a neighbour, in milliseconds.", (l) => l.rttvarMs);
  linkGauge("skein_link_loss_ratio", "Fraction of probes lost on the link to a neighbour over the sliding window (0..1).", (l) => l.loss);

  const totalCounter = (name: string, help: string, read: (s: EngineStats) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(Math.max(0, read(stats())));
      },
    });
  };
  totalCounter("skein_frames_in_total", "Frames received.", (s) => s.framesIn);
  totalCounter("skein_frames_out_total", "Frames sent.", (s) => s.framesOut);
  totalCounter("skein_bytes_in_total", "Bytes received.", (s) => s.bytesIn);
  totalCounter("skein_bytes_out_total", "Bytes sent.", (s) => s.bytesOut);
  totalCounter("skein_frames_forwarded_total", "Routed frames relayed for other nodes.", (s) => s.framesForwarded);
  totalCounter("skein_e2e_sealed_total", "Routed frames this node sealed end to end (for a destination behind a relay).", (s) => s.endToEnd.sealed);
  totalCounter("skein_e2e_opened_total", "Sealed frames for this node that authenticated and were opened.", (s) => s.endToEnd.opened);
  new Counter({
    name: "skein_e2e_forwarded_total",
    help: "Routed frames relayed for other nodes, by payload: sealed (opaque to this node) or clear (routing probes, key exchange).",
    labelNames: ["payload"] as const,
    registers,
    collect() {
      this.reset();
      const e2e = stats().endToEnd;
      this.inc({ payload: "sealed" }, e2e.forwardedSealed);
      this.inc({ payload: "clear" }, e2e.forwardedClear);
    },
  });
  totalCounter("skein_e2e_key_requests_total", "End-to-end key requests sent (identity records asked of non-neighbours).", (s) => s.endToEnd.keyRequestsSent);
  new Gauge({
    name: "skein_routes",
    help: "Destinations this node has a route to.",
    registers,
    collect() {
      this.set(view.routes().filter((route) => route.nextHop !== undefined).length);
    },
  });

  new Counter({
    name: "skein_frames_dropped_total",
    help: "Frames dropped by the engine, by reason.",
    labelNames: ["reason"] as const,
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(stats().dropped)) this.inc({ reason }, Math.max(0, count));
    },
  });
  new Counter({
    name: "skein_runtime_events_total",
    help: "Runtime-level drops and errors (sockets, unknown senders, full inbox, listener errors), by reason.",
    labelNames: ["reason"] as const,
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of view.runtimeCounters()) this.inc({ reason }, count);
    },
  });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

export class HttpApi {
  private constructor(
    private readonly server: http.Server,
    readonly host: string,
    readonly port: number,
    readonly registry: Registry,
    private readonly stream: TopologyStream | undefined,
  ) {}

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Starts the server. Throws SkeinError PORT_IN_USE when the port is taken. */
  static async start(addr: WebAddr, view: NodeView, logger: Logger): Promise<HttpApi> {
    const registry = createMetricsRegistry(view);
    const stream = view.topology === undefined ? undefined : new TopologyStream(() => view.topology?.());
    const server = http.createServer((request, response) => {
      handle(request, response, view, registry, stream).catch((error: unknown) => {
        logger.error({ err: (error as Error).message, url: request.url }, "http handler failed");
        if (!response.headersSent) sendJson(response, 500, { error: "internal error" });
        else response.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(bindError(error, "HTTP", addr.host, addr.port, "--web-addr"));
      };
      server.once("error", onError);
      server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (error) => logger.warn({ err: error.message }, "http server error"));
    const port = (server.address() as { port: number }).port;
    return new HttpApi(server, addr.host, port, registry, stream);
  }

  async close(): Promise<void> {
    this.stream?.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.registry.clear();
  }
}

async function handle(request: http.IncomingMessage, response: http.ServerResponse, view: NodeView, registry: Registry, stream: TopologyStream | undefined): Promise<void> {
  const path = (request.url ?? "/").split("?")[0];
  if (request.method !== "GET" && request.method !== "HEAD") {
    sendJson(response, 405, { error: `method ${request.method} not allowed; use GET` });
    return;
  }
  if (path === "/api/node") {
    sendJson(response, 200, nodeJson(view));
    return;
  }
  if (path === "/api/routes") {
    sendJson(response, 200, routesJson(view));
    return;
  }
  const routing = /^\/api\/(routes|trace|ping)\/([^/]+)$/.exec(path ?? "");
  if (routing !== null) {
    const destination = parseNodeId(decodeURIComponent(routing[2]!));
    if (destination === undefined) {
      sendJson(response, 400, { error: `bad destination ${JSON.stringify(routing[2])}: expected a NodeId (an integer in 1..4294967295)` });
      return;
    }
    if (routing[1] === "routes") {
      const route = view.routes().find((candidate) => candidate.destination === destination);
      if (route === undefined) sendJson(response, 404, { error: `node ${view.id} knows no route to node ${destination}`, code: "NO_ROUTE" });
      else sendJson(response, 200, routeJson(route));
      return;
    }
    try {
      const result = routing[1] === "trace" ? await view.trace(destination) : await view.ping(destination);
      sendJson(response, 200, probeJson(result));
    } catch (error) {
      if (!(error instanceof SkeinError)) throw error;
      sendJson(response, error.code === "NO_ROUTE" ? 404 : 503, { error: error.message, code: error.code });
    }
    return;
  }
  if (path === "/api/topology" || path === "/api/topology/stream") {
    const topology = view.topology?.();
    if (topology === undefined || stream === undefined) {
      sendJson(response, 404, { error: `node ${view.id} is not a collector; start it with --collector to serve the network's topology`, code: "NOT_COLLECTOR" });
    } else if (path === "/api/topology") {
      sendJson(response, 200, topology);
    } else {
      stream.add(request, response);
    }
    return;
  }
  if (await serveStatic(path ?? "/", request, response)) return;
  if (path === "/metrics") {
    const text = await registry.metrics();
    response.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
    response.end(text);
    return;
  }
  sendJson(response, 404, { error: `no such endpoint ${path}; try /, /api/node, /api/routes, /api/topology, /api/trace/DEST, /api/ping/DEST or /metrics` });
}

function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(text);
}

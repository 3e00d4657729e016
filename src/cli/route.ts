/**
 * `skein route --api URL DEST`: the path a node's frames to DEST take now, hop by hop, each hop
 * with its measured link RTT, and why it beats the direct link when it does. It reads the node's
 * HTTP API: `/api/trace/DEST` (probes through the real data plane, like traceroute), `/api/routes/DEST`
 * (the table's view: metric, alternates) and `/api/node` (the direct link's RTT).
 * Parsing and rendering are pure; `fetchApiJson` does the I/O.
 */
import { parseNodeId } from "../core/node-id.js";
import { CliFailure, UsageError, errorMessage } from "./errors.js";
import { DEFAULT_API_TIMEOUT_MS, describeFetchError, parseNodeStatus } from "./status.js";
import { formatNumber, renderTable } from "./table.js";

/** The trace waits up to 3 s inside the node for slow hops; the HTTP call gets this much more. */
export const ROUTE_API_TIMEOUT_MS = DEFAULT_API_TIMEOUT_MS + 3000;

export interface TraceHopRow {
  node: number;
  previousHop: number;
  linkRttMs: number | undefined;
  ttl: number;
}

export interface RouteInputs {
  /** The node asked. */
  id: number;
  destination: number;
  trace: { complete: boolean; rttMs: number | undefined; hops: TraceHopRow[] };
  /** From the table; undefined when the node knows no route. */
  route:
    | {
        nextHop: number | undefined;
        metricMs: number | undefined;
        hops: number;
        alternates: { via: number; metricMs: number | undefined; hops: number; usable: boolean }[];
      }
    | undefined;
  /** The direct link's smoothed RTT, when DEST is an up neighbour. */
  directRttMs: number | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

export function parseTrace(json: unknown): RouteInputs["trace"] | undefined {
  if (!isRecord(json) || !Array.isArray(json.hops)) return undefined;
  const hops: TraceHopRow[] = [];
  for (const hop of json.hops) {
    if (!isRecord(hop)) continue;
    const node = num(hop.node);
    const ttl = num(hop.ttl);
    if (node === undefined || ttl === undefined) continue;
    hops.push({ node, previousHop: num(hop.previous_hop) ?? 0, linkRttMs: num(hop.link_rtt_ms), ttl });
  }
  hops.sort((a, b) => a.ttl - b.ttl);
  return { complete: json.complete === true, rttMs: num(json.rtt_ms), hops };
}

export function parseRoute(json: unknown): RouteInputs["route"] {
  if (!isRecord(json)) return undefined;
  const alternates: NonNullable<RouteInputs["route"]>["alternates"] = [];
  if (Array.isArray(json.alternates)) {
    for (const alternate of json.alternates) {
      if (!isRecord(alternate) || num(alternate.via) === undefined) continue;
      alternates.push({ via: num(alternate.via)!, metricMs: num(alternate.metric_ms), hops: num(alternate.hops) ?? 0, usable: alternate.usable === true });
    }
  }
  return { nextHop: num(json.next_hop), metricMs: num(json.metric_ms), hops: num(json.hops) ?? 0, alternates };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** The text `skein route` prints. */
export function renderRoute(input: RouteInputs): string {
  const { id, destination, trace, route, directRttMs } = input;
  const lines: string[] = [];
  const reached = trace.hops.length > 0 && trace.hops[trace.hops.length - 1]!.node === destination;
  const pathHops = reached ? trace.hops.length : undefined;
  lines.push(
    `route from node ${id} to node ${destination}: ` +
      (pathHops === undefined ? "the destination did not answer" : `${plural(pathHops, "hop")}, ${formatNumber(trace.rttMs)} ms round trip (traced now)`),
  );
  const rows = trace.hops.map((hop) => [String(hop.ttl), String(hop.node), String(hop.previousHop), formatNumber(hop.linkRttMs)]);
  // Hops that did not answer show as "?".
  const last = trace.hops.length > 0 ? trace.hops[trace.hops.length - 1]!.ttl : 0;
  for (let ttl = 1; ttl < last; ttl++) if (!trace.hops.some((hop) => hop.ttl === ttl)) rows.push([String(ttl), "?", "?", "-"]);
  rows.sort((a, b) => Number(a[0]) - Number(b[0]));
  if (rows.length > 0) {
    const table = renderTable(
      [{ header: "HOP", align: "right" }, { header: "NODE", align: "right" }, { header: "FROM", align: "right" }, { header: "LINK RTT(ms)", align: "right" }],
      rows,
    );
    lines.push(...table.map((line) => `  ${line}`));
  }
  const known = trace.hops.every((hop) => hop.linkRttMs !== undefined);
  const pathRtt = reached && known && trace.complete ? trace.hops.reduce((sum, hop) => sum + hop.linkRttMs!, 0) : undefined;
  if (pathRtt !== undefined) lines.push(`  sum of the links' RTTs: ${formatNumber(pathRtt)} ms`);
  if (!trace.complete && reached) lines.push("  (some hops did not answer in time: the path above has gaps)");

  // Why this path.
  if (directRttMs === undefined) {
    lines.push(`no direct link between ${id} and ${destination} (they are not neighbours): the traffic is relayed`);
  } else if (pathHops === 1) {
    const better = route?.alternates.filter((alternate) => alternate.usable && alternate.via !== destination && alternate.metricMs !== undefined) ?? [];
    const next = better.length > 0 ? ` (best relay: via ${better[0]!.via}, about ${formatNumber(better[0]!.metricMs! * 2)} ms round trip)` : "";
    lines.push(`the direct link is the fastest path: RTT ${formatNumber(directRttMs)} ms; no relay beats it${next}`);
  } else if (pathRtt !== undefined) {
    const relays = trace.hops.slice(0, -1).map((hop) => hop.node).join(", ");
    const gain = directRttMs - pathRtt;
    if (gain > 0) {
      lines.push(
        `direct link ${id}–${destination}: RTT ${formatNumber(directRttMs)} ms; the path via ${relays} is faster by ${formatNumber(gain)} ms (${formatNumber((gain / directRttMs) * 100, 0)}%)`,
      );
    } else {
      lines.push(`direct link ${id}–${destination}: RTT ${formatNumber(directRttMs)} ms; the path via ${relays} is not faster right now (routes switch with hysteresis)`);
    }
  } else {
    lines.push(`direct link ${id}–${destination}: RTT ${formatNumber(directRttMs)} ms`);
  }
  if (route !== undefined) {
    const alternates = route.alternates.filter((alternate) => alternate.via !== route.nextHop);
    const listed = alternates
      .slice(0, 5)
      .map((alternate) => `via ${alternate.via} (${formatNumber(alternate.metricMs)} ms, ${plural(alternate.hops, "hop")}${alternate.usable ? "" : ", not loop-free now"})`)
      .join(", ");
    lines.push(
      `route table: next hop ${route.nextHop ?? "none"}, metric ${formatNumber(route.metricMs)} ms one way, ${plural(route.hops, "hop")}` +
        (listed.length > 0 ? `; alternates: ${listed}` : "; no alternates"),
    );
  } else {
    lines.push(`route table: node ${id} has no entry for node ${destination}`);
  }
  return `${lines.join("\n")}\n`;
}

/** GETs `BASE + path`; 404 gives undefined when `allowNotFound`. Throws CliFailure with one clear line. */
export async function fetchApiJson(apiBase: string, path: string, timeoutMs: number, allowNotFound = false): Promise<unknown> {
  const url = `${apiBase}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
  } catch (error) {
    const reason = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError") ? `no answer within ${timeoutMs} ms` : describeFetchError(error);
    throw new CliFailure(`cannot reach the node API at ${url}: ${reason}; is "skein node --web-addr" running there?`, "API_UNREACHABLE");
  }
  let body: unknown;
  try {
    body = (await response.json()) as unknown;
  } catch (error) {
    throw new CliFailure(`the node API at ${url} did not return JSON: ${errorMessage(error)}`, "API_ERROR");
  }
  if (response.status === 404 && allowNotFound) return undefined;
  if (!response.ok) {
    const detail = isRecord(body) && typeof body.error === "string" ? `: ${body.error}` : "";
    throw new CliFailure(`the node API at ${url} answered HTTP ${response.status}${detail}`, isRecord(body) && body.code === "NO_ROUTE" ? "NO_ROUTE" : "API_ERROR");
  }
  return body;
}

export interface RouteFlags {
  api?: string;
  json?: boolean;
  timeoutMs?: string;
}

/** Fetches what `renderRoute` needs (or the raw JSON with --json). */
export async function routeReport(apiBase: string, destinationText: string, timeoutMs: number): Promise<{ inputs: RouteInputs; json: unknown }> {
  const destination = parseNodeId(destinationText.trim());
  if (destination === undefined) throw new UsageError(`bad DEST ${JSON.stringify(destinationText)}: expected a NodeId, an integer in 1..4294967295`);
  const nodeJson = await fetchApiJson(apiBase, "/api/node", timeoutMs);
  const status = parseNodeStatus(nodeJson);
  if (status === undefined || typeof status.id !== "number") throw new CliFailure(`the node API at ${apiBase}/api/node returned JSON without a node "id"; is this a skein node?`, "API_ERROR");
  if (status.id === destination) throw new UsageError(`DEST ${destination} is the node behind --api itself`);
  const [traceJson, routeJson] = await Promise.all([
    fetchApiJson(apiBase, `/api/trace/${destination}`, timeoutMs),
    fetchApiJson(apiBase, `/api/routes/${destination}`, timeoutMs, true),
  ]);
  const trace = parseTrace(traceJson);
  if (trace === undefined) throw new CliFailure(`the node API at ${apiBase}/api/trace/${destination} returned an unexpected answer`, "API_ERROR");
  const direct = status.neighbours.find((neighbour) => neighbour.id === destination && neighbour.state === "up");
  return {
    inputs: { id: status.id, destination, trace, route: parseRoute(routeJson), directRttMs: direct?.srttMs },
    json: { id: status.id, destination, trace: traceJson, route: routeJson ?? null, direct_rtt_ms: direct?.srttMs ?? null },
  };
}

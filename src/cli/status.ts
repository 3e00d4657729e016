/**
 * `skein status --api URL`: reads a node's `/api/node` and shows its neighbours as a table.
 * Parsing and rendering are pure; `fetchNodeStatus` does the I/O.
 */
import { CliFailure, UsageError, errorMessage } from "./errors.js";
import { formatDuration, formatNumber, formatPercent, renderTable } from "./table.js";

export interface NeighbourRow {
  id: number | string;
  address: string;
  transport: string;
  state: string;
  srttMs: number | undefined;
  rttvarMs: number | undefined;
  /** 0..1 */
  loss: number | undefined;
  /** Discovery by tags: the neighbour's tags ([] or absent: none). */
  tags?: string[];
}

export interface NodeStatus {
  id: number | string;
  addresses: string[];
  uptimeMs: number | undefined;
  neighbours: NeighbourRow[];
  /** Discovery by tags: the node's own tags and connect tags. */
  localTags?: string[];
  connectTags?: string[];
}

export const DEFAULT_API_TIMEOUT_MS = 3000;

/** `127.0.0.1:8080` or `http://127.0.0.1:8080/` → `http://127.0.0.1:8080`. Throws UsageError. */
export function normalizeApiUrl(text: string): string {
  const trimmed = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`bad --api value ${JSON.stringify(text)}: expected the node's HTTP API URL, e.g. http://127.0.0.1:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`bad --api value ${JSON.stringify(text)}: expected an http:// or https:// URL, e.g. http://127.0.0.1:8080`);
  }
  return url.toString().replace(/\/+$/, "");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function numberOr(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

function idOf(value: unknown): number | string | undefined {
  return typeof value === "number" || typeof value === "string" ? value : undefined;
}

/**
 * Reads `/api/node` JSON (`{ id, addresses, uptime_s, local_tags, connect_tags, neighbours: [{ id,
 * address, transport, state, srtt_ms, rttvar_ms, loss, tags }] }`; camelCase keys are accepted too;
 * tags may be absent); returns undefined when it does
 * not look like a node's status.
 */
export function parseNodeStatus(json: unknown): NodeStatus | undefined {
  if (!isRecord(json)) return undefined;
  const id = idOf(json.id);
  if (id === undefined) return undefined;
  const list = json.neighbours ?? json.neighbors ?? [];
  if (!Array.isArray(list)) return undefined;
  const neighbours: NeighbourRow[] = [];
  for (const item of list) {
    if (!isRecord(item)) continue;
    const neighbourId = idOf(item.id ?? item.peer);
    if (neighbourId === undefined) continue;
    neighbours.push({
      id: neighbourId,
      address: typeof item.address === "string" ? item.address : "-",
      transport: typeof item.transport === "string" ? item.transport : "-",
      state: typeof item.state === "string" ? item.state : "-",
      srttMs: numberOr(item.srtt_ms ?? item.srttMs),
      rttvarMs: numberOr(item.rttvar_ms ?? item.rttvarMs),
      loss: numberOr(item.loss),
      tags: stringsOf(item.tags),
    });
  }
  neighbours.sort((a, b) => compareIds(a.id, b.id));
  const addresses = Array.isArray(json.addresses) ? json.addresses.filter((a): a is string => typeof a === "string") : [];
  const uptimeS = numberOr(json.uptime_s ?? json.uptimeS);
  const uptimeMs = numberOr(json.uptimeMs) ?? (uptimeS === undefined ? undefined : uptimeS * 1000);
  return { id, addresses, uptimeMs, neighbours, localTags: stringsOf(json.local_tags ?? json.localTags), connectTags: stringsOf(json.connect_tags ?? json.connectTags) };
}

export function compareIds(a: number | string, b: number | string): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = String(a);
  const y = String(b);
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

export const NEIGHBOUR_COLUMNS = [
  { header: "ID", align: "right" },
  { header: "ADDRESS" },
  { header: "TRANSPORT" },
  { header: "STATE" },
  { header: "RTT(ms)", align: "right" },
  { header: "RTTVAR(ms)", align: "right" },
  { header: "LOSS(%)", align: "right" },
] as const;

export function neighbourCells(row: NeighbourRow): string[] {
  return [
    String(row.id),
    row.address,
    row.transport,
    row.state,
    formatNumber(row.srttMs),
    formatNumber(row.rttvarMs),
    formatPercent(row.loss),
  ];
}

/**
 * The text `skein status` prints: a header line, a line of discovery tags when the node has any,
 * then the neighbour table (with a TAGS column when a neighbour has tags), or a note when none.
 */
export function renderStatus(status: NodeStatus): string {
  const up = status.neighbours.filter((n) => n.state === "up").length;
  let header =
    `node ${status.id}  up ${formatDuration(status.uptimeMs)}  ` +
    `${status.neighbours.length} neighbour${status.neighbours.length === 1 ? "" : "s"} (${up} up)` +
    (status.addresses.length > 0 ? `  ${status.addresses.join(" ")}` : "");
  const local = status.localTags ?? [];
  const connect = status.connectTags ?? [];
  if (local.length > 0 || connect.length > 0) header += `\ntags ${local.length > 0 ? local.join(",") : "-"}  connect-tags ${connect.length > 0 ? connect.join(",") : "-"}`;
  if (status.neighbours.length === 0) return `${header}\n(no neighbours)\n`;
  const withTags = status.neighbours.some((n) => (n.tags ?? []).length > 0);
  const lines = withTags
    ? renderTable([...NEIGHBOUR_COLUMNS, { header: "TAGS" }], status.neighbours.map((n) => [...neighbourCells(n), (n.tags ?? []).join(",")]))
    : renderTable(NEIGHBOUR_COLUMNS, status.neighbours.map(neighbourCells));
  return `${header}\n${lines.join("\n")}\n`;
}

/** GETs `BASE/api/node` with a timeout. Throws CliFailure with one clear line. */
export async function fetchNodeJson(apiBase: string, timeoutMs = DEFAULT_API_TIMEOUT_MS): Promise<unknown> {
  const url = `${apiBase}/api/node`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
  } catch (error) {
    const reason =
      error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")
        ? `no answer within ${timeoutMs} ms`
        : describeFetchError(error);
    throw new CliFailure(`cannot reach the node API at ${url}: ${reason}; is "skein node --web-addr" running there?`, "API_UNREACHABLE");
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    throw new CliFailure(`the node API at ${url} answered HTTP ${response.status} ${response.statusText}`.trimEnd(), "API_ERROR");
  }
  try {
    return (await response.json()) as unknown;
  } catch (error) {
    throw new CliFailure(`the node API at ${url} did not return JSON: ${errorMessage(error)}`, "API_ERROR");
  }
}

/** `fetch failed` hides the reason in `cause` (ECONNREFUSED, ENOTFOUND, …). */
export function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return error.message;
}

export async function fetchNodeStatus(apiBase: string, timeoutMs = DEFAULT_API_TIMEOUT_MS): Promise<NodeStatus> {
  const json = await fetchNodeJson(apiBase, timeoutMs);
  const status = parseNodeStatus(json);
  if (status === undefined) throw new CliFailure(`the node API at ${apiBase}/api/node returned JSON without a node "id"; is this a skein node?`, "API_ERROR");
  return status;
}

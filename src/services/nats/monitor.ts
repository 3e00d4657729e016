/**
 * The monitoring endpoints' JSON, shaped like nats-server's (/varz, /connz, /subsz, /healthz), so
 * that existing dashboards and scripts read them. Pure: the server hands in a snapshot.
 * Durations follow Go's conventions: `ping_interval` in nanoseconds, `uptime`/`idle` as "1h2m3s",
 * `rtt` as Go's Duration.String ("153µs").
 */
import type { BrokerStats, Subscription } from "../../features/pubsub/broker.js";
import { subjectMatches } from "../../features/pubsub/subject.js";

export interface ConnectionSnapshot {
  cid: number;
  ip: string;
  port: number;
  startMs: number;
  lastActivityMs: number;
  rttMs: number | undefined;
  pendingBytes: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  name: string;
  lang: string;
  version: string;
  user: string | undefined;
  subs: Subscription[];
}

export interface ServerSnapshot {
  serverId: string;
  serverName: string;
  version: string;
  skeinVersion: string;
  host: string;
  port: number;
  httpHost: string;
  httpPort: number;
  maxConnections: number;
  pingIntervalMs: number;
  pingMax: number;
  authTimeoutMs: number;
  maxControlLine: number;
  maxPayload: number;
  maxPending: number;
  cluster: { name?: string; host?: string; port?: number; routes: string[] } | undefined;
  connectUrls: string[];
  /** Wall-clock ms since the epoch of start, config load and now (read by the runtime's server). */
  startWallMs: number;
  configLoadWallMs: number;
  nowWallMs: number;
  /** Monotonic ms the connection times are in, at `nowWallMs`. */
  nowMonoMs: number;
  memBytes: number;
  cores: number;
  totalConnections: number;
  slowConsumers: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  lameDuck: boolean;
  httpRequests: Record<string, number>;
  broker: BrokerStats;
  connections: ConnectionSnapshot[];
}

const NS_PER_MS = 1_000_000;

/** Go's time.Duration.String() for a duration in ms. */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  const ns = Math.round(ms * NS_PER_MS);
  if (ns < 1000) return `${ns}ns`;
  if (ns < 1_000_000) return `${trim(ns / 1000)}µs`;
  if (ns < 1_000_000_000) return `${trim(ns / 1_000_000)}ms`;
  let seconds = ns / 1e9;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  let out = "";
  if (hours > 0) out += `${hours}h`;
  if (hours > 0 || minutes > 0) out += `${minutes}m`;
  return `${out}${trim(seconds)}s`;
}

function trim(value: number): string {
  return String(Number(value.toFixed(3)));
}

/** nats-server's uptime format: "1d2h3m4s", whole seconds. */
export function natsUptime(ms: number): string {
  let seconds = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(seconds / 86400);
  seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  if (days > 0) return `${days}d${hours}h${minutes}m${seconds}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

function iso(wallMs: number): string {
  return new Date(wallMs).toISOString();
}

function wallOf(snapshot: ServerSnapshot, monoMs: number): number {
  return snapshot.nowWallMs - (snapshot.nowMonoMs - monoMs);
}

export function varz(s: ServerSnapshot): Record<string, unknown> {
  return {
    server_id: s.serverId,
    server_name: s.serverName,
    version: s.version,
    proto: 1,
    host: s.host,
    port: s.port,
    max_connections: s.maxConnections,
    ping_interval: s.pingIntervalMs * NS_PER_MS,
    ping_max: s.pingMax,
    http_host: s.httpHost,
    http_port: s.httpPort,
    http_base_path: "",
    https_port: 0,
    auth_timeout: s.authTimeoutMs / 1000,
    max_control_line: s.maxControlLine,
    max_payload: s.maxPayload,
    max_pending: s.maxPending,
    cluster:
      s.cluster === undefined
        ? {}
        : { name: s.cluster.name, addr: s.cluster.host, cluster_port: s.cluster.port, urls: s.cluster.routes.length > 0 ? s.cluster.routes : undefined },
    gateway: {},
    leaf: {},
    mqtt: {},
    websocket: {},
    jetstream: {},
    connect_urls: s.connectUrls.length > 0 ? s.connectUrls : undefined,
    start: iso(s.startWallMs),
    now: iso(s.nowWallMs),
    uptime: natsUptime(s.nowWallMs - s.startWallMs),
    mem: s.memBytes,
    cores: s.cores,
    gomaxprocs: s.cores,
    cpu: 0,
    connections: s.connections.length,
    total_connections: s.totalConnections,
    routes: 0,
    remotes: 0,
    leafnodes: 0,
    in_msgs: s.inMsgs,
    out_msgs: s.outMsgs,
    in_bytes: s.inBytes,
    out_bytes: s.outBytes,
    slow_consumers: s.slowConsumers,
    subscriptions: s.broker.subscriptions,
    http_req_stats: s.httpRequests,
    config_load_time: iso(s.configLoadWallMs),
    lame_duck_mode: s.lameDuck || undefined,
    skein: {
      version: s.skeinVersion,
      broker: s.broker,
    },
  };
}

export interface ConnzQuery {
  subs: "none" | "list" | "detail";
  offset: number;
  limit: number;
  cid: number | undefined;
}

export function parseConnzQuery(params: URLSearchParams): ConnzQuery {
  const subs = params.get("subs");
  const number = (key: string, fallback: number): number => {
    const value = Number(params.get(key));
    return params.has(key) && Number.isInteger(value) && value >= 0 ? value : fallback;
  };
  return {
    subs: subs === "detail" ? "detail" : subs === "1" || subs === "true" ? "list" : "none",
    offset: number("offset", 0),
    limit: number("limit", 1024),
    cid: params.has("cid") ? number("cid", -1) : undefined,
  };
}

function subDetail(sub: Subscription, cid: number): Record<string, unknown> {
  return { subject: sub.subject, qgroup: sub.queue, sid: sub.sid, msgs: sub.delivered, max: sub.max > 0 ? sub.max : undefined, cid };
}

export function connz(s: ServerSnapshot, query: ConnzQuery): Record<string, unknown> {
  let list = [...s.connections].sort((a, b) => a.cid - b.cid);
  if (query.cid !== undefined) list = list.filter((connection) => connection.cid === query.cid);
  const page = list.slice(query.offset, query.offset + query.limit);
  return {
    server_id: s.serverId,
    now: iso(s.nowWallMs),
    num_connections: page.length,
    total: list.length,
    offset: query.offset,
    limit: query.limit,
    connections: page.map((c) => {
      const entry: Record<string, unknown> = {
        cid: c.cid,
        kind: "Client",
        type: "nats",
        ip: c.ip,
        port: c.port,
        start: iso(wallOf(s, c.startMs)),
        last_activity: iso(wallOf(s, c.lastActivityMs)),
        rtt: c.rttMs === undefined ? undefined : goDuration(c.rttMs),
        uptime: natsUptime(s.nowMonoMs - c.startMs),
        idle: natsUptime(s.nowMonoMs - c.lastActivityMs),
        pending_bytes: c.pendingBytes,
        in_msgs: c.inMsgs,
        out_msgs: c.outMsgs,
        in_bytes: c.inBytes,
        out_bytes: c.outBytes,
        subscriptions: c.subs.length,
        name: c.name || undefined,
        lang: c.lang || undefined,
        version: c.version || undefined,
        authorized_user: c.user,
      };
      if (query.subs === "list") entry.subscriptions_list = c.subs.map((sub) => sub.subject);
      if (query.subs === "detail") entry.subscriptions_list_detail = c.subs.map((sub) => subDetail(sub, c.cid));
      return entry;
    }),
  };
}

export function subsz(s: ServerSnapshot, params: URLSearchParams, cidOf: (sub: Subscription) => number, all: () => Subscription[]): Record<string, unknown> {
  const trie = s.broker.trie;
  const out: Record<string, unknown> = {
    num_subscriptions: s.broker.subscriptions,
    num_cache: trie.cacheEntries,
    num_inserts: trie.inserts,
    num_removes: trie.removes,
    num_matches: trie.matches,
    cache_hit_rate: trie.matches === 0 ? 0 : trie.cacheHits / trie.matches,
    max_fanout: 0,
    avg_fanout: 0,
  };
  const wantList = params.get("subs") === "1" || params.get("subs") === "true" || params.get("subs") === "detail";
  if (!wantList) return out;
  const test = params.get("test");
  let subs = all();
  if (test !== null && test !== "") subs = subs.filter((sub) => subjectMatches(sub.subject, test));
  const offset = Math.max(0, Number(params.get("offset") ?? 0) || 0);
  const limit = Math.max(0, Number(params.get("limit") ?? 1024) || 1024);
  return {
    server_id: s.serverId,
    now: iso(s.nowWallMs),
    ...out,
    total: subs.length,
    offset,
    limit,
    subscriptions_list: subs.slice(offset, offset + limit).map((sub) => subDetail(sub, cidOf(sub))),
  };
}

export function healthz(lameDuck: boolean): { status: string; error?: string } {
  return lameDuck ? { status: "unavailable", error: "lame duck mode" } : { status: "ok" };
}

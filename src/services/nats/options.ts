/**
 * `skein nats-server` options: a parsed NATS configuration file (conf.ts) plus nats-server's
 * command-line flags (flags win), validated into a `NatsServerConfig`. Pure. Unknown keys and
 * nats-server features skein does not have are warnings, never errors (a drop-in must start on
 * an existing config); values skein cannot honour are errors that name the key and the file.
 */
import { SkeinError } from "../../core/errors.js";
import { checkSubject } from "../../features/pubsub/subject.js";
import type { AuthorizationSpec, PermissionsSpec, SubjectPermission, UserSpec } from "./auth.js";
import type { ConfMap, ConfValue } from "./conf.js";
import { type ConnectionConfig, defaultConnectionConfig } from "./connection.js";
import { NATS_DEFAULTS } from "./protocol.js";
import type { ClusterConfig, NatsServerConfig } from "./config.js";

/** nats-server's flags as the CLI hands them over (strings; booleans for -D/-V). */
export interface NatsServerFlags {
  config?: string;
  addr?: string;
  port?: string;
  name?: string;
  httpPort?: string;
  portsFileDir?: string;
  pidFile?: string;
  logFile?: string;
  debug?: boolean;
  trace?: boolean;
  user?: string;
  pass?: string;
  auth?: string;
  cluster?: string;
  clusterName?: string;
  routes?: string;
}

export interface ResolvedNatsServer {
  server: Omit<NatsServerConfig, "skeinVersion">;
  portsFileDir: string | undefined;
  pidFile: string | undefined;
  logFile: string | undefined;
  debug: boolean;
  trace: boolean;
  warnings: string[];
}

/** Keys of nats-server features skein does not implement: accepted, ignored with a warning. */
const UNSUPPORTED = new Set([
  "jetstream",
  "tls",
  "accounts",
  "leafnodes",
  "leaf",
  "gateway",
  "websocket",
  "ws",
  "mqtt",
  "system_account",
  "operator",
  "operators",
  "resolver",
  "resolver_preload",
  "no_auth_user",
  "https",
  "https_port",
  "client_advertise",
  "no_sys_acc",
  "mappings",
  "nkeys",
  "server_tags",
  "ocsp",
]);

/** Keys accepted and deliberately without effect (logging format, deadlines handled otherwise). */
const ACCEPTED_IGNORED = new Set(["logtime", "logtime_utc", "syslog", "remote_syslog", "max_traced_msg_len", "connect_error_reports", "reconnect_error_reports", "disable_sublist_cache", "prof_port", "logfile_size_limit", "log_size_limit", "trace_verbose", "max_closed_clients", "http_base_path", "lame_duck_grace_period_ms"]);

export class NatsConfigError extends SkeinError {
  constructor(message: string) {
    super("BAD_CONFIG", message);
  }
}

function describe(value: ConfValue): string {
  if (value instanceof Date) return value.toISOString();
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** Go duration strings: "2m", "1m30s", "500ms", "1.5s", "10us"/"10µs", "1h". */
export function parseGoDuration(text: string): number | undefined {
  const match = /^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$/.exec(text.trim());
  if (match === null) return undefined;
  let ms = 0;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, "µs": 0.001, ns: 0.000001 };
  for (const part of text.trim().matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(part[1]) * unit[part[2]!]!;
  return ms;
}

class Resolver {
  readonly warnings: string[] = [];
  constructor(private readonly file: string) {}

  where(key: string): string {
    return `"${key}" in config file "${this.file}"`;
  }

  bad(key: string, value: ConfValue, expected: string): NatsConfigError {
    return new NatsConfigError(`bad ${this.where(key)}: ${describe(value)}; expected ${expected}`);
  }

  integer(key: string, value: ConfValue, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) throw this.bad(key, value, `an integer in ${min}..${max}`);
    return value;
  }

  /** Sizes may be integers ("1048576", "1MB") or strings such as "1MB". */
  size(key: string, value: ConfValue, min: number, max: number): number {
    if (typeof value === "string") {
      const match = /^(\d+)\s*(k|kb|m|mb|g|gb)?$/i.exec(value.trim());
      if (match === null) throw this.bad(key, value, "a size such as 1048576 or 1MB");
      const factor: Record<string, number> = { k: 1000, kb: 1024, m: 1e6, mb: 1024 * 1024, g: 1e9, gb: 1024 ** 3 };
      value = Number(match[1]) * (match[2] === undefined ? 1 : factor[match[2].toLowerCase()]!);
    }
    return this.integer(key, value, min, max);
  }

  string(key: string, value: ConfValue): string {
    if (typeof value !== "string") throw this.bad(key, value, "a string");
    return value;
  }

  boolean(key: string, value: ConfValue): boolean {
    if (typeof value !== "boolean") throw this.bad(key, value, "true or false");
    return value;
  }

  /** A duration: a Go duration string ("2m", "500ms") or a number of seconds (nats-server's old form). */
  duration(key: string, value: ConfValue): number {
    if (typeof value === "number" && value >= 0) return value * 1000;
    if (typeof value === "string") {
      const ms = parseGoDuration(value);
      if (ms !== undefined) return ms;
    }
    throw this.bad(key, value, 'a duration such as "2m", "30s" or "500ms" (quoted), or seconds as a number');
  }

  map(key: string, value: ConfValue): ConfMap {
    if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Date) throw this.bad(key, value, "a map { … }");
    return value;
  }

  stringList(key: string, value: ConfValue): string[] {
    const items = Array.isArray(value) ? value : [value];
    return items.map((item) => this.string(key, item));
  }

  subjects(key: string, value: ConfValue): string[] {
    const list = this.stringList(key, value);
    for (const subject of list) {
      const reason = checkSubject(subject);
      if (reason !== undefined) throw new NatsConfigError(`bad subject ${JSON.stringify(subject)} in ${this.where(key)}: ${reason}`);
    }
    return list;
  }

  direction(key: string, value: ConfValue): SubjectPermission {
    if (typeof value === "string" || Array.isArray(value)) return { allow: this.subjects(key, value) };
    const spec: SubjectPermission = {};
    for (const [name, item] of Object.entries(this.map(key, value))) {
      const lower = name.toLowerCase();
      if (lower === "allow") spec.allow = this.subjects(`${key}.allow`, item);
      else if (lower === "deny") spec.deny = this.subjects(`${key}.deny`, item);
      else this.warnings.push(`ignoring unknown key "${key}.${name}" in config file "${this.file}"`);
    }
    return spec;
  }

  permissions(key: string, value: ConfValue): PermissionsSpec {
    const spec: PermissionsSpec = {};
    for (const [name, item] of Object.entries(this.map(key, value))) {
      const lower = name.toLowerCase();
      if (lower === "publish" || lower === "pub" || lower === "import") spec.publish = this.direction(`${key}.${name}`, item);
      else if (lower === "subscribe" || lower === "sub" || lower === "export") spec.subscribe = this.direction(`${key}.${name}`, item);
      else if (lower === "allow_responses" || lower === "allow_resp" || lower === "responses") {
        this.warnings.push(`"${key}.${name}" in config file "${this.file}" is not supported by skein yet: ignored (replies need an explicit publish allow entry)`);
      } else this.warnings.push(`ignoring unknown key "${key}.${name}" in config file "${this.file}"`);
    }
    return spec;
  }

  authorization(value: ConfValue): AuthorizationSpec {
    const spec: AuthorizationSpec = {};
    for (const [name, item] of Object.entries(this.map("authorization", value))) {
      const key = `authorization.${name}`;
      switch (name.toLowerCase()) {
        case "user":
        case "username":
          spec.user = this.string(key, item);
          break;
        case "pass":
        case "password":
          spec.password = this.string(key, typeof item === "number" ? String(item) : item);
          break;
        case "token":
          spec.token = this.string(key, typeof item === "number" ? String(item) : item);
          break;
        case "timeout": {
          if (typeof item !== "number" || item <= 0) throw this.bad(key, item, "seconds, a positive number");
          spec.timeoutMs = item * 1000;
          break;
        }
        case "users": {
          if (!Array.isArray(item)) throw this.bad(key, item, "a list of { user, password, permissions }");
          spec.users = item.map((entry, index) => this.user(`${key}[${index}]`, entry));
          break;
        }
        case "default_permissions":
          spec.defaultPermissions = this.permissions(key, item);
          break;
        case "permissions":
          spec.defaultPermissions = this.permissions(key, item);
          break;
        default:
          this.warnings.push(`ignoring unknown key "${key}" in config file "${this.file}"`);
      }
    }
    return spec;
  }

  user(key: string, value: ConfValue): UserSpec {
    let user: string | undefined;
    let password: string | undefined;
    let permissions: PermissionsSpec | undefined;
    for (const [name, item] of Object.entries(this.map(key, value))) {
      switch (name.toLowerCase()) {
        case "user":
        case "username":
          user = this.string(`${key}.${name}`, item);
          break;
        case "pass":
        case "password":
          password = this.string(`${key}.${name}`, typeof item === "number" ? String(item) : item);
          break;
        case "permissions":
          permissions = this.permissions(`${key}.${name}`, item);
          break;
        case "nkey":
          throw new NatsConfigError(`${this.where(`${key}.nkey`)}: nkey users are not supported by skein yet; use user and password`);
        default:
          this.warnings.push(`ignoring unknown key "${key}.${name}" in config file "${this.file}"`);
      }
    }
    if (user === undefined) throw new NatsConfigError(`${this.where(key)} has no "user"`);
    if (password === undefined) throw new NatsConfigError(`${this.where(key)} (user "${user}") has no "password"`);
    return permissions === undefined ? { user, password } : { user, password, permissions };
  }
}

/** `host:port`, `:port`, `port` → parts (port -1 = random). */
function hostPort(text: string): { host?: string; port?: number } | undefined {
  const trimmed = text.trim().replace(/^[a-z]+:\/\//, "");
  const match = /^(?:\[?([^\]]*?)\]?:)?(-?\d+)$/.exec(trimmed);
  if (match !== null) return { host: match[1] === undefined || match[1] === "" ? undefined : match[1], port: Number(match[2]) };
  if (/^[^:\s]+$/.test(trimmed)) return { host: trimmed };
  return undefined;
}

function portOf(port: number): number {
  return port === -1 ? 0 : port;
}

export interface ResolveNatsInput {
  conf?: ConfMap;
  confPath?: string;
  /** Top-level keys used as $variables: not settings, so no unknown-key warning. */
  variables?: ReadonlySet<string>;
  flags: NatsServerFlags;
}

/** Config file + flags → server settings. Throws NatsConfigError (code BAD_CONFIG). */
export function resolveNatsServerOptions(input: ResolveNatsInput): ResolvedNatsServer {
  const r = new Resolver(input.confPath ?? "<config>");
  const conf = input.conf ?? {};
  let host: string = NATS_DEFAULTS.host;
  let port: number = NATS_DEFAULTS.port;
  let serverName: string | undefined;
  const connection: ConnectionConfig = defaultConnectionConfig();
  let authorization: AuthorizationSpec | undefined;
  let maxConnections: number = NATS_DEFAULTS.maxConnections;
  let monitorPort: number | undefined;
  let monitorHost: string | undefined;
  let cluster: ClusterConfig | undefined;
  let lameDuckDurationMs: number = NATS_DEFAULTS.lameDuckDurationMs;
  let lameDuckGracePeriodMs: number = NATS_DEFAULTS.lameDuckGracePeriodMs;
  let portsFileDir: string | undefined;
  let pidFile: string | undefined;
  let logFile: string | undefined;
  let debug = false;
  let trace = false;

  for (const [rawKey, value] of Object.entries(conf)) {
    const key = rawKey.toLowerCase();
    switch (key) {
      case "listen": {
        const parts = typeof value === "number" ? { port: value } : hostPort(r.string(rawKey, value));
        if (parts === undefined) throw r.bad(rawKey, value, 'HOST:PORT, e.g. "0.0.0.0:4222"');
        if (parts.host !== undefined) host = parts.host;
        if (parts.port !== undefined) port = r.integer(rawKey, parts.port, -1, 65535);
        break;
      }
      case "host":
      case "net":
      case "addr":
        host = r.string(rawKey, value);
        break;
      case "port":
        port = r.integer(rawKey, value, -1, 65535);
        break;
      case "server_name":
        serverName = r.string(rawKey, value);
        break;
      case "http": {
        const parts = typeof value === "number" ? { port: value } : hostPort(r.string(rawKey, value));
        if (parts === undefined || parts.port === undefined) throw r.bad(rawKey, value, 'a port or "HOST:PORT" for the monitoring endpoints');
        if (parts.host !== undefined) monitorHost = parts.host;
        monitorPort = portOf(r.integer(rawKey, parts.port, -1, 65535));
        break;
      }
      case "http_port":
      case "monitor_port":
        monitorPort = portOf(r.integer(rawKey, value, -1, 65535));
        break;
      case "http_host":
        monitorHost = r.string(rawKey, value);
        break;
      case "max_payload":
        connection.maxPayload = r.size(rawKey, value, 1, 64 * 1024 * 1024);
        break;
      case "max_control_line":
        connection.maxControlLine = r.size(rawKey, value, 64, 1024 * 1024);
        break;
      case "max_pending":
        connection.maxPending = r.size(rawKey, value, 1024, 2 ** 40);
        break;
      case "max_connections":
      case "max_conn":
        maxConnections = r.integer(rawKey, value, 1, 10_000_000);
        break;
      case "max_subscriptions":
      case "max_subs":
        connection.maxSubscriptions = r.integer(rawKey, value, 0, 100_000_000);
        break;
      case "ping_interval":
        connection.pingIntervalMs = r.duration(rawKey, value);
        if (connection.pingIntervalMs <= 0) throw r.bad(rawKey, value, "a positive duration");
        break;
      case "write_deadline":
        connection.writeDeadlineMs = r.duration(rawKey, value);
        break;
      case "ping_max":
        connection.pingMax = r.integer(rawKey, value, 1, 1_000_000);
        break;
      case "authorization":
        authorization = r.authorization(value);
        break;
      case "ports_file_dir":
        portsFileDir = r.string(rawKey, value);
        break;
      case "pid_file":
        pidFile = r.string(rawKey, value);
        break;
      case "log_file":
        logFile = r.string(rawKey, value);
        break;
      case "debug":
        debug = r.boolean(rawKey, value);
        break;
      case "trace":
        trace = r.boolean(rawKey, value);
        break;
      case "lame_duck_duration":
        lameDuckDurationMs = r.duration(rawKey, value);
        break;
      case "lame_duck_grace_period":
        lameDuckGracePeriodMs = r.duration(rawKey, value);
        break;
      case "cluster":
        cluster = resolveCluster(r, value);
        break;
      default:
        if (ACCEPTED_IGNORED.has(key) || input.variables?.has(rawKey) === true) break;
        if (UNSUPPORTED.has(key)) r.warnings.push(`"${rawKey}" in config file "${input.confPath ?? "<config>"}" is a nats-server feature skein does not have: ignored`);
        else r.warnings.push(`ignoring unknown key "${rawKey}" in config file "${input.confPath ?? "<config>"}"`);
    }
  }

  // Flags win over the file, as in nats-server.
  const flags = input.flags;
  const flagInteger = (flag: string, text: string, min: number, max: number): number => {
    if (!/^-?\d+$/.test(text.trim())) throw new NatsConfigError(`bad ${flag} value ${JSON.stringify(text)}: expected an integer in ${min}..${max}`);
    const value = Number(text);
    if (value < min || value > max) throw new NatsConfigError(`bad ${flag} value ${JSON.stringify(text)}: expected an integer in ${min}..${max}`);
    return value;
  };
  if (flags.addr !== undefined) host = flags.addr;
  if (flags.port !== undefined) port = flagInteger("--port", flags.port, -1, 65535);
  if (flags.name !== undefined) serverName = flags.name;
  if (flags.httpPort !== undefined) monitorPort = portOf(flagInteger("--http_port", flags.httpPort, -1, 65535));
  if (flags.portsFileDir !== undefined) portsFileDir = flags.portsFileDir;
  if (flags.pidFile !== undefined) pidFile = flags.pidFile;
  if (flags.logFile !== undefined) logFile = flags.logFile;
  if (flags.debug === true) debug = true;
  if (flags.trace === true) trace = true;
  if (flags.user !== undefined || flags.pass !== undefined) {
    if (flags.user === undefined || flags.pass === undefined) throw new NatsConfigError("--user and --pass go together: give both");
    authorization = { ...(authorization ?? {}), user: flags.user, password: flags.pass, token: undefined, users: undefined };
  }
  if (flags.auth !== undefined) authorization = { ...(authorization ?? {}), token: flags.auth, user: undefined, password: undefined, users: undefined };
  if (flags.cluster !== undefined || flags.clusterName !== undefined || flags.routes !== undefined) {
    cluster ??= { routes: [] };
    if (flags.cluster !== undefined) {
      const parts = hostPort(flags.cluster);
      if (parts === undefined) throw new NatsConfigError(`bad --cluster value ${JSON.stringify(flags.cluster)}: expected nats://HOST:PORT`);
      cluster = { ...cluster, host: parts.host ?? cluster.host, port: parts.port === undefined ? cluster.port : portOf(parts.port) };
    }
    if (flags.clusterName !== undefined) cluster = { ...cluster, name: flags.clusterName };
    if (flags.routes !== undefined) cluster = { ...cluster, routes: flags.routes.split(",").map((route) => route.trim()).filter((route) => route !== "") };
  }
  if (authorization !== undefined) {
    for (const key of Object.keys(authorization) as (keyof AuthorizationSpec)[]) if (authorization[key] === undefined) delete authorization[key];
  }
  if (connection.maxControlLine < 64) connection.maxControlLine = 64;

  return {
    server: {
      host,
      port: portOf(port),
      serverName,
      connection,
      authorization,
      maxConnections,
      monitor: monitorPort === undefined ? undefined : { host: monitorHost ?? host, port: monitorPort },
      cluster,
      lameDuckDurationMs,
      lameDuckGracePeriodMs,
      trace,
    },
    portsFileDir,
    pidFile,
    logFile,
    debug,
    trace,
    warnings: r.warnings,
  };
}

function resolveCluster(r: Resolver, value: ConfValue): ClusterConfig {
  const cluster: ClusterConfig = { routes: [] };
  for (const [name, item] of Object.entries(r.map("cluster", value))) {
    const key = `cluster.${name}`;
    switch (name.toLowerCase()) {
      case "name":
        cluster.name = r.string(key, item);
        break;
      case "listen": {
        const parts = typeof item === "number" ? { port: item } : hostPort(r.string(key, item));
        if (parts === undefined) throw r.bad(key, item, 'HOST:PORT, e.g. "0.0.0.0:6222"');
        if (parts.host !== undefined) cluster.host = parts.host;
        if (parts.port !== undefined) cluster.port = portOf(r.integer(key, parts.port, -1, 65535));
        break;
      }
      case "host":
        cluster.host = r.string(key, item);
        break;
      case "port":
        cluster.port = portOf(r.integer(key, item, -1, 65535));
        break;
      case "routes":
        cluster.routes = r.stringList(key, item);
        break;
      default:
        // authorization, tls, pool_size, compression, no_advertise, connect_retries…: not used yet.
        break;
    }
  }
  return cluster;
}

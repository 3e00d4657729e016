/**
 * NATS client protocol v1: constants, the exact error texts nats-server 2.9.10 sends (checked
 * against a running nats-server, see README.md), INFO and CONNECT.
 */

/** The -ERR texts, byte for byte as nats-server sends them. */
export const NatsErr = {
  unknownOp: "Unknown Protocol Operation",
  maxPayload: "Maximum Payload Violation",
  /** nats-server sends ErrMaxControlLine's text, lower case. */
  maxControlLine: "maximum control line exceeded",
  authorization: "Authorization Violation",
  authTimeout: "Authentication Timeout",
  stale: "Stale Connection",
  invalidSubject: "Invalid Subject",
  invalidPublishSubject: "Invalid Publish Subject",
  maxConnections: "maximum connections exceeded",
  maxSubscriptions: "maximum subscriptions exceeded",
  invalidProtocol: "invalid client protocol",
  noRespondersRequiresHeaders: "no responders requires headers support",
  pubPermission: (subject: string): string => `Permissions Violation for Publish to ${goQuote(subject)}`,
  subPermission: (subject: string, queue: string | undefined): string =>
    queue === undefined
      ? `Permissions Violation for Subscription to ${goQuote(subject)}`
      : `Permissions Violation for Subscription to ${goQuote(subject)} using queue ${goQuote(queue)}`,
} as const;

/** Go's %q for the strings that can appear here (subjects: printable, no whitespace). */
export function goQuote(text: string): string {
  return JSON.stringify(text);
}

export function errLine(text: string): string {
  return `-ERR '${text}'\r\n`;
}

export const OK_LINE = "+OK\r\n";
export const PING_LINE = "PING\r\n";
export const PONG_LINE = "PONG\r\n";

/** Defaults of nats-server 2.9.10 (server/const.go). */
export const NATS_DEFAULTS = {
  port: 4222,
  host: "0.0.0.0",
  maxPayloadBytes: 1024 * 1024,
  maxControlLineBytes: 4096,
  maxPendingBytes: 64 * 1024 * 1024,
  pingIntervalMs: 2 * 60 * 1000,
  pingMax: 2,
  authTimeoutMs: 2000,
  maxConnections: 64 * 1024,
  /** 0 = no limit. */
  maxSubscriptions: 0,
  /** The first server PING comes this soon at most (to measure RTT), as in nats-server. */
  firstPingMs: 2000,
  lameDuckDurationMs: 2 * 60 * 1000,
  lameDuckGracePeriodMs: 10 * 1000,
  writeDeadlineMs: 10_000,
} as const;

/**
 * The nats-server release whose client protocol behaviour this port mirrors. INFO reports it as
 * `version` because clients parse it as semver to switch features on; `skein` carries ours.
 */
export const NATS_COMPAT_VERSION = "2.9.10";

/** The INFO a server sends on accept (and again, async, when connect_urls change or in lame duck mode). */
export interface ServerInfo {
  server_id: string;
  server_name: string;
  version: string;
  proto: number;
  host: string;
  port: number;
  headers: boolean;
  auth_required?: boolean;
  max_payload: number;
  client_id?: number;
  client_ip?: string;
  connect_urls?: string[];
  ldm?: boolean;
  cluster?: string;
  /** skein's own version (not a nats-server field). */
  skein?: string;
}

/** The CONNECT fields skein reads; others are ignored, as nats-server ignores unknown fields. */
export interface ConnectOptions {
  verbose: boolean;
  pedantic: boolean;
  echo: boolean;
  headers: boolean;
  noResponders: boolean;
  protocol: number;
  name: string;
  lang: string;
  version: string;
  user: string | undefined;
  pass: string | undefined;
  authToken: string | undefined;
}

/** nats-server's defaults before (and without) CONNECT: verbose and pedantic on, echo on. */
export function defaultConnectOptions(): ConnectOptions {
  return {
    verbose: true,
    pedantic: true,
    echo: true,
    headers: false,
    noResponders: false,
    protocol: 0,
    name: "",
    lang: "",
    version: "",
    user: undefined,
    pass: undefined,
    authToken: undefined,
  };
}

/**
 * Applies a CONNECT JSON argument over `current` (fields present replace, absent ones stay, as
 * Go's json.Unmarshal into the existing struct does). Returns an error string when the JSON is not
 * an object or a field has the wrong type: nats-server then closes without an -ERR.
 */
export function applyConnect(current: ConnectOptions, json: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    return `CONNECT argument is not JSON: ${(error as Error).message}`;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return "CONNECT argument is not a JSON object";
  const o = parsed as Record<string, unknown>;
  const bool = (key: string, apply: (value: boolean) => void): string | undefined => {
    const value = o[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "boolean") return `CONNECT field "${key}" must be a boolean`;
    apply(value);
    return undefined;
  };
  const str = (key: string, apply: (value: string) => void): string | undefined => {
    const value = o[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") return `CONNECT field "${key}" must be a string`;
    apply(value);
    return undefined;
  };
  const problems = [
    bool("verbose", (v) => (current.verbose = v)),
    bool("pedantic", (v) => (current.pedantic = v)),
    bool("echo", (v) => (current.echo = v)),
    bool("headers", (v) => (current.headers = v)),
    bool("no_responders", (v) => (current.noResponders = v)),
    str("name", (v) => (current.name = v)),
    str("lang", (v) => (current.lang = v)),
    str("version", (v) => (current.version = v)),
    str("user", (v) => (current.user = v)),
    str("pass", (v) => (current.pass = v)),
    str("auth_token", (v) => (current.authToken = v)),
  ];
  const problem = problems.find((p) => p !== undefined);
  if (problem !== undefined) return problem;
  const protocol = o.protocol;
  if (protocol !== undefined && protocol !== null) {
    if (typeof protocol !== "number" || !Number.isInteger(protocol)) return `CONNECT field "protocol" must be an integer`;
    current.protocol = protocol;
  }
  return undefined;
}

/**
 * `skein node` options from four sources, validated and merged into one `NodeOptions`:
 * command-line flags > `SKEIN_*` environment variables > a `--config` file (JSON or YAML) > defaults.
 *
 * Everything here is pure (no file system, no process globals) so that it can be unit tested: the
 * caller reads the config file and passes its text in.
 */
import path from "node:path";
import YAML from "yaml";
import { isIpv4, parseSeed } from "../core/address.js";
import { NODE_ID_MAX } from "../core/node-id.js";
import { MAX_TAGS, TAG_SYNTAX, parseTagList } from "../link/tags.js";
import { NODE_OPTION_DEFAULTS, type NodeOptions } from "../node/options.js";
import { UsageError } from "./errors.js";

export type OptionKey = keyof NodeOptions;

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

/** Flags as commander hands them over: strings (seeds may repeat, so possibly a list). */
export type NodeFlags = { [K in OptionKey]?: K extends "seeds" | "localTags" | "connectTags" ? string | string[] : K extends "collector" ? string | boolean : string } & {
  config?: string;
};

export type Env = Readonly<Record<string, string | undefined>>;

export interface ResolveInput {
  flags: NodeFlags;
  env?: Env;
  /** Text of the config file, already read by the caller. */
  configText?: string;
  /** Path of the config file: picks the format by extension, names it in errors, anchors relative paths. */
  configPath?: string;
}

/** Where a value came from, as it is named in error messages. */
type Source =
  | { kind: "flag"; flag: string }
  | { kind: "env"; name: string }
  | { kind: "config"; key: string; file: string }
  | { kind: "default" };

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

interface OptionSpec<T> {
  /** Shown in `--help`. */
  argName: string;
  /** A switch without a value (`--collector`); env and config files take true/false. */
  switch?: true;
  description: string;
  /** Validates a raw value (a string from flags and env, anything from a config file). */
  parse(raw: unknown): Parsed<T>;
}

// ---------------------------------------------------------------- value parsers

function integer(min: number, max: number, note = ""): (raw: unknown) => Parsed<number> {
  const expected = `expected an integer in ${min}..${max}${note}`;
  return (raw) => {
    let value: number;
    if (typeof raw === "number") value = raw;
    else if (typeof raw === "string" && /^[0-9]{1,16}$/.test(raw.trim())) value = Number(raw.trim());
    else return { ok: false, error: expected };
    if (!Number.isSafeInteger(value) || value < min || value > max) return { ok: false, error: expected };
    return { ok: true, value };
  };
}

function decimal(min: number, max: number): (raw: unknown) => Parsed<number> {
  const expected = `expected a number in ${min}..${max}`;
  return (raw) => {
    let value: number;
    if (typeof raw === "number") value = raw;
    else if (typeof raw === "string" && /^[0-9]{1,9}(\.[0-9]{1,9})?$/.test(raw.trim())) value = Number(raw.trim());
    else return { ok: false, error: expected };
    if (!Number.isFinite(value) || value < min || value > max) return { ok: false, error: expected };
    return { ok: true, value };
  };
}

function text(raw: unknown, expected: string): Parsed<string> {
  if (typeof raw !== "string" || raw.trim() === "") return { ok: false, error: expected };
  return { ok: true, value: raw.trim() };
}

const PORT_NOTE = " (0 = any free port)";
const SEED_HELP = "expected NODEID@/ip4/HOST/udp/PORT or NODEID@/ip4/HOST/tcp/PORT";

/** Strips the `bad seed "…": ` and `bad address "…": ` prefixes of core/address.ts messages. */
function seedReason(error: string): string {
  return error.replace(/^bad seed "[^"]*": /, "").replace(/^bad address "[^"]*": /, "");
}

function parseWebAddr(raw: unknown): Parsed<string> {
  const expected = "expected HOST:PORT with an IPv4 HOST, e.g. 127.0.0.1:8080 (port 0 = any free port)";
  if (typeof raw !== "string") return { ok: false, error: expected };
  const value = raw.trim();
  const colon = value.lastIndexOf(":");
  if (colon < 0) return { ok: false, error: expected };
  const host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!isIpv4(host) && host !== "localhost") return { ok: false, error: `"${host}" is not an IPv4 address; ${expected}` };
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    return { ok: false, error: `port "${portText}" is not in 0..65535; ${expected}` };
  }
  return { ok: true, value };
}

// ---------------------------------------------------------------- the option table

const SPECS: { [K in OptionKey]-?: OptionSpec<NonNullable<NodeOptions[K]>> } = {
  nodeId: {
    argName: "ID",
    description: "this node's id, an integer in 1..4294967295 (random when not given)",
    parse: integer(1, NODE_ID_MAX),
  },
  udpPort: { argName: "PORT", description: "UDP port to listen on (0 = any free port)", parse: integer(0, 65535, PORT_NOTE) },
  tcpPort: { argName: "PORT", description: "TCP port to listen on (0 = any free port)", parse: integer(0, 65535, PORT_NOTE) },
  bind: {
    argName: "IPV4",
    description: `interface address to bind (default ${NODE_OPTION_DEFAULTS.bind})`,
    parse: (raw) => {
      const expected = "expected an IPv4 interface address such as 127.0.0.1 or 0.0.0.0";
      const value = text(raw, expected);
      if (!value.ok) return value;
      if (!isIpv4(value.value)) return { ok: false, error: `"${value.value}" is not an IPv4 address; ${expected}` };
      return value;
    },
  },
  seeds: {
    argName: "ID@ADDR,…",
    description: "seeds to join through, comma-separated, e.g. 1@/ip4/127.0.0.1/udp/10001",
    // Seeds are checked one by one in `parseSeeds` so that the error names the bad one.
    parse: (raw) => {
      const list = seedList(raw);
      if (list === undefined) return { ok: false, error: `${SEED_HELP}, comma-separated or as a list` };
      return { ok: true, value: list };
    },
  },
  maxNeighbours: {
    argName: "N",
    description: `links kept at most, inbound and outbound together (default ${NODE_OPTION_DEFAULTS.maxNeighbours})`,
    parse: integer(1, 65535),
  },
  localTags: {
    argName: "TAG,…",
    description: `discovery: tags this node advertises, comma-separated, at most ${MAX_TAGS}, each ${TAG_SYNTAX} (CA mode: those in its certificate)`,
    parse: parseTagList,
  },
  connectTags: {
    argName: "TAG,…",
    description: "discovery: link to the nodes carrying any of these tags (learned through the overlay), besides the seeds, and to no other",
    parse: parseTagList,
  },
  webAddr: { argName: "HOST:PORT", description: "serve the HTTP API (/api/node, /metrics) on HOST:PORT", parse: parseWebAddr },
  emulateLatency: {
    argName: "FILE",
    description: "RTT matrix JSON keyed by node ids: delay outgoing frames by half the RTT",
    parse: (raw) => text(raw, "expected the path of an RTT matrix JSON file"),
  },
  logLevel: {
    argName: "LEVEL",
    description: `${LOG_LEVELS.join("|")} (default ${NODE_OPTION_DEFAULTS.logLevel})`,
    parse: (raw) => {
      const value = typeof raw === "string" ? raw.trim() : raw;
      if (typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value)) {
        return { ok: true, value: value as (typeof LOG_LEVELS)[number] };
      }
      return { ok: false, error: `expected one of ${LOG_LEVELS.join(", ")}` };
    },
  },
  probeIntervalMs: {
    argName: "MS",
    description: `keepalive probe period (default ${NODE_OPTION_DEFAULTS.probeIntervalMs})`,
    parse: integer(1, 3_600_000),
  },
  linkTimeoutMs: {
    argName: "MS",
    description: `a link with nothing received for this long is down (default ${NODE_OPTION_DEFAULTS.linkTimeoutMs})`,
    parse: integer(1, 86_400_000),
  },
  udpMtu: {
    argName: "BYTES",
    description: `largest UDP datagram sent, 512..65507 (default ${NODE_OPTION_DEFAULTS.udpMtu})`,
    parse: integer(512, 65507),
  },
  natsPort: { argName: "PORT", description: "serve NATS clients on this TCP port (0 = any free port)", parse: integer(0, 65535, PORT_NOTE) },
  natsAddr: {
    argName: "HOST[:PORT]",
    description: "interface for the NATS port (default: --bind); a port here sets --nats-port",
    parse: (raw) => {
      const expected = "expected an IPv4 HOST or HOST:PORT such as 0.0.0.0 or 127.0.0.1:4222";
      const value = text(raw, expected);
      if (!value.ok) return value;
      const [host, port, extra] = value.value.split(":");
      if (extra !== undefined || host === undefined || (!isIpv4(host) && host !== "localhost")) return { ok: false, error: expected };
      if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535)) return { ok: false, error: `port "${port}" is not in 0..65535; ${expected}` };
      return value;
    },
  },
  key: { argName: "FILE", description: "this node's key file (skein keygen --out FILE); default: DATA_DIR/node.key, created if missing", parse: (raw) => text(raw, "expected the path of a key file") },
  dataDir: { argName: "DIR", description: "where the node keeps its key when --key is not given (default ./.skein)", parse: (raw) => text(raw, "expected a directory path") },
  networkKey: {
    argName: "FILE",
    description: "network admission: the network key file (skein keygen --network --out FILE); without it or --ca the network is open",
    parse: (raw) => text(raw, "expected the path of a network key file"),
  },
  ca: { argName: "FILE", description: "network admission: the network CA's public key file (skein ca init); needs --cert", parse: (raw) => text(raw, "expected the path of a CA public key file") },
  cert: { argName: "FILE", description: "this node's certificate (skein ca sign); needs --ca", parse: (raw) => text(raw, "expected the path of a certificate file") },
  collector: {
    argName: "",
    switch: true,
    description: "be a collector: keep the network's live model; with --web-addr serve /api/topology and the web view at /",
    parse: (raw) => {
      if (raw === true || raw === false) return { ok: true, value: raw };
      const value = typeof raw === "string" ? raw.trim().toLowerCase() : "";
      if (value === "true" || value === "1" || value === "yes") return { ok: true, value: true };
      if (value === "false" || value === "0" || value === "no") return { ok: true, value: false };
      return { ok: false, error: "expected true or false" };
    },
  },
  collectorIntervalMs: {
    argName: "MS",
    description: "how often this node reports its snapshot to the collectors (default 1000)",
    parse: integer(100, 60_000),
  },
  routeHopCostMs: {
    argName: "MS",
    description: "routing: cost added to every link's metric, ms one way (default 0.1; more prefers fewer relays)",
    parse: decimal(0, 1000),
  },
};

export const OPTION_KEYS = Object.keys(SPECS) as OptionKey[];

/** `udpPort` → `udp-port`. */
export function kebabCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** `udpPort` → `SKEIN_UDP_PORT`. */
export function envName(key: string): string {
  return `SKEIN_${kebabCase(key).replace(/-/g, "_").toUpperCase()}`;
}

export function flagName(key: string): string {
  return `--${kebabCase(key)}`;
}

/** What `skein node --help` shows for each option, in table order. */
export function nodeFlagHelp(): { key: OptionKey; flags: string; description: string }[] {
  return OPTION_KEYS.map((key) => ({
    key,
    flags: SPECS[key].switch === true ? flagName(key) : `${flagName(key)} <${SPECS[key].argName}>`,
    description: `${SPECS[key].description} [env ${envName(key)}]`,
  }));
}

function seedList(raw: unknown): string[] | undefined {
  const items: unknown[] = Array.isArray(raw) ? raw : [raw];
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== "string") return undefined;
    for (const part of item.split(",")) {
      const seed = part.trim();
      if (seed !== "") out.push(seed);
    }
  }
  return out;
}

// ---------------------------------------------------------------- messages

function describeSource(source: Source): string {
  switch (source.kind) {
    case "flag":
      return source.flag;
    case "env":
      return source.name;
    case "config":
      return `"${source.key}" in config file "${source.file}"`;
    case "default":
      return "default";
  }
}

function showValue(raw: unknown): string {
  if (typeof raw === "string") return JSON.stringify(raw);
  if (raw === undefined) return "undefined";
  const json = JSON.stringify(raw);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function badValue(source: Source, raw: unknown, reason: string): UsageError {
  if (source.kind === "config") {
    return new UsageError(`bad "${source.key}" value ${showValue(raw)} in config file "${source.file}": ${reason}`, "BAD_CONFIG");
  }
  // A list flag (--seeds, --local-tags) given several times reads as one comma-separated value.
  const shown = source.kind === "flag" && Array.isArray(raw) && raw.every((item) => typeof item === "string") ? raw.join(",") : raw;
  return new UsageError(`bad ${describeSource(source)} value ${showValue(shown)}: ${reason}`);
}

// ---------------------------------------------------------------- config files

const CAMEL_BY_SPELLING: ReadonlyMap<string, OptionKey> = new Map(
  OPTION_KEYS.flatMap((key) => [
    [key, key],
    [kebabCase(key), key],
  ]),
);

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

/** Edit distance, for "did you mean" hints on misspelt keys. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function suggestKey(key: string): string | undefined {
  let best: { spelling: string; distance: number } | undefined;
  for (const spelling of CAMEL_BY_SPELLING.keys()) {
    const distance = editDistance(key.toLowerCase(), spelling.toLowerCase());
    if (distance <= 3 && (best === undefined || distance < best.distance)) best = { spelling, distance };
  }
  return best?.spelling;
}

export type ConfigFormat = "json" | "yaml";

/** JSON for `.json`, YAML for `.yaml`/`.yml`; otherwise JSON when the text starts with `{`, else YAML. */
export function configFormat(text: string, configPath?: string): ConfigFormat {
  const extension = configPath === undefined ? "" : path.extname(configPath).toLowerCase();
  if (extension === ".json") return "json";
  if (extension === ".yaml" || extension === ".yml") return "yaml";
  return text.trimStart().startsWith("{") ? "json" : "yaml";
}

/**
 * Parses a config file's text into option values keyed by camelCase option names (kebab-case keys
 * are accepted too). Throws UsageError (code BAD_CONFIG) naming the file and the problem.
 */
export function parseConfig(text: string, configPath = "<config>"): Record<string, unknown> {
  const format = configFormat(text, configPath);
  const file = configPath;
  let document: unknown;
  if (text.trim() === "") {
    document = {};
  } else if (format === "json") {
    try {
      document = JSON.parse(text) as unknown;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new UsageError(`bad config file "${file}": not valid JSON (${firstLine(reason)}); expected an object such as {"udpPort": 10001}`, "BAD_CONFIG");
    }
  } else {
    try {
      document = YAML.parse(text, { prettyErrors: false, uniqueKeys: true }) as unknown;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new UsageError(`bad config file "${file}": not valid YAML (${firstLine(reason)}); expected a mapping such as "udpPort: 10001"`, "BAD_CONFIG");
    }
  }
  if (document === null || document === undefined) document = {};
  if (typeof document !== "object" || Array.isArray(document)) {
    throw new UsageError(
      `bad config file "${file}": expected a mapping of options such as "udpPort: 10001", got ${describeType(document)}`,
      "BAD_CONFIG",
    );
  }
  const out: Record<string, unknown> = {};
  const spelledAs = new Map<OptionKey, string>();
  for (const [key, value] of Object.entries(document as Record<string, unknown>)) {
    const camel = CAMEL_BY_SPELLING.get(key);
    if (camel === undefined) {
      const suggestion = suggestKey(key);
      const hint = suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`;
      throw new UsageError(
        `unknown key "${key}" in config file "${file}"${hint}; expected one of ${OPTION_KEYS.join(", ")} (camelCase or kebab-case)`,
        "BAD_CONFIG",
      );
    }
    const previous = spelledAs.get(camel);
    if (previous !== undefined) {
      throw new UsageError(`config file "${file}" sets "${camel}" twice (as "${previous}" and "${key}"); keep one`, "BAD_CONFIG");
    }
    spelledAs.set(camel, key);
    out[camel] = value;
  }
  return out;
}

function firstLine(textValue: string): string {
  return textValue.split(/\r?\n/)[0]!.trim();
}

// ---------------------------------------------------------------- resolution

/** The config file to read: `--config`, else `SKEIN_CONFIG`. */
export function configPathFrom(flags: NodeFlags, env: Env = {}): string | undefined {
  if (flags.config !== undefined) {
    if (flags.config.trim() === "") throw new UsageError(`bad --config value "": expected the path of a JSON or YAML file`);
    return flags.config;
  }
  const fromEnv = env.SKEIN_CONFIG;
  return fromEnv === undefined || fromEnv.trim() === "" ? undefined : fromEnv;
}

function parseValue(key: OptionKey, raw: unknown, source: Source): unknown {
  if (key === "seeds") {
    const list = seedList(raw);
    if (list === undefined) throw badValue(source, raw, `${SEED_HELP}, comma-separated or as a list`);
    for (const seed of list) {
      const parsed = parseSeed(seed);
      if (!parsed.ok) throw badValue(source, seed, seedReason(parsed.error));
    }
    return list;
  }
  const parsed = SPECS[key].parse(raw);
  if (!parsed.ok) throw badValue(source, raw, parsed.error);
  return parsed.value;
}

/**
 * Merges and validates node options: flags > env (`SKEIN_*`) > config file > defaults.
 * Throws UsageError with a one-line message naming the bad value, where it came from and what is
 * expected. Relative paths in a config file are taken relative to the file's folder.
 */
export function resolveNodeOptions(input: ResolveInput): NodeOptions {
  const env = input.env ?? {};
  const configPath = input.configPath ?? "<config>";
  const config = input.configText === undefined ? {} : parseConfig(input.configText, configPath);

  const values = new Map<OptionKey, { value: unknown; source: Source }>();
  for (const key of OPTION_KEYS) {
    const flagValue = input.flags[key];
    const envValue = env[envName(key)];
    const configValue = config[key];
    let raw: unknown;
    let source: Source;
    if (flagValue !== undefined) {
      raw = flagValue;
      source = { kind: "flag", flag: flagName(key) };
    } else if (envValue !== undefined && envValue !== "") {
      raw = envValue;
      source = { kind: "env", name: envName(key) };
    } else if (configValue !== undefined && configValue !== null) {
      raw = configValue;
      source = { kind: "config", key, file: configPath };
    } else if (key in NODE_OPTION_DEFAULTS) {
      values.set(key, { value: NODE_OPTION_DEFAULTS[key as keyof typeof NODE_OPTION_DEFAULTS], source: { kind: "default" } });
      continue;
    } else {
      continue;
    }
    let value = parseValue(key, raw, source);
    if (key === "emulateLatency" && source.kind === "config" && input.configPath !== undefined && typeof value === "string") {
      value = path.resolve(path.dirname(input.configPath), value);
    }
    values.set(key, { value, source });
  }

  const probe = values.get("probeIntervalMs");
  const timeout = values.get("linkTimeoutMs");
  if (probe !== undefined && timeout !== undefined && (timeout.value as number) <= (probe.value as number)) {
    throw new UsageError(
      `bad link timeout ${String(timeout.value)} ms (${describeSource(timeout.source)}): ` +
        `expected more than the probe interval ${String(probe.value)} ms (${describeSource(probe.source)})`,
    );
  }

  const options: Record<string, unknown> = {};
  for (const [key, { value }] of values) options[key] = value;
  return options as NodeOptions;
}

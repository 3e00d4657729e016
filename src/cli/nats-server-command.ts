/**
 * `skein nats-server [flags]`: a drop-in for nats-server. It takes nats-server's common flags in
 * Go's style (`-p 4222`, `--port=4222`, `-p -1`, `-DV`) and its configuration file format, serves
 * NATS clients through skein's broker, writes the ports file, serves the monitoring endpoints and
 * handles nats-server's signals:
 *
 *   SIGTERM, SIGINT   stop cleanly (clients get their pending bytes, the ports file is removed)
 *   SIGHUP            reload the configuration file's authorization (clients that no longer pass
 *                     are closed with -ERR 'Authorization Violation')
 *   SIGUSR2           lame-duck mode: stop accepting, INFO with "ldm": true, close clients over
 *                     lame_duck_duration, then exit
 *
 * Logs are nats-server-style lines on stderr (`[pid] 2006/01/02 15:04:05.000000 [INF] …`), so that
 * harnesses that wait for "Server is ready" or "Listening for client connections on" work.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import path from "node:path";
import type { LogFields, Logger } from "../core/log.js";
import { SeededRng } from "../core/rng.js";
import { SkeinError } from "../core/errors.js";
import { ConfError, type ConfMap, parseNatsConfDetailed } from "../services/nats/conf.js";
import { NatsConfigError, type NatsServerFlags, resolveNatsServerOptions, type ResolvedNatsServer } from "../services/nats/options.js";
import { NATS_COMPAT_VERSION } from "../services/nats/protocol.js";
import type { NatsServer, NatsServerConfig } from "../runtime/nats/server.js";
import { planCluster } from "../services/nats/cluster.js";

/** The runtime node `skein nats-server` runs for a cluster (RuntimeNode, typed narrowly). */
interface ClusterNode {
  readonly id: number;
  readonly addresses: string[];
  startNatsServer(config: NatsServerConfig, logger: Logger): Promise<NatsServer>;
  close(): Promise<void>;
}
import { CliFailure, EXIT_FAILURE, EXIT_OK, UsageError, errorMessage } from "./errors.js";
import { packageVersion } from "./version.js";

export const NATS_SERVER_USAGE = `Usage: skein nats-server [options]

A drop-in nats-server on skein's broker (NATS client protocol of nats-server ${NATS_COMPAT_VERSION}).

Server options:
  -a, --addr, --net <host>         bind to host address (default 0.0.0.0)
  -p, --port <port>                use port for clients (default 4222; -1 for a random port)
  -n, --name, --server_name <name> server name (default: the server id)
  -P, --pid <file>                 file to store the PID
  -m, --http_port <port>           use port for http monitoring (-1 for a random port)
  -c, --config <file>              configuration file
  -t                               test the configuration and exit
      --ports_file_dir <dir>       write nats-server_<pid>.ports there (client and monitoring URLs)

Logging options:
  -l, --log <file>                 file to redirect log output
  -D, --debug                      enable debugging output
  -V, --trace                      trace the raw protocol
  -DV                              debug and trace

Authorization options:
      --user <user>                user required for connections
      --pass <password>            password required for connections
      --auth <token>               authorization token required for connections

Cluster options (they become skein links: a skein node listening on the cluster URL over TCP,
seeded by the routes; a route must name the address its peer listens on):
      --routes <rurl-1, rurl-2>    routes to solicit and connect
      --cluster <cluster-url>      cluster URL for solicited routes
      --cluster_name <string>      cluster name

Common options:
  -h, --help                       show this message
  -v, --version                    show version

Signals: SIGTERM/SIGINT stop, SIGHUP reloads authorization, SIGUSR2 enters lame-duck mode.`;

type FlagKind = { key: keyof NatsServerFlags | "help" | "version" | "test" | "ignoredValue" | "ignoredBool" | "unsupportedValue" | "unsupportedBool"; value: boolean };

/** Go-style flag names (without dashes) → what they set; value: whether the flag takes a value. */
const FLAGS: Record<string, FlagKind> = {
  a: { key: "addr", value: true },
  addr: { key: "addr", value: true },
  net: { key: "addr", value: true },
  p: { key: "port", value: true },
  port: { key: "port", value: true },
  n: { key: "name", value: true },
  name: { key: "name", value: true },
  server_name: { key: "name", value: true },
  P: { key: "pidFile", value: true },
  pid: { key: "pidFile", value: true },
  m: { key: "httpPort", value: true },
  http_port: { key: "httpPort", value: true },
  c: { key: "config", value: true },
  config: { key: "config", value: true },
  ports_file_dir: { key: "portsFileDir", value: true },
  l: { key: "logFile", value: true },
  log: { key: "logFile", value: true },
  D: { key: "debug", value: false },
  debug: { key: "debug", value: false },
  V: { key: "trace", value: false },
  trace: { key: "trace", value: false },
  user: { key: "user", value: true },
  pass: { key: "pass", value: true },
  auth: { key: "auth", value: true },
  routes: { key: "routes", value: true },
  cluster: { key: "cluster", value: true },
  cluster_name: { key: "clusterName", value: true },
  h: { key: "help", value: false },
  help: { key: "help", value: false },
  v: { key: "version", value: false },
  version: { key: "version", value: false },
  t: { key: "test", value: false },
  // Accepted for compatibility, no effect.
  T: { key: "ignoredBool", value: false },
  logtime: { key: "ignoredBool", value: false },
  s: { key: "ignoredBool", value: false },
  syslog: { key: "ignoredBool", value: false },
  r: { key: "ignoredValue", value: true },
  remote_syslog: { key: "ignoredValue", value: true },
  no_advertise: { key: "ignoredBool", value: false },
  cluster_advertise: { key: "ignoredValue", value: true },
  connect_retries: { key: "ignoredValue", value: true },
  client_advertise: { key: "unsupportedValue", value: true },
  // nats-server features skein does not have: a warning.
  js: { key: "unsupportedBool", value: false },
  jetstream: { key: "unsupportedBool", value: false },
  sd: { key: "unsupportedValue", value: true },
  store_dir: { key: "unsupportedValue", value: true },
  ms: { key: "unsupportedValue", value: true },
  https_port: { key: "unsupportedValue", value: true },
  tls: { key: "unsupportedBool", value: false },
  tlsverify: { key: "unsupportedBool", value: false },
  tlscert: { key: "unsupportedValue", value: true },
  tlskey: { key: "unsupportedValue", value: true },
  tlscacert: { key: "unsupportedValue", value: true },
};

export interface ParsedNatsArgs {
  flags: NatsServerFlags;
  help: boolean;
  version: boolean;
  test: boolean;
  warnings: string[];
}

function isTrue(text: string, flag: string): boolean {
  if (/^(true|1|t)$/i.test(text)) return true;
  if (/^(false|0|f)$/i.test(text)) return false;
  throw new UsageError(`invalid boolean value ${JSON.stringify(text)} for -${flag}: expected true or false; see "skein nats-server --help"`);
}

/** Parses nats-server's flags as Go's flag package does. Throws UsageError. Pure. */
export function parseNatsServerArgs(argv: readonly string[]): ParsedNatsArgs {
  const flags: NatsServerFlags = {};
  const out: ParsedNatsArgs = { flags, help: false, version: false, test: false, warnings: [] };
  const record = flags as Record<string, string | boolean | undefined>;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      if (i + 1 < argv.length) throw new UsageError(`unexpected argument ${JSON.stringify(argv[i + 1])}; skein nats-server takes flags only; see "skein nats-server --help"`);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}; skein nats-server takes flags only; see "skein nats-server --help"`);
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    // -DV / -VD: debug and trace at once.
    if (name === "DV" || name === "VD") {
      const on = inline === undefined ? true : isTrue(inline, name);
      flags.debug = on;
      flags.trace = on;
      continue;
    }
    const spec = FLAGS[name];
    if (spec === undefined) throw new UsageError(`flag provided but not defined: -${name}; see "skein nats-server --help"`);
    let value: string | undefined;
    if (spec.value) {
      if (inline !== undefined) value = inline;
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}; see "skein nats-server --help"`);
        value = argv[++i]!;
      }
    }
    const on = spec.value ? true : inline === undefined ? true : isTrue(inline, name);
    switch (spec.key) {
      case "help":
        out.help = on;
        break;
      case "version":
        out.version = on;
        break;
      case "test":
        out.test = on;
        break;
      case "ignoredBool":
      case "ignoredValue":
        break;
      case "unsupportedBool":
      case "unsupportedValue":
        out.warnings.push(`flag -${name} is a nats-server feature skein does not have: ignored`);
        break;
      case "debug":
      case "trace":
        record[spec.key] = on;
        break;
      default:
        record[spec.key] = value;
    }
  }
  return out;
}

/** Log lines as nats-server writes them: `[pid] 2006/01/02 15:04:05.000000 [INF] message`. */
export class NatsStyleLogger implements Logger {
  constructor(
    private readonly write: (line: string) => void,
    private readonly debugOn: boolean,
    private readonly traceOn: boolean,
    private readonly bindings: LogFields = {},
  ) {}

  private line(tag: string, fields: LogFields, message: string): void {
    const now = new Date();
    const pad = (n: number, width = 2): string => String(n).padStart(width, "0");
    const stamp = `${now.getFullYear()}/${pad(now.getMonth() + 1)}/${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)}000`;
    const all = { ...this.bindings, ...fields };
    const extra = Object.entries(all)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ");
    const text = message.length > 0 ? message.charAt(0).toUpperCase() + message.slice(1) : message;
    this.write(`[${process.pid}] ${stamp} [${tag}] ${text}${extra === "" ? "" : ` (${extra})`}\n`);
  }

  debug(fields: LogFields, message: string): void {
    if ("op" in fields) {
      if (this.traceOn) this.line("TRC", fields, message);
      return;
    }
    if (this.debugOn) this.line("DBG", fields, message);
  }
  info(fields: LogFields, message: string): void {
    this.line("INF", fields, message);
  }
  warn(fields: LogFields, message: string): void {
    this.line("WRN", fields, message);
  }
  error(fields: LogFields, message: string): void {
    this.line("ERR", fields, message);
  }
  child(bindings: LogFields): Logger {
    return new NatsStyleLogger(this.write, this.debugOn, this.traceOn, { ...this.bindings, ...bindings });
  }
}

/** Reads, parses and resolves; throws UsageError naming the file and the problem. */
export function loadNatsServerConfig(flags: NatsServerFlags, env: Readonly<Record<string, string | undefined>>): ResolvedNatsServer {
  let conf: ConfMap | undefined;
  let variables: Set<string> | undefined;
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.config, "utf8");
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : errorMessage(error);
      throw new UsageError(`cannot read config file "${flags.config}": ${reason}`, "BAD_CONFIG");
    }
    try {
      ({ conf, variables } = parseNatsConfDetailed(text, env));
    } catch (error) {
      if (error instanceof ConfError) throw new UsageError(`bad config file "${flags.config}", ${error.message}`, "BAD_CONFIG");
      throw error;
    }
  }
  try {
    return resolveNatsServerOptions({ conf, confPath: flags.config, variables, flags });
  } catch (error) {
    if (error instanceof NatsConfigError) throw new UsageError(error.message, "BAD_CONFIG");
    throw error;
  }
}

/** Client and monitoring URLs for the ports file: every IPv4 interface when bound to all of them. */
export function listenUrls(scheme: string, host: string, port: number): string[] {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return [`${scheme}://${host}:${port}`];
  const hosts = ["127.0.0.1"];
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) if (address.family === "IPv4" && !address.internal) hosts.push(address.address);
  }
  return [...new Set(hosts)].map((h) => `${scheme}://${h}:${port}`);
}

/** Runs until a signal; returns the exit code. Throws UsageError / CliFailure. */
export async function runNatsServerCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const parsed = parseNatsServerArgs(argv);
  if (parsed.help) {
    process.stdout.write(`${NATS_SERVER_USAGE}\n`);
    return EXIT_OK;
  }
  if (parsed.version) {
    process.stdout.write(`nats-server: v${NATS_COMPAT_VERSION} (skein ${packageVersion()})\n`);
    return EXIT_OK;
  }
  const resolved = loadNatsServerConfig(parsed.flags, env);
  if (parsed.test) {
    process.stdout.write(`nats-server: configuration file ${parsed.flags.config ?? "<none>"} test is successful\n`);
    return EXIT_OK;
  }
  const logFile = resolved.logFile;
  const write = logFile === undefined ? (line: string) => void process.stderr.write(line) : (line: string) => appendFileSync(logFile, line);
  const logger = new NatsStyleLogger(write, resolved.debug, resolved.trace);
  const version = packageVersion();

  // Listen for stop requests before starting, so that a signal during startup is not lost.
  let stopReason: string | undefined;
  let wake: (() => void) | undefined;
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  const stop = (reason: string): void => {
    if (stopReason !== undefined) {
      // A second signal while stopping exits at once.
      if (reason !== "lame duck mode") process.exit(EXIT_FAILURE);
      return;
    }
    stopReason = reason;
    wake?.();
  };
  const onInt = (): void => stop("interrupt");
  const onTerm = (): void => stop("terminated");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);

  logger.info({}, `Starting nats-server (skein ${version}, NATS client protocol of nats-server ${NATS_COMPAT_VERSION})`);
  for (const warning of [...parsed.warnings, ...resolved.warnings]) logger.warn({}, warning);
  if (parsed.flags.config !== undefined) logger.info({}, `Using configuration file: ${parsed.flags.config}`);
  const [{ Broker }, serverModule] = await Promise.all([import("../features/pubsub/broker.js"), import("../runtime/nats/server.js")]);
  let server!: NatsServer;
  let node: ClusterNode | undefined;
  let clusterUrls: string[] | undefined;
  const failed = (error: unknown): never => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
    if (error instanceof SkeinError && (error.code === "BAD_CONFIG" || error.code === "BAD_OPTION")) throw new UsageError(error.message, "BAD_CONFIG");
    if (error instanceof SkeinError) throw new CliFailure(error.message, error.code, { cause: error });
    throw error;
  };
  const cluster = resolved.server.cluster;
  if (cluster !== undefined) {
    // The cluster becomes skein links: a skein node listening (TCP) on the cluster address,
    // seeded by the routes (services/nats/cluster.ts), whose overlay broker the NATS port uses.
    const plan = planCluster(cluster);
    for (const warning of plan.warnings) logger.warn({}, warning);
    try {
      const { createNode } = await import("../runtime/node.js");
      node = (await createNode({
        ...(plan.nodeId === undefined ? {} : { nodeId: plan.nodeId }),
        tcpPort: plan.tcpPort,
        bind: plan.bind,
        seeds: plan.seeds,
        logLevel: resolved.debug ? "debug" : "error",
      })) as unknown as ClusterNode;
    } catch (error) {
      failed(error);
    }
    const linkPort = Number(/\/tcp\/(\d+)$/.exec(node!.addresses[0] ?? "")?.[1] ?? plan.tcpPort);
    clusterUrls = listenUrls("nats", plan.bind, linkPort);
    if (cluster.name !== undefined) logger.info({}, `Cluster name is ${cluster.name}`);
    logger.info({}, `Listening for route connections on ${plan.bind}:${linkPort} (skein node ${node!.id}, links over TCP)`);
    for (const seed of plan.seeds) logger.info({}, `Route (skein seed) ${seed}`);
    try {
      server = await node!.startNatsServer({ ...resolved.server, cluster: { ...cluster, host: plan.bind, port: linkPort }, skeinVersion: version }, logger);
    } catch (error) {
      await node!.close();
      failed(error);
    }
  } else {
    const broker = new Broker({ rng: new SeededRng(randomBytes(4).readUInt32BE(0)) });
    try {
      server = await serverModule.NatsServer.start(broker, { ...resolved.server, skeinVersion: version }, logger);
    } catch (error) {
      failed(error);
    }
  }
  logger.info({}, `  Name:     ${server.serverName}`);
  logger.info({}, `  ID:       ${server.serverId}`);

  let portsFile: string | undefined;
  if (resolved.portsFileDir !== undefined) {
    portsFile = path.join(resolved.portsFileDir, `nats-server_${process.pid}.ports`);
    const ports: Record<string, string[]> = { nats: listenUrls("nats", server.host, server.port) };
    if (clusterUrls !== undefined) ports.cluster = clusterUrls;
    if (resolved.server.monitor !== undefined) ports.monitoring = listenUrls("http", resolved.server.monitor.host, server.monitorPort);
    try {
      mkdirSync(resolved.portsFileDir, { recursive: true });
      writeFileSync(portsFile, JSON.stringify(ports));
    } catch (error) {
      logger.error({}, `Error writing ports file "${portsFile}": ${errorMessage(error)}`);
      portsFile = undefined;
    }
  }
  if (resolved.pidFile !== undefined) {
    try {
      writeFileSync(resolved.pidFile, String(process.pid));
    } catch (error) {
      logger.error({}, `Could not write pidfile "${resolved.pidFile}": ${errorMessage(error)}`);
    }
  }
  logger.info({}, "Server is ready");

  const onHup = (): void => {
    if (parsed.flags.config === undefined) {
      logger.warn({}, "Reload requested (SIGHUP) but no configuration file was given: nothing to reload");
      return;
    }
    try {
      const next = loadNatsServerConfig(parsed.flags, env);
      for (const warning of next.warnings) logger.warn({}, warning);
      server.reloadAuthorization(next.server.authorization);
      logger.info({}, "Reloaded: authorization");
    } catch (error) {
      logger.error({}, `Failed to reload server configuration: ${errorMessage(error)}`);
    }
  };
  let lameDuck: Promise<void> | undefined;
  const onUsr2 = (): void => {
    lameDuck ??= server.lameDuck().then(() => stop("lame duck mode"));
  };
  process.on("SIGHUP", onHup);
  process.on("SIGUSR2", onUsr2);

  await stopRequested;
  logger.info({}, `Trapped "${stopReason}" signal`);
  logger.info({}, "Initiating Shutdown...");
  try {
    await server.close();
    await node?.close();
  } finally {
    if (portsFile !== undefined) rmSync(portsFile, { force: true });
    if (resolved.pidFile !== undefined) rmSync(resolved.pidFile, { force: true });
    process.off("SIGHUP", onHup);
    process.off("SIGUSR2", onUsr2);
  }
  logger.info({}, "Server Exiting..");
  return EXIT_OK;
}

/**
 * `createNode(options)`: one running skein node with real sockets and timers.
 *
 * It validates the options (SkeinError BAD_OPTION naming the bad value and what is expected),
 * binds the UDP socket and/or TCP server (PORT_IN_USE when taken), builds the engine, drives it
 * (driver.ts) and, with `webAddr`, serves the HTTP API (http.ts).
 *
 * Sending: `send()` resolves once the bytes are queued. When the bytes already waiting for the
 * destination (engine backlog + latency queue + socket buffer) exceed SEND_HIGH_WATER_BYTES, the
 * send waits (in FIFO order per destination) until they fall below it, at most
 * SEND_WAIT_TIMEOUT_MS, then rejects with TIMEOUT.
 *
 * Receiving: `messages()` iterates a bounded buffer (inbox.ts: INBOX_LIMIT_MESSAGES messages or
 * INBOX_LIMIT_BYTES bytes; overflow is dropped and counted as `inbox_full`). Messages are
 * buffered from the start, except when the program listens with `on("message")` and never asked
 * for `messages()`: then the listener is the consumer and nothing piles up.
 */
import { randomBytes } from "node:crypto";
import { type Address, formatAddress, isIpv4, parseSeed, type Seed } from "../core/address.js";
import { SkeinError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { isNodeId, type NodeId } from "../core/node-id.js";
import { SeededRng } from "../core/rng.js";
import type { NodeEventOf, ReceivedMessage, SkeinNode } from "../node/api.js";
import type { EngineConfig } from "../node/engine-config.js";
import { type EngineStats, NodeEngine } from "../node/engine.js";
import type { SecurityInfo } from "../node/secure-paths.js";
import type { NeighbourInfo, NodeEvent, NodeEventKind, ProbeResult, RouteView } from "../node/io.js";
import { NODE_OPTION_DEFAULTS, type NodeOptions } from "../node/options.js";
import { primeAllocator } from "./allocator.js";
import { Driver } from "./driver.js";
import type { HttpApi } from "./http.js";
import { parseWebAddr, type WebAddr } from "./web-addr.js";
import { Inbox } from "./inbox.js";
import { LatencyEmulator, type LatencyMatrix, loadLatencyMatrix } from "./latency.js";
import { createLogger, isLogLevel, LOG_LEVELS, type RuntimeLogLevel } from "./logger.js";
import { FRAME_FRAMING, TcpTransport, UNIT_FRAMING } from "./tcp.js";
import { systemEntropy } from "../core/entropy.js";
import { warmUpCrypto } from "../crypto/channel.js";
import { checkOwnCredentials, loadSecurity } from "./security.js";
import type { Transport } from "./transport.js";
import { UdpTransport } from "./udp.js";
// Discovery by tags.
import { decodeCertificate } from "../crypto/certificate.js";
import { effectiveLocalTags, parseTagList } from "../link/tags.js";
// pub/sub (issue 5): the broker, library API and NATS port live in pubsub.ts.
import type { Msg, Payload, PublishOptions, PubSubSubscription, SubscribeOptions } from "../features/pubsub/client.js";
import { NodePubSub, type NatsPortOptions, type RequestOptions } from "./pubsub.js";
// Collector (issue 6): the model behind GET /api/topology and the web view.
import { SNAPSHOT_INTERVAL_MAX_MS, SNAPSHOT_INTERVAL_MIN_MS } from "../features/collector/constants.js";
import type { Topology } from "../features/collector/model.js";
import { packageVersion } from "./version.js";
import type { NatsServer, NatsServerConfig } from "./nats/server.js";

/** Bytes waiting below the API for one destination above which `send()` waits. */
export const SEND_HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** A send or probe toward a destination whose routes are being renewed (starving) waits this long at most. */
export const ROUTE_WAIT_MS = 1_000;
/** A send waiting on a congested link longer than this rejects with TIMEOUT. */
export const SEND_WAIT_TIMEOUT_MS = 30_000;
/** How long close() lets goodbyes and written data leave before it cuts the sockets. */
export const CLOSE_GRACE_MS = 1_000;
/** Largest UDP payload over IPv4. */
export const UDP_MTU_MAX = 65_507;
export const UDP_MTU_MIN = 512;

const KNOWN_OPTIONS = new Set([
  "nodeId",
  "udpPort",
  "tcpPort",
  "bind",
  "seeds",
  "maxNeighbours",
  "localTags",
  "connectTags",
  "webAddr",
  "emulateLatency",
  "logLevel",
  "probeIntervalMs",
  "linkTimeoutMs",
  "udpMtu",
  "routeHopCostMs",
  "natsPort",
  "natsAddr",
  "key",
  "dataDir",
  "networkKey",
  "ca",
  "cert",
  "collector",
  "collectorIntervalMs",
]);

/** Options after validation, with defaults filled in. */
export interface ResolvedNodeOptions {
  nodeId: NodeId | undefined;
  udpPort: number | undefined;
  tcpPort: number | undefined;
  bind: string;
  seeds: Seed[];
  maxNeighbours: number;
  /** Discovery by tags: undefined when not given (CA mode then advertises the certificate's tags). */
  localTags: string[] | undefined;
  connectTags: string[];
  webAddr: WebAddr | undefined;
  emulateLatency: string | undefined;
  logLevel: RuntimeLogLevel;
  probeIntervalMs: number;
  linkTimeoutMs: number;
  udpMtu: number;
  /** The NATS client port (pub/sub, issue 5), when natsPort or natsAddr was given. */
  nats: NatsPortOptions | undefined;
  /** Routing: per-hop cost, ms (undefined: the engine's default). */
  routeHopCostMs: number | undefined;
  /** Security: file paths (security.ts loads them). */
  key: string | undefined;
  dataDir: string | undefined;
  networkKey: string | undefined;
  ca: string | undefined;
  cert: string | undefined;
  /** Collector (issue 6): the collector role and the reporting interval. */
  collector: boolean;
  collectorIntervalMs: number | undefined;
  /** Keys the runtime does not know (warned about, not refused). */
  unknownKeys: string[];
}

function bad(message: string): SkeinError {
  return new SkeinError("BAD_OPTION", message);
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function checkInteger(name: string, value: unknown, min: number, max: number, hint = ""): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`bad ${name} ${show(value)}: expected an integer in ${min}..${max}${hint}`);
  }
  return value;
}

/**
 * Checks every option and fills in defaults. Throws SkeinError BAD_OPTION naming the bad value and
 * what is expected. When neither udpPort nor tcpPort is given, udpPort 0 (any free port) is used.
 */
export function validateNodeOptions(options: NodeOptions | undefined): ResolvedNodeOptions {
  if (options === undefined || options === null) options = {};
  if (typeof options !== "object" || Array.isArray(options)) throw bad(`bad options ${show(options)}: expected an object such as { udpPort: 0 }`);
  const o = options as NodeOptions & Record<string, unknown>;
  const unknownKeys = Object.keys(o).filter((key) => !KNOWN_OPTIONS.has(key) && o[key] !== undefined);

  const nodeId = o.nodeId === undefined ? undefined : o.nodeId;
  if (nodeId !== undefined && !isNodeId(nodeId)) throw bad(`bad nodeId ${show(nodeId)}: expected an integer in 1..4294967295`);

  const portHint = " (0 picks any free port)";
  let udpPort = o.udpPort === undefined ? undefined : checkInteger("udpPort", o.udpPort, 0, 65535, portHint);
  const tcpPort = o.tcpPort === undefined ? undefined : checkInteger("tcpPort", o.tcpPort, 0, 65535, portHint);
  if (udpPort === undefined && tcpPort === undefined) udpPort = 0;

  const bind = o.bind === undefined ? NODE_OPTION_DEFAULTS.bind : o.bind;
  if (typeof bind !== "string" || !isIpv4(bind)) throw bad(`bad bind ${show(bind)}: expected an IPv4 address such as 127.0.0.1 or 0.0.0.0`);

  const seeds: Seed[] = [];
  if (o.seeds !== undefined) {
    if (!Array.isArray(o.seeds)) throw bad(`bad seeds ${show(o.seeds)}: expected a list of NODEID@ADDRESS, e.g. ["1@/ip4/127.0.0.1/udp/10001"]`);
    for (const text of o.seeds as unknown[]) {
      if (typeof text !== "string") throw bad(`bad seed ${show(text)}: expected NODEID@ADDRESS, e.g. 1@/ip4/127.0.0.1/udp/10001`);
      const seed = parseSeed(text.trim());
      if (!seed.ok) throw bad(seed.error);
      seeds.push(seed.value);
    }
  }

  const maxNeighbours = o.maxNeighbours === undefined ? NODE_OPTION_DEFAULTS.maxNeighbours : checkInteger("maxNeighbours", o.maxNeighbours, 1, 65535);
  const webAddr = o.webAddr === undefined ? undefined : parseWebAddr(o.webAddr);
  const localTags = o.localTags === undefined ? undefined : checkTags("localTags", o.localTags);
  const connectTags = o.connectTags === undefined ? [] : checkTags("connectTags", o.connectTags);

  let emulateLatency: string | undefined;
  if (o.emulateLatency !== undefined) {
    if (typeof o.emulateLatency !== "string" || o.emulateLatency.length === 0) {
      throw bad(`bad emulateLatency ${show(o.emulateLatency)}: expected the path of an RTT matrix JSON file`);
    }
    emulateLatency = o.emulateLatency;
  }

  const logLevel = o.logLevel === undefined ? NODE_OPTION_DEFAULTS.logLevel : o.logLevel;
  if (!isLogLevel(logLevel)) throw bad(`bad logLevel ${show(logLevel)}: expected one of ${LOG_LEVELS.join(", ")}`);

  const probeIntervalMs = o.probeIntervalMs === undefined ? NODE_OPTION_DEFAULTS.probeIntervalMs : o.probeIntervalMs;
  if (typeof probeIntervalMs !== "number" || !Number.isFinite(probeIntervalMs) || probeIntervalMs < 1 || probeIntervalMs > 3_600_000) {
    throw bad(`bad probeIntervalMs ${show(probeIntervalMs)}: expected milliseconds in 1..3600000`);
  }
  const linkTimeoutMs = o.linkTimeoutMs === undefined ? NODE_OPTION_DEFAULTS.linkTimeoutMs : o.linkTimeoutMs;
  if (typeof linkTimeoutMs !== "number" || !Number.isFinite(linkTimeoutMs) || linkTimeoutMs < 1 || linkTimeoutMs > 86_400_000) {
    throw bad(`bad linkTimeoutMs ${show(linkTimeoutMs)}: expected milliseconds in 1..86400000`);
  }
  if (linkTimeoutMs <= probeIntervalMs) {
    throw bad(`bad linkTimeoutMs ${linkTimeoutMs}: expected more than probeIntervalMs (${probeIntervalMs}), or every link would time out between two probes`);
  }
  const udpMtu = o.udpMtu === undefined ? NODE_OPTION_DEFAULTS.udpMtu : checkInteger("udpMtu", o.udpMtu, UDP_MTU_MIN, UDP_MTU_MAX, " bytes");

  const nats = validateNats(o.natsPort, o.natsAddr, bind);

  const routeHopCostMs = o.routeHopCostMs;
  if (routeHopCostMs !== undefined && (typeof routeHopCostMs !== "number" || !Number.isFinite(routeHopCostMs) || routeHopCostMs < 0 || routeHopCostMs > 1000)) {
    throw bad(`bad routeHopCostMs ${show(routeHopCostMs)}: expected milliseconds in 0..1000`);
  }

  const files: Record<"key" | "dataDir" | "networkKey" | "ca" | "cert", string | undefined> = { key: undefined, dataDir: undefined, networkKey: undefined, ca: undefined, cert: undefined };
  for (const name of Object.keys(files) as (keyof typeof files)[]) {
    const value = o[name];
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length === 0) throw bad(`bad ${name} ${show(value)}: expected a file path`);
    files[name] = value;
  }
  if ((files.ca === undefined) !== (files.cert === undefined)) {
    throw bad(files.ca === undefined ? "cert given without ca: certificate mode needs both --ca FILE and --cert FILE" : "ca given without cert: certificate mode needs both --ca FILE and --cert FILE");
  }

  const { collector, collectorIntervalMs } = validateCollector(o.collector, o.collectorIntervalMs);

  return {
    nodeId, udpPort, tcpPort, bind, seeds, maxNeighbours, localTags, connectTags, webAddr, emulateLatency, logLevel, probeIntervalMs, linkTimeoutMs, udpMtu, nats, routeHopCostMs, ...files,
    collector, collectorIntervalMs, unknownKeys,
  };
}

/** Collector (issue 6): the collector role and the reporting interval. */
function validateCollector(collector: unknown, collectorIntervalMs: unknown): Pick<ResolvedNodeOptions, "collector" | "collectorIntervalMs"> {
  if (collector !== undefined && typeof collector !== "boolean") throw bad(`bad collector ${show(collector)}: expected true or false`);
  if (
    collectorIntervalMs !== undefined &&
    (typeof collectorIntervalMs !== "number" || !Number.isInteger(collectorIntervalMs) || collectorIntervalMs < SNAPSHOT_INTERVAL_MIN_MS || collectorIntervalMs > SNAPSHOT_INTERVAL_MAX_MS)
  ) {
    throw bad(`bad collectorIntervalMs ${show(collectorIntervalMs)}: expected milliseconds in ${SNAPSHOT_INTERVAL_MIN_MS}..${SNAPSHOT_INTERVAL_MAX_MS}`);
  }
  return { collector: collector === true, collectorIntervalMs: collectorIntervalMs as number | undefined };
}

/** Discovery by tags: a list of tags (a comma-separated string is accepted too). */
function checkTags(name: string, value: unknown): string[] {
  const parsed = parseTagList(value);
  if (!parsed.ok) throw bad(`bad ${name} ${show(value)}: ${parsed.error}`);
  return parsed.value;
}

/** pub/sub (issue 5): `natsAddr` is HOST or HOST:PORT (default host: bind); `natsPort` wins over its port. */
function validateNats(natsPort: unknown, natsAddr: unknown, bind: string): NatsPortOptions | undefined {
  if (natsPort === undefined && natsAddr === undefined) return undefined;
  let host = bind;
  let port: number | undefined;
  if (natsAddr !== undefined) {
    const expected = "expected an IPv4 HOST or HOST:PORT such as 0.0.0.0 or 127.0.0.1:4222";
    if (typeof natsAddr !== "string") throw bad(`bad natsAddr ${show(natsAddr)}: ${expected}`);
    const [h, p, extra] = natsAddr.trim().split(":");
    if (extra !== undefined || h === undefined || !(isIpv4(h) || h === "localhost")) throw bad(`bad natsAddr ${show(natsAddr)}: ${expected}`);
    host = h;
    if (p !== undefined) {
      if (!/^[0-9]{1,5}$/.test(p)) throw bad(`bad natsAddr ${show(natsAddr)}: ${expected}`);
      port = checkInteger("natsAddr port", Number(p), 0, 65535);
    }
  }
  if (natsPort !== undefined) port = checkInteger("natsPort", natsPort, 0, 65535, " (0 picks any free port)");
  return { host, port: port ?? 4222 };
}

/** A random NodeId in 1..2^32-1 from node:crypto. */
export function randomNodeId(): NodeId {
  for (;;) {
    const id = randomBytes(4).readUInt32BE(0);
    if (id !== 0) return id;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface PendingSend {
  data: Uint8Array;
  reliable: boolean;
  since: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

type Listener = (event: NodeEvent) => void;

export class RuntimeNode implements SkeinNode {
  readonly id: NodeId;
  readonly addresses: string[];
  readonly webUrl: string | undefined = undefined;
  readonly startedAtMs: number;
  private readonly engine: NodeEngine;
  private readonly driver: Driver;
  private readonly logger: Logger;
  private readonly listeners = new Map<NodeEventKind, Set<Listener>>();
  private readonly inbox = new Inbox<ReceivedMessage>();
  private inboxWanted = false;
  /** Sends waiting for room, per destination, FIFO. */
  private readonly pending = new Map<NodeId, PendingSend[]>();
  private waking = false;
  /** Pings and traces waiting for their `probe` event, by probe id. */
  private readonly probes = new Map<number, { kind: "ping" | "trace"; destination: NodeId; resolve: (result: ProbeResult) => void }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private http: HttpApi | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;
  /** pub/sub (issue 5): local broker, library API, NATS port. */
  private readonly pubsub: NodePubSub;

  constructor(
    config: EngineConfig,
    private readonly transports: Transport[],
    matrix: LatencyMatrix | undefined,
    logger: Logger,
  ) {
    this.id = config.nodeId;
    this.logger = logger;
    this.addresses = config.listenAddresses.map(formatAddress);
    this.engine = new NodeEngine(config);
    // Pub/sub: the library API and NATS port share the engine's overlay broker (module 4).
    this.pubsub = new NodePubSub(
      config.nodeId,
      logger.child({ module: "pubsub" }),
      this.engine.pubsub.broker,
      () => this.engine.pubsub.maxLinkBacklogBytes(),
      () => this.remoteSubjects(),
    );
    const clock = (): number => performance.now();
    this.startedAtMs = clock();
    const runtimeLogger = logger.child({ module: "runtime" });
    let driver: Driver | undefined;
    const latency =
      matrix === undefined ? undefined : new LatencyEmulator(this.id, matrix, clock, (pathId) => driver?.released(pathId));
    driver = new Driver({
      engine: this.engine,
      transports,
      latency,
      logger: runtimeLogger,
      clock,
      onEvent: (event) => this.dispatch(event),
      wantsWake: () => this.pending.size > 0,
      onWake: () => this.wake(),
    });
    this.driver = driver;
    // Pub/sub: a publish or subscription change made outside an engine input (library, NATS port)
    // stamps the engine with the current time and schedules one drain for what it queued.
    this.engine.pubsub.beforeSend = () => {
      this.engine.touch(driver!.now());
      driver!.scheduleDrain();
    };
    this.engine.pubsub.externalBacklog = (neighbour) => driver!.queuedBytes(neighbour) - this.engine.backlogBytes(neighbour);
  }

  /** Starts the engine (joins through the seeds) and, with `webAddr`, the HTTP API. */
  async start(webAddr: WebAddr | undefined, nats?: NatsPortOptions): Promise<void> {
    this.driver.start();
    if (nats !== undefined) await this.pubsub.startNats(nats);
    if (webAddr !== undefined) {
      // Loaded only when wanted: node:http and prom-client cost ~12 MB of memory.
      const { HttpApi } = await import("./http.js");
      this.http = await HttpApi.start(webAddr, this.view(), this.logger.child({ module: "http" }));
      (this as { webUrl: string | undefined }).webUrl = this.http.url;
    }
  }

  private view() {
    return {
      id: this.id,
      addresses: this.addresses,
      startedAtMs: this.startedAtMs,
      now: () => performance.now(),
      neighbours: () => this.neighbours(),
      stats: () => this.stats(),
      runtimeCounters: () => this.runtimeCounters(),
      security: () => this.engine.securityInfo(),
      routes: () => this.routes(),
      topology: () => this.topology(),
      trace: (destination: NodeId) => this.trace(destination),
      ping: (destination: NodeId) => this.ping(destination),
      tags: () => this.tags(),
    };
  }

  /** Discovery by tags: the tags this node advertises and those it connects to. */
  tags(): { local: string[]; connect: string[] } {
    return this.engine.tags();
  }

  neighbours(): NeighbourInfo[] {
    return this.engine.neighbours();
  }

  /** Collector (issue 6): the collector's model of the network, or undefined on a node without --collector. */
  topology(): Topology | undefined {
    return this.engine.collector.model?.topology(this.driver.now());
  }

  /** Security mode and key fingerprints (GET /api/node's `security`). */
  securityInfo(): SecurityInfo {
    return this.engine.securityInfo();
  }

  // ---- routing (issue 4)

  routes(): RouteView[] {
    return this.engine.routes();
  }

  trace(destination: NodeId): Promise<ProbeResult> {
    return this.probe(destination, "trace");
  }

  ping(destination: NodeId): Promise<ProbeResult> {
    return this.probe(destination, "ping");
  }

  /**
   * A destination can be without a route for a moment: its routes all became infeasible and a
   * seqno request is out ("starving", src/routing/README.md), answered within a round trip. Resolves
   * true once a route exists, false at once when the destination is not starving, or after
   * ROUTE_WAIT_MS.
   */
  private whenRouted(destination: NodeId): Promise<boolean> {
    if (this.engine.nextHop(destination) !== undefined) return Promise.resolve(true);
    if (this.closed || this.engine.route(destination)?.state !== "starving") return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve(false);
      }, ROUTE_WAIT_MS);
      const off = this.on("route", (event) => {
        if (event.destination !== destination || event.nextHop === undefined) return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  /** Probes answer through `probe` events (the engine gives up after PROBE_TIMEOUT_MS itself). */
  private probe(destination: NodeId, kind: "ping" | "trace"): Promise<ProbeResult> {
    if (this.closed) return Promise.reject(new SkeinError("CLOSED", `cannot ${kind} ${destination}: node ${this.id} is closed`));
    if (this.engine.nextHop(destination) === undefined) {
      return this.whenRouted(destination).then((routed) =>
        routed
          ? this.probe(destination, kind)
          : Promise.reject(new SkeinError("NO_ROUTE", `no route to node ${destination} from node ${this.id}: it is not a neighbour and no neighbour advertised a route to it (yet)`)),
      );
    }
    const id = kind === "ping" ? this.engine.ping(this.driver.now(), destination) : this.engine.trace(this.driver.now(), destination);
    return new Promise<ProbeResult>((resolve) => {
      this.probes.set(id, { kind, destination, resolve });
      this.driver.noteApiCall(0);
    });
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  /** Runtime-level drops and errors by reason: transports, driver, inbox overflow. */
  runtimeCounters(): Map<string, number> {
    const all = new Map<string, number>();
    const add = (counters: Map<string, number>, prefix: string): void => {
      for (const [reason, count] of counters) all.set(prefix + reason, (all.get(prefix + reason) ?? 0) + count);
    };
    for (const transport of this.transports) add(transport.counters, `${transport.kind}_`);
    add(this.driver.counters, "");
    if (this.inbox.dropped > 0) all.set("inbox_full", this.inbox.dropped);
    add(this.pubsub.counters(), "");
    // Pub/sub overlay (module 4): per-link drops, no-route destinations, malformed, refused interest.
    const overlay = this.engine.pubsub.stats();
    const overlayCounters = new Map<string, number>();
    if (overlay.linkDropped > 0) overlayCounters.set("pubsub_link_dropped", overlay.linkDropped);
    if (overlay.noRoute > 0) overlayCounters.set("pubsub_no_route", overlay.noRoute);
    if (overlay.sendFailed > 0) overlayCounters.set("pubsub_send_failed", overlay.sendFailed);
    if (overlay.malformed > 0) overlayCounters.set("pubsub_malformed", overlay.malformed);
    if (overlay.refused > 0) overlayCounters.set("pubsub_interest_refused", overlay.refused);
    if (overlay.expiredOrigins > 0) overlayCounters.set("pubsub_interest_expired", overlay.expiredOrigins);
    add(overlayCounters, "");
    // Collector (module 5): reports that could not go out, malformed messages, refused collectors and nodes.
    const collector = this.engine.collector.stats();
    const collectorCounters = new Map<string, number>();
    if (collector.sendFailed > 0) collectorCounters.set("collector_send_failed", collector.sendFailed);
    if (collector.skippedBacklog > 0) collectorCounters.set("collector_skipped_backlog", collector.skippedBacklog);
    if (collector.malformed > 0) collectorCounters.set("collector_malformed", collector.malformed);
    if (collector.collectorsRefused > 0) collectorCounters.set("collector_collectors_refused", collector.collectorsRefused);
    if (collector.notCollector > 0) collectorCounters.set("collector_not_collector", collector.notCollector);
    const model = this.engine.collector.model?.stats();
    if (model !== undefined && model.snapshotsRefused > 0) collectorCounters.set("collector_nodes_refused", model.snapshotsRefused);
    add(collectorCounters, "");
    return all;
  }

  /** Bytes waiting below the API for `peer` (engine backlog, latency queue, socket buffer). */
  queuedBytes(peer: NodeId): number {
    return this.driver.queuedBytes(peer);
  }

  on<K extends NodeEventKind>(kind: K, listener: (event: NodeEventOf<K>) => void): () => void {
    let set = this.listeners.get(kind);
    if (set === undefined) this.listeners.set(kind, (set = new Set()));
    const entry = listener as Listener;
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  private dispatch(event: NodeEvent): void {
    const set = this.listeners.get(event.kind);
    if (event.kind === "message") {
      if (this.inboxWanted || set === undefined || set.size === 0) {
        this.inbox.push({ from: event.from, data: event.data, reliable: event.reliable }, event.data.byteLength);
      }
    } else if (event.kind === "probe") {
      const pending = this.probes.get(event.result.id);
      if (pending !== undefined) {
        this.probes.delete(event.result.id);
        pending.resolve(event.result);
      }
    } else if (event.kind === "link_down") {
      // Senders waiting on this peer learn of it at once (their retry throws NO_ROUTE).
      if (this.pending.has(event.peer)) this.driver.scheduleDrain();
    }
    if (set === undefined) return;
    for (const listener of set) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: (error as Error)?.message ?? String(error), event: event.kind }, "event listener threw");
      }
    }
  }

  messages(): AsyncIterable<ReceivedMessage> {
    this.inboxWanted = true;
    const inbox = this.inbox;
    return { [Symbol.asyncIterator]: () => inbox.iterator() };
  }

  send(destination: NodeId, data: Uint8Array, options?: { reliable?: boolean }): Promise<void> {
    if (this.closed) return Promise.reject(new SkeinError("CLOSED", `cannot send to ${destination}: node ${this.id} is closed`));
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new SkeinError("BAD_ARGUMENT", `send() data must be a Uint8Array (or Buffer), got ${typeof data}`));
    }
    const reliable = options?.reliable ?? true;
    if (!this.pending.has(destination) && this.driver.queuedBytes(destination) < SEND_HIGH_WATER_BYTES) {
      try {
        this.engine.send(this.driver.now(), destination, data, { reliable });
        // After a forced drain the caller is made to yield to the event loop: a loop of
        // `await send()` on a fast link would otherwise never let sockets and timers run.
        return this.driver.noteApiCall(data.byteLength) ? nextTurn() : RESOLVED;
      } catch (error) {
        if (isNoRoute(error) && this.engine.route(destination)?.state === "starving") {
          return this.whenRouted(destination).then((routed) => (routed ? this.send(destination, data, options) : Promise.reject(error)));
        }
        if (!isBackpressure(error)) return Promise.reject(error);
      }
    }
    return new Promise<void>((resolve, reject) => {
      let queue = this.pending.get(destination);
      if (queue === undefined) this.pending.set(destination, (queue = []));
      queue.push({ data, reliable, since: this.driver.now(), resolve, reject });
      this.armSweep();
    });
  }

  /** Lets waiting sends go while their destination has room. Called after drains and on socket drain. */
  private wake(): void {
    if (this.waking || this.closed) return;
    this.waking = true;
    try {
      for (const [destination, queue] of this.pending) {
        let sent = 0;
        let index = 0;
        while (index < queue.length && this.driver.queuedBytes(destination) < SEND_HIGH_WATER_BYTES) {
          const item = queue[index]!;
          try {
            this.engine.send(this.driver.now(), destination, item.data, { reliable: item.reliable });
          } catch (error) {
            if (isBackpressure(error)) break;
            index++;
            item.reject(error);
            continue;
          }
          index++;
          sent += item.data.byteLength;
          item.resolve();
          // Make the bytes visible in queuedBytes before deciding on the next one.
          if (sent >= SEND_HIGH_WATER_BYTES / 8) {
            this.driver.noteApiCall(sent);
            sent = 0;
          }
        }
        if (sent > 0) this.driver.noteApiCall(sent);
        if (index >= queue.length) this.pending.delete(destination);
        else if (index > 0) queue.splice(0, index);
      }
    } finally {
      this.waking = false;
    }
  }

  private armSweep(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), 1_000);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = this.driver.now();
    for (const [destination, queue] of this.pending) {
      let expired = 0;
      while (expired < queue.length && now - queue[expired]!.since >= SEND_WAIT_TIMEOUT_MS) expired++;
      if (expired === 0) continue;
      const error = new SkeinError(
        "TIMEOUT",
        `send to ${destination} waited ${SEND_WAIT_TIMEOUT_MS} ms for room on a congested link; the peer is not reading fast enough or the link is stalled`,
      );
      for (const item of queue.splice(0, expired)) item.reject(error);
      if (queue.length === 0) this.pending.delete(destination);
    }
    if (this.pending.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  // ---- pub/sub (issue 5)

  /** Subjects other nodes hold interest in (their NATS URL advertisements among them). */
  private *remoteSubjects(): Iterable<string> {
    for (const origin of this.engine.pubsub.originIds()) {
      for (const item of this.engine.pubsub.interestOf(origin)) yield item.subject;
    }
  }

  get natsUrl(): string | undefined {
    return this.pubsub.natsUrl;
  }

  /** `skein nats-server` with a cluster: a NATS port with a full configuration on this node (pubsub.ts). */
  startNatsServer(config: NatsServerConfig, logger: Logger): Promise<NatsServer> {
    return this.pubsub.startNatsServer(config, logger);
  }

  subscribe(subject: string, options?: SubscribeOptions): PubSubSubscription {
    return this.pubsub.subscribe(subject, options);
  }

  publish(subject: string, data?: Payload, options?: PublishOptions): Promise<void> {
    return this.pubsub.publish(subject, data, options);
  }

  request(subject: string, data?: Payload, options?: RequestOptions): Promise<Msg> {
    return this.pubsub.request(subject, data, options);
  }

  drain(options?: { timeoutMs?: number }): Promise<void> {
    return this.pubsub.drain(options);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    const error = new SkeinError("CLOSED", `node ${this.id} closed while the send was waiting for room`);
    for (const queue of this.pending.values()) for (const item of queue) item.reject(error);
    this.pending.clear();
    for (const [id, { kind, destination, resolve }] of this.probes) resolve({ id, kind, destination, complete: false, rttMs: undefined, hops: [] });
    this.probes.clear();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    // Called from an event listener in the middle of a drain: let that drain finish carrying
    // its outputs first, or the goodbyes would find the transports closed.
    while (this.driver.isDraining) await new Promise((resolve) => setImmediate(resolve));
    await this.pubsub.close();
    this.driver.shutdown();
    await Promise.all([this.http?.close(), ...this.transports.map((transport) => transport.shutdown(CLOSE_GRACE_MS))]);
    this.inbox.end();
    this.logger.info({}, "node closed");
  }
}

/** Discovery by tags: the tags of this node's own certificate. */
function certificateTagsOf(certificate: Uint8Array): string[] | undefined {
  const decoded = decodeCertificate(certificate);
  return decoded.ok ? [...decoded.value.tags] : undefined;
}

function isNoRoute(error: unknown): boolean {
  return error instanceof SkeinError && error.code === "NO_ROUTE";
}

function isBackpressure(error: unknown): boolean {
  return error instanceof SkeinError && error.code === "BACKPRESSURE";
}

/**
 * Starts a node: validates `options`, binds its sockets, starts the engine and, with `webAddr`,
 * the HTTP API. Rejects with SkeinError: BAD_OPTION, BAD_CONFIG (latency file), PORT_IN_USE.
 */
export async function createNode(options: NodeOptions = {}): Promise<SkeinNode> {
  return startNode(options, false);
}

/**
 * For benchmarks only (bench/link.ts compares encrypted links with plaintext ones): createNode,
 * with `insecure` links (EngineConfig.insecure: no handshake, no records, no end-to-end sealing).
 * Not exported from the package: nothing an application or the CLI can reach.
 */
export async function createBenchmarkNode(options: NodeOptions, links: { insecure: boolean }): Promise<SkeinNode> {
  return startNode(options, links.insecure);
}

async function startNode(options: NodeOptions, insecure: boolean): Promise<SkeinNode> {
  const resolved = validateNodeOptions(options);
  primeAllocator();
  const security = await loadSecurity(resolved);
  const nodeId = resolved.nodeId ?? security.defaultNodeId;
  const logger = createLogger({ level: resolved.logLevel, bindings: { node: nodeId } });
  const check = checkOwnCredentials(security, nodeId);
  if (check !== undefined) throw new SkeinError("BAD_OPTION", check);
  const warmUpMs = warmUpCrypto(systemEntropy, () => performance.now());
  logger.debug({ warmUpMs }, "crypto warmed up");
  if (resolved.unknownKeys.length > 0) {
    logger.warn({ keys: resolved.unknownKeys }, "ignoring unknown node options");
  }
  const matrix = resolved.emulateLatency === undefined ? undefined : await loadLatencyMatrix(resolved.emulateLatency);

  const transports: Transport[] = [];
  try {
    if (resolved.udpPort !== undefined) {
      transports.push(await UdpTransport.bind({ host: resolved.bind, port: resolved.udpPort, logger: logger.child({ module: "udp" }) }));
    }
    if (resolved.tcpPort !== undefined) {
      transports.push(await TcpTransport.listen({ host: resolved.bind, port: resolved.tcpPort, logger: logger.child({ module: "tcp" }), framing: insecure ? FRAME_FRAMING : UNIT_FRAMING }));
    }
  } catch (error) {
    await Promise.all(transports.map((transport) => transport.shutdown(0)));
    throw error;
  }

  // Said once the sockets are bound: a node that cannot start prints only why.
  for (const line of security.notices) logger.info({}, line);
  if (insecure) {
    logger.warn({}, "INSECURE benchmark node: plaintext links, no authentication");
  } else if (security.networkKey === undefined && security.trust.caPublicKey === undefined) {
    logger.warn({}, "open network: no --network-key and no --ca; any node that can reach this one can join");
  }
  const listenAddresses: Address[] = transports.map((transport) => transport.localAddress);
  // Discovery by tags: in CA mode the certificate's tags are authoritative.
  const certificateTags = security.trust.caPublicKey === undefined || security.certificate === undefined ? undefined : certificateTagsOf(security.certificate);
  const localTags = effectiveLocalTags(resolved.localTags, certificateTags);
  if (localTags.refused.length > 0) {
    logger.warn({ refused: localTags.refused, certificateTags }, `--local-tags ${localTags.refused.join(",")} not in this node's certificate: not advertised (re-sign it with skein ca sign --tags)`);
  }
  const config: EngineConfig = {
    nodeId,
    listenAddresses,
    seeds: resolved.seeds,
    maxNeighbours: resolved.maxNeighbours,
    localTags: localTags.tags,
    connectTags: resolved.connectTags,
    probeIntervalMs: resolved.probeIntervalMs,
    linkTimeoutMs: resolved.linkTimeoutMs,
    udpMtu: resolved.udpMtu,
    ...(resolved.routeHopCostMs !== undefined ? { routeHopCostMs: resolved.routeHopCostMs } : {}),
    rng: new SeededRng(randomBytes(4).readUInt32BE(0)),
    logger: logger.child({ module: "engine" }),
    identity: security.identity,
    entropy: systemEntropy,
    networkKey: security.networkKey,
    certificate: security.certificate,
    trust: security.trust,
    wallClockOffsetMs: Date.now() - performance.now(),
    collector: resolved.collector,
    ...(resolved.collectorIntervalMs !== undefined ? { collectorIntervalMs: resolved.collectorIntervalMs } : {}),
    softwareVersion: packageVersion(),
    insecure,
  };

  let node: RuntimeNode;
  try {
    node = new RuntimeNode(config, transports, matrix, logger);
  } catch (error) {
    await Promise.all(transports.map((transport) => transport.shutdown(0)));
    throw error;
  }
  try {
    await node.start(resolved.webAddr, resolved.nats);
  } catch (error) {
    await node.close();
    throw error;
  }
  logger.info({ addresses: node.addresses, web: node.webUrl }, "node started");
  return node;
}

/**
 * The NATS port's sockets: a node:net listener whose connections run `NatsConnection` (the pure
 * protocol logic), one timer per connection for PINGs and the authentication timeout, coalesced
 * writes (all output produced while handling one inbound chunk goes out as one corked write per
 * connection), the monitoring HTTP endpoints, lame-duck mode and reloads.
 *
 * I/O lives here only (src/runtime: the only layer that touches the outside world); everything the
 * protocol decides is in services/nats/connection.ts, the monitoring JSON in services/nats/monitor.ts.
 */
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { availableParallelism } from "node:os";
import { SkeinError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { Broker, Subscription } from "../../features/pubsub/broker.js";
import { type AuthorizationSpec, Authenticator, checkAuthorization } from "../../services/nats/auth.js";
import type { NatsServerConfig } from "../../services/nats/config.js";
import { type CloseReason, type ConnectionConfig, type ConnectionHost, NatsConnection } from "../../services/nats/connection.js";
import { connz, healthz, parseConnzQuery, type ServerSnapshot, subsz, varz } from "../../services/nats/monitor.js";
import { errLine, NATS_COMPAT_VERSION, NatsErr, type ServerInfo } from "../../services/nats/protocol.js";

export type { ClusterConfig, NatsServerConfig } from "../../services/nats/config.js";

/** How long a closing connection may take to flush its last bytes before it is destroyed. */
export const CLOSE_FLUSH_GRACE_MS = 1_000;
/**
 * Flow control, after nats-server's "stall": when handling a publisher's input leaves a
 * subscriber's socket holding more than STALL_PENDING_BYTES, the publisher's socket is paused
 * until that subscriber drains, for at most STALL_MAX_MS each time, and only while the subscriber
 * has drained within the last STALL_PROGRESS_MS (a stuck subscriber stops slowing anyone down
 * and is cut by max_pending or write_deadline instead). README.md, "Slow consumers".
 */
export const STALL_PENDING_BYTES = 2 * 1024 * 1024;
export const STALL_MAX_MS = 100;
export const STALL_PROGRESS_MS = 1_000;
/** How often backlogged connections are checked against write_deadline. */
const WRITE_DEADLINE_CHECK_MS = 250;
/** How often a publisher paused on the overlay's backlog checks whether it may go on. */
const OVERLAY_CHECK_MS = 1;

interface Entry {
  connection: NatsConnection;
  socket: Socket;
  timer: NodeJS.Timeout | undefined;
  armedAt: number;
  /** Since when bytes have been waiting in the socket without a 'drain' (undefined: none waiting). */
  backlogSince: number | undefined;
  /** When the socket last made progress (a 'drain', or bytesWritten grew at a check). */
  lastDrainAt: number;
  lastBytesWritten: number;
  /** Publishers paused because of this connection's backlog. */
  stalling: Set<Entry>;
  /** This connection's socket is paused (stalled on a subscriber) until this timer fires or it is resumed. */
  stallTimer: NodeJS.Timeout | undefined;
  /** This connection's socket is paused because the overlay's links are backlogged (setOverlayBackpressure). */
  overlayTimer: NodeJS.Timeout | undefined;
}

export interface NatsServerStats {
  connections: number;
  totalConnections: number;
  slowConsumers: number;
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A server id shaped like nats-server's (56 base32 characters starting with N). */
export function newServerId(): string {
  const bytes = randomBytes(55);
  let id = "N";
  for (const byte of bytes) id += BASE32[byte & 31];
  return id;
}

function monoNow(): number {
  return performance.now();
}

export class NatsServer implements ConnectionHost {
  readonly serverId = newServerId();
  readonly serverName: string;
  readonly trace: boolean;
  readonly logger: Logger;
  private cfg: NatsServerConfig;
  private auth: Authenticator | undefined;
  private readonly connections = new Map<number, Entry>();
  /** The connection whose input is being handled (publishes it makes may stall it). */
  private inputEntry: Entry | undefined;
  private readonly backlogged = new Set<Entry>();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly dirty = new Set<NatsConnection>();
  private flushScheduled = false;
  private inInput = false;
  private nextCid = 1;
  private totalConnections = 0;
  private closedStats = { inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0 };
  private slowConsumers = 0;
  private connectUrls: string[] = [];
  private overlayBusy: (() => boolean) | undefined;
  private lameDuckMode = false;
  private listener: Server | undefined;
  private http: HttpServer | undefined;
  private readonly httpRequests: Record<string, number> = {};
  private readonly startWallMs = Date.now();
  private configLoadWallMs = Date.now();
  private closing: Promise<void> | undefined;
  private baseInfo: Omit<ServerInfo, "client_id" | "client_ip">;
  port = 0;
  monitorPort = 0;

  private constructor(
    readonly broker: Broker,
    config: NatsServerConfig,
    logger: Logger,
  ) {
    this.cfg = config;
    this.logger = logger;
    this.trace = config.trace === true;
    this.serverName = config.serverName ?? this.serverId;
    this.auth = makeAuthenticator(config.authorization);
    this.baseInfo = this.buildInfo();
  }

  /** Listens (and serves monitoring when configured). Rejects with SkeinError PORT_IN_USE / BAD_CONFIG. */
  static async start(broker: Broker, config: NatsServerConfig, logger: Logger): Promise<NatsServer> {
    const server = new NatsServer(broker, config, logger);
    await server.listen();
    if (config.monitor !== undefined) {
      try {
        await server.serveMonitoring(config.monitor.host, config.monitor.port);
      } catch (error) {
        await server.close();
        throw error;
      }
    }
    return server;
  }

  get host(): string {
    return this.cfg.host;
  }

  get settings(): NatsServerConfig {
    return this.cfg;
  }

  /** `nats://HOST:PORT` clients connect to (127.0.0.1 when listening on all interfaces). */
  get clientUrl(): string {
    return `nats://${advertisedHost(this.cfg.host)}:${this.port}`;
  }

  get monitorUrl(): string | undefined {
    return this.http === undefined ? undefined : `http://${advertisedHost(this.cfg.monitor!.host)}:${this.monitorPort}`;
  }

  get isLameDuck(): boolean {
    return this.lameDuckMode;
  }

  stats(): NatsServerStats {
    const totals = { ...this.closedStats };
    for (const { connection } of this.connections.values()) {
      totals.inMsgs += connection.inMsgs;
      totals.inBytes += connection.inBytes;
      totals.outMsgs += connection.outMsgs;
      totals.outBytes += connection.outBytes;
    }
    return { connections: this.connections.size, totalConnections: this.totalConnections, slowConsumers: this.slowConsumers, ...totals };
  }

  // ------------------------------------------------------------------ ConnectionHost

  config(): ConnectionConfig {
    return this.cfg.connection;
  }

  authenticator(): Authenticator | undefined {
    return this.auth;
  }

  infoLine(connection: NatsConnection): string {
    const info: ServerInfo = { ...this.baseInfo, client_id: connection.id, client_ip: connection.ip };
    return `INFO ${JSON.stringify(info)} \r\n`;
  }

  wantsFlush(connection: NatsConnection): void {
    this.dirty.add(connection);
    if (!this.inInput && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushDirty());
    }
  }

  closed(connection: NatsConnection, reason: CloseReason, flush: boolean): void {
    const entry = this.connections.get(connection.id);
    if (entry === undefined) return;
    this.connections.delete(connection.id);
    this.dirty.delete(connection);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    this.forgetStalls(entry);
    this.closedStats.inMsgs += connection.inMsgs;
    this.closedStats.inBytes += connection.inBytes;
    this.closedStats.outMsgs += connection.outMsgs;
    this.closedStats.outBytes += connection.outBytes;
    if (reason === "Slow Consumer (Pending Bytes)" || reason === "Slow Consumer (Write Deadline)") this.slowConsumers++;
    const level = reason === "Client Closed" || reason === "Server Shutdown" ? "debug" : "info";
    this.logger[level]({ cid: connection.id, ip: connection.ip, port: connection.port, reason }, "client connection closed");
    const socket = entry.socket;
    if (!flush) {
      socket.destroy();
      return;
    }
    this.write(connection, socket);
    socket.end();
    const timer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_GRACE_MS);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  }

  // ------------------------------------------------------------------ control

  /**
   * Replaces the authorization (SIGHUP): clients whose credentials no longer pass are closed with
   * -ERR 'Authorization Violation'; the others get their new permissions. Throws SkeinError
   * BAD_CONFIG (nothing changes then).
   */
  reloadAuthorization(spec: AuthorizationSpec | undefined): void {
    const auth = makeAuthenticator(spec);
    this.cfg = { ...this.cfg, authorization: spec };
    this.auth = auth;
    this.baseInfo = this.buildInfo();
    this.configLoadWallMs = Date.now();
    for (const { connection } of [...this.connections.values()]) connection.reauthorize();
    this.flushDirty();
  }

  /**
   * Across the overlay: `busy()` says whether the links toward other nodes hold more than they
   * should. After handling a connection's input while it is busy, that connection's socket is
   * paused until it is not (at most STALL_MAX_MS each time): publishers meet the links' pace
   * instead of their bytes being dropped at the per-link bound.
   */
  setOverlayBackpressure(busy: (() => boolean) | undefined): void {
    this.overlayBusy = busy;
  }

  /** Other servers' (nodes') client URLs, `host:port`; clients that asked for async INFO get them. */
  setConnectUrls(urls: string[]): void {
    const self = `${advertisedHost(this.cfg.host)}:${this.port}`;
    const unique = [...new Set(urls.filter((url) => url !== self))].sort();
    const next = unique.length === 0 ? [] : [self, ...unique];
    if (JSON.stringify(next) === JSON.stringify(this.connectUrls)) return;
    this.connectUrls = next;
    this.baseInfo = this.buildInfo();
    for (const { connection } of this.connections.values()) connection.sendInfo();
    this.flushDirty();
  }

  /**
   * Lame-duck mode (SIGUSR2): stop accepting, tell clients (INFO with "ldm": true) so that they
   * move elsewhere, wait the grace period, then close the remaining clients spread over the rest
   * of the lame-duck duration. Resolves when every client is gone; then call close().
   */
  async lameDuck(): Promise<void> {
    if (this.lameDuckMode) return;
    this.lameDuckMode = true;
    this.logger.info({}, "Entering lame duck mode, stop accepting new clients");
    // Stop accepting now (close()'s callback would wait for every client to leave).
    this.listener?.close();
    this.baseInfo = this.buildInfo();
    for (const { connection } of this.connections.values()) connection.sendInfo(true);
    this.flushDirty();
    if (this.connections.size === 0) return;
    await sleep(this.cfg.lameDuckGracePeriodMs);
    const remaining = [...this.connections.values()].map((entry) => entry.connection);
    const spreadMs = Math.max(0, this.cfg.lameDuckDurationMs - this.cfg.lameDuckGracePeriodMs);
    const batches = Math.max(1, Math.min(remaining.length, Math.ceil(spreadMs / 100)));
    const perBatch = Math.ceil(remaining.length / batches);
    for (let index = 0; index < remaining.length; index += perBatch) {
      for (const connection of remaining.slice(index, index + perBatch)) connection.close("Lame Duck Mode");
      this.flushDirty();
      if (index + perBatch < remaining.length) await sleep(spreadMs / batches);
    }
  }

  /** Closes every client (flushing what they have), the listener and the monitoring server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.deadlineTimer !== undefined) clearInterval(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const listener = this.listener;
    this.listener = undefined;
    const closeListener = new Promise<void>((resolve) => (listener === undefined || !listener.listening ? resolve() : listener.close(() => resolve())));
    const sockets = [...this.connections.values()].map((entry) => entry.socket);
    for (const { connection } of [...this.connections.values()]) connection.close("Server Shutdown");
    await Promise.all([
      closeListener,
      new Promise<void>((resolve) => (this.http === undefined ? resolve() : this.http.close(() => resolve()))),
      ...sockets.map((socket) => (socket.destroyed ? Promise.resolve() : new Promise<void>((resolve) => socket.once("close", () => resolve())))),
    ]);
    this.http?.closeAllConnections();
  }

  // ------------------------------------------------------------------ sockets

  private async listen(): Promise<void> {
    const listener = createServer({ noDelay: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const fail = (error: NodeJS.ErrnoException): void => {
        reject(
          error.code === "EADDRINUSE"
            ? new SkeinError("PORT_IN_USE", `NATS port ${this.cfg.port} on ${this.cfg.host} is in use; pick another port or 0 (-1 for nats-server) for any free one`)
            : new SkeinError("LISTEN_FAILED", `cannot listen for NATS clients on ${this.cfg.host}:${this.cfg.port}: ${error.message}`),
        );
      };
      listener.once("error", fail);
      listener.listen(this.cfg.port, this.cfg.host, () => {
        listener.off("error", fail);
        listener.on("error", (error) => this.logger.error({ err: error.message }, "NATS listener error"));
        resolve();
      });
    });
    this.listener = listener;
    const address = listener.address();
    this.port = typeof address === "object" && address !== null ? address.port : this.cfg.port;
    this.baseInfo = this.buildInfo();
    this.logger.info({ host: this.cfg.host, port: this.port }, `Listening for client connections on ${this.cfg.host}:${this.port}`);
  }

  private accept(socket: Socket): void {
    const ip = socket.remoteAddress?.replace(/^::ffff:/, "") ?? "";
    const port = socket.remotePort ?? 0;
    const cid = this.nextCid++;
    if (this.lameDuckMode || this.connections.size >= this.cfg.maxConnections) {
      const info: ServerInfo = { ...this.baseInfo, client_id: cid, client_ip: ip };
      socket.end(`INFO ${JSON.stringify(info)} \r\n${errLine(NatsErr.maxConnections)}`);
      this.logger.info({ ip, port }, "maximum connections exceeded");
      return;
    }
    socket.setNoDelay(true);
    this.totalConnections++;
    const now = monoNow();
    const connection = new NatsConnection(this, cid, ip, port, now);
    const entry: Entry = { connection, socket, timer: undefined, armedAt: Infinity, backlogSince: undefined, lastDrainAt: now, lastBytesWritten: 0, stalling: new Set(), stallTimer: undefined, overlayTimer: undefined };
    this.connections.set(cid, entry);
    this.logger.debug({ cid, ip, port }, "client connection created");
    socket.on("data", (chunk: Buffer) => {
      this.inInput = true;
      this.inputEntry = entry;
      try {
        connection.receive(monoNow(), chunk);
      } catch (error) {
        this.logger.error({ cid, err: (error as Error)?.message ?? String(error) }, "NATS connection failed on input");
        connection.close("Protocol Violation");
      } finally {
        this.inInput = false;
      }
      this.flushDirty();
      this.inputEntry = undefined;
      this.arm(cid);
      if (this.overlayBusy?.() === true) this.pauseForOverlay(entry);
    });
    socket.on("drain", () => {
      connection.socketPending = socket.writableLength;
      entry.lastDrainAt = monoNow();
      entry.backlogSince = undefined;
      this.backlogged.delete(entry);
      for (const publisher of entry.stalling) this.resume(publisher);
      entry.stalling.clear();
    });
    socket.on("error", (error) => this.logger.debug({ cid, err: error.message }, "client socket error"));
    socket.on("close", () => {
      connection.socketClosed("Client Closed");
      this.connections.delete(cid);
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      this.forgetStalls(entry);
    });
    connection.start(now);
    this.flushDirty();
    this.arm(cid);
  }

  /** One timer per connection, armed for its next deadline (PING, authentication timeout). */
  private arm(cid: number): void {
    const entry = this.connections.get(cid);
    if (entry === undefined) return;
    const deadline = entry.connection.nextDeadline();
    if (deadline === entry.armedAt) return;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.armedAt = deadline;
    if (deadline === Infinity) return;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      entry.armedAt = Infinity;
      entry.connection.tick(monoNow());
      this.flushDirty();
      this.arm(cid);
    }, Math.max(0, deadline - monoNow()));
    entry.timer.unref();
  }

  private flushDirty(): void {
    this.flushScheduled = false;
    if (this.dirty.size === 0) return;
    for (const connection of this.dirty) {
      const entry = this.connections.get(connection.id);
      if (entry !== undefined) this.write(connection, entry.socket);
    }
    this.dirty.clear();
  }

  private write(connection: NatsConnection, socket: Socket): void {
    const chunks = connection.takeOutput();
    if (chunks.length === 0 || socket.destroyed) return;
    if (chunks.length === 1) socket.write(chunks[0]!);
    else {
      socket.cork();
      for (const chunk of chunks) socket.write(chunk);
      socket.uncork();
    }
    const pending = socket.writableLength;
    connection.socketPending = pending;
    if (pending === 0) return;
    const entry = this.connections.get(connection.id);
    if (entry === undefined) return;
    const now = monoNow();
    if (entry.backlogSince === undefined) {
      entry.backlogSince = now;
      this.backlogged.add(entry);
      this.armWriteDeadline();
    }
    const publisher = this.inputEntry;
    if (pending > STALL_PENDING_BYTES && publisher !== undefined && publisher !== entry && now - entry.lastDrainAt < STALL_PROGRESS_MS) {
      this.stall(publisher, entry);
    }
  }

  /** Pauses `publisher`'s input until `subscriber` drains, at most STALL_MAX_MS. */
  private stall(publisher: Entry, subscriber: Entry): void {
    subscriber.stalling.add(publisher);
    if (publisher.stallTimer !== undefined) return;
    publisher.socket.pause();
    publisher.stallTimer = setTimeout(() => this.resume(publisher), STALL_MAX_MS);
    publisher.stallTimer.unref();
  }

  private resume(publisher: Entry): void {
    if (publisher.stallTimer === undefined) return;
    clearTimeout(publisher.stallTimer);
    publisher.stallTimer = undefined;
    if (!publisher.socket.destroyed && publisher.overlayTimer === undefined) publisher.socket.resume();
  }

  /** Pauses `entry`'s input while the overlay is busy, at most STALL_MAX_MS. */
  private pauseForOverlay(entry: Entry): void {
    if (entry.overlayTimer !== undefined || entry.socket.destroyed) return;
    entry.socket.pause();
    const started = monoNow();
    const check = (): void => {
      if (!entry.socket.destroyed && this.overlayBusy?.() === true && monoNow() - started < STALL_MAX_MS) {
        entry.overlayTimer = setTimeout(check, OVERLAY_CHECK_MS);
        entry.overlayTimer.unref();
        return;
      }
      entry.overlayTimer = undefined;
      if (!entry.socket.destroyed && entry.stallTimer === undefined) entry.socket.resume();
    };
    entry.overlayTimer = setTimeout(check, OVERLAY_CHECK_MS);
    entry.overlayTimer.unref();
  }

  private forgetStalls(entry: Entry): void {
    this.backlogged.delete(entry);
    for (const publisher of entry.stalling) this.resume(publisher);
    entry.stalling.clear();
    if (entry.stallTimer !== undefined) clearTimeout(entry.stallTimer);
    entry.stallTimer = undefined;
    if (entry.overlayTimer !== undefined) clearTimeout(entry.overlayTimer);
    entry.overlayTimer = undefined;
  }

  /** Cuts connections whose socket made no progress for write_deadline while bytes waited. */
  private armWriteDeadline(): void {
    if (this.deadlineTimer !== undefined) return;
    this.deadlineTimer = setInterval(() => {
      const now = monoNow();
      const deadline = this.cfg.connection.writeDeadlineMs;
      for (const entry of [...this.backlogged]) {
        if (entry.backlogSince === undefined || entry.socket.writableLength === 0) {
          this.backlogged.delete(entry);
          entry.backlogSince = undefined;
        } else if (entry.socket.bytesWritten - entry.socket.writableLength > entry.lastBytesWritten) {
          // Slow but moving (bytesWritten counts queued bytes too; minus writableLength: handed to the OS).
          entry.lastBytesWritten = entry.socket.bytesWritten - entry.socket.writableLength;
          entry.lastDrainAt = now;
        } else if (now - Math.max(entry.backlogSince, entry.lastDrainAt) >= deadline) {
          entry.connection.cutSlowConsumer("Slow Consumer (Write Deadline)");
        }
      }
      if (this.backlogged.size === 0 && this.deadlineTimer !== undefined) {
        clearInterval(this.deadlineTimer);
        this.deadlineTimer = undefined;
      }
    }, WRITE_DEADLINE_CHECK_MS);
    this.deadlineTimer.unref();
  }

  // ------------------------------------------------------------------ monitoring

  private async serveMonitoring(host: string, port: number): Promise<void> {
    const http = createHttpServer((request, response) => this.handleHttp(request, response));
    await new Promise<void>((resolve, reject) => {
      const fail = (error: NodeJS.ErrnoException): void => {
        reject(
          error.code === "EADDRINUSE"
            ? new SkeinError("PORT_IN_USE", `monitoring port ${port} on ${host} is in use; pick another one or 0 (-1 for nats-server)`)
            : new SkeinError("LISTEN_FAILED", `cannot serve monitoring on ${host}:${port}: ${error.message}`),
        );
      };
      http.once("error", fail);
      http.listen(port, host, () => {
        http.off("error", fail);
        resolve();
      });
    });
    this.http = http;
    const address = http.address();
    this.monitorPort = typeof address === "object" && address !== null ? address.port : port;
    this.logger.info({ host, port: this.monitorPort }, `Starting http monitor on ${host}:${this.monitorPort}`);
  }

  private handleHttp(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    this.httpRequests[path] = (this.httpRequests[path] ?? 0) + 1;
    const json = (status: number, body: unknown): void => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body, null, 2));
    };
    switch (path) {
      case "/varz":
        json(200, varz(this.snapshot()));
        return;
      case "/connz":
        json(200, connz(this.snapshot(), parseConnzQuery(url.searchParams)));
        return;
      case "/subsz":
      case "/subscriptionsz":
        json(200, subsz(this.snapshot(), url.searchParams, (sub) => cidOf(sub), () => [...this.broker.subscriptions()]));
        return;
      case "/healthz": {
        const health = healthz(this.lameDuckMode);
        json(health.status === "ok" ? 200 : 503, health);
        return;
      }
      case "/":
        response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        response.end(
          `<html><body><h1>skein NATS port</h1>${["varz", "connz", "subsz", "healthz"].map((name) => `<a href=./${name}>${name}</a><br>`).join("")}</body></html>`,
        );
        return;
      default:
        response.writeHead(404, { "content-type": "text/plain" });
        response.end("404 page not found\n");
    }
  }

  snapshot(): ServerSnapshot {
    const totals = this.stats();
    const brokerStats = this.broker.stats();
    const nowMono = monoNow();
    return {
      serverId: this.serverId,
      serverName: this.serverName,
      version: NATS_COMPAT_VERSION,
      skeinVersion: this.cfg.skeinVersion,
      host: this.cfg.host,
      port: this.port,
      httpHost: this.cfg.monitor?.host ?? "",
      httpPort: this.monitorPort,
      maxConnections: this.cfg.maxConnections,
      pingIntervalMs: this.cfg.connection.pingIntervalMs,
      pingMax: this.cfg.connection.pingMax,
      authTimeoutMs: this.cfg.authorization?.timeoutMs ?? this.cfg.connection.authTimeoutMs,
      maxControlLine: this.cfg.connection.maxControlLine,
      maxPayload: this.cfg.connection.maxPayload,
      maxPending: this.cfg.connection.maxPending,
      cluster: this.cfg.cluster,
      connectUrls: this.connectUrls,
      startWallMs: this.startWallMs,
      configLoadWallMs: this.configLoadWallMs,
      nowWallMs: Date.now(),
      nowMonoMs: nowMono,
      memBytes: process.memoryUsage.rss(),
      cores: availableParallelism(),
      totalConnections: totals.totalConnections,
      slowConsumers: totals.slowConsumers,
      inMsgs: totals.inMsgs,
      outMsgs: totals.outMsgs,
      inBytes: totals.inBytes,
      outBytes: totals.outBytes,
      lameDuck: this.lameDuckMode,
      httpRequests: { ...this.httpRequests },
      broker: brokerStats,
      connections: [...this.connections.values()].map(({ connection: c }) => ({
        cid: c.id,
        ip: c.ip,
        port: c.port,
        startMs: c.startedAtMs,
        lastActivityMs: c.lastActivityMs,
        rttMs: c.rttMs,
        pendingBytes: c.pendingBytes,
        inMsgs: c.inMsgs,
        outMsgs: c.outMsgs,
        inBytes: c.inBytes,
        outBytes: c.outBytes,
        name: c.opts.name,
        lang: c.opts.lang,
        version: c.opts.version,
        user: c.user,
        subs: [...c.subs.values()],
      })),
    };
  }

  private buildInfo(): Omit<ServerInfo, "client_id" | "client_ip"> {
    const info: Omit<ServerInfo, "client_id" | "client_ip"> = {
      server_id: this.serverId,
      server_name: this.serverName,
      version: NATS_COMPAT_VERSION,
      proto: 1,
      host: this.cfg.host,
      port: this.port,
      headers: true,
      max_payload: this.cfg.connection.maxPayload,
    };
    if (this.auth?.required === true) info.auth_required = true;
    if (this.cfg.cluster?.name !== undefined) info.cluster = this.cfg.cluster.name;
    if (this.connectUrls.length > 0) info.connect_urls = this.connectUrls;
    if (this.lameDuckMode) info.ldm = true;
    if (this.cfg.skeinVersion !== "") info.skein = this.cfg.skeinVersion;
    return info;
  }
}

function cidOf(sub: Subscription): number {
  return sub.consumer instanceof NatsConnection ? sub.consumer.id : 0;
}

function makeAuthenticator(spec: AuthorizationSpec | undefined): Authenticator | undefined {
  if (spec === undefined) return undefined;
  const problem = checkAuthorization(spec);
  if (problem !== undefined) throw new SkeinError("BAD_CONFIG", problem);
  return new Authenticator(spec);
}

function advertisedHost(host: string): string {
  return host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

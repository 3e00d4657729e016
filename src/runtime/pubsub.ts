/**
 * A node's pub/sub, as the runtime runs it: one `Broker` (features/pubsub) shared by the library
 * API (`node.subscribe/publish/request/drain`) and, with `natsPort`, the NATS client port
 * (services/nats). Local for now: the overlay plugs into the broker's InterestSink and
 * RemoteDelivery (features/pubsub/README.md) once routing lands.
 *
 * This file adds what the pure parts leave out: the inbox prefix from node:crypto, request
 * timeouts with real timers, and the NATS server's sockets.
 */
import { randomBytes } from "node:crypto";
import { networkInterfaces } from "node:os";
import { SkeinError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import { SeededRng } from "../core/rng.js";
import { Broker, type Consumer, type Subscription } from "../features/pubsub/broker.js";
import { type Msg, type Payload, type PublishOptions, PubSubClient, type PubSubSubscription, type SubscribeOptions } from "../features/pubsub/client.js";
import type { NatsServer, NatsServerConfig } from "./nats/server.js";

/** A request with no `timeoutMs` fails with TIMEOUT after this long. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** `drain()` waits this long for subscribers to consume their buffered messages. */
export const DRAIN_TIMEOUT_MS = 10_000;
/**
 * Publishers wait while a link toward another node holds more than this
 * (overlay.maxLinkBacklogBytes): the NATS port pauses the publisher's socket, the library's
 * `publish()` returns a promise that settles later. The publisher meets the link's pace instead of
 * its messages being dropped at LINK_MAX_BACKLOG_BYTES.
 */
export const OVERLAY_PAUSE_BYTES = 4 * 1024 * 1024;
/**
 * Longest one library `publish()` waits on a backlogged overlay, as the NATS port pauses a
 * publisher (STALL_MAX_MS): a link that stays full sheds messages, counted, rather than holding the
 * publisher indefinitely.
 */
export const PUBLISH_WAIT_MAX_MS = 100;
/** How often a waiting publish looks at the backlog again. */
const PUBLISH_CHECK_MS = 1;

const RESOLVED: Promise<void> = Promise.resolve();
/**
 * connect_urls: a node with a NATS port holds one local subscription per client URL it offers,
 * on `$SKEIN.NATS.URL.<a>_<b>_<c>_<d>.<port>` (its IPv4 address with `_` for dots), with a
 * consumer that refuses every message. The overlay propagates it as interest, like any other; the
 * other nodes read it from their mirrored interest (overlay.interestOf) every NATS_URLS_POLL_MS
 * and hand it to their NATS port, whose INFO and /varz list it in `connect_urls`. The engine knows
 * nothing of it. A publish to such a subject reaches nobody (no responders).
 */
export const NATS_URL_SUBJECT_PREFIX = "$SKEIN.NATS.URL.";
export const NATS_URLS_POLL_MS = 1_000;

/** `$SKEIN.NATS.URL.127_0_0_1.4222` for 127.0.0.1:4222. */
export function natsUrlSubject(host: string, port: number): string {
  return `${NATS_URL_SUBJECT_PREFIX}${host.replaceAll(".", "_")}.${port}`;
}

/** `127.0.0.1:4222` from an advertisement subject, undefined for any other subject. */
export function natsUrlOfSubject(subject: string): string | undefined {
  if (!subject.startsWith(NATS_URL_SUBJECT_PREFIX)) return undefined;
  const match = /^([0-9]{1,3}(?:_[0-9]{1,3}){3})\.([0-9]{1,5})$/.exec(subject.slice(NATS_URL_SUBJECT_PREFIX.length));
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return `${match[1]!.replaceAll("_", ".")}:${port}`;
}

/** The hosts a NATS port on `host` is reachable at: itself, or every IPv4 interface for 0.0.0.0. */
export function advertisedNatsHosts(host: string): string[] {
  if (host === "localhost") return ["127.0.0.1"];
  if (host !== "0.0.0.0" && host !== "") return [host];
  const hosts: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) if (address.family === "IPv4" && !address.internal) hosts.push(address.address);
  }
  return hosts.length === 0 ? ["127.0.0.1"] : [...new Set(hosts)];
}

/** Holds the advertisement subscriptions; takes no message. */
const ADVERTISER: Consumer = { echo: false, deliver: () => false };

/** Longest request timeout accepted (a day). */
const REQUEST_TIMEOUT_MAX_MS = 86_400_000;

export interface RequestOptions {
  timeoutMs?: number;
  headers?: PublishOptions["headers"];
}

export interface NatsPortOptions {
  host: string;
  port: number;
}

function randomToken(): string {
  return randomBytes(16).toString("base64url").replace(/[-_]/g, "x");
}

export class NodePubSub {
  readonly broker: Broker;
  readonly client: PubSubClient;
  private nats: NatsServer | undefined;
  private readonly adverts: Subscription[] = [];
  private urlsTimer: NodeJS.Timeout | undefined;
  /** The wait publishers share while an overlay link is backlogged (publish). */
  private overlayWait: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly nodeId: NodeId,
    private readonly logger: Logger,
    /** The engine's broker (overlay-wide, engine.pubsub.broker); a local-only one when omitted. */
    broker?: Broker,
    /** Bytes toward the most backlogged overlay link (engine.pubsub.maxLinkBacklogBytes). */
    private readonly overlayBacklog?: () => number,
    /** Every subject other nodes hold interest in (engine.pubsub's mirror), for connect_urls. */
    private readonly remoteSubjects?: () => Iterable<string>,
  ) {
    this.broker = broker ?? new Broker({ rng: new SeededRng(randomBytes(4).readUInt32BE(0)) });
    this.client = new PubSubClient(this.broker, {
      inboxPrefix: `_INBOX.${randomToken()}`,
      onSlowConsumer: (subscription) => {
        this.logger.warn({ subject: subscription.subject, dropped: subscription.dropped }, "slow consumer: subscription buffer full, dropping messages");
      },
    });
  }

  get natsUrl(): string | undefined {
    return this.nats?.clientUrl;
  }

  /** Opens the NATS client port. Rejects with SkeinError PORT_IN_USE / LISTEN_FAILED. */
  async startNats(options: NatsPortOptions): Promise<void> {
    const [{ defaultConnectionConfig }, { NATS_DEFAULTS }] = await Promise.all([import("../services/nats/connection.js"), import("../services/nats/protocol.js")]);
    await this.startNatsServer(
      {
        host: options.host,
        port: options.port,
        serverName: `skein-${this.nodeId}`,
        connection: defaultConnectionConfig(),
        maxConnections: NATS_DEFAULTS.maxConnections,
        lameDuckDurationMs: NATS_DEFAULTS.lameDuckDurationMs,
        lameDuckGracePeriodMs: NATS_DEFAULTS.lameDuckGracePeriodMs,
        skeinVersion: "",
      },
      this.logger.child({ module: "nats" }),
    );
  }

  /**
   * Opens a NATS port with a full configuration (`skein nats-server` with a cluster) on this
   * node's broker: publishers paused on the overlay's backlog, the port advertised for
   * connect_urls. Closed with the node. Rejects with SkeinError PORT_IN_USE / LISTEN_FAILED / BAD_CONFIG.
   */
  async startNatsServer(config: NatsServerConfig, logger: Logger): Promise<NatsServer> {
    if (this.nats !== undefined) throw new SkeinError("BAD_ARGUMENT", "this node already has a NATS port");
    const { NatsServer } = await import("./nats/server.js");
    const server = await NatsServer.start(this.broker, config, logger);
    this.nats = server;
    const backlog = this.overlayBacklog;
    if (backlog !== undefined) server.setOverlayBackpressure(() => backlog() > OVERLAY_PAUSE_BYTES);
    this.advertise(server);
    return server;
  }

  /**
   * Announces this node's NATS client URLs to the overlay and keeps the port's connect_urls in
   * step with the other nodes' announcements (see NATS_URL_SUBJECT_PREFIX). Also used by
   * `skein nats-server` with a cluster.
   */
  advertise(server: NatsServer): void {
    if (this.remoteSubjects === undefined) return;
    for (const host of advertisedNatsHosts(server.host)) {
      this.adverts.push(this.broker.subscribe(ADVERTISER, natsUrlSubject(host, server.port), undefined, `advert-${this.adverts.length}`));
    }
    const remoteSubjects = this.remoteSubjects;
    const refresh = (): void => {
      const urls: string[] = [];
      for (const subject of remoteSubjects()) {
        const url = natsUrlOfSubject(subject);
        if (url !== undefined) urls.push(url);
      }
      server.setConnectUrls(urls);
    };
    refresh();
    this.urlsTimer = setInterval(refresh, NATS_URLS_POLL_MS);
    this.urlsTimer.unref();
  }

  subscribe(subject: string, options?: SubscribeOptions): PubSubSubscription {
    return this.client.subscribe(subject, options);
  }

  /**
   * Publishes at once (bad input throws); the promise settles at once too, unless an overlay link
   * is backlogged: then when it has drained below OVERLAY_PAUSE_BYTES, or after PUBLISH_WAIT_MAX_MS.
   * All publishers waiting at one time share one wait.
   */
  publish(subject: string, data?: Payload, options?: PublishOptions): Promise<void> {
    this.client.publish(subject, data, options);
    const backlog = this.overlayBacklog;
    if (backlog === undefined || backlog() <= OVERLAY_PAUSE_BYTES) return RESOLVED;
    return (this.overlayWait ??= this.waitForOverlay(backlog));
  }

  private waitForOverlay(backlog: () => number): Promise<void> {
    return new Promise<void>((resolve) => {
      const started = performance.now();
      const check = (): void => {
        if (!this.closed && backlog() > OVERLAY_PAUSE_BYTES && performance.now() - started < PUBLISH_WAIT_MAX_MS) {
          setTimeout(check, PUBLISH_CHECK_MS);
          return;
        }
        this.overlayWait = undefined;
        resolve();
      };
      setTimeout(check, PUBLISH_CHECK_MS);
    });
  }

  request(subject: string, data?: Payload, options: RequestOptions = {}): Promise<Msg> {
    const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > REQUEST_TIMEOUT_MAX_MS) {
      return Promise.reject(new SkeinError("BAD_ARGUMENT", `bad timeoutMs ${String(timeoutMs)}: expected milliseconds in 1..${REQUEST_TIMEOUT_MAX_MS}`));
    }
    let handle;
    try {
      handle = this.client.request(subject, data, { headers: options.headers });
    } catch (error) {
      return Promise.reject(error);
    }
    const timer = setTimeout(
      () => handle.cancel(new SkeinError("TIMEOUT", `request on ${JSON.stringify(subject)} got no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    return handle.promise.finally(() => clearTimeout(timer));
  }

  /**
   * Ends every subscription and waits until their buffered messages are consumed; after
   * `timeoutMs` (default DRAIN_TIMEOUT_MS) it gives up, discards what is left and rejects with
   * TIMEOUT naming the subscriptions that still held messages. New pub/sub calls fail with CLOSED.
   */
  async drain(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DRAIN_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
      timer.unref();
    });
    const subscriptions = this.client.subscriptions();
    try {
      const outcome = await Promise.race([this.client.drain().then(() => "drained" as const), timedOut]);
      if (outcome === "timeout") {
        const stuck = subscriptions.filter((sub) => sub.pending > 0).map((sub) => `${sub.subject} (${sub.pending} messages)`);
        this.client.close();
        throw new SkeinError("TIMEOUT", `drain gave up after ${timeoutMs} ms: nobody consumed ${stuck.join(", ")}; iterate or unsubscribe them first`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** For /metrics (skein_runtime_events_total{reason="pubsub_…"}). */
  counters(): Map<string, number> {
    const stats = this.broker.stats();
    const out = new Map<string, number>();
    if (stats.slowConsumers > 0) out.set("pubsub_slow_consumer", stats.slowConsumers);
    if (stats.dropped > 0) out.set("pubsub_dropped", stats.dropped);
    if (stats.noInterest > 0) out.set("pubsub_no_interest", stats.noInterest);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.urlsTimer !== undefined) clearInterval(this.urlsTimer);
    this.urlsTimer = undefined;
    for (const sub of this.adverts.splice(0)) this.broker.unsubscribe(sub);
    this.client.close();
    await this.nats?.close();
  }
}

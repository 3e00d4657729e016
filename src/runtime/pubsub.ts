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
import { SkeinError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import { SeededRng } from "../core/rng.js";
import { Broker } from "../features/pubsub/broker.js";
import { type Msg, type Payload, type PublishOptions, PubSubClient, type PubSubSubscription, type SubscribeOptions } from "../features/pubsub/client.js";
import type { NatsServer } from "./nats/server.js";

/** A request with no `timeoutMs` fails with TIMEOUT after this long. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** `drain()` waits this long for subscribers to consume their buffered messages. */
export const DRAIN_TIMEOUT_MS = 10_000;
/**
 * The NATS port pauses a publisher's socket while a link toward another node holds more than this
 * (overlay.maxLinkBacklogBytes): the publisher meets the link's pace instead of its messages being
 * dropped at LINK_MAX_BACKLOG_BYTES.
 */
export const NATS_OVERLAY_PAUSE_BYTES = 4 * 1024 * 1024;
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

  constructor(
    private readonly nodeId: NodeId,
    private readonly logger: Logger,
    /** The engine's broker (overlay-wide, engine.pubsub.broker); a local-only one when omitted. */
    broker?: Broker,
    /** Bytes toward the most backlogged overlay link (engine.pubsub.maxLinkBacklogBytes). */
    private readonly overlayBacklog?: () => number,
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
    const [{ NatsServer }, { defaultConnectionConfig }, { NATS_DEFAULTS }] = await Promise.all([
      import("./nats/server.js"),
      import("../services/nats/connection.js"),
      import("../services/nats/protocol.js"),
    ]);
    this.nats = await NatsServer.start(
      this.broker,
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
    const backlog = this.overlayBacklog;
    if (backlog !== undefined) this.nats.setOverlayBackpressure(() => backlog() > NATS_OVERLAY_PAUSE_BYTES);
  }

  subscribe(subject: string, options?: SubscribeOptions): PubSubSubscription {
    return this.client.subscribe(subject, options);
  }

  publish(subject: string, data?: Payload, options?: PublishOptions): void {
    this.client.publish(subject, data, options);
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
    this.client.close();
    await this.nats?.close();
  }
}

/** The public face of a running node, as `createNode()` returns it. */
import type { NodeId } from "../core/node-id.js";
import type { Msg, Payload, PublishOptions, PubSubSubscription, SubscribeOptions } from "../features/pubsub/client.js";
import type { EngineStats } from "./engine.js";
import type { Topology } from "../features/collector/model.js";
import type { SecurityInfo } from "./secure-paths.js";
import type { NeighbourInfo, NodeEvent, NodeEventKind, ProbeResult, RouteView } from "./io.js";

export interface ReceivedMessage {
  from: NodeId;
  data: Uint8Array;
  reliable: boolean;
}

export type NodeEventOf<K extends NodeEventKind> = Extract<NodeEvent, { kind: K }>;

export interface SkeinNode {
  readonly id: NodeId;
  /** Listening addresses, e.g. `/ip4/127.0.0.1/udp/40123`. */
  readonly addresses: string[];
  /** `http://HOST:PORT` of the HTTP API when `webAddr` was given. */
  readonly webUrl: string | undefined;
  neighbours(): NeighbourInfo[];
  /** Discovery by tags: the tags this node advertises (`localTags`, CA mode: those its certificate carries) and `connectTags`. */
  tags(): { local: string[]; connect: string[] };
  /** Security mode, this node's key fingerprints and credentials (GET /api/node's `security`). */
  securityInfo(): SecurityInfo;
  /** Subscribes to engine events; returns a function that unsubscribes. */
  on<K extends NodeEventKind>(kind: K, listener: (event: NodeEventOf<K>) => void): () => void;
  /**
   * Sends bytes to another node's data service. Resolves once the bytes are queued; waits while
   * the link is congested. Rejects with SkeinError (NO_ROUTE, TOO_LARGE, CLOSED). Large messages
   * are written to the socket without a copy, as `socket.write` does: do not modify `data` after
   * calling send().
   */
  send(destination: NodeId, data: Uint8Array, options?: { reliable?: boolean }): Promise<void>;
  /** Messages other nodes sent to this one, as an async iterable (bounded buffer). */
  messages(): AsyncIterable<ReceivedMessage>;
  stats(): EngineStats;

  // ---- routing (src/routing/README.md). Route changes arrive as `on("route", …)` events.
  /** The route table: per destination, next hop, metric, hop count and the alternates. */
  routes(): RouteView[];
  /**
   * The path frames to `destination` take now, hop by hop, each hop with its measured link RTT
   * (ICMP-like probes through the real data plane). Resolves with `complete: false` when some hop
   * did not answer within 3 s. Rejects with SkeinError NO_ROUTE, CLOSED.
   */
  trace(destination: NodeId): Promise<ProbeResult>;
  /** One echo round trip to `destination` over its route (`rttMs` undefined when unanswered within 3 s). */
  ping(destination: NodeId): Promise<ProbeResult>;

  /**
   * Collector (features/collector/README.md): the network as this collector sees it — every node
   * that reports (live or stale), its neighbours, routes, tags, version, uptime and counters, and
   * the links between them. undefined unless the node runs with `collector: true`.
   */
  topology(): Topology | undefined;

  // ---- pub/sub (features/pubsub/README.md). Local to this node until the overlay carries it.
  /** `nats://HOST:PORT` of the NATS client port when `natsPort` (or `natsAddr`) was given. */
  readonly natsUrl: string | undefined;
  /**
   * Subscribes to a subject (wildcards `*` and `>` allowed); with `queue`, each message goes to
   * one member of the group. Iterate the result with `for await`; `unsubscribe()`/`drain()` end it.
   * Throws SkeinError BAD_SUBJECT, CLOSED.
   */
  subscribe(subject: string, options?: SubscribeOptions): PubSubSubscription;
  /**
   * Publishes to every matching subscription, at once. Throws SkeinError BAD_SUBJECT, BAD_HEADER,
   * TOO_LARGE, CLOSED. The promise is for pacing: it settles at once, or, while a link toward
   * another node holds more than 4 MiB, when that link has drained (at most 100 ms later). A
   * publisher that awaits it goes at the overlay's pace instead of having messages dropped at the
   * link's 8 MiB bound; one that does not await it behaves as before.
   */
  publish(subject: string, data?: Payload, options?: PublishOptions): Promise<void>;
  /**
   * Publishes with a fresh reply subject and resolves with the first answer. Rejects with
   * SkeinError NO_RESPONDERS at once when nobody is subscribed, TIMEOUT after `timeoutMs`
   * (default 5000).
   */
  request(subject: string, data?: Payload, options?: { timeoutMs?: number; headers?: PublishOptions["headers"] }): Promise<Msg>;
  /**
   * Ends every subscription, waits until their buffered messages are consumed (at most
   * `timeoutMs`, default 10000, then rejects with TIMEOUT), and refuses new pub/sub calls.
   */
  drain(options?: { timeoutMs?: number }): Promise<void>;

  /** Says goodbye to neighbours, closes sockets and the HTTP server. Idempotent. */
  close(): Promise<void>;
}

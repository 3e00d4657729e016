/**
 * The pub/sub overlay (module 4): interest propagation between nodes and multi-destination data.
 * Pure: driven by the engine (`onFrame`, `tick` with `now`), randomness through the host's Rng.
 * Protocol and reasons: README.md ("Overlay"), bytes: docs/protocol.md ("Pub/sub (module 4)").
 *
 * Interest. Every node is the *origin* of its local interest: (subject, queue) → local count,
 * versioned by (epoch, seq): epoch is random per engine start, seq counts changes. Each change
 * goes out at once as an UPDATE (seq) on the reliable class to every neighbour, and each node
 * floods an UPDATE it applied (seq = its copy + 1) on to its other neighbours: hop by hop, it
 * reaches every node. A gap (seq > copy + 1) or an unknown origin asks the neighbour for a
 * SNAPSHOT (PULL). Every DIGEST_INTERVAL_MS each node sends its neighbours a DIGEST (origin,
 * epoch, seq for every origin it holds); a neighbour that sees a newer seq pulls. An epoch other
 * than the copy's means the origin restarted (or the copy is from before): the node pulls from the
 * origin itself, whose answer is authoritative. Interest of an origin the router has had no route
 * to for INTEREST_EXPIRY_MS is withdrawn; nodes never advertise origins they cannot reach, so a
 * dead node's interest does not come back.
 *
 * Data. A local publish hands the broker's remote targets here (RemoteDelivery): they are split by
 * next hop, and one DATA frame per next hop carries the remaining destinations (with the queue
 * groups each was chosen for) and the message once. A relay reads the destination list only,
 * delivers locally if listed, and re-splits the rest on its own table: each link is crossed at
 * most once per message. Frames ride the reliable class (per-link order and retransmission); the
 * engine packs the frames queued on a link into as few packets as possible (batching).
 */
import type { EngineModule, InboundFrame, RouteAwareHost } from "../../core/module.js";
import { ModuleId } from "../../core/module.js";
import type { NodeId } from "../../core/node-id.js";
import { Broker, type InterestSink, type Message, NearestQueuePicker, type RemoteDelivery, type RemoteTarget } from "./broker.js";
import {
  bodyBytes,
  type DataBodyParts,
  dataBodyParts,
  materializeBody,
  DATA_BATCH_MAX_BYTES,
  dataFrameHeaderBytes,
  forEachBatchedData,
  writeDataFrame,
  DATA_TTL,
  type DataDestination,
  type DigestItem,
  type InterestItem,
  MAX_DATA_DESTINATIONS,
  MAX_DIGEST_ITEMS,
  MAX_ENTRIES_PER_MESSAGE,
  MAX_PULL_ORIGINS,
  MAX_QUEUE_BYTES,
  MAX_QUEUES_PER_DESTINATION,
  MAX_SUBJECT_BYTES,
  type PubSubMessage,
  PubSubMessageType,
  SNAPSHOT_CHUNK_BYTES,
  SnapshotFlag,
  decodeDataBody,
  decodeDataHeader,
  decodePubSubMessage,
  encodeDataBody,
  encodeDataFrame,
  encodePubSubMessage,
  itemBytes,
} from "./overlay-messages.js";

/** Every node sends each neighbour a digest of the interest it holds this often (±10%). */
export const DIGEST_INTERVAL_MS = 2_000;
/** Neighbour changes and origin reachability are checked this often. */
export const CHECK_INTERVAL_MS = 250;
/** An origin without a route for this long loses its interest here. */
export const INTEREST_EXPIRY_MS = 3_000;
/** A PULL for one origin is not repeated within this time. */
export const PULL_RETRY_MS = 1_000;
/** Origins (other nodes) whose interest one node mirrors at most. */
export const MAX_ORIGINS = 65_536;
/** Interest entries mirrored per origin at most. */
export const MAX_ENTRIES_PER_ORIGIN = 200_000;
/**
 * A message for a next hop is dropped (and counted: `pubsub_link_dropped`) while that link has
 * more than this queued below the module: per-link bound, a slow link never stalls the others.
 */
export const LINK_MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

interface OriginState {
  epoch: number;
  seq: number;
  entries: Map<string, InterestItem>;
  /** When the router lost its route to the origin (undefined: reachable). */
  unreachableSince: number | undefined;
}

interface Staging {
  origin: NodeId;
  epoch: number;
  seq: number;
  items: InterestItem[];
}

export interface OverlayStats {
  origins: number;
  remoteEntries: number;
  updatesIn: number;
  updatesOut: number;
  snapshotsIn: number;
  snapshotsOut: number;
  digestsOut: number;
  pulls: number;
  expiredOrigins: number;
  dataOut: number;
  dataIn: number;
  dataRelayed: number;
  /** Messages (per next hop) dropped because that link's backlog passed LINK_MAX_BACKLOG_BYTES. */
  linkDropped: number;
  /** Destinations with no route when a message was sent or relayed. */
  noRoute: number;
  /** Sends the engine refused (queue full, link just went down). */
  sendFailed: number;
  malformed: number;
  /** Interest refused: too many origins, entries or invalid subjects. */
  refused: number;
}

export type PubSubControl = never;
export type PubSubEvent = never;

function keyOf(subject: string, queue: string | undefined): string {
  return queue === undefined ? subject : `${subject}\n${queue}`;
}

export class PubSubOverlay implements EngineModule<PubSubControl, PubSubEvent>, InterestSink, RemoteDelivery {
  readonly id = ModuleId.PubSub;
  readonly name = "pubsub";
  readonly broker: Broker;
  /**
   * Called before the module sends anything outside an engine input (a local publish or
   * subscription change from the API): the runtime sets the engine's clock and schedules a drain.
   */
  beforeSend: (() => void) | undefined;
  /** Bytes queued for a neighbour below the engine (socket buffers), from the runtime; for the per-link bound. */
  externalBacklog: ((neighbour: NodeId) => number) | undefined;

  private readonly epoch: number;
  private seq = 0;
  private readonly local = new Map<string, InterestItem>();
  private readonly origins = new Map<NodeId, OriginState>();
  private readonly staging = new Map<string, Staging>();
  private readonly pulledAt = new Map<string, number>();
  private knownNeighbours = new Set<NodeId>();
  /** Reused for every local publish (deliver → split → batches, synchronously). */
  private readonly parts: DataBodyParts = { subject: new Uint8Array(0), reply: new Uint8Array(0), headerLength: 0, bytes: new Uint8Array(0), size: 0 };
  /** DATA frames waiting for the engine's next flush, per next hop (flushBatches). */
  private readonly batches = new Map<NodeId, { bytes: Uint8Array; view: DataView; length: number }>();
  /** Per next hop: the size of its last flushed batch plus a quarter (the next one's first allocation). */
  private readonly lastBatchBytes = new Map<NodeId, number>();
  private nextCheckAt = 0;
  private nextDigestAt = 0;
  private now = 0;
  private readonly counters = {
    updatesIn: 0,
    updatesOut: 0,
    snapshotsIn: 0,
    snapshotsOut: 0,
    digestsOut: 0,
    pulls: 0,
    expiredOrigins: 0,
    dataOut: 0,
    dataIn: 0,
    dataRelayed: 0,
    linkDropped: 0,
    noRoute: 0,
    sendFailed: 0,
    malformed: 0,
    refused: 0,
  };

  constructor(private readonly host: RouteAwareHost) {
    this.epoch = host.rng.nextU32() >>> 0 || 1;
    this.broker = new Broker({
      rng: host.rng,
      // Queue groups: local members first, then the remote member node with the best route metric.
      queuePicker: new NearestQueuePicker(host.rng, (node) => host.routeMetricMs(node)),
      interestSink: this,
      remoteDelivery: this,
    });
  }

  // ─── InterestSink: local interest changed ──────────────────────────────────────────────────

  interestChanged(subject: string, queue: string | undefined, count: number): void {
    const key = keyOf(subject, queue);
    if (count <= 0) this.local.delete(key);
    else this.local.set(key, { subject, queue, count });
    this.seq = (this.seq + 1) >>> 0;
    const neighbours = this.host.neighbours();
    if (neighbours.length === 0) return;
    this.beforeSend?.();
    const payload = encodePubSubMessage({ type: "update", origin: this.host.localId, epoch: this.epoch, seq: this.seq, items: [{ subject, queue, count: Math.max(0, count) }] });
    for (const neighbour of neighbours) this.sendTo(neighbour, payload, true);
    this.counters.updatesOut += neighbours.length;
  }

  // ─── RemoteDelivery: a local publish for other nodes ───────────────────────────────────────

  deliver(targets: readonly RemoteTarget[], msg: Message): void {
    this.beforeSend?.();
    // Written straight into each next hop's batch: no buffer per message.
    const body = dataBodyParts(this.parts, msg.subject, msg.reply, msg.headerLength, msg.bytes.subarray(msg.offset, msg.offset + msg.totalLength));
    this.counters.dataOut++;
    this.split(targets, body, DATA_TTL);
  }

  // ─── Engine module ─────────────────────────────────────────────────────────────────────────

  onFrame(now: number, frame: InboundFrame): void {
    this.now = now;
    const payload = frame.payload;
    if (payload.byteLength > 0 && payload[0] === PubSubMessageType.Data) {
      this.onData(payload);
      return;
    }
    if (payload.byteLength > 0 && payload[0] === PubSubMessageType.DataBatch) {
      const error = forEachBatchedData(payload, this.onDataBound);
      if (error !== undefined) {
        this.counters.malformed++;
        this.host.logger.debug({ source: frame.source, error: error.message }, "malformed pub/sub DATA_BATCH (its earlier entries were delivered)");
      }
      return;
    }
    const message = decodePubSubMessage(payload);
    if (message instanceof Error) {
      this.counters.malformed++;
      this.host.logger.debug({ source: frame.source, error: message.message }, "malformed pub/sub message dropped");
      return;
    }
    switch (message.type) {
      case "update":
        this.onUpdate(frame, message, payload);
        return;
      case "snapshot":
        this.onSnapshot(frame, message);
        return;
      case "digest":
        this.onDigest(frame, message.items);
        return;
      case "pull":
        this.onPull(frame, message.origins);
        return;
    }
  }

  control(): void {}

  tick(now: number): void {
    this.now = now;
    if (now >= this.nextCheckAt) {
      this.nextCheckAt = now + CHECK_INTERVAL_MS;
      this.checkNeighbours();
      this.checkReachability(now);
    }
    if (now >= this.nextDigestAt) {
      this.nextDigestAt = now + DIGEST_INTERVAL_MS * (0.9 + 0.2 * this.host.rng.nextFloat());
      for (const neighbour of this.knownNeighbours) this.sendDigest(neighbour);
    }
  }

  nextDeadline(): number {
    return Math.min(this.nextCheckAt, this.nextDigestAt);
  }

  pollEvent(): PubSubEvent | undefined {
    return undefined;
  }

  // ─── Views ─────────────────────────────────────────────────────────────────────────────────

  /** The interest mirrored from `origin` (tests, monitoring): subject/queue/count items, sorted. */
  interestOf(origin: NodeId): InterestItem[] {
    const items = origin === this.host.localId ? [...this.local.values()] : [...(this.origins.get(origin)?.entries.values() ?? [])];
    return items.sort((a, b) => (keyOf(a.subject, a.queue) < keyOf(b.subject, b.queue) ? -1 : 1));
  }

  /** Origins this node mirrors interest of. */
  originIds(): NodeId[] {
    return [...this.origins.keys()].sort((a, b) => a - b);
  }

  stats(): OverlayStats {
    let remoteEntries = 0;
    for (const state of this.origins.values()) remoteEntries += state.entries.size;
    return { origins: this.origins.size, remoteEntries, ...this.counters };
  }

  // ─── Interest messages ─────────────────────────────────────────────────────────────────────

  private onUpdate(frame: InboundFrame, message: Extract<PubSubMessage, { type: "update" }>, payload: Uint8Array): void {
    const { origin, epoch, seq } = message;
    if (origin === this.host.localId) return;
    this.counters.updatesIn++;
    const state = this.origins.get(origin);
    if (state === undefined) {
      if (seq === 1) {
        const created = this.createOrigin(origin, epoch, 0);
        if (created === undefined) return;
        this.applyItems(origin, created, message.items);
        created.seq = 1;
        this.flood(payload, frame.neighbour);
      } else this.pull(frame.neighbour, origin);
      return;
    }
    if (state.epoch !== epoch) {
      this.pullFromOrigin(origin);
      return;
    }
    if (seq - state.seq <= 0 || seq - state.seq > 0x7fffffff) return; // seen (serial arithmetic)
    if (seq !== ((state.seq + 1) >>> 0)) {
      this.pull(frame.neighbour, origin);
      return;
    }
    this.applyItems(origin, state, message.items);
    state.seq = seq;
    this.flood(payload, frame.neighbour);
  }

  private onSnapshot(frame: InboundFrame, message: Extract<PubSubMessage, { type: "snapshot" }>): void {
    const { origin, epoch, seq, flags } = message;
    if (origin === this.host.localId) return;
    const key = `${frame.source}/${origin}`;
    let staging = this.staging.get(key);
    if ((flags & SnapshotFlag.First) !== 0 || staging === undefined || staging.epoch !== epoch || staging.seq !== seq) {
      if ((flags & SnapshotFlag.First) === 0) {
        this.staging.delete(key);
        return; // a middle chunk without its start (the link restarted): the next digest retries
      }
      if (this.staging.size >= MAX_ORIGINS) this.staging.clear();
      staging = { origin, epoch, seq, items: [] };
      this.staging.set(key, staging);
    }
    if (staging.items.length + message.items.length > MAX_ENTRIES_PER_ORIGIN) {
      this.staging.delete(key);
      this.counters.refused++;
      return;
    }
    for (const item of message.items) staging.items.push(item);
    if ((flags & SnapshotFlag.Last) === 0) return;
    this.staging.delete(key);
    this.counters.snapshotsIn++;
    this.install(origin, epoch, seq, staging.items, frame.source === origin);
  }

  private install(origin: NodeId, epoch: number, seq: number, items: InterestItem[], authoritative: boolean): void {
    let state = this.origins.get(origin);
    if (state !== undefined) {
      if (state.epoch === epoch) {
        const ahead = seq - state.seq;
        if (ahead < 0 || ahead > 0x7fffffff || (ahead === 0 && !authoritative)) return;
      } else if (!authoritative) {
        this.pullFromOrigin(origin);
        return;
      }
    } else {
      state = this.createOrigin(origin, epoch, seq);
      if (state === undefined) return;
    }
    const incoming = new Map<string, InterestItem>();
    for (const item of items) if (item.count > 0) incoming.set(keyOf(item.subject, item.queue), item);
    const withdraw: InterestItem[] = [];
    for (const [key, item] of state.entries) if (!incoming.has(key)) withdraw.push({ subject: item.subject, queue: item.queue, count: 0 });
    this.applyItems(origin, state, withdraw);
    this.applyItems(origin, state, [...incoming.values()]);
    state.epoch = epoch;
    state.seq = seq;
  }

  private onDigest(frame: InboundFrame, items: DigestItem[]): void {
    const from = frame.neighbour;
    const pulls: NodeId[] = [];
    for (const { origin, epoch, seq } of items) {
      if (origin === this.host.localId) {
        // The neighbour holds an older incarnation of us: tell it the truth.
        if (epoch !== this.epoch) this.sendSnapshot(from, this.host.localId, this.epoch, this.seq, this.local.values(), true);
        continue;
      }
      const state = this.origins.get(origin);
      if (state === undefined) {
        if (this.host.nextHop(origin) !== undefined && this.mayPull(`${from}/${origin}`)) pulls.push(origin);
      } else if (state.epoch !== epoch) {
        this.pullFromOrigin(origin);
      } else {
        const ahead = seq - state.seq;
        if (ahead > 0 && ahead <= 0x7fffffff && this.mayPull(`${from}/${origin}`)) pulls.push(origin);
      }
    }
    for (let i = 0; i < pulls.length; i += MAX_PULL_ORIGINS) {
      this.counters.pulls++;
      this.sendTo(from, encodePubSubMessage({ type: "pull", origins: pulls.slice(i, i + MAX_PULL_ORIGINS) }), true);
    }
  }

  private onPull(frame: InboundFrame, origins: NodeId[]): void {
    const to = frame.source;
    const direct = frame.neighbour === frame.source;
    for (const origin of origins) {
      if (origin === this.host.localId) this.sendSnapshot(to, origin, this.epoch, this.seq, this.local.values(), direct);
      else {
        const state = this.origins.get(origin);
        if (state !== undefined && state.unreachableSince === undefined) this.sendSnapshot(to, origin, state.epoch, state.seq, state.entries.values(), direct);
      }
    }
  }

  private pull(neighbour: NodeId, origin: NodeId): void {
    if (!this.mayPull(`${neighbour}/${origin}`)) return;
    this.counters.pulls++;
    this.sendTo(neighbour, encodePubSubMessage({ type: "pull", origins: [origin] }), true);
  }

  /** Asks the origin itself (routed end to end): its snapshot is authoritative. */
  private pullFromOrigin(origin: NodeId): void {
    if (!this.mayPull(`origin/${origin}`)) return;
    this.counters.pulls++;
    const error = this.host.send(origin, this.id, encodePubSubMessage({ type: "pull", origins: [origin] }), { reliable: true });
    if (error !== undefined) this.counters.sendFailed++;
  }

  private mayPull(key: string): boolean {
    const last = this.pulledAt.get(key);
    if (last !== undefined && this.now - last < PULL_RETRY_MS) return false;
    if (this.pulledAt.size >= MAX_ORIGINS) this.pulledAt.clear();
    this.pulledAt.set(key, this.now);
    return true;
  }

  private sendSnapshot(to: NodeId, origin: NodeId, epoch: number, seq: number, entries: Iterable<InterestItem>, direct: boolean): void {
    const send = (items: InterestItem[], flags: number): void => {
      const payload = encodePubSubMessage({ type: "snapshot", origin, epoch, seq, flags, items });
      if (direct) this.sendTo(to, payload, true);
      else if (this.host.send(to, this.id, payload, { reliable: true }) !== undefined) this.counters.sendFailed++;
    };
    let chunk: InterestItem[] = [];
    let bytes = 0;
    let flags: number = SnapshotFlag.First;
    for (const item of entries) {
      const size = itemBytes(item);
      if (chunk.length > 0 && (chunk.length >= MAX_ENTRIES_PER_MESSAGE || bytes + size > SNAPSHOT_CHUNK_BYTES)) {
        send(chunk, flags);
        flags = 0;
        chunk = [];
        bytes = 0;
      }
      chunk.push(item);
      bytes += size;
    }
    send(chunk, flags | SnapshotFlag.Last);
    this.counters.snapshotsOut++;
  }

  private sendDigest(neighbour: NodeId): void {
    const items: DigestItem[] = [{ origin: this.host.localId, epoch: this.epoch, seq: this.seq }];
    for (const [origin, state] of this.origins) {
      // Never advertise an origin we cannot reach: a dead node's interest must not come back.
      if (state.unreachableSince === undefined && origin !== neighbour) items.push({ origin, epoch: state.epoch, seq: state.seq });
    }
    for (let i = 0; i < items.length; i += MAX_DIGEST_ITEMS) {
      this.sendTo(neighbour, encodePubSubMessage({ type: "digest", items: items.slice(i, i + MAX_DIGEST_ITEMS) }), true);
      this.counters.digestsOut++;
    }
  }

  private flood(payload: Uint8Array, except: NodeId): void {
    for (const neighbour of this.knownNeighbours) {
      if (neighbour === except) continue;
      this.sendTo(neighbour, payload, true);
      this.counters.updatesOut++;
    }
  }

  private createOrigin(origin: NodeId, epoch: number, seq: number): OriginState | undefined {
    if (this.origins.size >= MAX_ORIGINS) {
      this.counters.refused++;
      return undefined;
    }
    const state: OriginState = { epoch, seq, entries: new Map(), unreachableSince: undefined };
    this.origins.set(origin, state);
    return state;
  }

  private applyItems(origin: NodeId, state: OriginState, items: readonly InterestItem[]): void {
    for (const item of items) {
      const key = keyOf(item.subject, item.queue);
      if (item.count <= 0) {
        if (state.entries.delete(key)) this.broker.applyRemoteInterest(origin, item.subject, item.queue, 0);
        continue;
      }
      if (!state.entries.has(key) && state.entries.size >= MAX_ENTRIES_PER_ORIGIN) {
        this.counters.refused++;
        continue;
      }
      if (this.broker.applyRemoteInterest(origin, item.subject, item.queue, item.count)) state.entries.set(key, item);
      else this.counters.refused++;
    }
  }

  // ─── Membership of the neighbourhood and of the overlay ────────────────────────────────────

  private checkNeighbours(): void {
    const current = new Set(this.host.neighbours());
    for (const neighbour of current) {
      // A new neighbour learns what we hold at once (it pulls what it lacks) and we from it.
      if (!this.knownNeighbours.has(neighbour)) this.sendDigest(neighbour);
    }
    this.knownNeighbours = current;
    for (const hop of this.lastBatchBytes.keys()) if (!current.has(hop)) this.lastBatchBytes.delete(hop);
  }

  private checkReachability(now: number): void {
    for (const [origin, state] of this.origins) {
      if (this.host.nextHop(origin) !== undefined) {
        state.unreachableSince = undefined;
        continue;
      }
      state.unreachableSince ??= now;
      if (now - state.unreachableSince >= INTEREST_EXPIRY_MS) {
        this.origins.delete(origin);
        this.broker.removeRemoteNode(origin);
        this.counters.expiredOrigins++;
        this.host.logger.debug({ origin }, "pub/sub interest of an unreachable node expired");
      }
    }
  }

  // ─── Data ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Bytes waiting toward the most backlogged neighbour (below the module, outside the engine as
   * the runtime reports it, and in this module's batch). The NATS port pauses publishers above a
   * threshold, so that a fast publisher meets the link's pace instead of LINK_MAX_BACKLOG_BYTES.
   */
  maxLinkBacklogBytes(): number {
    let max = 0;
    for (const neighbour of this.host.neighbours()) {
      const bytes = this.host.linkBacklogBytes(neighbour) + (this.externalBacklog?.(neighbour) ?? 0) + (this.batches.get(neighbour)?.length ?? 0);
      if (bytes > max) max = bytes;
    }
    return max;
  }

  private readonly onDataBound = (payload: Uint8Array): void => this.onData(payload);

  /**
   * Hands every next hop's batch of DATA frames to the engine (one DATA_BATCH frame each). The
   * engine calls it when it flushes its links, so what one turn of the event loop published
   * leaves as one frame per link.
   */
  flushBatches(): void {
    if (this.batches.size === 0) return;
    for (const [hop, batch] of this.batches) {
      if (batch.length > 1) this.sendTo(hop, batch.bytes.subarray(0, batch.length), true);
      this.lastBatchBytes.set(hop, batch.length + (batch.length >>> 2));
    }
    this.batches.clear();
  }

  /** Appends one DATA frame (ttl, destinations, body) to `hop`'s batch; a large one goes alone. */
  private enqueueData(hop: NodeId, ttl: number, destinations: readonly DataDestination[], body: Uint8Array | DataBodyParts): void {
    const size = dataFrameHeaderBytes(destinations) + bodyBytes(body);
    let batch = this.batches.get(hop);
    if (1 + 4 + size > DATA_BATCH_MAX_BYTES) {
      // Alone, after what is batched for this hop (order per link holds).
      if (batch !== undefined && batch.length > 1) this.sendTo(hop, batch.bytes.subarray(0, batch.length), true);
      this.batches.delete(hop);
      this.sendTo(hop, encodeDataFrame(ttl, destinations, materializeBody(body)), true);
      return;
    }
    if (batch !== undefined && batch.length + 4 + size > DATA_BATCH_MAX_BYTES) {
      this.sendTo(hop, batch.bytes.subarray(0, batch.length), true);
      batch = undefined;
    }
    if (batch === undefined || batch.length + 4 + size > batch.bytes.byteLength) {
      // A fresh buffer per batch: the engine may keep the one it was handed until it is written.
      // Sized after the hop's last batch, so that a steady stream rarely grows one.
      const hint = batch === undefined ? (this.lastBatchBytes.get(hop) ?? 0) : 2 * batch.length;
      const capacity = Math.min(DATA_BATCH_MAX_BYTES, Math.max(4096, hint, 2 * ((batch?.length ?? 1) + 4 + size)));
      const bytes = new Uint8Array(capacity);
      bytes[0] = PubSubMessageType.DataBatch;
      if (batch !== undefined) bytes.set(batch.bytes.subarray(1, batch.length), 1);
      batch = { bytes, view: new DataView(bytes.buffer), length: batch?.length ?? 1 };
      this.batches.set(hop, batch);
    }
    batch.view.setUint32(batch.length, size);
    batch.length = writeDataFrame(batch.bytes, batch.view, batch.length + 4, ttl, destinations, body);
  }

  private onData(payload: Uint8Array): void {
    const header = decodeDataHeader(payload);
    if (header instanceof Error) {
      this.counters.malformed++;
      return;
    }
    this.counters.dataIn++;
    let mine: DataDestination | undefined;
    let others: DataDestination[] | undefined;
    for (const destination of header.destinations) {
      if (destination.node === this.host.localId) mine = destination;
      else (others ??= []).push(destination);
    }
    if (others !== undefined) {
      if (header.ttl <= 1) this.counters.noRoute += others.length;
      else {
        this.counters.dataRelayed++;
        this.split(others, payload.subarray(header.bodyOffset), header.ttl - 1);
      }
    }
    if (mine === undefined) return;
    const body = decodeDataBody(payload, header.bodyOffset);
    if (body instanceof Error) {
      this.counters.malformed++;
      return;
    }
    const msg: Message = {
      subject: body.subject,
      reply: body.reply,
      bytes: payload,
      offset: body.offset,
      headerLength: body.headerLength,
      totalLength: payload.byteLength - body.offset,
    };
    this.broker.deliverFromRemote(msg, mine.queues);
  }

  /** One DATA frame per next hop with the destinations behind it: each link carries the message once. */
  private split(destinations: readonly DataDestination[], body: Uint8Array | DataBodyParts, ttl: number): void {
    // The common case, one destination without oversized queue lists: no grouping needed.
    if (destinations.length === 1 && destinations[0]!.queues.length <= MAX_QUEUES_PER_DESTINATION) {
      const hop = this.host.nextHop(destinations[0]!.node);
      if (hop === undefined) this.counters.noRoute++;
      else if (this.host.linkBacklogBytes(hop) + (this.externalBacklog?.(hop) ?? 0) + (this.batches.get(hop)?.length ?? 0) > LINK_MAX_BACKLOG_BYTES) this.counters.linkDropped++;
      else this.enqueueData(hop, ttl, destinations, body);
      return;
    }
    const byHop = new Map<NodeId, DataDestination[]>();
    for (const destination of destinations) {
      const hop = this.host.nextHop(destination.node);
      if (hop === undefined) {
        this.counters.noRoute++;
        continue;
      }
      const queues = destination.queues.length > MAX_QUEUES_PER_DESTINATION ? destination.queues.slice(0, MAX_QUEUES_PER_DESTINATION) : destination.queues;
      let list = byHop.get(hop);
      if (list === undefined) byHop.set(hop, (list = []));
      list.push(queues === destination.queues ? destination : { node: destination.node, queues });
    }
    for (const [hop, list] of byHop) {
      const backlog = this.host.linkBacklogBytes(hop) + (this.externalBacklog?.(hop) ?? 0) + (this.batches.get(hop)?.length ?? 0);
      if (backlog > LINK_MAX_BACKLOG_BYTES) {
        this.counters.linkDropped++;
        continue;
      }
      for (let i = 0; i < list.length; i += MAX_DATA_DESTINATIONS) {
        const chunk = list.length <= MAX_DATA_DESTINATIONS ? list : list.slice(i, i + MAX_DATA_DESTINATIONS);
        this.enqueueData(hop, ttl, chunk, body);
      }
    }
  }

  private sendTo(neighbour: NodeId, payload: Uint8Array, reliable: boolean): void {
    const error = this.host.sendToNeighbour(neighbour, this.id, payload, { reliable });
    if (error !== undefined) this.counters.sendFailed++;
  }
}

/** Limits that callers (the NATS port, the library) enforce before a subject reaches the overlay. */
export const OVERLAY_LIMITS = { maxSubjectBytes: MAX_SUBJECT_BYTES, maxQueueBytes: MAX_QUEUE_BYTES } as const;

/**
 * The collector module (module 5): every node reports a snapshot of itself — neighbours with
 * smoothed RTT, RTT variance and loss; its route table summary (per destination: next hop, metric,
 * hops); tags; software version; uptime; counters — routed over the overlay to every collector it
 * knows, every `intervalMs` (±10%). Collectors make themselves known with a small ADVERT flooded hop
 * by hop (and handed to every new neighbour), refreshed every ADVERT_INTERVAL_MS and forgotten after
 * ADVERT_EXPIRY_MS. A collector keeps a CollectorModel (model.ts) of every node that reports.
 *
 * Pure: driven by the engine (`onFrame`, `tick` with `now`), randomness through the host's Rng, the
 * node's state read through `LocalView`. Protocol and reasons: README.md; bytes: docs/protocol.md.
 */
import type { EngineModule, InboundFrame, RouteAwareHost } from "../../core/module.js";
import { ModuleId } from "../../core/module.js";
import type { NodeId } from "../../core/node-id.js";
import {
  ADVERT_EXPIRY_MS,
  ADVERT_INTERVAL_MS,
  MAX_COLLECTORS,
  MAX_LINK_BACKLOG_BYTES,
  MAX_SNAPSHOT_NEIGHBOURS,
  MAX_SNAPSHOT_ROUTES,
  MAX_TAGS,
  NEIGHBOUR_CHECK_INTERVAL_MS,
  SNAPSHOT_INTERVAL_MAX_MS,
  SNAPSHOT_INTERVAL_MIN_MS,
  SNAPSHOT_INTERVAL_MS,
} from "./constants.js";
import { type Snapshot, type SnapshotCounters, SnapshotFlag, decodeCollectorMessage, encodeAdvert, encodeSnapshot } from "./messages.js";
import { CollectorModel, serialNewer } from "./model.js";

/** What the module reads of its node (the engine's neighbours(), routes() and stats()). */
export interface LocalView {
  neighbours(): readonly { id: NodeId; state: string; srttMs: number | undefined; rttvarMs: number | undefined; loss: number }[];
  routes(): readonly { destination: NodeId; nextHop: NodeId | undefined; metricMs: number | undefined; hops: number }[];
  counters(): SnapshotCounters;
}

export interface CollectorConfig {
  /** This node is a collector: it keeps a model and advertises itself. */
  collector: boolean;
  tags: readonly string[];
  version: string;
  /** Reporting interval (default SNAPSHOT_INTERVAL_MS), clamped to SNAPSHOT_INTERVAL_MIN_MS..MAX. */
  intervalMs?: number | undefined;
}

/** A collector this node reports to (explicit state: known until `expiresAt`). */
interface KnownCollector {
  seq: number;
  learnedAt: number;
  expiresAt: number;
}

export interface CollectorStats {
  /** Collectors this node reports to now (itself excluded). */
  collectors: number;
  snapshotsSent: number;
  snapshotBytesSent: number;
  /** Sends the engine refused (no route, queue full). */
  sendFailed: number;
  /** Snapshots not sent because the link toward the collector had more than MAX_LINK_BACKLOG_BYTES queued. */
  skippedBacklog: number;
  advertsIn: number;
  advertsForwarded: number;
  /** Adverts of collectors beyond MAX_COLLECTORS. */
  collectorsRefused: number;
  /** Snapshots that reached a node which is not a collector. */
  notCollector: number;
  malformed: number;
}

export type CollectorControl = never;
export type CollectorEvent = never;

export class CollectorModule implements EngineModule<CollectorControl, CollectorEvent> {
  readonly id = ModuleId.Collector;
  readonly name = "collector";
  /** The model, on a collector only. */
  readonly model: CollectorModel | undefined;
  readonly intervalMs: number;
  private readonly known = new Map<NodeId, KnownCollector>();
  /** Collectors learned since the last snapshot: they get one at the next check, not a full interval later. */
  private readonly fresh = new Set<NodeId>();
  private neighbourSet = new Set<NodeId>();
  private startedAt: number | undefined;
  private nextSnapshotAt = 0;
  private nextAdvertAt = 0;
  private nextCheckAt = 0;
  private snapshotSeq = 0;
  private advertSeq: number;
  private readonly tags: string[];
  private readonly counters = {
    snapshotsSent: 0,
    snapshotBytesSent: 0,
    sendFailed: 0,
    skippedBacklog: 0,
    advertsIn: 0,
    advertsForwarded: 0,
    collectorsRefused: 0,
    notCollector: 0,
    malformed: 0,
  };

  constructor(
    private readonly host: RouteAwareHost,
    private readonly config: CollectorConfig,
    private readonly view: LocalView,
  ) {
    this.model = config.collector ? new CollectorModel(host.localId) : undefined;
    const interval = config.intervalMs ?? SNAPSHOT_INTERVAL_MS;
    this.intervalMs = Math.min(SNAPSHOT_INTERVAL_MAX_MS, Math.max(SNAPSHOT_INTERVAL_MIN_MS, Math.round(interval)));
    this.tags = [...new Set(config.tags)].slice(0, MAX_TAGS);
    this.advertSeq = host.rng.nextU32();
  }

  /** Collectors this node reports to now (itself excluded), by id. */
  collectors(): NodeId[] {
    return [...this.known.keys()].sort((a, b) => a - b);
  }

  stats(): CollectorStats {
    return { collectors: this.known.size, ...this.counters };
  }

  onFrame(now: number, frame: InboundFrame): void {
    const message = decodeCollectorMessage(frame.payload);
    if (message instanceof Error) {
      this.counters.malformed++;
      this.host.logger.debug({ source: frame.source, error: message.message }, "malformed collector message dropped");
      return;
    }
    if (message.type === "advert") {
      this.counters.advertsIn++;
      this.onAdvert(now, frame.neighbour, message.collector, message.seq);
      return;
    }
    if (this.model === undefined) {
      this.counters.notCollector++;
      return;
    }
    this.model.ingest(now, frame.source, message.snapshot);
  }

  control(): void {}

  tick(now: number): void {
    this.startedAt ??= now;
    if (now >= this.nextCheckAt) {
      this.nextCheckAt = now + NEIGHBOUR_CHECK_INTERVAL_MS;
      this.expireCollectors(now);
      this.greetNewNeighbours();
    }
    if (this.model !== undefined && now >= this.nextAdvertAt) {
      this.nextAdvertAt = now + this.jitter(ADVERT_INTERVAL_MS);
      this.advertSeq = (this.advertSeq + 1) >>> 0;
      const advert = encodeAdvert(this.host.localId, this.advertSeq);
      for (const neighbour of this.host.neighbours()) this.sendAdvert(neighbour, advert);
    }
    if (now >= this.nextSnapshotAt) {
      this.nextSnapshotAt = now + this.jitter(this.intervalMs);
      this.fresh.clear();
      if (this.model !== undefined || this.known.size > 0) this.report(now, [...this.known.keys()]);
    } else if (this.fresh.size > 0) {
      const targets = [...this.fresh];
      this.fresh.clear();
      this.report(now, targets);
    }
    this.model?.tick(now);
  }

  nextDeadline(): number {
    // A node that is no collector and knows none has nothing to do until an advert arrives.
    if (this.startedAt !== undefined && this.model === undefined && this.known.size === 0) return Infinity;
    let deadline = Math.min(this.nextSnapshotAt, this.nextCheckAt);
    if (this.model !== undefined) deadline = Math.min(deadline, this.nextAdvertAt, this.model.nextDeadline());
    return deadline;
  }

  pollEvent(): CollectorEvent | undefined {
    return undefined;
  }

  /** The snapshot this node would send now. */
  snapshot(now: number): Snapshot {
    const neighbours = this.view.neighbours().filter((neighbour) => neighbour.state === "up");
    const routes = this.view.routes();
    let flags = this.model !== undefined ? SnapshotFlag.Collector : 0;
    if (neighbours.length > MAX_SNAPSHOT_NEIGHBOURS || routes.length > MAX_SNAPSHOT_ROUTES) flags |= SnapshotFlag.Truncated;
    this.snapshotSeq = (this.snapshotSeq + 1) >>> 0;
    return {
      seq: this.snapshotSeq,
      flags,
      intervalMs: this.intervalMs,
      uptimeS: Math.max(0, Math.floor((now - (this.startedAt ?? now)) / 1000)),
      version: this.config.version,
      tags: this.tags,
      counters: this.view.counters(),
      neighbours: neighbours.slice(0, MAX_SNAPSHOT_NEIGHBOURS).map((n) => ({ id: n.id, srttMs: n.srttMs, rttvarMs: n.rttvarMs, loss: n.loss })),
      routes: routes.slice(0, MAX_SNAPSHOT_ROUTES).map((r) => ({ destination: r.destination, nextHop: r.nextHop, metricMs: r.metricMs, hops: r.hops })),
    };
  }

  private report(now: number, targets: NodeId[]): void {
    const payload = encodeSnapshot(this.snapshot(now));
    if (this.model !== undefined) {
      // A collector takes its own snapshot as it would arrive (same rounding as everyone else's).
      const own = decodeCollectorMessage(payload);
      if (!(own instanceof Error) && own.type === "snapshot") this.model.ingest(now, this.host.localId, own.snapshot);
    }
    if (targets.length === 0) return;
    for (const collector of targets) {
      const hop = this.host.nextHop(collector);
      if (hop !== undefined && this.host.linkBacklogBytes(hop) > MAX_LINK_BACKLOG_BYTES) {
        this.counters.skippedBacklog++;
        continue;
      }
      const error = this.host.send(collector, this.id, payload, { reliable: true });
      if (error !== undefined) {
        this.counters.sendFailed++;
        continue;
      }
      this.counters.snapshotsSent++;
      this.counters.snapshotBytesSent += payload.byteLength;
    }
  }

  private onAdvert(now: number, from: NodeId, collector: NodeId, seq: number): void {
    if (collector === this.host.localId) return;
    const entry = this.known.get(collector);
    if (entry !== undefined && !serialNewer(seq, entry.seq)) return;
    if (entry === undefined) {
      if (this.known.size >= MAX_COLLECTORS) {
        this.counters.collectorsRefused++;
        return;
      }
      this.known.set(collector, { seq, learnedAt: now, expiresAt: now + ADVERT_EXPIRY_MS });
      this.fresh.add(collector);
      this.host.logger.debug({ collector }, "collector learned");
    } else {
      entry.seq = seq;
      entry.expiresAt = now + ADVERT_EXPIRY_MS;
    }
    // Flood on: each (collector, seq) crosses each link at most once per direction.
    const advert = encodeAdvert(collector, seq);
    for (const neighbour of this.host.neighbours()) {
      if (neighbour === from || neighbour === collector) continue;
      this.counters.advertsForwarded++;
      this.sendAdvert(neighbour, advert);
    }
  }

  private sendAdvert(neighbour: NodeId, advert: Uint8Array): void {
    const error = this.host.sendToNeighbour(neighbour, this.id, advert, { reliable: true });
    if (error !== undefined) this.counters.sendFailed++;
  }

  private expireCollectors(now: number): void {
    for (const [collector, entry] of this.known) {
      if (now >= entry.expiresAt) {
        this.known.delete(collector);
        this.fresh.delete(collector);
        this.host.logger.debug({ collector }, "collector forgotten (no advert)");
      }
    }
  }

  /** A new neighbour learns every collector this node knows (and this node, if it is one) at once. */
  private greetNewNeighbours(): void {
    const current = new Set(this.host.neighbours());
    for (const neighbour of current) {
      if (this.neighbourSet.has(neighbour)) continue;
      if (this.model !== undefined) this.sendAdvert(neighbour, encodeAdvert(this.host.localId, this.advertSeq));
      for (const [collector, entry] of this.known) {
        if (collector !== neighbour) this.sendAdvert(neighbour, encodeAdvert(collector, entry.seq));
      }
    }
    this.neighbourSet = current;
  }

  private jitter(intervalMs: number): number {
    return intervalMs * (0.9 + 0.2 * this.host.rng.nextFloat());
  }
}

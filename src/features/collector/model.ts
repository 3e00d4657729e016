/**
 * The collector's model of the network (pure: time arrives as `now`). It holds the newest snapshot
 * of every node that reports, judges each node by its own reporting interval — "live" while its
 * last snapshot is younger than STALE_AFTER_INTERVALS intervals, then "stale", then forgotten after
 * FORGET_AFTER_INTERVALS — and answers `topology(now)`: the JSON of GET /api/topology.
 */
import type { NodeId } from "../../core/node-id.js";
import { FORGET_AFTER_INTERVALS, MAX_MODEL_NODES, STALE_AFTER_INTERVALS } from "./constants.js";
import { type Snapshot, SnapshotFlag } from "./messages.js";

export type NodeLiveness = "live" | "stale";

/** One reporting node, as the collector knows it (explicit state: live → stale → forgotten). */
interface ModelEntry {
  id: NodeId;
  state: NodeLiveness;
  snapshot: Snapshot;
  /** When the newest snapshot arrived (the collector's clock). */
  receivedAt: number;
  firstSeenAt: number;
  snapshots: number;
}

export interface TopologyNode {
  id: NodeId;
  state: NodeLiveness;
  collector: boolean;
  tags: string[];
  version: string;
  uptime_s: number;
  /** ms since the node's last snapshot arrived. */
  age_ms: number;
  interval_ms: number;
  snapshots: number;
  truncated: boolean;
  counters: {
    frames_in: number;
    frames_out: number;
    bytes_in: number;
    bytes_out: number;
    frames_forwarded: number;
    frames_dropped: number;
  };
  neighbours: { id: NodeId; srtt_ms: number | null; rttvar_ms: number | null; loss: number }[];
  routes: { destination: NodeId; next_hop: NodeId | null; metric_ms: number | null; hops: number }[];
}

export interface TopologyLink {
  /** The lower NodeId of the pair, then the higher. */
  a: NodeId;
  b: NodeId;
  /** Mean of the smoothed RTTs the two ends report (null: neither has measured it yet). */
  srtt_ms: number | null;
  /** RTT as measured by `a` and by `b` (null: that end did not report the link). */
  srtt_a_ms: number | null;
  srtt_b_ms: number | null;
  rttvar_ms: number | null;
  /** The worse of the two ends' loss ratios. */
  loss: number;
  /** "live" while a live node reports it. */
  state: NodeLiveness;
}

export interface Topology {
  collector: NodeId;
  /** Bumps on every change of the model (a snapshot, a node going stale or forgotten). */
  version: number;
  nodes: TopologyNode[];
  links: TopologyLink[];
}

export interface ModelStats {
  nodes: number;
  snapshotsAccepted: number;
  /** Older than (or a replay of) the snapshot held. */
  snapshotsOld: number;
  /** Refused: the model already holds MAX_MODEL_NODES nodes. */
  snapshotsRefused: number;
  forgotten: number;
}

/** a is newer than b in serial-number arithmetic modulo 2^32 (RFC 1982). */
export function serialNewer(a: number, b: number): boolean {
  const diff = (a - b) >>> 0;
  return diff !== 0 && diff < 0x8000_0000;
}

export class CollectorModel {
  private readonly entries = new Map<NodeId, ModelEntry>();
  private changes = 0;
  private readonly counters = { snapshotsAccepted: 0, snapshotsOld: 0, snapshotsRefused: 0, forgotten: 0 };

  constructor(readonly collectorId: NodeId) {}

  get version(): number {
    return this.changes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Takes a node's snapshot; returns what became of it. */
  ingest(now: number, source: NodeId, snapshot: Snapshot): "accepted" | "old" | "refused" {
    const entry = this.entries.get(source);
    if (entry === undefined) {
      if (this.entries.size >= MAX_MODEL_NODES) {
        this.counters.snapshotsRefused++;
        return "refused";
      }
      this.entries.set(source, { id: source, state: "live", snapshot, receivedAt: now, firstSeenAt: now, snapshots: 1 });
    } else {
      // A restarted node counts from 1 again: its uptime went back, so that is accepted too.
      if (!serialNewer(snapshot.seq, entry.snapshot.seq) && snapshot.uptimeS >= entry.snapshot.uptimeS) {
        this.counters.snapshotsOld++;
        return "old";
      }
      entry.snapshot = snapshot;
      entry.receivedAt = now;
      entry.state = "live";
      entry.snapshots++;
    }
    this.counters.snapshotsAccepted++;
    this.changes++;
    return "accepted";
  }

  /** Moves nodes to stale and forgets the silent ones. */
  tick(now: number): void {
    for (const entry of this.entries.values()) {
      const age = now - entry.receivedAt;
      if (age >= FORGET_AFTER_INTERVALS * entry.snapshot.intervalMs) {
        this.entries.delete(entry.id);
        this.counters.forgotten++;
        this.changes++;
      } else if (entry.state === "live" && age >= STALE_AFTER_INTERVALS * entry.snapshot.intervalMs) {
        entry.state = "stale";
        this.changes++;
      }
    }
  }

  /** When the next node goes stale or is forgotten (Infinity: no node). */
  nextDeadline(): number {
    let deadline = Infinity;
    for (const entry of this.entries.values()) {
      const factor = entry.state === "live" ? STALE_AFTER_INTERVALS : FORGET_AFTER_INTERVALS;
      deadline = Math.min(deadline, entry.receivedAt + factor * entry.snapshot.intervalMs);
    }
    return deadline;
  }

  state(id: NodeId): NodeLiveness | undefined {
    return this.entries.get(id)?.state;
  }

  stats(): ModelStats {
    return { nodes: this.entries.size, ...this.counters };
  }

  /** The model as GET /api/topology serves it: nodes by id, links once per pair (both ends in the model). */
  topology(now: number): Topology {
    const ids = [...this.entries.keys()].sort((a, b) => a - b);
    const nodes: TopologyNode[] = [];
    const pairs = new Map<string, TopologyLink>();
    for (const id of ids) {
      const entry = this.entries.get(id)!;
      const s = entry.snapshot;
      nodes.push({
        id,
        state: entry.state,
        collector: (s.flags & SnapshotFlag.Collector) !== 0,
        tags: [...s.tags],
        version: s.version,
        uptime_s: s.uptimeS,
        age_ms: Math.max(0, now - entry.receivedAt),
        interval_ms: s.intervalMs,
        snapshots: entry.snapshots,
        truncated: (s.flags & SnapshotFlag.Truncated) !== 0,
        counters: {
          frames_in: s.counters.framesIn,
          frames_out: s.counters.framesOut,
          bytes_in: s.counters.bytesIn,
          bytes_out: s.counters.bytesOut,
          frames_forwarded: s.counters.framesForwarded,
          frames_dropped: s.counters.framesDropped,
        },
        neighbours: s.neighbours.map((n) => ({ id: n.id, srtt_ms: n.srttMs ?? null, rttvar_ms: n.rttvarMs ?? null, loss: n.loss })),
        routes: s.routes.map((r) => ({ destination: r.destination, next_hop: r.nextHop ?? null, metric_ms: r.metricMs ?? null, hops: r.hops })),
      });
      for (const neighbour of s.neighbours) {
        if (!this.entries.has(neighbour.id) || neighbour.id === id) continue;
        const a = Math.min(id, neighbour.id);
        const b = Math.max(id, neighbour.id);
        const key = `${a}-${b}`;
        let link = pairs.get(key);
        if (link === undefined) {
          link = { a, b, srtt_ms: null, srtt_a_ms: null, srtt_b_ms: null, rttvar_ms: null, loss: 0, state: "stale" };
          pairs.set(key, link);
        }
        if (id === a) link.srtt_a_ms = neighbour.srttMs ?? null;
        else link.srtt_b_ms = neighbour.srttMs ?? null;
        if (neighbour.rttvarMs !== undefined) link.rttvar_ms = Math.max(link.rttvar_ms ?? 0, neighbour.rttvarMs);
        link.loss = Math.max(link.loss, neighbour.loss);
        if (entry.state === "live") link.state = "live";
      }
    }
    const links = [...pairs.values()].sort((x, y) => x.a - y.a || x.b - y.b);
    for (const link of links) {
      const known = [link.srtt_a_ms, link.srtt_b_ms].filter((value): value is number => value !== null);
      link.srtt_ms = known.length === 0 ? null : known.reduce((sum, value) => sum + value, 0) / known.length;
    }
    return { collector: this.collectorId, version: this.changes, nodes, links };
  }
}

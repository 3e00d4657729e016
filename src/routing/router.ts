/**
 * The router (module id 3): a loop-free distance vector in the spirit of Babel (RFC 8966) over the
 * delay metric of metric.ts. README.md explains the algorithm; docs/protocol.md the bytes.
 *
 * Pure: time comes in as `now` (ms), randomness through the Rng, and it asks for a tick through
 * `nextDeadline()`. The engine feeds it link events (`linkUp`, `linkCost`, `linkDown`) and the
 * routing messages its neighbours send, and drains `pollOutput()`: messages for one neighbour
 * (`link_send`, carried in LINK frames), end-to-end messages (`routed_send`, in ROUTED frames) and
 * events. The data plane asks `nextHop(destination)`: one Map lookup.
 *
 * Per destination the state is explicit (`DestinationState`): `unreachable` (no usable route),
 * `routed` (a selected next hop, with every other feasible next hop kept as an alternate), or
 * `starving` (routes exist but none is feasible: a seqno request is out).
 */
import type { Logger } from "../core/log.js";
import { nullLogger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import type { Rng } from "../core/rng.js";
import {
  EXPIRY_SWEEP_INTERVAL_MS,
  MAX_DESTINATIONS,
  MAX_PENDING_PROBES,
  MAX_TRACE_HOPS,
  MAX_UNREACHABLE_REPORT_ENTRIES,
  METRIC_INFINITY,
  POLICY_SOLE_ROUTE_UTILITY_US,
  PROBE_TIMEOUT_MS,
  RETRACTION_HOLD_MS,
  ROUTE_REQUEST_AFTER_MS,
  ROUTE_EXPIRY_INTERVALS,
  SEQNO_REQUEST_DEDUP_MS,
  SEQNO_REQUEST_HOP_LIMIT,
  SEQNO_REQUEST_MIN_INTERVAL_MS,
  SOURCE_GC_MS,
  SWITCH_GAIN_RATIO,
  SWITCH_HOLD_MS,
  SWITCH_MIN_GAIN_US,
  TRIGGER_METRIC_RATIO,
  TRIGGERED_UPDATE_DELAY_MS,
  UNREACHABLE_REPORT_INTERVAL_MS,
  UPDATE_INTERVAL_MS,
  URGENT_REPEAT_MS,
} from "./constants.js";
import {
  type RouteMessage,
  type SeqnoRequestEntry,
  UNKNOWN_RTT_US,
  UnreachableReason,
  type UpdateEntry,
  decodeRouteMessage,
  encodeRouteRequests,
  encodeRoutedMessage,
  encodeSeqnoRequests,
  encodeUpdates,
} from "./messages.js";
import { addMetric, seqnoNewer } from "./metric.js";
import { Dirty, RouteTable } from "./table.js";

/** Frames for routed control messages start with this TTL (as data frames: wire/frame.ts DEFAULT_TTL). */
export const ROUTED_CONTROL_TTL = 32;

export interface RouterConfig {
  localId: NodeId;
  rng: Rng;
  logger?: Logger;
  /** Periodic full-table refresh (default UPDATE_INTERVAL_MS). */
  updateIntervalMs?: number;
  /** Destinations kept at most (default MAX_DESTINATIONS). */
  maxDestinations?: number;
}

export type DestinationState = "routed" | "unreachable" | "starving";

export interface RouteAlternate {
  /** The neighbour this route goes through. */
  via: NodeId;
  /** Link cost plus what the neighbour advertised, µs one way (METRIC_INFINITY when the link is unusable). */
  metricUs: number;
  /** What the neighbour advertised, µs. */
  advertisedMetricUs: number;
  hops: number;
  seqno: number;
  /** Passes the feasibility condition (may be used without risk of a loop). */
  feasible: boolean;
  /** Feasible and its link usable: a failover candidate. */
  usable: boolean;
}

export interface RouteInfo {
  destination: NodeId;
  state: DestinationState;
  nextHop: NodeId | undefined;
  /** Metric of the selected route, µs one way (METRIC_INFINITY when unreachable). */
  metricUs: number;
  /** Links on the selected route (1 = a direct neighbour). */
  hops: number;
  seqno: number;
  feasibilityDistance: { seqno: number; metricUs: number } | undefined;
  /** Every route known for the destination (the selected one included), best first. */
  alternates: RouteAlternate[];
}

export interface ProbeHop {
  /** The node that answered (the destination for the last hop). */
  node: NodeId;
  /** The node the probe came from. */
  previousHop: NodeId;
  /** The answering node's smoothed RTT of the link previousHop–node, ms. */
  linkRttMs: number | undefined;
  /** The probe's starting TTL = this hop's position on the path (1 = first relay). */
  ttl: number;
}

export interface ProbeResult {
  id: number;
  kind: "ping" | "trace";
  destination: NodeId;
  /** The destination answered (and, for a trace, every hop before it). */
  complete: boolean;
  /** Round trip of the first echo answer from the destination, ms. */
  rttMs: number | undefined;
  /** A trace's hops in path order (the destination last); empty for a ping. */
  hops: ProbeHop[];
}

export type RouterEvent =
  /** The selected next hop for a destination changed (undefined: no route). */
  | { kind: "route"; destination: NodeId; nextHop: NodeId | undefined; previousNextHop: NodeId | undefined; metricUs: number; hops: number }
  /** A relay reported that it dropped a frame of ours to `destination`. */
  | { kind: "unreachable"; destination: NodeId; reportedBy: NodeId }
  /** A ping or trace finished (or timed out). */
  | { kind: "probe"; result: ProbeResult };

export type RouterControl =
  | { kind: "link_up"; peer: NodeId }
  | { kind: "link_cost"; peer: NodeId; costUs: number; rttUs: number | undefined }
  | { kind: "link_down"; peer: NodeId }
  | { kind: "ping"; destination: NodeId }
  | { kind: "trace"; destination: NodeId };

export type RouterOutput =
  /** A hop-by-hop message for one neighbour (a LINK frame, module 3). */
  | { kind: "link_send"; to: NodeId; payload: Uint8Array }
  /** An end-to-end message (a ROUTED frame, module 3, datagram class) starting with `ttl`. */
  | { kind: "routed_send"; to: NodeId; payload: Uint8Array; ttl: number }
  | { kind: "event"; event: RouterEvent };

export interface NeighbourUtility {
  /**
   * How much worse the routes would get without this neighbour: over the destinations it is the
   * best next hop for, the sum of (second-best metric − best metric), µs; a destination with no
   * other loop-free way counts POLICY_SOLE_ROUTE_UTILITY_US.
   */
  utilityUs: number;
  /** Destinations for which this neighbour is the only loop-free next hop. */
  soleRoutes: number;
  /** Destinations routed through it. */
  routes: number;
}

export interface RouterStats {
  destinations: number;
  routed: number;
  updatesSent: number;
  updatesReceived: number;
  seqnoRequestsSent: number;
  seqnoRequestsReceived: number;
  malformed: number;
  tableFull: number;
  tableBytes: number;
  /** The forwarding map (destination → next hop), estimated like the table's Maps: 40 bytes per entry. */
  forwardingBytes: number;
}

interface PendingProbe {
  base: number;
  kind: "ping" | "trace";
  destination: NodeId;
  sentAt: number;
  rttMs: number | undefined;
  /** TTL of the destination's earliest echo reply. */
  destinationTtl: number | undefined;
  hops: Map<number, ProbeHop>;
}

const NO_SLOT = -1;

export class Router {
  readonly id = 3;
  readonly name = "routing";
  readonly localId: NodeId;
  private readonly rng: Rng;
  private readonly log: Logger;
  private readonly updateIntervalMs: number;
  private readonly maxDestinations: number;
  private readonly table: RouteTable;
  /** destination → selected next hop: what the data plane reads. */
  private readonly forwarding = new Map<NodeId, NodeId>();
  private ownSeqno: number;
  /** Our own entry must go out (0, Dirty.Trigger or Dirty.Trigger | Dirty.Urgent). */
  private selfDirty = 0;
  private readonly dirtyList: number[] = [];
  private triggerAt = Infinity;
  private urgentRepeat: NodeId[] = [];
  private urgentRepeatAt = Infinity;
  private nextPeriodicAt: number;
  private nextSweepAt: number;
  private readonly holds = new Set<number>();
  private holdCheckAt = Infinity;
  /** Neighbours owed our whole table (link up, wildcard route request). */
  private readonly pendingDumps = new Set<NodeId>();
  /** Neighbours we ask for their whole table (no update from them within ROUTE_REQUEST_AFTER_MS of link up). */
  private readonly pendingWildcardRequests = new Set<NodeId>();
  /** New neighbours whose table has not arrived yet, and when to ask for it. */
  private readonly awaitingTable = new Map<NodeId, number>();
  private readonly pendingRequested = new Map<NodeId, Set<NodeId>>();
  private readonly pendingSeqnoRequests = new Map<NodeId, SeqnoRequestEntry[]>();
  private readonly unreachableReports = new Map<string, number>();
  private readonly probes = new Map<number, PendingProbe>();
  private nextProbeBase = 1;
  private readonly outputs: RouterOutput[] = [];
  private outputHead = 0;
  private readonly counters = { updatesSent: 0, updatesReceived: 0, seqnoRequestsSent: 0, seqnoRequestsReceived: 0, malformed: 0, tableFull: 0 };

  constructor(config: RouterConfig, now: number) {
    this.localId = config.localId;
    this.rng = config.rng;
    this.log = config.logger ?? nullLogger;
    this.updateIntervalMs = config.updateIntervalMs ?? UPDATE_INTERVAL_MS;
    this.maxDestinations = config.maxDestinations ?? MAX_DESTINATIONS;
    this.table = new RouteTable(now);
    // A random start: after a restart our old seqno may still be out there; seqno requests (and
    // updates naming us with a newer seqno) move us past it.
    this.ownSeqno = this.rng.nextU32() & 0xffff;
    this.nextPeriodicAt = now + this.updateIntervalMs * (0.5 + 0.5 * this.rng.nextFloat());
    this.nextSweepAt = now + EXPIRY_SWEEP_INTERVAL_MS;
  }

  // ─── Link events (from the engine) ───────────────────────────────────────────────────────────

  control(now: number, control: RouterControl): number | undefined {
    switch (control.kind) {
      case "link_up":
        this.linkUp(now, control.peer);
        return undefined;
      case "link_cost":
        this.linkCost(now, control.peer, control.costUs, control.rttUs);
        return undefined;
      case "link_down":
        this.linkDown(now, control.peer);
        return undefined;
      case "ping":
        return this.ping(now, control.destination);
      case "trace":
        return this.trace(now, control.destination);
    }
  }

  /** A neighbour link came up. Routes through it count once its cost is known (`linkCost`). */
  linkUp(now: number, peer: NodeId): void {
    if (peer === this.localId || peer === 0) return;
    this.table.addSlot(peer);
    this.pendingDumps.add(peer);
    // The peer sends its table at link up too; ask only if it has not arrived (lost, or it came
    // before this side saw the link up).
    this.awaitingTable.set(peer, now + ROUTE_REQUEST_AFTER_MS);
    this.schedule(now);
  }

  /**
   * The link's cost changed (metric.ts `linkCostUs`; METRIC_INFINITY = unusable for now, e.g.
   * suspected dead). Every destination routed through it is reconsidered at once.
   */
  linkCost(now: number, peer: NodeId, costUs: number, rttUs: number | undefined): void {
    const slot = this.table.slotOf(peer);
    if (slot === undefined) return;
    this.table.slotRttUs[slot] = rttUs === undefined || !Number.isFinite(rttUs) ? UNKNOWN_RTT_US : Math.min(UNKNOWN_RTT_US - 1, Math.max(0, Math.round(rttUs)));
    const cost = Number.isNaN(costUs) || costUs >= METRIC_INFINITY ? METRIC_INFINITY : Math.max(1, Math.round(costUs));
    if (this.table.slotCost[slot] === cost) return;
    this.table.slotCost[slot] = cost;
    this.reselectColumn(slot, now);
  }

  /**
   * Probation (neighbour policy): a new link whose routes are stored and judged
   * (`neighbourUtilities`) but not used, so that a trial link that is dropped a second later does
   * not ripple route changes through the network. Ending probation makes its routes count.
   */
  linkProbation(now: number, peer: NodeId, onProbation: boolean): void {
    const slot = this.table.slotOf(peer);
    if (slot === undefined || (this.table.slotProbation[slot] === 1) === onProbation) return;
    this.table.slotProbation[slot] = onProbation ? 1 : 0;
    this.reselectColumn(slot, now);
  }

  /** The link is gone: its routes vanish and every destination using it fails over at once. */
  linkDown(now: number, peer: NodeId): void {
    const slot = this.table.slotOf(peer);
    if (slot === undefined) return;
    const t = this.table;
    const affected: number[] = [];
    for (let d = 0; d < t.highWater; d++) {
      if (t.destId[d] !== 0 && (t.selSlot[d] === slot || t.cellMetric[d * t.slotCap + slot] !== METRIC_INFINITY)) affected.push(d);
    }
    t.removeSlot(peer);
    for (const d of affected) {
      if (t.selSlot[d] === slot) t.selSlot[d] = NO_SLOT; // the slot is free now: the route is gone
      this.select(d, now);
    }
    this.pendingDumps.delete(peer);
    this.pendingWildcardRequests.delete(peer);
    this.awaitingTable.delete(peer);
    this.pendingRequested.delete(peer);
    this.pendingSeqnoRequests.delete(peer);
  }

  // ─── The data plane ──────────────────────────────────────────────────────────────────────────

  /** The selected next hop toward `destination`, or undefined. One Map lookup. */
  nextHop(destination: NodeId): NodeId | undefined {
    return this.forwarding.get(destination);
  }

  /** Every usable loop-free next hop, best first (the selected one first). */
  nextHops(destination: NodeId): NodeId[] {
    const info = this.route(destination);
    if (!info) return [];
    const hops = info.alternates.filter((alternate) => alternate.usable).map((alternate) => alternate.via);
    if (info.nextHop !== undefined) {
      const index = hops.indexOf(info.nextHop);
      if (index > 0) hops.splice(index, 1);
      if (index !== 0) hops.unshift(info.nextHop);
    }
    return hops;
  }

  /** The selected route's metric toward `destination` (µs one way), METRIC_INFINITY when none. */
  metricTo(destination: NodeId): number {
    const d = this.table.indexOf(destination);
    return d === undefined ? METRIC_INFINITY : this.table.selMetric[d]!;
  }

  /** Number of destinations with a selected route. */
  get routedCount(): number {
    return this.forwarding.size;
  }

  /**
   * A relay could not forward a frame from `source` to `destination`: tell the source (rate
   * limited per pair, never about our own frames).
   */
  reportUnreachable(now: number, source: NodeId, destination: NodeId): void {
    if (source === this.localId || source === 0) return;
    const key = `${source}>${destination}`;
    const last = this.unreachableReports.get(key);
    if (last !== undefined && now - last < UNREACHABLE_REPORT_INTERVAL_MS) return;
    if (this.unreachableReports.size >= MAX_UNREACHABLE_REPORT_ENTRIES) this.unreachableReports.clear();
    this.unreachableReports.set(key, now);
    this.output({ kind: "routed_send", to: source, payload: encodeRoutedMessage({ type: "unreachable", reason: UnreachableReason.NoRoute, destination }), ttl: ROUTED_CONTROL_TTL });
  }

  // ─── Messages in ─────────────────────────────────────────────────────────────────────────────

  /** A hop-by-hop routing message from neighbour `from`. Returns an error text when malformed. */
  onLinkMessage(now: number, from: NodeId, payload: Uint8Array): string | undefined {
    const decoded = decodeRouteMessage(payload);
    if (!decoded.ok) {
      this.counters.malformed++;
      return decoded.error;
    }
    const message = decoded.value;
    if (this.table.slotOf(from) === undefined) return undefined; // not (or no longer) a neighbour
    switch (message.type) {
      case "update":
        this.onUpdate(now, from, message.intervalMs, message.entries);
        return undefined;
      case "route_request":
        this.onRouteRequest(now, from, message.destinations);
        return undefined;
      case "seqno_request":
        this.onSeqnoRequests(now, from, message.requests);
        return undefined;
      default:
        this.counters.malformed++;
        return `${message.type} must travel end to end, not in a link frame`;
    }
  }

  /**
   * An end-to-end routing message for this node from `source`, which arrived from neighbour
   * `neighbour`. Returns an error text when malformed.
   */
  onRoutedMessage(now: number, source: NodeId, neighbour: NodeId, payload: Uint8Array): string | undefined {
    const decoded = decodeRouteMessage(payload);
    if (!decoded.ok) {
      this.counters.malformed++;
      return decoded.error;
    }
    const message = decoded.value;
    switch (message.type) {
      case "unreachable":
        this.output({ kind: "event", event: { kind: "unreachable", destination: message.destination, reportedBy: source } });
        return undefined;
      case "echo_request":
        this.output({
          kind: "routed_send",
          to: source,
          payload: encodeRoutedMessage({ type: "echo_reply", id: message.id, previousHop: neighbour, linkRttUs: this.linkRttUs(neighbour) }),
          ttl: ROUTED_CONTROL_TTL,
        });
        return undefined;
      case "echo_reply":
      case "time_exceeded":
        this.onProbeAnswer(now, source, message);
        return undefined;
      default:
        this.counters.malformed++;
        return `${message.type} is a link-local message, not an end-to-end one`;
    }
  }

  /**
   * A routed frame of this module died here (its TTL ran out). A ping/trace probe gets a
   * time_exceeded answer, like ICMP; anything else is only dropped.
   */
  onTtlExpired(now: number, source: NodeId, neighbour: NodeId, payload: Uint8Array): void {
    void now;
    if (source === this.localId) return;
    const decoded = decodeRouteMessage(payload);
    if (!decoded.ok || decoded.value.type !== "echo_request") return;
    this.output({
      kind: "routed_send",
      to: source,
      payload: encodeRoutedMessage({ type: "time_exceeded", id: decoded.value.id, previousHop: neighbour, linkRttUs: this.linkRttUs(neighbour) }),
      ttl: ROUTED_CONTROL_TTL,
    });
  }

  private onUpdate(now: number, from: NodeId, intervalMs: number, entries: UpdateEntry[]): void {
    const t = this.table;
    const slot = t.slotOf(from)!;
    this.counters.updatesReceived++;
    this.awaitingTable.delete(from);
    const expiryCs = t.expiryCs(now + ROUTE_EXPIRY_INTERVALS * intervalMs);
    for (const entry of entries) {
      if (entry.destination === this.localId) {
        // Someone holds a newer seqno of ours than we do: we restarted. Move past it.
        if (seqnoNewer(entry.seqno, this.ownSeqno)) {
          this.ownSeqno = (entry.seqno + 1) & 0xffff;
          this.selfDirty |= Dirty.Trigger | Dirty.Urgent;
          this.schedule(now);
        }
        continue;
      }
      let d = t.indexOf(entry.destination);
      if (d === undefined) {
        if (entry.metricUs === METRIC_INFINITY) continue; // a retraction of something we never knew
        d = t.ensureIndex(entry.destination, now, this.maxDestinations);
        if (d === undefined) {
          this.counters.tableFull++;
          continue;
        }
      }
      const cell = d * t.slotCap + slot;
      t.cellMetric[cell] = entry.metricUs;
      t.cellSeqno[cell] = entry.seqno;
      t.cellHops[cell] = entry.hops;
      t.cellExpiryCs[cell] = expiryCs;
      this.reconsider(d, slot, now);
    }
  }

  private onRouteRequest(now: number, from: NodeId, destinations: NodeId[]): void {
    if (destinations.length === 0) {
      this.pendingDumps.add(from);
    } else {
      let set = this.pendingRequested.get(from);
      if (set === undefined) this.pendingRequested.set(from, (set = new Set()));
      for (const destination of destinations) set.add(destination);
    }
    this.schedule(now);
  }

  private onSeqnoRequests(now: number, from: NodeId, requests: SeqnoRequestEntry[]): void {
    const t = this.table;
    for (const request of requests) {
      this.counters.seqnoRequestsReceived++;
      if (request.destination === this.localId) {
        if (seqnoNewer(request.seqno, this.ownSeqno)) {
          this.ownSeqno = request.seqno;
          this.log.debug({ seqno: this.ownSeqno }, "own seqno raised on request");
        }
        this.selfDirty |= Dirty.Trigger | Dirty.Urgent;
        this.schedule(now);
        continue;
      }
      const d = t.indexOf(request.destination);
      if (d === undefined) continue;
      const selected = t.selSlot[d]!;
      if (selected !== NO_SLOT && !seqnoNewer(request.seqno, t.selSeqno[d]!)) {
        // We can satisfy it: advertise what we have (its seqno is at least the one asked for).
        this.markDirty(d, Dirty.Trigger, now);
        continue;
      }
      if (request.hopLimit <= 1) continue;
      if (t.forwardedSeqno[d] === request.seqno && now - t.forwardedSeqnoAt[d]! < SEQNO_REQUEST_DEDUP_MS) continue;
      // Forward toward the destination: our selected next hop, else the best route we know.
      let target: NodeId | undefined = selected !== NO_SLOT ? t.slotPeer[selected] : undefined;
      if (target === undefined || target === 0 || target === from) target = this.bestAdvertiser(d, from);
      if (target === undefined) continue;
      t.forwardedSeqno[d] = request.seqno;
      t.forwardedSeqnoAt[d] = now;
      this.queueSeqnoRequest(target, { destination: request.destination, seqno: request.seqno, hopLimit: request.hopLimit - 1 }, now);
    }
  }

  /** The neighbour (other than `except`) advertising the lowest finite metric for d. */
  private bestAdvertiser(d: number, except: NodeId): NodeId | undefined {
    const t = this.table;
    const base = d * t.slotCap;
    let best: NodeId | undefined;
    let bestMetric = METRIC_INFINITY;
    for (let slot = 0; slot < t.slotCap; slot++) {
      const peer = t.slotPeer[slot]!;
      if (peer === 0 || peer === except || t.slotProbation[slot] === 1) continue;
      const metric = addMetric(t.cellMetric[base + slot]!, t.slotCost[slot]!);
      if (metric < bestMetric) {
        bestMetric = metric;
        best = peer;
      }
    }
    return best;
  }

  // ─── Route selection ─────────────────────────────────────────────────────────────────────────

  private reselectColumn(slot: number, now: number): void {
    const t = this.table;
    for (let d = 0; d < t.highWater; d++) {
      if (t.destId[d] === 0) continue;
      if (t.selSlot[d] === slot || t.cellMetric[d * t.slotCap + slot] !== METRIC_INFINITY) this.reconsider(d, slot, now);
    }
  }

  /**
   * The route through `slot` for destination d changed (its advertisement or its link cost):
   * reselects d unless that cannot change anything — the slot is not the selected one, no hold is
   * running, and its route is no better than the selected one. (A dump of a thousand entries from
   * a new neighbour then costs a comparison per entry, not a scan of every neighbour.)
   */
  private reconsider(d: number, slot: number, now: number): void {
    const t = this.table;
    const selected = t.selSlot[d]!;
    if (selected === NO_SLOT || selected === slot || !Number.isNaN(t.holdSince[d]!)) {
      this.select(d, now);
      return;
    }
    const metric = addMetric(t.cellMetric[d * t.slotCap + slot]!, t.slotCost[slot]!);
    if (metric < t.selMetric[d]!) this.select(d, now);
  }

  /** Whether the route in `cell` passes the feasibility condition for destination d (RFC 8966 §3.5.1). */
  private feasible(d: number, cell: number): boolean {
    const t = this.table;
    const fdMetric = t.fdMetric[d]!;
    if (fdMetric === METRIC_INFINITY) return true;
    const seqno = t.cellSeqno[cell]!;
    const fdSeqno = t.fdSeqno[d]!;
    return seqnoNewer(seqno, fdSeqno) || (seqno === fdSeqno && t.cellMetric[cell]! < fdMetric);
  }

  /**
   * Picks the route for destination d: the feasible route of least metric over a usable link, with
   * hysteresis (a smaller gain than SWITCH_GAIN_RATIO / SWITCH_MIN_GAIN_US must last
   * SWITCH_HOLD_MS). Updates the forwarding map, emits `route` events and marks what must be
   * advertised.
   */
  private select(d: number, now: number): void {
    const t = this.table;
    const cap = t.slotCap;
    const base = d * cap;
    let best = NO_SLOT;
    let bestMetric = METRIC_INFINITY;
    let bestHops = 256;
    let bestPeer = 0;
    let anyRoute = false;
    // Links on probation are a last resort: used only when no other feasible route exists.
    for (let pass = 0; pass < 2 && best === NO_SLOT; pass++) {
      for (let slot = 0; slot < cap; slot++) {
        const advertised = t.cellMetric[base + slot]!;
        if (advertised === METRIC_INFINITY) continue;
        const peer = t.slotPeer[slot]!;
        if (peer === 0 || t.slotProbation[slot] !== pass) continue;
        anyRoute = true;
        const cost = t.slotCost[slot]!;
        if (cost === METRIC_INFINITY || !this.feasible(d, base + slot)) continue;
        const metric = addMetric(advertised, cost);
        const hops = t.cellHops[base + slot]!;
        if (metric < bestMetric || (metric === bestMetric && (hops < bestHops || (hops === bestHops && peer < bestPeer)))) {
          best = slot;
          bestMetric = metric;
          bestHops = hops;
          bestPeer = peer;
        }
      }
    }

    const current = t.selSlot[d]!;
    let chosen = best;
    let holding = false;
    if (current !== NO_SLOT && current !== best && t.slotPeer[current] !== 0 && t.slotProbation[current] === 0) {
      const cell = base + current;
      const cost = t.slotCost[current]!;
      if (t.cellMetric[cell] !== METRIC_INFINITY && cost !== METRIC_INFINITY && this.feasible(d, cell)) {
        const currentMetric = addMetric(t.cellMetric[cell]!, cost);
        const gain = currentMetric - bestMetric;
        if (gain <= 0) {
          chosen = current;
        } else if (gain < Math.max(SWITCH_MIN_GAIN_US, SWITCH_GAIN_RATIO * currentMetric)) {
          const since = t.holdSince[d]!;
          if (Number.isNaN(since)) {
            t.holdSince[d] = now;
            this.holds.add(d);
            this.holdCheckAt = Math.min(this.holdCheckAt, now + SWITCH_HOLD_MS);
            chosen = current;
            holding = true;
          } else if (now < since + SWITCH_HOLD_MS) {
            // Same expression as holdCheckAt (`since + SWITCH_HOLD_MS`): `now - since < HOLD` can
            // disagree by a rounding step and leave a deadline that never fires.
            chosen = current;
            holding = true;
          }
        }
      }
    }
    if (!holding && !Number.isNaN(t.holdSince[d]!)) {
      t.holdSince[d] = Number.NaN;
      this.holds.delete(d);
    }
    this.apply(d, chosen, now, anyRoute);
  }

  private apply(d: number, chosen: number, now: number, anyRoute: boolean): void {
    const t = this.table;
    const destination = t.destId[d]!;
    const previous = this.forwarding.get(destination);
    if (chosen === NO_SLOT) {
      t.selSlot[d] = NO_SLOT;
      t.selMetric[d] = METRIC_INFINITY;
      if (previous !== undefined) {
        this.forwarding.delete(destination);
        this.output({ kind: "event", event: { kind: "route", destination, nextHop: undefined, previousNextHop: previous, metricUs: METRIC_INFINITY, hops: 0 } });
      }
      if (t.advertised[d] === 1 && t.advMetric[d] !== METRIC_INFINITY) this.markDirty(d, Dirty.Trigger | Dirty.Urgent, now);
      // Routes exist but none is feasible: ask the destination for a new sequence number.
      if (anyRoute) this.requestSeqno(d, now);
      return;
    }
    const cell = d * t.slotCap + chosen;
    const metric = addMetric(t.cellMetric[cell]!, t.slotCost[chosen]!);
    const seqno = t.cellSeqno[cell]!;
    const hops = Math.min(255, t.cellHops[cell]! + 1);
    const peer = t.slotPeer[chosen]!;
    t.selSlot[d] = chosen;
    t.selMetric[d] = metric;
    t.selSeqno[d] = seqno;
    t.selHops[d] = hops;
    t.lastRoutedAt[d] = now;
    if (previous !== peer) {
      this.forwarding.set(destination, peer);
      this.output({ kind: "event", event: { kind: "route", destination, nextHop: peer, previousNextHop: previous, metricUs: metric, hops } });
    }
    const advertised = t.advMetric[d]!;
    if (t.advertised[d] === 0 || advertised === METRIC_INFINITY) {
      this.markDirty(d, Dirty.Trigger, now);
    } else if (seqno !== t.advSeqno[d]) {
      this.markDirty(d, Dirty.Trigger, now);
    } else if (Math.abs(metric - advertised) > TRIGGER_METRIC_RATIO * advertised) {
      this.markDirty(d, Dirty.Trigger, now);
    }
  }

  private requestSeqno(d: number, now: number): void {
    const t = this.table;
    if (t.fdMetric[d] === METRIC_INFINITY) return;
    if (now - t.lastSeqnoRequestAt[d]! < SEQNO_REQUEST_MIN_INTERVAL_MS) return;
    t.lastSeqnoRequestAt[d] = now;
    const request: SeqnoRequestEntry = { destination: t.destId[d]!, seqno: (t.fdSeqno[d]! + 1) & 0xffff, hopLimit: SEQNO_REQUEST_HOP_LIMIT };
    const base = d * t.slotCap;
    for (let slot = 0; slot < t.slotCap; slot++) {
      const peer = t.slotPeer[slot]!;
      if (peer !== 0 && t.slotProbation[slot] === 0 && t.cellMetric[base + slot] !== METRIC_INFINITY) this.queueSeqnoRequest(peer, request, now);
    }
  }

  private queueSeqnoRequest(peer: NodeId, request: SeqnoRequestEntry, now: number): void {
    let list = this.pendingSeqnoRequests.get(peer);
    if (list === undefined) this.pendingSeqnoRequests.set(peer, (list = []));
    list.push(request);
    this.schedule(now);
  }

  private markDirty(d: number, flags: number, now: number): void {
    const t = this.table;
    if (t.dirty[d] === Dirty.None) this.dirtyList.push(d);
    t.dirty[d] = t.dirty[d]! | flags;
    this.triggerAt = Math.min(this.triggerAt, (flags & Dirty.Urgent) !== 0 ? now : now + TRIGGERED_UPDATE_DELAY_MS);
  }

  private schedule(now: number): void {
    this.triggerAt = Math.min(this.triggerAt, now);
  }

  // ─── Updates out ─────────────────────────────────────────────────────────────────────────────

  /**
   * What we advertise for destination d now, and the bookkeeping that goes with advertising it:
   * a finite metric lowers (or, with a newer seqno, resets) the feasibility distance.
   */
  private advertise(d: number): UpdateEntry {
    const t = this.table;
    const destination = t.destId[d]!;
    if (t.selSlot[d] !== NO_SLOT) {
      const metric = t.selMetric[d]!;
      const seqno = t.selSeqno[d]!;
      const fdMetric = t.fdMetric[d]!;
      if (fdMetric === METRIC_INFINITY || seqnoNewer(seqno, t.fdSeqno[d]!)) {
        t.fdSeqno[d] = seqno;
        t.fdMetric[d] = metric;
      } else if (seqno === t.fdSeqno[d] && metric < fdMetric) {
        t.fdMetric[d] = metric;
      }
      t.advertised[d] = 1;
      t.advMetric[d] = metric;
      t.advSeqno[d] = seqno;
      return { destination, seqno, hops: t.selHops[d]!, metricUs: metric };
    }
    const seqno = t.advertised[d] === 1 ? t.advSeqno[d]! : t.fdSeqno[d]!;
    t.advertised[d] = 1;
    t.advMetric[d] = METRIC_INFINITY;
    t.advSeqno[d] = seqno;
    return { destination, seqno, hops: 255, metricUs: METRIC_INFINITY };
  }

  private selfEntry(): UpdateEntry {
    return { destination: this.localId, seqno: this.ownSeqno, hops: 0, metricUs: 0 };
  }

  /** Our whole table: ourselves, every routed destination, recent retractions. */
  private fullTable(now: number): UpdateEntry[] {
    const t = this.table;
    const entries: UpdateEntry[] = [this.selfEntry()];
    for (let d = 0; d < t.highWater; d++) {
      if (t.destId[d] === 0) continue;
      if (t.selSlot[d] !== NO_SLOT) entries.push(this.advertise(d));
      else if (t.advertised[d] === 1 && now - t.lastRoutedAt[d]! < RETRACTION_HOLD_MS) entries.push(this.advertise(d));
    }
    return entries;
  }

  private sendTo(peer: NodeId, messages: Uint8Array[]): void {
    for (const payload of messages) this.output({ kind: "link_send", to: peer, payload });
  }

  private sendToAll(messages: Uint8Array[]): void {
    if (messages.length === 0) return;
    const t = this.table;
    for (let slot = 0; slot < t.slotCap; slot++) {
      const peer = t.slotPeer[slot]!;
      if (peer !== 0) this.sendTo(peer, messages);
    }
  }

  /** Sends everything pending: dumps, requests, triggered updates, seqno requests. */
  private flush(now: number): void {
    this.triggerAt = Infinity;
    const t = this.table;
    for (const peer of this.pendingWildcardRequests) this.sendTo(peer, encodeRouteRequests([]));
    this.pendingWildcardRequests.clear();

    if (this.pendingDumps.size > 0) {
      const messages = encodeUpdates(this.updateIntervalMs, this.fullTable(now));
      for (const peer of this.pendingDumps) {
        this.sendTo(peer, messages);
        this.counters.updatesSent += messages.length;
      }
      this.pendingDumps.clear();
    }

    for (const [peer, destinations] of this.pendingRequested) {
      const entries: UpdateEntry[] = [];
      for (const destination of destinations) {
        if (destination === this.localId) {
          entries.push(this.selfEntry());
          continue;
        }
        const d = t.indexOf(destination);
        if (d !== undefined && (t.selSlot[d] !== NO_SLOT || t.advertised[d] === 1)) entries.push(this.advertise(d));
      }
      const messages = encodeUpdates(this.updateIntervalMs, entries);
      this.sendTo(peer, messages);
      this.counters.updatesSent += messages.length;
    }
    this.pendingRequested.clear();

    if (this.dirtyList.length > 0 || this.selfDirty !== 0) {
      const entries: UpdateEntry[] = [];
      if (this.selfDirty !== 0) {
        entries.push(this.selfEntry());
        if ((this.selfDirty & Dirty.Urgent) !== 0) this.repeatLater(this.localId, now);
        this.selfDirty = 0;
      }
      for (const d of this.dirtyList) {
        const flags = t.dirty[d]!;
        t.dirty[d] = Dirty.None;
        if (t.destId[d] === 0) continue;
        entries.push(this.advertise(d));
        if ((flags & Dirty.Urgent) !== 0) this.repeatLater(t.destId[d]!, now);
      }
      this.dirtyList.length = 0;
      const messages = encodeUpdates(this.updateIntervalMs, entries);
      this.sendToAll(messages);
      this.counters.updatesSent += messages.length;
    }

    for (const [peer, requests] of this.pendingSeqnoRequests) {
      this.sendTo(peer, encodeSeqnoRequests(requests));
      this.counters.seqnoRequestsSent += requests.length;
    }
    this.pendingSeqnoRequests.clear();
  }

  private repeatLater(destination: NodeId, now: number): void {
    this.urgentRepeat.push(destination);
    if (this.urgentRepeatAt === Infinity) this.urgentRepeatAt = now + URGENT_REPEAT_MS;
  }

  /** The second copy of urgent entries (retractions, seqno changes), in case the first was lost. */
  private repeatUrgent(): void {
    const t = this.table;
    const entries: UpdateEntry[] = [];
    const seen = new Set<NodeId>();
    for (const destination of this.urgentRepeat) {
      if (seen.has(destination)) continue;
      seen.add(destination);
      if (destination === this.localId) {
        entries.push(this.selfEntry());
        continue;
      }
      const d = t.indexOf(destination);
      if (d !== undefined) entries.push(this.advertise(d));
    }
    this.urgentRepeat = [];
    this.urgentRepeatAt = Infinity;
    const messages = encodeUpdates(this.updateIntervalMs, entries);
    this.sendToAll(messages);
    this.counters.updatesSent += messages.length;
  }

  private periodic(now: number): void {
    this.nextPeriodicAt = now + this.updateIntervalMs * (0.9 + 0.2 * this.rng.nextFloat());
    if (this.table.slots().length === 0) return;
    const messages = encodeUpdates(this.updateIntervalMs, this.fullTable(now));
    this.sendToAll(messages);
    this.counters.updatesSent += messages.length;
  }

  /** Expires stale routes and forgets destinations that have had no route for SOURCE_GC_MS. */
  private sweep(now: number): void {
    this.nextSweepAt = now + EXPIRY_SWEEP_INTERVAL_MS;
    const t = this.table;
    for (let d = 0; d < t.highWater; d++) {
      if (t.destId[d] === 0) continue;
      const base = d * t.slotCap;
      let expired = false;
      let anyRoute = false;
      for (let slot = 0; slot < t.slotCap; slot++) {
        if (t.cellMetric[base + slot] === METRIC_INFINITY) continue;
        if (t.expiryMs(base + slot) <= now) {
          t.cellMetric[base + slot] = METRIC_INFINITY;
          expired = true;
        } else {
          anyRoute = true;
        }
      }
      if (expired) this.select(d, now);
      if (!anyRoute && t.selSlot[d] === NO_SLOT && now - t.lastRoutedAt[d]! > SOURCE_GC_MS && t.dirty[d] === Dirty.None) {
        this.holds.delete(d);
        t.freeIndex(d);
      }
    }
  }

  private checkHolds(now: number): void {
    this.holdCheckAt = Infinity;
    for (const d of [...this.holds]) this.select(d, now);
    for (const d of this.holds) this.holdCheckAt = Math.min(this.holdCheckAt, this.table.holdSince[d]! + SWITCH_HOLD_MS);
  }

  // ─── Timers ──────────────────────────────────────────────────────────────────────────────────

  tick(now: number): void {
    if (now >= this.nextSweepAt) this.sweep(now);
    if (now >= this.holdCheckAt) this.checkHolds(now);
    if (now >= this.nextPeriodicAt) this.periodic(now);
    if (now >= this.urgentRepeatAt) this.repeatUrgent();
    if (this.awaitingTable.size > 0) {
      for (const [peer, askAt] of this.awaitingTable) {
        if (now < askAt) continue;
        this.awaitingTable.delete(peer);
        this.pendingWildcardRequests.add(peer);
        this.schedule(now);
      }
    }
    if (now >= this.triggerAt) this.flush(now);
    if (this.probes.size > 0) this.expireProbes(now);
  }

  nextDeadline(): number {
    let deadline = Math.min(this.triggerAt, this.urgentRepeatAt, this.nextPeriodicAt, this.nextSweepAt, this.holdCheckAt);
    for (const probe of this.probes.values()) deadline = Math.min(deadline, probe.sentAt + PROBE_TIMEOUT_MS);
    for (const askAt of this.awaitingTable.values()) deadline = Math.min(deadline, askAt);
    return deadline;
  }

  pollOutput(): RouterOutput | undefined {
    if (this.outputHead >= this.outputs.length) {
      if (this.outputs.length > 0) {
        this.outputs.length = 0;
        this.outputHead = 0;
      }
      return undefined;
    }
    const output = this.outputs[this.outputHead]!;
    this.outputs[this.outputHead] = undefined as unknown as RouterOutput;
    this.outputHead++;
    return output;
  }

  private output(output: RouterOutput): void {
    this.outputs.push(output);
  }

  // ─── Ping and trace ──────────────────────────────────────────────────────────────────────────

  /** Sends one echo request to `destination`; a `probe` event reports the answer. Returns its id. */
  ping(now: number, destination: NodeId): number {
    const probe = this.newProbe(now, "ping", destination);
    this.output({ kind: "routed_send", to: destination, payload: encodeRoutedMessage({ type: "echo_request", id: probe.base * 256 + 255 }), ttl: ROUTED_CONTROL_TTL });
    return probe.base;
  }

  /**
   * Traces the path the data plane actually takes: echo requests with TTL 1..MAX_TRACE_HOPS; the
   * relay where a probe's TTL runs out answers time_exceeded, the destination echo_reply.
   */
  trace(now: number, destination: NodeId): number {
    const probe = this.newProbe(now, "trace", destination);
    for (let ttl = 1; ttl <= MAX_TRACE_HOPS; ttl++) {
      this.output({ kind: "routed_send", to: destination, payload: encodeRoutedMessage({ type: "echo_request", id: probe.base * 256 + ttl }), ttl });
    }
    return probe.base;
  }

  private newProbe(now: number, kind: "ping" | "trace", destination: NodeId): PendingProbe {
    if (this.probes.size >= MAX_PENDING_PROBES) {
      const oldest = this.probes.values().next().value!;
      this.finishProbe(oldest, false);
    }
    const base = this.nextProbeBase;
    this.nextProbeBase = this.nextProbeBase >= 0xff_ffff ? 1 : this.nextProbeBase + 1;
    const probe: PendingProbe = { base, kind, destination, sentAt: now, rttMs: undefined, destinationTtl: undefined, hops: new Map() };
    this.probes.set(base, probe);
    return probe;
  }

  private onProbeAnswer(now: number, source: NodeId, message: Extract<RouteMessage, { type: "echo_reply" | "time_exceeded" }>): void {
    const base = Math.floor(message.id / 256);
    const ttl = message.id % 256;
    const probe = this.probes.get(base);
    if (probe === undefined) return;
    const hop: ProbeHop = { node: source, previousHop: message.previousHop, linkRttMs: message.linkRttUs === UNKNOWN_RTT_US ? undefined : message.linkRttUs / 1000, ttl };
    if (message.type === "echo_reply") {
      if (source !== probe.destination) return;
      probe.rttMs ??= now - probe.sentAt;
      if (probe.kind === "ping") {
        this.finishProbe(probe, true);
        return;
      }
      if (probe.destinationTtl === undefined || ttl < probe.destinationTtl) {
        probe.destinationTtl = ttl;
        probe.hops.set(ttl, hop);
      }
    } else if (probe.kind === "trace" && !probe.hops.has(ttl)) {
      probe.hops.set(ttl, hop);
    }
    const last = probe.destinationTtl;
    if (last === undefined) return;
    for (let index = 1; index < last; index++) if (!probe.hops.has(index)) return;
    this.finishProbe(probe, true);
  }

  private expireProbes(now: number): void {
    for (const probe of [...this.probes.values()]) if (now >= probe.sentAt + PROBE_TIMEOUT_MS) this.finishProbe(probe, false);
  }

  private finishProbe(probe: PendingProbe, complete: boolean): void {
    this.probes.delete(probe.base);
    const limit = probe.destinationTtl ?? MAX_TRACE_HOPS;
    const hops = [...probe.hops.values()].filter((hop) => hop.ttl <= limit).sort((a, b) => a.ttl - b.ttl);
    this.output({ kind: "event", event: { kind: "probe", result: { id: probe.base, kind: probe.kind, destination: probe.destination, complete, rttMs: probe.rttMs, hops } } });
  }

  private linkRttUs(peer: NodeId): number {
    const slot = this.table.slotOf(peer);
    return slot === undefined ? UNKNOWN_RTT_US : this.table.slotRttUs[slot]!;
  }

  // ─── Views ───────────────────────────────────────────────────────────────────────────────────

  route(destination: NodeId): RouteInfo | undefined {
    const d = this.table.indexOf(destination);
    return d === undefined ? undefined : this.routeAt(d);
  }

  /** Every destination the table knows, by NodeId. */
  routes(): RouteInfo[] {
    const t = this.table;
    const routes: RouteInfo[] = [];
    for (let d = 0; d < t.highWater; d++) if (t.destId[d] !== 0) routes.push(this.routeAt(d));
    return routes.sort((a, b) => a.destination - b.destination);
  }

  private routeAt(d: number): RouteInfo {
    const t = this.table;
    const base = d * t.slotCap;
    const alternates: RouteAlternate[] = [];
    for (let slot = 0; slot < t.slotCap; slot++) {
      const peer = t.slotPeer[slot]!;
      const advertised = t.cellMetric[base + slot]!;
      if (peer === 0 || advertised === METRIC_INFINITY) continue;
      const feasible = this.feasible(d, base + slot);
      const metricUs = addMetric(advertised, t.slotCost[slot]!);
      alternates.push({
        via: peer,
        metricUs,
        advertisedMetricUs: advertised,
        hops: Math.min(255, t.cellHops[base + slot]! + 1),
        seqno: t.cellSeqno[base + slot]!,
        feasible,
        usable: feasible && metricUs !== METRIC_INFINITY && t.slotProbation[slot] === 0,
      });
    }
    alternates.sort((a, b) => a.metricUs - b.metricUs || a.hops - b.hops || a.via - b.via);
    const selected = t.selSlot[d]!;
    const state: DestinationState = selected !== NO_SLOT ? "routed" : alternates.length > 0 ? "starving" : "unreachable";
    return {
      destination: t.destId[d]!,
      state,
      nextHop: selected !== NO_SLOT ? t.slotPeer[selected] : undefined,
      metricUs: selected !== NO_SLOT ? t.selMetric[d]! : METRIC_INFINITY,
      hops: selected !== NO_SLOT ? t.selHops[d]! : 0,
      seqno: selected !== NO_SLOT ? t.selSeqno[d]! : t.fdSeqno[d]!,
      feasibilityDistance: t.fdMetric[d] === METRIC_INFINITY ? undefined : { seqno: t.fdSeqno[d]!, metricUs: t.fdMetric[d]! },
      alternates,
    };
  }

  /** This node's own sequence number. */
  get seqno(): number {
    return this.ownSeqno;
  }

  /**
   * The usefulness of each neighbour to our routes (neighbour-policy.ts). A route counts as an
   * alternative when its advertised metric is below our own selected metric: such a route does
   * not come back through us.
   */
  neighbourUtilities(): Map<NodeId, NeighbourUtility> {
    const t = this.table;
    const result = new Map<NodeId, NeighbourUtility>();
    for (let slot = 0; slot < t.slotCap; slot++) {
      const peer = t.slotPeer[slot]!;
      if (peer !== 0) result.set(peer, { utilityUs: 0, soleRoutes: 0, routes: 0 });
    }
    const probation: number[] = [];
    for (let slot = 0; slot < t.slotCap; slot++) if (t.slotPeer[slot] !== 0 && t.slotProbation[slot] === 1) probation.push(slot);
    for (let d = 0; d < t.highWater; d++) {
      if (t.destId[d] === 0) continue;
      const selected = t.selSlot[d]!;
      const own = t.selMetric[d]!;
      const base = d * t.slotCap;
      // A link on probation is worth what it would improve over the routes in use.
      for (const slot of probation) {
        const via = addMetric(t.cellMetric[base + slot]!, t.slotCost[slot]!);
        if (via >= own) continue;
        const entry = result.get(t.slotPeer[slot]!)!;
        entry.routes++;
        entry.utilityUs += own === METRIC_INFINITY ? POLICY_SOLE_ROUTE_UTILITY_US : Math.min(POLICY_SOLE_ROUTE_UTILITY_US, own - via);
      }
      if (selected === NO_SLOT) continue;
      let second = METRIC_INFINITY;
      for (let slot = 0; slot < t.slotCap; slot++) {
        if (slot === selected || t.slotPeer[slot] === 0 || t.slotProbation[slot] === 1) continue;
        const advertised = t.cellMetric[base + slot]!;
        if (advertised === METRIC_INFINITY || advertised >= own) continue;
        const metric = addMetric(advertised, t.slotCost[slot]!);
        if (metric < second) second = metric;
      }
      const entry = result.get(t.slotPeer[selected]!);
      if (entry === undefined) continue;
      entry.routes++;
      if (second === METRIC_INFINITY) {
        entry.soleRoutes++;
        entry.utilityUs += POLICY_SOLE_ROUTE_UTILITY_US;
      } else {
        entry.utilityUs += Math.min(POLICY_SOLE_ROUTE_UTILITY_US, Math.max(0, second - own));
      }
    }
    return result;
  }

  stats(): RouterStats {
    return {
      destinations: this.table.destinationCount,
      routed: this.forwarding.size,
      ...this.counters,
      tableBytes: this.table.memoryBytes(),
      forwardingBytes: 40 * this.forwarding.size,
    };
  }
}

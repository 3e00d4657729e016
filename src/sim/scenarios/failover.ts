/**
 * Scenario "failover": with traced traffic flowing between many pairs whose routes go through
 * relays, relay links and relay nodes that carry traffic fail one after the other. For every flow
 * a failure hits, the reroute time is how long its frames stop getting through: from the failure
 * until the send time of its first frame that arrives (on a new path: the failed element is gone).
 * This is `skein sim failover` (one JSON line). Paths come from frames actually forwarded
 * (sim/trace.ts).
 */
import type { Logger } from "../../core/log.js";
import type { NodeId } from "../../core/node-id.js";
import { SeededRng } from "../../core/rng.js";
import { NodeEngine } from "../../node/engine.js";
import type { Matrix } from "../matrix.js";
import type { JitterModel } from "../network.js";
import type { EngineConfig } from "../../node/engine-config.js";
import { Simulator } from "../simulator.js";
import { FrameTracer, quantile, round3, traceKey, tracePayload, walkForwarding } from "../trace.js";

export interface FailoverScenarioOptions {
  matrix: Matrix;
  nodes?: number;
  seed?: number;
  /** Failures, alternately a relay link and a relay node (default 10). */
  failures?: number;
  maxNeighbours?: number;
  /** Flows at most (pairs routed through at least one relay; default 100). */
  flows?: number;
  /** Virtual seconds before the traffic starts (default 30). */
  warmupS?: number;
  loss?: number;
  jitter?: JitterModel;
  logger?: Logger;
  /**
   * Plaintext links (no handshake, no sealing): the same routing, several times faster to simulate
   * (the secure channel has its own tests and benchmarks). Default false.
   */
  insecure?: boolean;
}

export interface FailureRecord {
  at_ms: number;
  /** "link" (both directions blocked) or "node" (crashed). */
  kind: "link" | "node";
  /** "a-b" or the node id. */
  element: string;
  /** Flows whose path went through the element just before it failed. */
  affected_flows: number;
  /** The slowest of those flows' reroute times (null when none got through again). */
  max_reroute_ms: number | null;
}

/** JSON-able; keys always in this order. */
export interface FailoverReport {
  nodes: number;
  flows: number;
  failures: number;
  /** Over every (failure, affected flow): failure → send time of the flow's first frame to get through. */
  reroute_ms: { p50: number | null; p99: number | null; max: number | null };
  /** Traced frames sent and never delivered (over the whole traffic period). */
  lost_frames: number;
  /** Traced frames that went round a forwarding loop (took the same hop twice). */
  loops: number;
  /** Traced frames that came back to a node whose route changed while they were on their way. */
  revisits: number;
  frames_sent: number;
  /** (failure, flow) pairs measured, and those whose frames never got through again. */
  affected: number;
  not_recovered: number;
  /** Time between two frames of a flow: the resolution of reroute_ms. */
  frame_interval_ms: number;
  seed: number;
  failure_log: FailureRecord[];
}

export const FAILOVER_DEFAULT_FAILURES = 10;
const DEFAULT_FLOWS = 100;
const DEFAULT_WARMUP_S = 30;
const FRAME_INTERVAL_MS = 10;
/** Time between two failures (the network settles, the link timeout passes). */
const FAILURE_SPACING_MS = 8_000;
/** Traffic runs this long before the first failure and after the last one. */
const TRAFFIC_LEAD_MS = 3_000;

interface Flow {
  id: number;
  source: NodeId;
  destination: NodeId;
  startAt: number;
  sent: number;
  delivered: Uint8Array;
  /** Hops of the latest delivered frame (the path in use). */
  path: NodeId[];
}

export function runFailoverScenario(options: FailoverScenarioOptions): FailoverReport {
  const seed = options.seed ?? 1;
  const failures = options.failures ?? FAILOVER_DEFAULT_FAILURES;
  if (!Number.isInteger(failures) || failures < 1 || failures > 1000) throw new RangeError(`failures must be an integer in 1..1000, got ${failures}`);
  const warmupMs = (options.warmupS ?? DEFAULT_WARMUP_S) * 1000;
  const trafficEnd = warmupMs + TRAFFIC_LEAD_MS + failures * FAILURE_SPACING_MS;
  const sim = new Simulator<NodeEngine>({
    matrix: options.matrix,
    ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
    seed,
    network: { loss: options.loss ?? 0, ...(options.jitter ? { jitter: options.jitter } : {}) },
    ...(options.maxNeighbours !== undefined ? { engine: { maxNeighbours: options.maxNeighbours } } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    maxDurationMs: trafficEnd + 120_000,
    maxEvents: 2_000_000_000,
    maxRecords: 0,
    ...(options.insecure === true ? { createEngine: (config: EngineConfig) => new NodeEngine({ ...config, insecure: true }) } : {}),
  });
  const rng = new SeededRng(seed ^ 0x5eed_f00d);
  const tracer = new FrameTracer(sim);
  const flows: Flow[] = [];
  const maxFrames = Math.ceil((trafficEnd - warmupMs) / FRAME_INTERVAL_MS) + 1;

  sim.onEvent(({ node, event }) => {
    if (event.kind !== "message") return;
    const key = traceKey(event.data);
    if (key === undefined) return;
    const flow = flows[Math.floor(key / 0x1_0000_0000) - 1];
    const seq = key % 0x1_0000_0000;
    if (flow === undefined || node !== flow.destination || seq >= maxFrames) return;
    flow.delivered[seq] = 1;
    const frame = tracer.frames.get(key);
    if (frame !== undefined) {
      if (!frame.loop && !frame.revisit) flow.path = frame.hops;
      tracer.forget(key);
    }
  });

  sim.runUntil(warmupMs);

  // Flows: pairs routed through at least one relay now, drawn at random. The busiest relays are
  // kept out of the flows' endpoints: they are the nodes that may crash.
  const ids = sim.nodeIds();
  const paths: NodeId[][] = [];
  const relayCount = new Map<NodeId, number>();
  for (const source of ids) {
    for (const destination of ids) {
      if (source === destination) continue;
      const walk = walkForwarding(sim, source, destination);
      if (walk.kind !== "delivered" || walk.hops.length < 3) continue;
      paths.push(walk.hops);
      for (const relay of walk.hops.slice(1, -1)) relayCount.set(relay, (relayCount.get(relay) ?? 0) + 1);
    }
  }
  const victims = new Set(
    [...relayCount.entries()]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, Math.min(Math.ceil(failures / 2), Math.floor(ids.length / 4)))
      .map(([id]) => id),
  );
  const relayed: [NodeId, NodeId][] = paths
    .filter((hops) => !victims.has(hops[0]!) && !victims.has(hops[hops.length - 1]!))
    .map((hops) => [hops[0]!, hops[hops.length - 1]!]);
  for (let index = relayed.length - 1; index > 0; index--) {
    const other = rng.nextInt(index + 1);
    [relayed[index], relayed[other]] = [relayed[other]!, relayed[index]!];
  }
  for (const [source, destination] of relayed.slice(0, options.flows ?? DEFAULT_FLOWS)) {
    const id = flows.length + 1;
    const flow: Flow = { id, source, destination, startAt: warmupMs + (id % FRAME_INTERVAL_MS), sent: 0, delivered: new Uint8Array(maxFrames), path: [] };
    flows.push(flow);
    const tick = (): void => {
      if (sim.isUp(flow.source)) {
        const payload = tracePayload(flow.id, flow.sent);
        tracer.expect(flow.source, flow.destination, payload);
        try {
          sim.call(flow.source, (engine, now) => engine.send(now, flow.destination, payload, { reliable: false }));
        } catch {
          tracer.unexpect(flow.source, flow.destination, payload);
          // NO_ROUTE: the frame is lost like any other.
        }
      }
      flow.sent++;
      const next = flow.startAt + flow.sent * FRAME_INTERVAL_MS;
      if (next < trafficEnd && flow.sent < maxFrames) sim.at(next, tick);
    };
    sim.at(flow.startAt, tick);
  }

  // Failures: alternately a relay link and a relay node that carry traffic right now.
  const failed = new Set<string>();
  const crashed = new Set<NodeId>();
  const log: FailureRecord[] = [];
  const measured: { failureIndex: number; flow: Flow; at: number }[] = [];
  for (let index = 0; index < failures; index++) {
    const at = warmupMs + TRAFFIC_LEAD_MS + index * FAILURE_SPACING_MS;
    sim.at(at, () => {
      const kind: "link" | "node" = index % 2 === 0 ? "link" : "node";
      const carried = new Map<string, Flow[]>();
      for (const flow of flows) {
        const path = flow.path;
        if (path.length < 3 || crashed.has(flow.source) || crashed.has(flow.destination)) continue;
        const elements: string[] = [];
        if (kind === "link") {
          for (let hop = 1; hop < path.length; hop++) elements.push(linkName(path[hop - 1]!, path[hop]!));
        } else {
          for (let hop = 1; hop < path.length - 1; hop++) if (victims.has(path[hop]!)) elements.push(String(path[hop]));
        }
        for (const element of elements) {
          if (failed.has(element)) continue;
          let list = carried.get(element);
          if (list === undefined) carried.set(element, (list = []));
          list.push(flow);
        }
      }
      const candidates = [...carried.keys()].sort();
      if (candidates.length === 0) {
        log.push({ at_ms: round3(at), kind, element: "none", affected_flows: 0, max_reroute_ms: null });
        return;
      }
      const element = candidates[rng.nextInt(candidates.length)]!;
      failed.add(element);
      if (kind === "link") {
        const [a, b] = element.split("-").map(Number) as [NodeId, NodeId];
        sim.linkDown(a, b);
      } else {
        crashed.add(Number(element));
        sim.crash(Number(element));
      }
      const affected = carried.get(element)!;
      log.push({ at_ms: round3(at), kind, element, affected_flows: affected.length, max_reroute_ms: null });
      for (const flow of affected) measured.push({ failureIndex: log.length - 1, flow, at });
    });
  }
  sim.runUntil(trafficEnd + 5_000);

  const reroutes: number[] = [];
  let notRecovered = 0;
  for (const { failureIndex, flow, at } of measured) {
    const firstSeq = Math.max(0, Math.ceil((at - flow.startAt) / FRAME_INTERVAL_MS));
    let reroute: number | undefined;
    for (let seq = firstSeq; seq < flow.sent; seq++) {
      if (flow.delivered[seq] === 1) {
        reroute = flow.startAt + seq * FRAME_INTERVAL_MS - at;
        break;
      }
    }
    if (reroute === undefined) {
      notRecovered++;
      continue;
    }
    reroutes.push(reroute);
    const record = log[failureIndex]!;
    record.max_reroute_ms = round3(Math.max(record.max_reroute_ms ?? 0, reroute));
  }
  reroutes.sort((a, b) => a - b);
  let sent = 0;
  let delivered = 0;
  for (const flow of flows) {
    sent += flow.sent;
    for (let seq = 0; seq < flow.sent; seq++) delivered += flow.delivered[seq]!;
  }
  tracer.stop();
  const q = (value: number | null): number | null => (value === null ? null : round3(value));
  return {
    nodes: sim.size,
    flows: flows.length,
    failures,
    reroute_ms: { p50: q(quantile(reroutes, 0.5)), p99: q(quantile(reroutes, 0.99)), max: q(reroutes.length > 0 ? reroutes[reroutes.length - 1]! : null) },
    lost_frames: sent - delivered,
    loops: tracer.loops,
    revisits: tracer.revisits,
    frames_sent: sent,
    affected: measured.length,
    not_recovered: notRecovered,
    frame_interval_ms: FRAME_INTERVAL_MS,
    seed,
    failure_log: log,
  };
}

function linkName(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/**
 * Scenario "routing": N real engines on an RTT matrix join, exchange routes for `durationS`, then
 * every node sends one traced datagram to every other node. The path of each frame is read from
 * the packets the simulator carried (sim/trace.ts), never from the engines' own estimates, and its
 * latency is summed from the matrix along those hops. This is `skein sim routing` (one JSON line).
 */
import type { Logger } from "../../core/log.js";
import type { NodeId } from "../../core/node-id.js";
import { SeededRng } from "../../core/rng.js";
import { NodeEngine } from "../../node/engine.js";
import { type Matrix, matrixNames } from "../matrix.js";
import type { JitterModel } from "../network.js";
import type { EngineConfig } from "../../node/engine-config.js";
import { Simulator } from "../simulator.js";
import { FrameTracer, allPairsShortest, pathRtt, quantile, round3, rttTable, traceKey, tracePayload } from "../trace.js";

export interface RoutingScenarioOptions {
  matrix: Matrix;
  /** The first N names of the matrix (sorted) become NodeIds 1..N (default all). */
  nodes?: number;
  seed?: number;
  /** Links per node at most (default: the engine default, 32). */
  maxNeighbours?: number;
  /** Virtual seconds the network runs before the measurement (default 60). */
  durationS?: number;
  loss?: number;
  jitter?: JitterModel;
  /** Per-hop cost of the metric, ms (default: the engine's). */
  hopCostMs?: number;
  /** Keep every pair's hops in the result (for `--paths FILE`). */
  collectPaths?: boolean;
  /** Measure this many ordered pairs drawn at random (seeded) instead of all N·(N−1): large networks. */
  samplePairs?: number;
  /**
   * How long the traced frames get to arrive, virtual ms (default MEASURE_MS, 10 s). The
   * measurement ends earlier once every one has arrived; a frame lost on the way keeps it running
   * to this limit, which costs minutes of wall time on a thousand nodes.
   */
  measureMs?: number;
  /**
   * How many seed nodes (NodeIds 1..K) every node is given (default 1). With one seed and a short
   * start spread, every node joins through node 1 at once: a flash crowd.
   */
  seedNodes?: number;
  /** Non-seed nodes start at random times in [0, startSpreadMs] (default the simulator's, 500 ms). */
  startSpreadMs?: number;
  logger?: Logger;
  /**
   * Plaintext links (no handshake, no sealing): the same routing, several times faster to simulate
   * (the secure channel has its own tests and benchmarks). Default false.
   */
  insecure?: boolean;
  /**
   * Called every `progressEveryMs` of virtual time (default 1000) with the virtual time, how many
   * nodes route to every other node, and the simulator's event count: for long runs (`--progress`).
   * Observes only (same seed → same report with or without it).
   */
  onProgress?: (progress: RoutingProgress) => void;
  progressEveryMs?: number;
}

export interface RoutingProgress {
  virtualMs: number;
  /** Nodes with a route to every other node. */
  fullyRouted: number;
  /** Destinations routed per node, mean. */
  meanRouted: number;
  /** Nodes with at least one link up. */
  linked: number;
  nodes: number;
  events: number;
  /** Routing control traffic so far, per node per second of the run. */
  controlBytesPerNodePerS: number;
  /** Mean routing state per node now (table + forwarding map), bytes. */
  routeMemoryBytesPerNode: number;
}

/** JSON-able; keys always in this order (same seed → identical JSON text). Latencies are RTTs in ms. */
export interface RoutingReport {
  nodes: number;
  /** Ordered pairs measured: N·(N−1), or the sample's size with `samplePairs`. */
  pairs: number;
  /** Mean matrix RTT of the direct path, over the pairs that were routed. */
  mean_direct_ms: number | null;
  /** Mean all-pairs shortest path over the full matrix (the physical limit), same pairs. */
  mean_optimal_ms: number | null;
  /** Mean matrix RTT summed along the hops the traced frames actually took, same pairs. */
  mean_route_ms: number | null;
  /** 99th percentile of route / optimal. */
  p99_stretch: number | null;
  /** Σ(direct − route) / Σ(direct − optimal) over the routed pairs: 1 = every relay gain taken. */
  captured_improvement: number | null;
  /** Traced frames that went round a forwarding loop (took the same hop twice); sim/trace.ts. */
  loops: number;
  /** Pairs whose frame was not delivered (no route at the source, or dropped on the way). */
  unreachable_pairs: number;
  /** Time of the last change of any node's next hop before the measurement (ms since start). */
  converge_ms: number;
  /** Routing control traffic (LINK frames of module 3, headers included) per node per second of the run. */
  control_bytes_per_node_per_s: number;
  /** First time every node had a route to every other node (null: never during the run). */
  all_routed_ms: number | null;
  /** Traced frames that came back to a node whose route changed while they were on their way. */
  revisits: number;
  /** Mean and largest number of links on the routed paths. */
  mean_hops: number | null;
  max_hops: number;
  /** Pairs whose frame went through at least one relay. */
  relayed_pairs: number;
  /** Up links per node at the end: mean and largest. */
  links_per_node: number;
  max_links: number;
  /** Route-table storage per node (typed arrays and maps), mean, bytes. */
  table_bytes_per_node: number;
  /** All routing state per node: the table above plus the forwarding map (destination → next hop), mean, bytes. */
  route_memory_bytes_per_node: number;
  /** True when `pairs` is a seeded random sample of the N·(N−1) ordered pairs (`samplePairs`). */
  pairs_sampled: boolean;
  seed: number;
  max_neighbours: number;
  duration_s: number;
  loss: number;
}

export interface PathRecord {
  src: string;
  dst: string;
  /** Every node the frame visited, by matrix name, the source first and the destination last. */
  hops: string[];
}

export interface RoutingResult {
  report: RoutingReport;
  /** One per delivered pair (when `collectPaths`). */
  paths: PathRecord[] | undefined;
}

export const ROUTING_DEFAULT_DURATION_S = 60;
/** How long the traced frames get to arrive (virtual ms). */
const MEASURE_MS = 10_000;
/** How often "does every node have a route to every other" is checked (virtual ms). */
const ALL_ROUTED_CHECK_MS = 100;

export function runRoutingScenario(options: RoutingScenarioOptions): RoutingResult {
  const seed = options.seed ?? 1;
  const durationS = options.durationS ?? ROUTING_DEFAULT_DURATION_S;
  if (!(durationS > 0) || !Number.isFinite(durationS)) throw new RangeError(`durationS must be a positive number of seconds, got ${durationS}`);
  const loss = options.loss ?? 0;
  const measureMs = options.measureMs ?? MEASURE_MS;
  if (!(measureMs > 0) || !Number.isFinite(measureMs)) throw new RangeError(`measureMs must be a positive number of ms, got ${measureMs}`);
  const sim = new Simulator<NodeEngine>({
    matrix: options.matrix,
    ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
    seed,
    network: { loss, ...(options.jitter ? { jitter: options.jitter } : {}) },
    engine: {
      ...(options.maxNeighbours !== undefined ? { maxNeighbours: options.maxNeighbours } : {}),
      ...(options.hopCostMs !== undefined ? { routeHopCostMs: options.hopCostMs } : {}),
    },
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.seedNodes !== undefined ? { seeds: Array.from({ length: options.seedNodes }, (_, index) => index + 1) } : {}),
    ...(options.startSpreadMs !== undefined ? { startSpreadMs: options.startSpreadMs } : {}),
    maxDurationMs: durationS * 1000 + measureMs + 60_000,
    maxEvents: 2_000_000_000,
    maxRecords: 0,
    ...(options.insecure === true ? { createEngine: (config: EngineConfig) => new NodeEngine({ ...config, insecure: true }) } : {}),
  });
  const n = sim.size;
  const names = matrixNames(options.matrix).slice(0, n);
  const tracer = new FrameTracer(sim);
  let lastRouteChangeAt = 0;
  const delivered = new Set<number>();
  let measuring = false;
  sim.onEvent(({ at, node, event }) => {
    if (event.kind === "route") {
      if (!measuring) lastRouteChangeAt = at;
    } else if (event.kind === "message" && measuring) {
      const key = traceKey(event.data);
      if (key !== undefined && event.from === Math.floor(key / 0x1_0000_0000) && node === key % 0x1_0000_0000) delivered.add(key);
    }
  });
  let allRoutedAt: number | null = null;
  const checkAllRouted = (): void => {
    if (allRoutedAt !== null || sim.now > durationS * 1000) return;
    let all = true;
    for (const id of sim.nodeIds()) {
      const engine = sim.engine(id);
      if (engine === undefined || engine.routerStats().routed < n - 1) {
        all = false;
        break;
      }
    }
    if (all) allRoutedAt = sim.now;
    else sim.at(sim.now + ALL_ROUTED_CHECK_MS, checkAllRouted);
  };
  sim.at(ALL_ROUTED_CHECK_MS, checkAllRouted);
  const onProgress = options.onProgress;
  if (onProgress !== undefined) {
    const every = options.progressEveryMs ?? 1000;
    const report = (): void => {
      let fullyRouted = 0;
      let routeBytes = 0;
      let routedSum = 0;
      let linked = 0;
      for (const id of sim.nodeIds()) {
        const stats = sim.engine(id)?.routerStats();
        const routed = stats?.routed ?? 0;
        if (routed >= n - 1) fullyRouted++;
        routedSum += routed;
        if (sim.neighbours(id).some((neighbour) => neighbour.state === "up")) linked++;
        routeBytes += (stats?.tableBytes ?? 0) + (stats?.forwardingBytes ?? 0);
      }
      onProgress({
        virtualMs: sim.now,
        fullyRouted,
        meanRouted: routedSum / n,
        linked,
        nodes: n,
        events: sim.stats().eventsProcessed,
        controlBytesPerNodePerS: sim.now > 0 ? tracer.controlBytes / n / (sim.now / 1000) : 0,
        routeMemoryBytesPerNode: routeBytes / n,
      });
      if (sim.now + every <= durationS * 1000) sim.at(sim.now + every, report);
    };
    sim.at(every, report);
  }

  sim.runUntil(durationS * 1000);
  const controlBytes = tracer.controlBytes;
  const convergeMs = lastRouteChangeAt;
  let links = 0;
  let maxLinks = 0;
  let tableBytes = 0;
  let forwardingBytes = 0;
  for (const id of sim.nodeIds()) {
    const up = sim.neighbours(id).filter((neighbour) => neighbour.state === "up").length;
    links += up;
    maxLinks = Math.max(maxLinks, up);
    const stats = sim.engine(id)?.routerStats();
    tableBytes += stats?.tableBytes ?? 0;
    forwardingBytes += stats?.forwardingBytes ?? 0;
  }

  // The measurement: one traced datagram from every node to every other (or to a sample), all at once.
  measuring = true;
  const destinationsOf = measuredPairs(n, options.samplePairs, seed);
  let sent = 0;
  for (let source = 1; source <= n; source++) {
    if (!sim.isUp(source)) continue;
    sim.call(source, (engine, now) => {
      for (const destination of destinationsOf(source)) {
        const payload = tracePayload(source, destination);
        tracer.expect(source, destination, payload);
        try {
          engine.send(now, destination, payload, { reliable: false });
          sent++;
        } catch {
          tracer.unexpect(source, destination, payload);
          // NO_ROUTE: counted as unreachable below.
        }
      }
    });
  }
  // Until every traced frame has arrived, or MEASURE_MS for the ones lost on the way. Once all
  // have arrived no traced frame moves any more, so stopping early changes no figure, and saves
  // simulating seconds of a large network for nothing.
  sim.runUntilCondition(() => delivered.size >= sent, sim.now + measureMs);

  const table = rttTable(options.matrix, names);
  const optimal = allPairsShortest(table, n);
  let sumDirect = 0;
  let sumOptimal = 0;
  let sumRoute = 0;
  let sumHops = 0;
  let maxHops = 0;
  let routed = 0;
  let relayed = 0;
  const stretches: number[] = [];
  const paths: PathRecord[] | undefined = options.collectPaths ? [] : undefined;
  let pairs = 0;
  for (let source = 1; source <= n; source++) {
    for (const destination of destinationsOf(source)) {
      pairs++;
      const key = source * 0x1_0000_0000 + destination;
      const frame = tracer.frames.get(key);
      if (!delivered.has(key) || frame === undefined || frame.loop || frame.revisit || frame.hops[frame.hops.length - 1] !== destination) continue;
      routed++;
      const direct = table[(source - 1) * n + (destination - 1)]!;
      const best = optimal[(source - 1) * n + (destination - 1)]!;
      const route = pathRtt(table, n, frame.hops);
      sumDirect += direct;
      sumOptimal += best;
      sumRoute += route;
      const hops = frame.hops.length - 1;
      sumHops += hops;
      maxHops = Math.max(maxHops, hops);
      if (hops > 1) relayed++;
      if (best > 0) stretches.push(route / best);
      paths?.push({ src: names[source - 1]!, dst: names[destination - 1]!, hops: frame.hops.map((id: NodeId) => names[id - 1]!) });
    }
  }
  stretches.sort((a, b) => a - b);
  const gain = sumDirect - sumOptimal;
  const report: RoutingReport = {
    nodes: n,
    pairs,
    mean_direct_ms: routed > 0 ? round3(sumDirect / routed) : null,
    mean_optimal_ms: routed > 0 ? round3(sumOptimal / routed) : null,
    mean_route_ms: routed > 0 ? round3(sumRoute / routed) : null,
    p99_stretch: stretches.length > 0 ? round3(quantile(stretches, 0.99)!) : null,
    captured_improvement: gain > 0 ? round3((sumDirect - sumRoute) / gain) : null,
    loops: tracer.loops,
    unreachable_pairs: pairs - routed,
    converge_ms: round3(convergeMs),
    control_bytes_per_node_per_s: round3(controlBytes / n / durationS),
    all_routed_ms: allRoutedAt === null ? null : round3(allRoutedAt),
    revisits: tracer.revisits,
    mean_hops: routed > 0 ? round3(sumHops / routed) : null,
    max_hops: maxHops,
    relayed_pairs: relayed,
    links_per_node: round3(links / n),
    max_links: maxLinks,
    table_bytes_per_node: Math.round(tableBytes / n),
    route_memory_bytes_per_node: Math.round((tableBytes + forwardingBytes) / n),
    pairs_sampled: pairs < n * (n - 1),
    seed,
    max_neighbours: options.maxNeighbours ?? 32,
    duration_s: durationS,
    loss,
  };
  tracer.stop();
  return { report, paths };
}

/** The destinations each source measures: all others, or a seeded sample of `sample` ordered pairs. */
function measuredPairs(n: number, sample: number | undefined, seed: number): (source: NodeId) => NodeId[] {
  const all = n * (n - 1);
  if (sample === undefined || sample >= all) {
    return (source) => {
      const list: NodeId[] = [];
      for (let destination = 1; destination <= n; destination++) if (destination !== source) list.push(destination);
      return list;
    };
  }
  if (!Number.isInteger(sample) || sample < 1) throw new RangeError(`samplePairs must be a positive integer, got ${sample}`);
  const rng = new SeededRng(seed ^ 0x7a1e_5eed);
  const chosen = new Map<NodeId, Set<NodeId>>();
  let count = 0;
  while (count < sample) {
    const source = 1 + rng.nextInt(n);
    const destination = 1 + rng.nextInt(n);
    if (source === destination) continue;
    let set = chosen.get(source);
    if (set === undefined) chosen.set(source, (set = new Set()));
    if (set.has(destination)) continue;
    set.add(destination);
    count++;
  }
  return (source) => [...(chosen.get(source) ?? [])].sort((a, b) => a - b);
}

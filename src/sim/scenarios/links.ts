/**
 * Scenario "links": N nodes on an RTT matrix join through node 1, run until warm, and report how
 * many links came up and how close each link's smoothed RTT is to the matrix. This is what
 * `skein sim links --matrix FILE [--nodes N] [--seed S] [--loss P]` prints (one JSON line).
 */
import type { Logger } from "../../core/log.js";
import type { NodeId } from "../../core/node-id.js";
import { type Matrix, symmetricRtt } from "../matrix.js";
import type { JitterModel } from "../network.js";
import { type EngineTunables, type SimEngine, Simulator } from "../simulator.js";

export interface LinksScenarioOptions {
  matrix: Matrix;
  /** The first N names of the matrix (sorted) become NodeIds 1..N (default all). */
  nodes?: number;
  /** PRNG seed (default 1). */
  seed?: number;
  /** Packet loss probability on every packet, 0..1 (default 0). */
  loss?: number;
  /** Virtual run time in seconds before measuring (default 30). */
  durationS?: number;
  /** Jitter of the one-way delay (default none). */
  jitter?: JitterModel;
  /** Seed nodes (default [1]). */
  seeds?: readonly NodeId[];
  engine?: EngineTunables;
  logger?: Logger;
}

/** JSON-able; keys always in this order (same seed → identical JSON text). */
export interface LinksReport {
  /** Nodes simulated. */
  nodes: number;
  /** Undirected links that both ends report as "up" at the end of the run. */
  links_up: number;
  /** Pairs of nodes: N·(N-1)/2 (a full mesh; reachable only when maxNeighbours ≥ N-1). */
  expected_links: number;
  /**
   * |engine SRTT − matrix symmetric RTT| / matrix RTT, in percent, over every node's every up
   * neighbour with an SRTT (`engine.neighbours()`): each link counts once per end. Null when no
   * neighbour had an SRTT.
   */
  rtt_error_pct: { mean: number | null; max: number | null };
  seed: number;
  loss: number;
  /** The jitter model of the run ("none" or e.g. "relative 0.05"). */
  jitter: string;
  duration_s: number;
  /** Neighbour entries that went into rtt_error_pct. */
  rtt_samples: number;
  /** Undirected pairs that only one end reports as "up" (a link half-way up or down). */
  links_one_sided: number;
}

export const LINKS_DEFAULT_DURATION_S = 30;

export function runLinksScenario(options: LinksScenarioOptions): LinksReport {
  const seed = options.seed ?? 1;
  const loss = options.loss ?? 0;
  const durationS = options.durationS ?? LINKS_DEFAULT_DURATION_S;
  if (!(durationS > 0) || !Number.isFinite(durationS)) throw new RangeError(`durationS must be a positive number of seconds, got ${durationS}`);
  const sim = new Simulator({
    matrix: options.matrix,
    ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
    seed,
    network: { loss, ...(options.jitter ? { jitter: options.jitter } : {}) },
    ...(options.seeds ? { seeds: options.seeds } : {}),
    ...(options.engine ? { engine: options.engine } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    maxDurationMs: Math.max(3_600_000, durationS * 1000),
  });
  sim.runUntil(durationS * 1000);
  return measureLinks(sim, options.matrix, { seed, loss, jitter: describeJitter(options.jitter), durationS });
}

/** The LinksReport of a simulator's current state (usable mid-run by other scenarios and tests). */
export function measureLinks<E extends SimEngine>(
  sim: Simulator<E>,
  matrix: Matrix,
  meta: { seed: number; loss: number; jitter?: string; durationS: number },
): LinksReport {
  const n = sim.size;
  let samples = 0;
  let sum = 0;
  let max = 0;
  const upFrom = new Set<number>();
  for (const id of sim.nodeIds()) {
    for (const neighbour of sim.neighbours(id)) {
      if (neighbour.state !== "up" || neighbour.id < 1 || neighbour.id > n) continue;
      upFrom.add(id * (n + 1) + neighbour.id);
      if (neighbour.srttMs === undefined) continue;
      const expected = symmetricRtt(matrix, sim.name(id), sim.name(neighbour.id));
      const error = expected > 0 ? (Math.abs(neighbour.srttMs - expected) / expected) * 100 : neighbour.srttMs === 0 ? 0 : 100;
      samples++;
      sum += error;
      if (error > max) max = error;
    }
  }
  let both = 0;
  let one = 0;
  for (let a = 1; a <= n; a++) {
    for (let b = a + 1; b <= n; b++) {
      const ab = upFrom.has(a * (n + 1) + b);
      const ba = upFrom.has(b * (n + 1) + a);
      if (ab && ba) both++;
      else if (ab || ba) one++;
    }
  }
  return {
    nodes: n,
    links_up: both,
    expected_links: (n * (n - 1)) / 2,
    rtt_error_pct: { mean: samples === 0 ? null : round(sum / samples), max: samples === 0 ? null : round(max) },
    seed: meta.seed,
    loss: meta.loss,
    jitter: meta.jitter ?? "none",
    duration_s: meta.durationS,
    rtt_samples: samples,
    links_one_sided: one,
  };
}

function describeJitter(jitter: JitterModel | undefined): string {
  if (!jitter) return "none";
  switch (jitter.kind) {
    case "none":
      return "none";
    case "uniform":
      return `uniform ±${jitter.maxMs} ms`;
    case "normal":
      return `normal sd ${jitter.sdMs} ms`;
    case "relative":
      return `relative ${jitter.ratio}`;
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

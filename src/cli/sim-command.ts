/** `skein sim links`, `skein sim routing`, `skein sim failover` and `skein sim generate`. */
import { writeFileSync } from "node:fs";
import { SkeinError } from "../core/errors.js";
import { generateInternetMatrix } from "../sim/generate.js";
import { type Matrix, MAX_MATRIX_NAMES, formatMatrix, matrixNames } from "../sim/matrix.js";
import { loadMatrix } from "./matrix-file.js";
import type { LinksReport, LinksScenarioOptions } from "../sim/scenarios/links.js";
import type { RoutingScenarioOptions } from "../sim/scenarios/routing.js";
import type { FailoverScenarioOptions } from "../sim/scenarios/failover.js";
import { CliFailure, UsageError, errorMessage } from "./errors.js";
import { parseIntegerFlag, parseNumberFlag } from "./values.js";

/**
 * Renames a matrix's nodes to NodeIds "1".."N" in the matrix's own order (sorted names: NodeId i is
 * the i-th name, as the simulator assigns them), so that `skein node --emulate-latency` can use it.
 */
export function rekeyByNodeIds(matrix: Matrix): Matrix {
  const names = matrixNames(matrix);
  const idOf = new Map(names.map((name, index) => [name, String(index + 1)]));
  const out: Matrix = {};
  for (const a of names) {
    const row: { [b: string]: number } = {};
    for (const [b, rtt] of Object.entries(matrix[a] ?? {})) row[idOf.get(b)!] = rtt;
    out[idOf.get(a)!] = row;
  }
  return out;
}

export interface GenerateFlags {
  nodes?: string;
  seed?: string;
  out?: string;
  nodeIds?: boolean;
}

export const DEFAULT_SEED = 1;

/** Generates the matrix text `skein sim generate` writes. Throws UsageError on bad flags. */
export function generateMatrixText(flags: GenerateFlags): string {
  const nodes = parseIntegerFlag("--nodes", flags.nodes, 1, MAX_MATRIX_NAMES);
  if (nodes === undefined) throw new UsageError(`missing --nodes: expected the number of nodes, an integer in 1..${MAX_MATRIX_NAMES}`);
  const seed = parseIntegerFlag("--seed", flags.seed, 0, 0xffff_ffff) ?? DEFAULT_SEED;
  let matrix = generateInternetMatrix({ nodes, seed });
  if (flags.nodeIds === true) matrix = rekeyByNodeIds(matrix);
  return formatMatrix(matrix);
}

export function runGenerateCommand(flags: GenerateFlags): number {
  const text = generateMatrixText(flags);
  if (flags.out === undefined || flags.out === "-") {
    process.stdout.write(text);
    return 0;
  }
  try {
    writeFileSync(flags.out, text);
  } catch (error) {
    throw new CliFailure(`cannot write matrix to "${flags.out}": ${errorMessage(error)}`, "WRITE_FAILED");
  }
  return 0;
}

export interface LinksFlags {
  matrix?: string;
  nodes?: string;
  seed?: string;
  loss?: string;
  jitter?: string;
  durationS?: string;
}

export function loadMatrixFlag(file: string): Matrix {
  try {
    return loadMatrix(file);
  } catch (error) {
    if (error instanceof SkeinError) throw new UsageError(`bad --matrix value ${JSON.stringify(file)}: ${error.message}`, error.code);
    throw error;
  }
}

export async function runLinksCommand(flags: LinksFlags): Promise<number> {
  if (flags.matrix === undefined) throw new UsageError("missing --matrix: expected an RTT matrix JSON file");
  const matrix = loadMatrixFlag(flags.matrix);
  const names = matrixNames(matrix).length;
  const nodes = parseIntegerFlag("--nodes", flags.nodes, 1, names, ` (the matrix has ${names} node${names === 1 ? "" : "s"})`);
  const seed = parseIntegerFlag("--seed", flags.seed, 0, 0xffff_ffff);
  const loss = parseNumberFlag("--loss", flags.loss, 0, 1, "expected a packet loss probability in 0..1, e.g. 0.01");
  const jitter = parseNumberFlag("--jitter", flags.jitter, 0, 1, "expected a jitter ratio in 0..1 (standard deviation as a share of each pair's one-way delay), e.g. 0.05");
  const durationS = parseNumberFlag("--duration-s", flags.durationS, 0.001, 86_400, "expected a simulated duration in seconds, in (0, 86400]");
  // Loaded lazily: the simulator is not needed by the other commands.
  const scenario = await import("../sim/scenarios/links.js");
  const params: LinksScenarioOptions = { matrix };
  if (nodes !== undefined) params.nodes = nodes;
  if (seed !== undefined) params.seed = seed;
  if (loss !== undefined) params.loss = loss;
  if (jitter !== undefined && jitter > 0) params.jitter = { kind: "relative", ratio: jitter };
  if (durationS !== undefined) params.durationS = durationS;
  let report: LinksReport;
  try {
    report = scenario.runLinksScenario(params);
  } catch (error) {
    if (error instanceof SkeinError) throw new CliFailure(error.message, error.code, { cause: error });
    // The scenario checks its parameters with RangeError: that is a usage error.
    if (error instanceof RangeError) throw new UsageError(error.message, "BAD_OPTION");
    throw error;
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}

/** Runs a scenario, turning its errors into CLI errors (RangeError: a usage error). */
function scenarioRun<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof SkeinError) throw new CliFailure(error.message, error.code, { cause: error });
    if (error instanceof RangeError) throw new UsageError(error.message, "BAD_OPTION");
    throw error;
  }
}

export interface RoutingFlags {
  matrix?: string;
  nodes?: string;
  seed?: string;
  maxNeighbours?: string;
  durationS?: string;
  loss?: string;
  jitter?: string;
  paths?: string;
  insecure?: boolean;
  samplePairs?: string;
  measureS?: string;
  seedNodes?: string;
  startSpreadS?: string;
  progress?: boolean;
}

/** `skein sim routing`: one JSON report line; with --paths FILE, one JSON line per routed pair in FILE. */
export async function runRoutingCommand(flags: RoutingFlags, write: (text: string) => void = (text) => void process.stdout.write(text)): Promise<number> {
  if (flags.matrix === undefined) throw new UsageError("missing --matrix: expected an RTT matrix JSON file");
  const matrix = loadMatrixFlag(flags.matrix);
  const names = matrixNames(matrix).length;
  const nodes = parseIntegerFlag("--nodes", flags.nodes, 1, names, ` (the matrix has ${names} node${names === 1 ? "" : "s"})`);
  const seed = parseIntegerFlag("--seed", flags.seed, 0, 0xffff_ffff);
  const maxNeighbours = parseIntegerFlag("--max-neighbours", flags.maxNeighbours, 1, 65_535);
  const durationS = parseNumberFlag("--duration-s", flags.durationS, 1, 86_400, "expected a simulated duration in seconds, in [1, 86400]");
  const loss = parseNumberFlag("--loss", flags.loss, 0, 1, "expected a packet loss probability in 0..1, e.g. 0.01");
  const jitter = parseNumberFlag("--jitter", flags.jitter, 0, 1, "expected a jitter ratio in 0..1 (standard deviation as a share of each pair's one-way delay), e.g. 0.05");
  const samplePairs = parseIntegerFlag("--sample-pairs", flags.samplePairs, 1, 100_000_000);
  const measureS = parseNumberFlag("--measure-s", flags.measureS, 0.001, 3600, "expected how long the traced frames get to arrive, simulated seconds in (0, 3600]");
  const seedNodes = parseIntegerFlag("--seed-nodes", flags.seedNodes, 1, nodes ?? names);
  const startSpreadS = parseNumberFlag("--start-spread-s", flags.startSpreadS, 0, 3600, "expected the simulated seconds over which non-seed nodes start, in [0, 3600]");
  const scenario = await import("../sim/scenarios/routing.js");
  const params: RoutingScenarioOptions = { matrix, collectPaths: flags.paths !== undefined, insecure: flags.insecure === true };
  if (nodes !== undefined) params.nodes = nodes;
  if (seed !== undefined) params.seed = seed;
  if (maxNeighbours !== undefined) params.maxNeighbours = maxNeighbours;
  if (durationS !== undefined) params.durationS = durationS;
  if (loss !== undefined) params.loss = loss;
  if (jitter !== undefined && jitter > 0) params.jitter = { kind: "relative", ratio: jitter };
  if (samplePairs !== undefined) params.samplePairs = samplePairs;
  if (measureS !== undefined) params.measureMs = measureS * 1000;
  if (seedNodes !== undefined) params.seedNodes = seedNodes;
  if (startSpreadS !== undefined) params.startSpreadMs = startSpreadS * 1000;
  if (flags.progress === true) {
    const startedAt = Date.now();
    params.onProgress = (progress) =>
      void process.stderr.write(
        `sim routing: ${(progress.virtualMs / 1000).toFixed(0)} s simulated, ${progress.fullyRouted}/${progress.nodes} nodes route to every other, ${progress.linked} linked, ` +
          `${progress.meanRouted.toFixed(1)} destinations routed per node, ` +
          `control ${Math.round(progress.controlBytesPerNodePerS)} B/node/s so far, route state ${Math.round(progress.routeMemoryBytesPerNode)} B/node, ` +
          `${progress.events} events, heap ${Math.round(process.memoryUsage().heapUsed / 1e6)} MB, ${((Date.now() - startedAt) / 1000).toFixed(1)} s wall\n`,
      );
  }
  const { report, paths } = scenarioRun(() => scenario.runRoutingScenario(params));
  if (flags.paths !== undefined && paths !== undefined) {
    const text = paths.map((path) => JSON.stringify(path)).join("\n") + (paths.length > 0 ? "\n" : "");
    try {
      writeFileSync(flags.paths, text);
    } catch (error) {
      throw new CliFailure(`cannot write paths to "${flags.paths}": ${errorMessage(error)}`, "WRITE_FAILED");
    }
  }
  write(`${JSON.stringify(report)}\n`);
  return 0;
}

export interface FailoverFlags {
  matrix?: string;
  nodes?: string;
  seed?: string;
  failures?: string;
  maxNeighbours?: string;
  flows?: string;
  insecure?: boolean;
}

/** `skein sim failover`: one JSON report line. */
export async function runFailoverCommand(flags: FailoverFlags, write: (text: string) => void = (text) => void process.stdout.write(text)): Promise<number> {
  if (flags.matrix === undefined) throw new UsageError("missing --matrix: expected an RTT matrix JSON file");
  const matrix = loadMatrixFlag(flags.matrix);
  const names = matrixNames(matrix).length;
  const nodes = parseIntegerFlag("--nodes", flags.nodes, 3, names, ` (at least 3 nodes for a relay; the matrix has ${names})`);
  const seed = parseIntegerFlag("--seed", flags.seed, 0, 0xffff_ffff);
  const failures = parseIntegerFlag("--failures", flags.failures, 1, 1000);
  const maxNeighbours = parseIntegerFlag("--max-neighbours", flags.maxNeighbours, 1, 65_535);
  const flows = parseIntegerFlag("--flows", flags.flows, 1, 100_000);
  if (flags.nodes === undefined && names < 3) throw new UsageError(`--matrix has ${names} node${names === 1 ? "" : "s"}: a relay needs at least 3`);
  const scenario = await import("../sim/scenarios/failover.js");
  const params: FailoverScenarioOptions = { matrix, insecure: flags.insecure === true };
  if (nodes !== undefined) params.nodes = nodes;
  if (seed !== undefined) params.seed = seed;
  if (failures !== undefined) params.failures = failures;
  if (maxNeighbours !== undefined) params.maxNeighbours = maxNeighbours;
  if (flows !== undefined) params.flows = flows;
  const report = scenarioRun(() => scenario.runFailoverScenario(params));
  write(`${JSON.stringify(report)}\n`);
  return 0;
}

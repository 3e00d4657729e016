/**
 * Round-trip-time matrices: `{ "a": { "b": rttMs } }`, milliseconds, round trip, the format of the
 * public cloud-ping matrices (see README.md). Pure: reading a file lives in matrix-file.ts.
 *
 * Node naming: a simulation over a matrix assigns NodeIds 1..N to the first N names in sorted order
 * (`matrixNames`, plain code-unit order, never locale-dependent).
 */
import { type Decoded, decodeError, decoded } from "../core/errors.js";

/** `matrix[a][b]` = round-trip time from a to b in ms. The diagonal (a to a) is optional. */
export type Matrix = { [a: string]: { [b: string]: number } };

/** Largest RTT a matrix may hold (ms): one hour. Anything above is a unit mistake. */
export const MAX_MATRIX_RTT_MS = 3_600_000;
/** Largest number of names a matrix may hold (bounds the n² work of parsing and generating). */
export const MAX_MATRIX_NAMES = 10_000;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

/**
 * Checks and normalises a parsed JSON value into a Matrix. The names are every row key and every
 * column key. Every ordered pair of distinct names gets a value: its own, or the reverse direction
 * when only that one is given; a pair given in neither direction is an error naming it. Values must
 * be finite numbers in 0..MAX_MATRIX_RTT_MS. The result has sorted keys (rows and columns).
 */
export function parseMatrix(json: unknown): Decoded<Matrix> {
  if (!isPlainObject(json)) return decodeError(`RTT matrix must be a JSON object of objects ({ "a": { "b": 12.5 } }), got ${describe(json)}`);
  const nameSet = new Set<string>();
  for (const [a, row] of Object.entries(json)) {
    if (a === "") return decodeError("RTT matrix has an empty node name");
    if (!isPlainObject(row)) return decodeError(`RTT matrix row "${a}" must be an object of { "name": rttMs }, got ${describe(row)}`);
    nameSet.add(a);
    for (const [b, value] of Object.entries(row)) {
      if (b === "") return decodeError(`RTT matrix row "${a}" has an empty node name`);
      nameSet.add(b);
      if (typeof value !== "number" || !Number.isFinite(value)) return decodeError(`RTT from "${a}" to "${b}" is not a finite number: ${describe(value)}`);
      if (value < 0) return decodeError(`RTT from "${a}" to "${b}" is negative: ${value}`);
      if (value > MAX_MATRIX_RTT_MS) return decodeError(`RTT from "${a}" to "${b}" is ${value} ms, more than ${MAX_MATRIX_RTT_MS} ms: the matrix must be in milliseconds`);
    }
  }
  if (nameSet.size === 0) return decodeError("RTT matrix is empty: it needs at least one node");
  if (nameSet.size > MAX_MATRIX_NAMES) return decodeError(`RTT matrix has ${nameSet.size} names, more than ${MAX_MATRIX_NAMES}`);
  const names = [...nameSet].sort(compareNames);
  const rows = json as Record<string, Record<string, number> | undefined>;
  const out: Matrix = {};
  for (const a of names) out[a] = {};
  for (const a of names) {
    for (const b of names) {
      const forward = rows[a]?.[b];
      if (a === b) {
        if (forward !== undefined) out[a]![b] = forward;
        continue;
      }
      const value = forward ?? rows[b]?.[a];
      if (value === undefined) return decodeError(`RTT matrix has no RTT between "${a}" and "${b}" (neither "${a}"→"${b}" nor "${b}"→"${a}" is given)`);
      out[a]![b] = value;
    }
  }
  return decoded(out);
}

/** Code-unit order: the same on every machine and locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The matrix's names in sorted order: NodeId i (1-based) is `matrixNames(m)[i - 1]`. */
export function matrixNames(matrix: Matrix): string[] {
  const names = new Set<string>(Object.keys(matrix));
  for (const row of Object.values(matrix)) for (const b of Object.keys(row)) names.add(b);
  return [...names].sort(compareNames);
}

/** RTT from a to b (ms), falling back to b to a; throws RangeError when neither is present. */
export function directedRtt(matrix: Matrix, a: string, b: string): number {
  const value = matrix[a]?.[b] ?? matrix[b]?.[a];
  if (value === undefined) {
    if (a === b) return 0;
    throw new RangeError(`RTT matrix has no RTT between "${a}" and "${b}"`);
  }
  return value;
}

/** Mean of both directions (ms); one direction when only one is present; 0 on a missing diagonal. */
export function symmetricRtt(matrix: Matrix, a: string, b: string): number {
  const forward = matrix[a]?.[b];
  const reverse = matrix[b]?.[a];
  if (forward !== undefined && reverse !== undefined) return (forward + reverse) / 2;
  return directedRtt(matrix, a, b);
}

/** The sub-matrix of the given names (e.g. the first N), same normalised shape. */
export function subMatrix(matrix: Matrix, names: readonly string[]): Matrix {
  const out: Matrix = {};
  const sorted = [...names].sort(compareNames);
  for (const a of sorted) {
    const row: { [b: string]: number } = {};
    for (const b of sorted) {
      if (a === b) {
        const diagonal = matrix[a]?.[a];
        if (diagonal !== undefined) row[b] = diagonal;
      } else {
        row[b] = directedRtt(matrix, a, b);
      }
    }
    out[a] = row;
  }
  return out;
}

/** JSON text of a matrix, rows and columns sorted, one row per line (stable, diff-friendly). */
export function formatMatrix(matrix: Matrix): string {
  const names = matrixNames(matrix);
  const lines = names.map((a) => {
    const row = matrix[a] ?? {};
    const cells = names.filter((b) => row[b] !== undefined).map((b) => `${JSON.stringify(b)}: ${row[b]}`);
    return `  ${JSON.stringify(a)}: { ${cells.join(", ")} }`;
  });
  return `{\n${lines.join(",\n")}\n}\n`;
}

export interface RelayOpportunities {
  /** Unordered pairs of distinct names considered. */
  pairs: number;
  /** Pairs for which some third node c gives rtt(a,c) + rtt(c,b) + relayCostMs < rtt(a,b). */
  fasterViaRelay: number;
  /** fasterViaRelay / pairs (0 when there are no pairs). */
  fraction: number;
  /** Pairs whose best one-hop relay is at least 10% faster than the direct path. */
  gain10pct: number;
  /** The largest saving in ms over all pairs (0 when none). */
  maxGainMs: number;
}

/**
 * How many pairs have a faster one-hop relay than their direct path, on symmetric RTTs (mean of
 * both directions), optionally charging `relayCostMs` per relay. O(n³): fine for a few hundred names.
 */
export function relayOpportunities(matrix: Matrix, options: { relayCostMs?: number; names?: readonly string[] } = {}): RelayOpportunities {
  const names = options.names ? [...options.names].sort(compareNames) : matrixNames(matrix);
  const cost = options.relayCostMs ?? 0;
  const n = names.length;
  const rtt: number[][] = names.map((a) => names.map((b) => (a === b ? 0 : symmetricRtt(matrix, a, b))));
  let pairs = 0;
  let faster = 0;
  let gain10 = 0;
  let maxGain = 0;
  for (let i = 0; i < n; i++) {
    const ri = rtt[i]!;
    for (let j = i + 1; j < n; j++) {
      pairs++;
      const direct = ri[j]!;
      let best = direct;
      for (let k = 0; k < n; k++) {
        if (k === i || k === j) continue;
        const via = ri[k]! + rtt[k]![j]! + cost;
        if (via < best) best = via;
      }
      if (best < direct) {
        faster++;
        if (direct - best >= direct * 0.1) gain10++;
        if (direct - best > maxGain) maxGain = direct - best;
      }
    }
  }
  return { pairs, fasterViaRelay: faster, fraction: pairs === 0 ? 0 : faster / pairs, gain10pct: gain10, maxGainMs: maxGain };
}

/**
 * Generates Internet-like RTT matrices, so that tests and benchmarks never depend on third-party
 * data. Pure and seeded: the same options give the same matrix, bit for bit.
 *
 * Model (all tunable through GenerateOptions):
 *  - `continents` centres are drawn on the globe (latitudes -45°..60°, where people live); each node
 *    picks a continent (continents have random weights) and sits a Gaussian distance around its
 *    centre (`continentSpreadKm`), like cities of a region.
 *  - Direct path: great-circle distance d at fibre speed (`fibreKmPerMs`, ~200 km/ms one way), so
 *    RTT = 2·d / fibreKmPerMs · inflation + access(a) + access(b), where access(x) is a per-node
 *    access delay (last mile, data centre), uniform in `accessMs`.
 *  - Detours: `inflation` is drawn per pair: a log-normal core (median `inflationMedian`, spread
 *    `inflationSigma`) and, with probability `detourProbability`, a heavy (Pareto) extra stretch
 *    plus a fixed detour (`detourMs`: trombone routing through a far exchange). That breaks the
 *    triangle inequality the way BGP routing does, so that for a good fraction of pairs (published
 *    measurements: 30-80%) a one-hop relay through a third node beats the direct path
 *    (`relayOpportunities` in matrix.ts measures it).
 *  - Slight asymmetry: each direction is scaled by 1 ± `asymmetry`·u.
 *
 * Names are "n01".."nNN" (zero-padded so that sorted order is numeric order: NodeId i is "n0i").
 */
import { SeededRng } from "../core/rng.js";
import type { Matrix } from "./matrix.js";
import { formatMatrix, MAX_MATRIX_NAMES } from "./matrix.js";

export interface GenerateOptions {
  nodes: number;
  seed: number;
  /** Name prefix (default "n"): names are prefix + zero-padded index. */
  prefix?: string;
  /** Number of continent clusters (default min(6, nodes)). */
  continents?: number;
  /** Standard deviation of a node's distance from its continent centre, km (default 1200). */
  continentSpreadKm?: number;
  /** One-way propagation speed in fibre, km per ms (default 200). */
  fibreKmPerMs?: number;
  /** Per-node access delay range, ms of round trip (default [0.5, 4]). */
  accessMs?: readonly [number, number];
  /** Median of the per-pair path inflation over the great circle (default 1.4). */
  inflationMedian?: number;
  /** Log-normal sigma of the per-pair inflation (default 0.12). */
  inflationSigma?: number;
  /** Probability that a pair takes a detour on top (default 0.3). */
  detourProbability?: number;
  /** Pareto shape of the detour stretch (smaller = heavier tail; default 1.5). */
  detourShape?: number;
  /** Cap of the detour stretch drawn from the Pareto law (default 2). */
  detourMaxStretch?: number;
  /** Mean of the fixed part of a detour, ms of round trip (exponential; default 15). */
  detourMs?: number;
  /** Maximum relative difference between the two directions of a pair (default 0.02). */
  asymmetry?: number;
  /** Decimals kept in the matrix (default 2). */
  decimals?: number;
}

export interface GeneratedSite {
  name: string;
  continent: number;
  latDeg: number;
  lonDeg: number;
  accessMs: number;
}

export interface GeneratedTopology {
  matrix: Matrix;
  sites: GeneratedSite[];
}

const EARTH_RADIUS_KM = 6371;
const DEG = Math.PI / 180;

export function generateInternetMatrix(options: GenerateOptions): Matrix {
  return generateInternetTopology(options).matrix;
}

/** The matrix as stable JSON text (what `skein sim generate` would write). */
export function generateInternetMatrixJson(options: GenerateOptions): string {
  return formatMatrix(generateInternetMatrix(options));
}

/** The matrix plus where each node was placed (for plots and debugging). */
export function generateInternetTopology(options: GenerateOptions): GeneratedTopology {
  const n = options.nodes;
  if (!Number.isInteger(n) || n < 1 || n > MAX_MATRIX_NAMES) throw new RangeError(`nodes must be an integer in 1..${MAX_MATRIX_NAMES}, got ${n}`);
  if (!Number.isInteger(options.seed)) throw new RangeError(`seed must be an integer, got ${options.seed}`);
  const prefix = options.prefix ?? "n";
  const continents = Math.max(1, Math.min(options.continents ?? 6, n));
  const spreadKm = options.continentSpreadKm ?? 1200;
  const fibre = options.fibreKmPerMs ?? 200;
  const [accessMin, accessMax] = options.accessMs ?? [0.5, 4];
  const inflationMedian = options.inflationMedian ?? 1.4;
  const inflationSigma = options.inflationSigma ?? 0.12;
  const detourProbability = options.detourProbability ?? 0.3;
  const detourShape = options.detourShape ?? 1.5;
  const detourMaxStretch = options.detourMaxStretch ?? 2;
  const detourMs = options.detourMs ?? 15;
  const asymmetry = options.asymmetry ?? 0.02;
  const scale = 10 ** (options.decimals ?? 2);
  const round = (value: number): number => Math.round(value * scale) / scale;

  // Independent streams, so that changing one aspect (say the detours) leaves the placement alone.
  const root = new SeededRng(options.seed);
  const placeRng = root.fork();
  const accessRng = root.fork();
  const pairRng = root.fork();

  const centres: { lat: number; lon: number; weight: number }[] = [];
  for (let c = 0; c < continents; c++) {
    const lat = Math.asin(lerp(Math.sin(-45 * DEG), Math.sin(60 * DEG), placeRng.nextFloat())) / DEG;
    const lon = placeRng.nextFloat() * 360 - 180;
    centres.push({ lat, lon, weight: 0.5 + placeRng.nextFloat() });
  }
  const totalWeight = centres.reduce((sum, c) => sum + c.weight, 0);

  const width = String(n).length;
  const sites: GeneratedSite[] = [];
  for (let i = 0; i < n; i++) {
    // The first `continents` nodes seed one continent each, so every continent is populated.
    let continent = i;
    if (i >= continents) {
      let pick = placeRng.nextFloat() * totalWeight;
      continent = 0;
      while (continent < continents - 1 && pick >= centres[continent]!.weight) {
        pick -= centres[continent]!.weight;
        continent++;
      }
    }
    const centre = centres[continent]!;
    const distanceKm = Math.abs(gaussian(placeRng)) * spreadKm;
    const bearing = placeRng.nextFloat() * 2 * Math.PI;
    const [latDeg, lonDeg] = destination(centre.lat, centre.lon, bearing, distanceKm);
    sites.push({
      name: `${prefix}${String(i + 1).padStart(width, "0")}`,
      continent,
      latDeg,
      lonDeg,
      accessMs: lerp(accessMin, accessMax, accessRng.nextFloat()),
    });
  }

  const matrix: Matrix = {};
  for (const site of sites) matrix[site.name] = { [site.name]: round(2 * site.accessMs) };
  for (let i = 0; i < n; i++) {
    const a = sites[i]!;
    for (let j = i + 1; j < n; j++) {
      const b = sites[j]!;
      const fibreRttMs = (2 * greatCircleKm(a.latDeg, a.lonDeg, b.latDeg, b.lonDeg)) / fibre;
      let inflation = inflationMedian * Math.exp(inflationSigma * gaussian(pairRng));
      let detour = 0;
      if (pairRng.nextFloat() < detourProbability) {
        // Pareto(shape) ≥ 1, capped so that one pair cannot dominate.
        const u = 1 - pairRng.nextFloat();
        inflation *= Math.min(Math.pow(u, -1 / detourShape), detourMaxStretch);
        detour = -Math.log(1 - pairRng.nextFloat()) * detourMs;
      }
      const base = fibreRttMs * Math.max(1, inflation) + detour + a.accessMs + b.accessMs;
      const skew = asymmetry * (pairRng.nextFloat() * 2 - 1);
      matrix[a.name]![b.name] = Math.max(round(base * (1 + skew)), 1 / scale);
      matrix[b.name]![a.name] = Math.max(round(base * (1 - skew)), 1 / scale);
    }
  }
  // Rows and columns in sorted order (names are zero-padded, so that is index order).
  const sorted: Matrix = {};
  for (const site of sites) {
    const row: { [b: string]: number } = {};
    for (const other of sites) row[other.name] = matrix[site.name]![other.name]!;
    sorted[site.name] = row;
  }
  return { matrix: sorted, sites };
}

function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** A standard normal draw (Box-Muller). */
export function gaussian(rng: { nextFloat(): number }): number {
  const u = 1 - rng.nextFloat(); // (0, 1]
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function greatCircleKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * DEG;
  const dLon = (lon2 - lon1) * DEG;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * DEG) * Math.cos(lat2 * DEG) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The point `distanceKm` away from (lat, lon) along `bearing` (radians), in degrees. */
function destination(latDeg: number, lonDeg: number, bearing: number, distanceKm: number): [number, number] {
  const delta = distanceKm / EARTH_RADIUS_KM;
  const lat1 = latDeg * DEG;
  const lon1 = lonDeg * DEG;
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(delta) + Math.cos(lat1) * Math.sin(delta) * Math.cos(bearing));
  const lon2 = lon1 + Math.atan2(Math.sin(bearing) * Math.sin(delta) * Math.cos(lat1), Math.cos(delta) - Math.sin(lat1) * Math.sin(lat2));
  const lonNorm = ((((lon2 / DEG + 180) % 360) + 360) % 360) - 180;
  return [lat2 / DEG, lonNorm];
}

/**
 * The routing metric, in the spirit of RFC 9616 (Babel's delay-based metric): the one-way delay of
 * a path, in microseconds, as the sum of its links' costs. A link's cost comes from the link's
 * SMOOTHED measurements only (RFC 6298 SRTT, the smoothed mean deviation MDEV, loss over a probe
 * window: link/rtt.ts), never from a raw last sample, so that one delayed probe does not move a
 * route:
 *
 *   cost = (SRTT + w_var·MDEV) / 2                         one-way delay plus a variance term
 *        + w_loss · l/(1−l) · (SRTT + 4·MDEV)              expected retransmission delay
 *        + hop cost                                        a per-relay cost (default 0.1 ms)
 *
 * where l is the loss ratio capped at ROUTE_MAX_METRIC_LOSS. Every cost is at least 1 µs, so
 * metrics strictly grow along a path (needed by the feasibility condition).
 */
import {
  LINK_COST_CHANGE_RATIO,
  METRIC_INFINITY,
  METRIC_MAX_FINITE,
  ROUTE_HOP_COST_MS,
  ROUTE_LOSS_WEIGHT,
  ROUTE_MAX_METRIC_LOSS,
  ROUTE_VARIANCE_WEIGHT,
} from "./constants.js";

export interface MetricConfig {
  /** Added to every link's cost, ms one way. */
  hopCostMs: number;
  /** Weight of RTTVAR. */
  varianceWeight: number;
  /** Weight of the loss penalty. */
  lossWeight: number;
}

export const DEFAULT_METRIC_CONFIG: MetricConfig = {
  hopCostMs: ROUTE_HOP_COST_MS,
  varianceWeight: ROUTE_VARIANCE_WEIGHT,
  lossWeight: ROUTE_LOSS_WEIGHT,
};

/** Largest single link cost: an hour. */
const MAX_LINK_COST_US = 3_600_000_000;

/**
 * A link's cost in µs (one way), or METRIC_INFINITY while the link has no RTT estimate yet.
 * Inputs are the link's smoothed values: SRTT and its mean deviation in ms, loss as a ratio 0..1.
 */
export function linkCostUs(srttMs: number | undefined, mdevMs: number | undefined, loss: number, config: MetricConfig = DEFAULT_METRIC_CONFIG): number {
  if (srttMs === undefined || !Number.isFinite(srttMs) || srttMs < 0) return METRIC_INFINITY;
  const mdev = mdevMs !== undefined && Number.isFinite(mdevMs) && mdevMs > 0 ? mdevMs : 0;
  const l = Number.isFinite(loss) ? Math.min(Math.max(loss, 0), ROUTE_MAX_METRIC_LOSS) : 0;
  const oneWayMs = (srttMs + config.varianceWeight * mdev) / 2;
  const lossPenaltyMs = config.lossWeight * (l / (1 - l)) * (srttMs + 4 * mdev);
  const costUs = Math.round((oneWayMs + lossPenaltyMs + config.hopCostMs) * 1000);
  if (!Number.isFinite(costUs)) return MAX_LINK_COST_US;
  return Math.min(Math.max(costUs, 1), MAX_LINK_COST_US);
}

/**
 * The loss ratio the metric charges: a single loss in the window is treated as noise (one probe in
 * 32 is a 3% step, larger than most relay gains, and would hold for the window's 32 s).
 */
export function metricLoss(lostSamples: number, samples: number): number {
  if (samples <= 0 || lostSamples <= 1) return 0;
  return (lostSamples - 1) / samples;
}

/** a + b, saturating below infinity; infinity when either is infinite. */
export function addMetric(a: number, b: number): number {
  if (a === METRIC_INFINITY || b === METRIC_INFINITY) return METRIC_INFINITY;
  const sum = a + b;
  return sum > METRIC_MAX_FINITE ? METRIC_MAX_FINITE : sum;
}

/**
 * Whether a link cost moved enough to tell the router (input hysteresis: jitter in the smoothed
 * RTT does not recompute the table on every probe). Becoming or leaving infinity always counts.
 */
export function costChangedSignificantly(previous: number | undefined, next: number): boolean {
  if (previous === undefined) return true;
  if (previous === next) return false;
  if (previous === METRIC_INFINITY || next === METRIC_INFINITY) return true;
  return Math.abs(next - previous) > LINK_COST_CHANGE_RATIO * previous;
}

/** u16 sequence numbers compared modulo 2^16 (RFC 8966 §3.2.1): is `a` newer than `b`? */
export function seqnoNewer(a: number, b: number): boolean {
  const distance = (a - b) & 0xffff;
  return distance !== 0 && distance < 0x8000;
}

/** The next sequence number after `a`, modulo 2^16. */
export function seqnoNext(a: number): number {
  return (a + 1) & 0xffff;
}

/** Metric in ms for people (reports, API), undefined for infinity. */
export function metricMs(metricUs: number): number | undefined {
  return metricUs === METRIC_INFINITY ? undefined : metricUs / 1000;
}

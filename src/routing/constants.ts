/**
 * Tunables of the routing module (README.md explains each choice), with their units in their names.
 * Metrics are one-way delays in microseconds (u32 on the wire); METRIC_INFINITY means "no route".
 */

/** An advertised or computed metric this large means unreachable (a retraction on the wire). */
export const METRIC_INFINITY = 0xffff_ffff;
/** Largest finite metric: sums saturate here instead of wrapping into infinity. */
export const METRIC_MAX_FINITE = 0xffff_fffe;

// ─── Metric (metric.ts) ──────────────────────────────────────────────────────────────────────────

/** Default per-hop cost added to every link (one way): prefers fewer relays when gains are tiny. */
export const ROUTE_HOP_COST_MS = 0.1;
/** Weight of the RTT's mean deviation in a link's cost: cost = (SRTT + w·MDEV) / 2 + loss penalty + hop cost. */
export const ROUTE_VARIANCE_WEIGHT = 0.5;
/** Weight of the loss penalty (expected retransmission delay, one RTO per loss). */
export const ROUTE_LOSS_WEIGHT = 1;
/** Loss above this is treated as this (keeps the penalty finite: 9 expected retransmissions). */
export const ROUTE_MAX_METRIC_LOSS = 0.9;
/** A link cost handed to the router only changes when it moved by more than this fraction… */
export const LINK_COST_CHANGE_RATIO = 0.01;
/** …or, when it moved at all, after this long (so that routes end up exact, not 1% off). */
export const LINK_COST_REFRESH_MS = 10_000;

// ─── Route selection ─────────────────────────────────────────────────────────────────────────────

/** A better route replaces the selected one at once when it wins by this fraction of the metric… */
export const SWITCH_GAIN_RATIO = 0.03;
/** …and by at least this much (one way). */
export const SWITCH_MIN_GAIN_US = 1_000;
/** A smaller gain must hold continuously this long before the route switches (hysteresis). */
export const SWITCH_HOLD_MS = 3_000;

// ─── Updates ─────────────────────────────────────────────────────────────────────────────────────

/** Periodic full refresh of the table to every neighbour (RFC 8966's default update interval). */
export const UPDATE_INTERVAL_MS = 16_000;
/** A route not refreshed for this many of its sender's update intervals expires (RFC 8966: 3.5). */
export const ROUTE_EXPIRY_INTERVALS = 3.5;
/** Changes are batched this long before a triggered update leaves (coalesces bursts). */
export const TRIGGERED_UPDATE_DELAY_MS = 5;
/** A selected metric change larger than this fraction of the advertised one triggers an update. */
export const TRIGGER_METRIC_RATIO = 0.03;
/** A new neighbour whose table has not arrived this long after link up is asked for it. */
export const ROUTE_REQUEST_AFTER_MS = 1_000;
/** Retractions and seqno changes are urgent: sent at once and repeated after this delay. */
export const URGENT_REPEAT_MS = 200;
/** Largest route-message payload: one datagram anywhere (fits a 1280-byte IPv6 minimum MTU). */
export const MAX_ROUTE_MESSAGE_BYTES = 1200;

// ─── Seqno requests ──────────────────────────────────────────────────────────────────────────────

/** Hop limit of a seqno request when it starts (it is forwarded toward the destination). */
export const SEQNO_REQUEST_HOP_LIMIT = 32;
/** A node asks again for the same destination at most this often. */
export const SEQNO_REQUEST_MIN_INTERVAL_MS = 500;
/** A request for the same destination and seqno is forwarded at most once in this window. */
export const SEQNO_REQUEST_DEDUP_MS = 1_000;

// ─── Table bounds and garbage collection ─────────────────────────────────────────────────────────

/** Destinations the table holds at most (bounds memory a hostile neighbour can cause). */
export const MAX_DESTINATIONS = 16_384;
/** Expired routes are looked for this often (a route lives 3.5 update intervals). */
export const EXPIRY_SWEEP_INTERVAL_MS = 4_000;
/**
 * A destination without any route keeps its feasibility distance this long (RFC 8966's source
 * GC time), so that an old, looping advertisement cannot be accepted as new meanwhile.
 */
export const SOURCE_GC_MS = 180_000;
/** Unreachable destinations are advertised as retractions in periodic updates this long. */
export const RETRACTION_HOLD_MS = 60_000;

// ─── Data-plane reports and diagnostics ──────────────────────────────────────────────────────────

/** One unreachable report per (source, destination) at most this often. */
export const UNREACHABLE_REPORT_INTERVAL_MS = 1_000;
/** Report rate-limit entries kept at most (the table is cleared when full). */
export const MAX_UNREACHABLE_REPORT_ENTRIES = 1_024;
/** Ping and trace probes in flight at most. */
export const MAX_PENDING_PROBES = 64;
/** A ping or trace that has not completed after this long reports what it has. */
export const PROBE_TIMEOUT_MS = 3_000;
/** A trace sends probes with TTL 1..this. */
export const MAX_TRACE_HOPS = 16;

// ─── Neighbour policy (neighbour-policy.ts) ──────────────────────────────────────────────────────

/** How often the neighbour policy runs once a node knows more peers than --max-neighbours. */
export const NEIGHBOUR_POLICY_INTERVAL_MS = 500;
/** A trial link is judged this long after it came up (RTT measured, the peer's table received). */
export const TRIAL_EVALUATE_MS = 1_000;
/**
 * A trial link still up this long after it came up paid off (both ends have judged it by then:
 * the peer, at its limit, may drop the newcomer once it is POLICY_MIN_LINK_AGE_MS old).
 */
export const TRIAL_SUCCESS_AFTER_MS = 3_000;
/** A peer that was tried (or dropped by the policy) is not tried again for this long. */
export const TRIAL_RETRY_MS = 120_000;
/** Exploration slows down after trials that did not pay off, doubling up to this pause. */
export const TRIAL_BACKOFF_MAX_MS = 60_000;
/** A link younger than this is never dropped by the policy (it has not been measured yet). */
export const POLICY_MIN_LINK_AGE_MS = 1_000;
/** A newcomer replaces an established link only when its usefulness is this much larger… */
export const POLICY_REPLACE_RATIO = 0.25;
/** …plus this absolute margin (µs of one-way delay summed over destinations). */
export const POLICY_REPLACE_MIN_US = 5_000;
/** The usefulness of a link that is the only loop-free way to some destination. */
export const POLICY_SOLE_ROUTE_UTILITY_US = 10_000_000;

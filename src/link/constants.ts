/** Tunables of neighbour links, with their units in their names. */

/** Hello is resent this often until answered (UDP may lose it). */
export const HELLO_RETRY_MS = 500;
/** An outbound link that is not up this long after its path opened has failed. */
export const CONNECT_TIMEOUT_MS = 3000;
/** First and largest pause before retrying a failed connection (doubles each failure). */
export const RECONNECT_BACKOFF_MIN_MS = 1000;
export const RECONNECT_BACKOFF_MAX_MS = 30_000;
/** Neighbour lists are re-sent to every neighbour this often (new nodes also get one at link up). */
export const PEER_EXCHANGE_INTERVAL_MS = 5000;
/** How many outbound connection attempts may be in progress at once. */
export const MAX_PARALLEL_CONNECTS = 16;
/** Known-but-unlinked peers nobody has mentioned for this long are forgotten. */
export const PEER_FORGET_MS = 300_000;
/** Bound on the table of known peers (memory a hostile neighbour can cause). */
export const MAX_KNOWN_PEERS = 4096;
/** Addresses kept per peer (a hello or peer entry with more is truncated). */
export const MAX_ADDRESSES_PER_PEER = 4;

/** Probes whose fate (answered or lost) the loss estimate looks back over. */
export const LOSS_WINDOW_PROBES = 32;
/** A probe not answered this long (or 2·SRTT + 4·RTTVAR, whichever is larger) counts as lost. */
export const PROBE_LOSS_MIN_MS = 1000;
/** Unanswered probes remembered at most. */
export const MAX_PENDING_PROBES = 64;
/** An `rtt` event is emitted when SRTT moved by more than this fraction since the last one. */
export const RTT_EVENT_CHANGE_RATIO = 0.05;

/**
 * A new link is probed faster at first, so that SRTT and RTTVAR settle within a second instead of
 * a dozen probe intervals (routing waits for them): the first LINK_WARMUP_PROBES probes leave
 * LINK_WARMUP_PROBE_INTERVAL_MS apart.
 */
export const LINK_WARMUP_PROBES = 8;
export const LINK_WARMUP_PROBE_INTERVAL_MS = 100;
/**
 * A link that carries routed traffic is "active" for ACTIVE_WINDOW_MS after the last frame sent on
 * it, and probed every ACTIVE_PROBE_INTERVAL_MS meanwhile: the answers are the heartbeat that lets
 * routing notice a dead next hop in a fraction of a second (instead of the link timeout).
 */
export const ACTIVE_WINDOW_MS = 2000;
export const ACTIVE_PROBE_INTERVAL_MS = 25;
/**
 * A link counts as active once this many routed frames went out on it within ACTIVE_WINDOW_MS (a
 * flow of at least 2 frames a second): a frame now and then (control traffic of other modules)
 * does not pay for 40 probes a second.
 */
export const ACTIVE_MIN_FRAMES = 4;
/**
 * An active link from which nothing arrived for SUSPECT_SILENCE_MS + 4·RTTVAR (after the first
 * answer could have come back) is suspected: routing stops using it at once; anything received
 * clears the suspicion. The link itself stays up until the link timeout.
 */
export const SUSPECT_SILENCE_MS = 100;

/** RFC 6298 gains. */
export const RTT_ALPHA = 1 / 8;
export const RTT_BETA = 1 / 4;

/** Largest packet (several frames) the engine builds for a stream transport. */
export const STREAM_PACKET_MAX_BYTES = 64 * 1024;
/**
 * Largest record the engine seals from several packets on a stream (one packet alone may be
 * larger: one largest frame). Bigger records seal and write fewer times per byte; the bound keeps
 * the wait for a whole record short (a receiver opens a record only once all of it arrived).
 */
export const STREAM_RECORD_MAX_BYTES = 512 * 1024;

/** Accepted paths that have not completed a hello, at most; more are refused until some expire. */
export const MAX_HALF_OPEN_PATHS = 256;

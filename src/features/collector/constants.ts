/**
 * Tunables of the collector module (module 5), units in the names. The protocol and the reasons
 * behind these values: README.md in this folder; the bytes: docs/protocol.md ("Collector").
 */

/** Every node sends its snapshot to every collector it knows this often (±10%), by default. */
export const SNAPSHOT_INTERVAL_MS = 1_000;
/** Smallest and largest reporting interval a node may be configured with. */
export const SNAPSHOT_INTERVAL_MIN_MS = 100;
export const SNAPSHOT_INTERVAL_MAX_MS = 60_000;
/** A node whose last snapshot is older than this many of its own intervals is "stale"… */
export const STALE_AFTER_INTERVALS = 3;
/** …and is forgotten after this many. */
export const FORGET_AFTER_INTERVALS = 10;

/** A collector floods its advertisement this often (±10%). */
export const ADVERT_INTERVAL_MS = 5_000;
/** A collector not re-advertised for this long is forgotten (3 missed adverts). */
export const ADVERT_EXPIRY_MS = 3 * ADVERT_INTERVAL_MS;
/** Collectors one node knows (and reports to) at most; adverts of more are ignored and counted. */
export const MAX_COLLECTORS = 16;
/** How often a node looks for new neighbours (to hand them the adverts it knows). */
export const NEIGHBOUR_CHECK_INTERVAL_MS = 250;

/** Nodes one collector's model holds at most; snapshots from more are refused and counted. */
export const MAX_MODEL_NODES = 4_096;
/** Entries per snapshot at most: neighbours, routes, tags (a larger table is cut, flag TRUNCATED). */
export const MAX_SNAPSHOT_NEIGHBOURS = 1_024;
export const MAX_SNAPSHOT_ROUTES = 4_096;
export const MAX_TAGS = 16;
/** Longest tag and version string, bytes of UTF-8. */
export const MAX_TAG_BYTES = 32;
export const MAX_VERSION_BYTES = 32;
/**
 * A snapshot is not sent while the link toward the collector has more than this queued below the
 * module (counted `skipped_backlog`): reports never pile up behind a slow link.
 */
export const MAX_LINK_BACKLOG_BYTES = 256 * 1024;

/** Format version carried in every snapshot (docs/protocol.md). */
export const SNAPSHOT_FORMAT_VERSION = 1;

/**
 * Options of one node: the same set for `createNode(options)`, `skein node --flags`, a `--config`
 * file (JSON or YAML, same keys) and `SKEIN_*` environment variables (SKEIN_UDP_PORT, …).
 */
import type { LogLevel } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";

export interface NodeOptions {
  /** 1..2^32-1; random when not given (bound to the node's key once security lands). */
  nodeId?: NodeId;
  /** UDP port to listen on (0 = any free port). */
  udpPort?: number;
  /** TCP port to listen on (0 = any free port). */
  tcpPort?: number;
  /** Interface address to bind, default 127.0.0.1. */
  bind?: string;
  /** Seeds as `NODEID@ADDRESS`, e.g. `1@/ip4/127.0.0.1/udp/10001`. */
  seeds?: string[];
  /** Links kept at most, inbound and outbound together (default 32). */
  maxNeighbours?: number;
  /**
   * Discovery by tags: tags this node advertises (each 1..32 characters from a-z 0-9 . _ -, at most
   * 8). In CA mode only those its certificate carries; without it, the certificate's tags.
   */
  localTags?: string[];
  /**
   * Discovery by tags: link to the nodes carrying any of these tags, learned through the overlay.
   * Such a node links to its seeds and to those nodes only (within maxNeighbours).
   */
  connectTags?: string[];
  /** HOST:PORT for the HTTP API (/api/node, /metrics). */
  webAddr?: string;
  /** RTT matrix JSON file keyed by NodeIds: outgoing frames are delayed by half the RTT. */
  emulateLatency?: string;
  logLevel?: LogLevel | "silent";
  /** Keepalive probe period (default 1000 ms). */
  probeIntervalMs?: number;
  /** A link with nothing received for this long is down (default 5000 ms). */
  linkTimeoutMs?: number;
  /** Largest UDP datagram sent (default 1400 bytes; up to 65507 on loopback). */
  udpMtu?: number;
  /** Routing: cost added to every link's metric, ms one way (default 0.1): prefers fewer relays when gains are tiny. */
  routeHopCostMs?: number;
  /** Serve NATS clients (the NATS client protocol) on this TCP port (0 = any free port). */
  natsPort?: number;
  /** Interface for the NATS port, `HOST` or `HOST:PORT` (default: `bind`). A port here sets natsPort. */
  natsAddr?: string;
  /** The node's key file (`skein keygen --out FILE`). */
  key?: string;
  /**
   * Without `key`: the node key is loaded from (or created in) DATA_DIR/node.key, so a restarted
   * node keeps its identity. `skein node` defaults it to ./.skein; createNode() without `key` or
   * `dataDir` uses a fresh in-memory key.
   */
  dataDir?: string;
  /** Network admission by pre-shared key: a file of 64 hex characters (`skein keygen --network`). */
  networkKey?: string;
  /** Network admission by certificate: the network CA's public key file (`skein ca init`)… */
  ca?: string;
  /** …and this node's certificate (`skein ca sign`). Both or neither. */
  cert?: string;
  /** Collector (issue 6): keep the network model; with `webAddr`, serve /api/topology and the live web view at /. */
  collector?: boolean;
  /** Collector: how often this node reports its snapshot to the collectors (default 1000 ms). */
  collectorIntervalMs?: number;
}

export const NODE_OPTION_DEFAULTS = {
  bind: "127.0.0.1",
  maxNeighbours: 32,
  logLevel: "info",
  probeIntervalMs: 1000,
  linkTimeoutMs: 5000,
  udpMtu: 1400,
} as const;

/** `skein node`'s default data directory (createNode() has none: an in-memory key). */
export const CLI_DATA_DIR_DEFAULT = ".skein";

/** Configuration of one node engine: everything it needs from the outside, passed in. */
import type { Address, Seed } from "../core/address.js";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import type { Rng } from "../core/rng.js";
import { NODE_OPTION_DEFAULTS } from "./options.js";
import type { EngineSecurityOptions } from "./secure-paths.js";

/** Security (secure-paths.ts): keys, network admission, trust; every path is secured unless `insecure`. */
export interface EngineConfig extends EngineSecurityOptions {
  nodeId: NodeId;
  /** The addresses this node listens on, advertised to peers so they can connect. */
  listenAddresses: Address[];
  seeds: Seed[];
  maxNeighbours: number;
  probeIntervalMs: number;
  linkTimeoutMs: number;
  /** Largest UDP datagram the engine builds. */
  udpMtu: number;
  /** Routing: per-hop cost added to every link's metric, ms one way (default ROUTE_HOP_COST_MS). */
  routeHopCostMs?: number;
  /**
   * Discovery by tags (link/tags.ts): the tags this node advertises in peer exchange, valid and
   * sorted. In CA mode the caller keeps only those its certificate carries (effectiveLocalTags).
   */
  localTags?: string[];
  /**
   * Discovery by tags: link to the known nodes carrying any of these. Non-empty makes the node
   * selective: it links to its seeds and to such nodes, and no longer meshes with the others.
   */
  connectTags?: string[];
  rng: Rng;
  logger: Logger;
  /** Collector (module 5): this node keeps the network model and advertises itself as a collector. */
  collector?: boolean;
  /** Collector: how often this node reports its snapshot, ms (default SNAPSHOT_INTERVAL_MS). */
  collectorIntervalMs?: number;
  /** The software version reported in snapshots (the runtime passes the package version). */
  softwareVersion?: string;
  /** Transmit outputs carry the frames a record seals (`plaintext`): the simulator's frame tracing. */
  exposePlaintext?: boolean;
}

/** The engine's share of the node defaults (one source of truth: NODE_OPTION_DEFAULTS). */
export const ENGINE_DEFAULTS = {
  maxNeighbours: NODE_OPTION_DEFAULTS.maxNeighbours,
  probeIntervalMs: NODE_OPTION_DEFAULTS.probeIntervalMs,
  linkTimeoutMs: NODE_OPTION_DEFAULTS.linkTimeoutMs,
  udpMtu: NODE_OPTION_DEFAULTS.udpMtu,
} as const;

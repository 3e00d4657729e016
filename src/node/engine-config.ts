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
  rng: Rng;
  logger: Logger;
  /** Tags this node advertises (shown in the collector's view; tag discovery uses them too). */
  localTags?: string[];
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

/** Configuration of one node engine: everything it needs from the outside, passed in. */
import type { Address, Seed } from "../core/address.js";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import type { Rng } from "../core/rng.js";

export interface EngineConfig {
  nodeId: NodeId;
  /** The addresses this node listens on, advertised to peers so they can connect. */
  listenAddresses: Address[];
  seeds: Seed[];
  maxNeighbours: number;
  probeIntervalMs: number;
  linkTimeoutMs: number;
  /** Largest UDP datagram the engine builds. */
  udpMtu: number;
  rng: Rng;
  logger: Logger;
}

export const ENGINE_DEFAULTS = {
  maxNeighbours: 32,
  probeIntervalMs: 1000,
  linkTimeoutMs: 5000,
  udpMtu: 1400,
} as const;

/** Shared by the simulator tests. */
import type { NodeId } from "../../src/core/node-id.js";
import type { Simulator } from "../../src/sim/simulator.js";

/** The neighbours `id` has a link up with, in NodeId order. */
export function upPeers(sim: Simulator, id: NodeId): NodeId[] {
  return sim
    .neighbours(id)
    .filter((n) => n.state === "up")
    .map((n) => n.id)
    .sort((a, b) => a - b);
}

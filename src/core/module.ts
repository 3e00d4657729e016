/**
 * The module contract (DESIGN.md, principle 3). Every protocol module — built in or a user's own
 * service — has a numeric id and a name, its own messages and codec, `Control` calls in and `Event`
 * news out as discriminated unions, explicit states, and tunables with units in their names.
 *
 * Modules are pure: time comes in as `now` (ms), randomness through `Rng`, and a module asks for a
 * timer by reporting its next deadline. The node engine (node/engine.ts) composes them.
 */
import type { NodeId } from "./node-id.js";
import type { Rng } from "./rng.js";
import type { Logger } from "./log.js";
import type { SkeinError } from "./errors.js";

/** Module ids carried in the frame header (docs/protocol.md, "Module ids"). */
export const ModuleId = {
  Link: 1,
  Data: 2,
  /** Route exchange (LINK frames, hop by hop) and its end-to-end reports and probes (ROUTED frames). */
  Routing: 3,
  /** Pub/sub overlay: interest propagation and multi-destination data (features/pubsub/overlay.ts). */
  PubSub: 4,
  /** Collector: collector adverts (flooded) and node snapshots routed to collectors (features/collector/). */
  Collector: 5,
} as const;
export type ModuleId = (typeof ModuleId)[keyof typeof ModuleId];

export interface InboundFrame {
  /** The neighbour the frame arrived from. */
  neighbour: NodeId;
  /** The node that created the frame (differs from `neighbour` once frames are relayed). */
  source: NodeId;
  reliable: boolean;
  /** A view into the received packet: copy it before keeping it past the call. */
  payload: Uint8Array;
}

export interface SendOptions {
  /** Reliable-ordered class (default) or datagram class (may drop). */
  reliable: boolean;
}

/** What the engine offers a module. */
export interface ModuleHost {
  readonly localId: NodeId;
  readonly rng: Rng;
  readonly logger: Logger;
  /**
   * Sends `payload` to module `module` on node `destination`. Returns the error (it is not thrown) when it cannot
   * be sent (no route, queue full, too large); nothing is sent then.
   */
  send(destination: NodeId, module: number, payload: Uint8Array, options: SendOptions): SkeinError | undefined;
}

/**
 * What the engine offers modules that need the routing view (pub/sub): the up neighbours, the
 * next hop and metric toward a node, sending on one direct link, and a link's backlog. All read
 * the engine's current state; none of them touch engine internals beyond that.
 */
export interface RouteAwareHost extends ModuleHost {
  /** Neighbours whose link is up now. */
  neighbours(): NodeId[];
  /** The neighbour frames to `destination` leave through now, or undefined (unreachable). */
  nextHop(destination: NodeId): NodeId | undefined;
  /** The selected route's metric toward `destination` in ms (one way), Infinity when unreachable. */
  routeMetricMs(destination: NodeId): number;
  /** Sends a ROUTED frame on the direct link to `neighbour` (destination = neighbour), whatever the routes say. */
  sendToNeighbour(neighbour: NodeId, module: number, payload: Uint8Array, options: SendOptions): SkeinError | undefined;
  /** Bytes queued inside the engine on the link to `neighbour` (frames not yet packed, the UDP reliable queue). */
  linkBacklogBytes(neighbour: NodeId): number;
}

export interface EngineModule<Control, Event> {
  readonly id: number;
  readonly name: string;
  onFrame(now: number, frame: InboundFrame): void;
  control(now: number, control: Control): void;
  tick(now: number): void;
  /** The earliest time the module wants `tick`, or Infinity. */
  nextDeadline(): number;
  /** Events the module produced, drained by the engine. */
  pollEvent(): Event | undefined;
}

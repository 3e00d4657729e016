/**
 * The contract between the pure node engine and a driver (runtime/ with real sockets and timers,
 * or sim/ with a virtual network and virtual time). The driver:
 *
 *  1. calls the input methods with the current time `now` (ms, monotonic, any origin);
 *  2. after each call drains `pollOutput()` until it returns undefined and carries the outputs out;
 *  3. arranges a call to `tick(now)` at `nextDeadline()` (re-read after every input).
 *
 * Paths: a path is one transport-level conversation with a remote address (a TCP connection, or a
 * UDP remote address). The engine allocates every PathId, for paths it opens (`open_path` output)
 * and for paths the driver reports (`acceptPath`).
 */
import type { Address, TransportKind } from "../core/address.js";
import type { NodeId } from "../core/node-id.js";
import type { DestinationState, ProbeResult } from "../routing/router.js";

export type { ProbeHop, ProbeResult } from "../routing/router.js";

export type PathId = number;

export type EngineOutput =
  /**
   * Send one packet on a path: a UDP datagram (one unit: a handshake message or a sealed record),
   * or bytes to append to a TCP stream. On stream paths a packet may come in pieces: `rest`, to
   * be written right after `packet` without copying (a writev: a record sealed by parts, or in
   * insecure mode a large frame's payload); never on UDP paths. `plaintext` (only when the engine
   * runs with `exposePlaintext`, the simulator's tracing) is the frames the record seals.
   */
  | { kind: "transmit"; pathId: PathId; packet: Uint8Array; rest?: readonly Uint8Array[] | undefined; peer: NodeId | undefined; plaintext?: Uint8Array | undefined }
  /**
   * Open a path to `address`. The driver answers with `pathOpened` (TCP connected; UDP at once)
   * or `pathClosed` (could not connect).
   */
  | { kind: "open_path"; pathId: PathId; address: Address }
  /** Close a path. The driver must not call `pathClosed` for it afterwards. */
  | { kind: "close_path"; pathId: PathId }
  | { kind: "event"; event: NodeEvent };

export interface NeighbourInfo {
  id: NodeId;
  address: string;
  transport: TransportKind;
  /** Which side opened the link. */
  inbound: boolean;
  state: "connecting" | "up" | "down";
  srttMs: number | undefined;
  rttvarMs: number | undefined;
  /** Fraction of probes lost over the sliding window, 0..1. */
  loss: number;
  upSinceMs: number | undefined;
  /** How the peer's NodeId is bound to its key (secured links). */
  binding?: "derived" | "certificate" | "claimed" | undefined;
  /** First 8 bytes of the peer's Ed25519 key, hex. */
  keyFingerprint?: string | undefined;
  /** Discovery by tags: the peer's tags (its own word once it said it, checked against its certificate in CA mode). */
  tags?: string[] | undefined;
}

/** One route of the table (`node.routes()`, GET /api/routes), metrics in ms one way. */
export interface RouteView {
  destination: NodeId;
  /** "routed", "unreachable", or "starving" (routes known, none loop-free yet: a seqno request is out). */
  state: DestinationState;
  nextHop: NodeId | undefined;
  /** One-way delay estimate of the selected route in ms (link costs summed), undefined when unreachable. */
  metricMs: number | undefined;
  /** Links on the selected route (1 = direct). */
  hops: number;
  seqno: number;
  /** Every route known for the destination, best first (the selected one included). */
  alternates: { via: NodeId; metricMs: number | undefined; hops: number; feasible: boolean; usable: boolean }[];
}

export type NodeEvent =
  | { kind: "link_up"; peer: NodeId; address: string; transport: TransportKind; inbound: boolean }
  | { kind: "link_down"; peer: NodeId; reason: string }
  /** Emitted when the smoothed RTT moved by more than RTT_EVENT_CHANGE_RATIO since last reported. */
  | { kind: "rtt"; peer: NodeId; srttMs: number; rttvarMs: number; loss: number }
  /** A raw data-service message (node.send on the other side). */
  | { kind: "message"; from: NodeId; data: Uint8Array; reliable: boolean }
  /** The next hop toward `destination` changed (undefined: no route any more). */
  | { kind: "route"; destination: NodeId; nextHop: NodeId | undefined; previousNextHop: NodeId | undefined; metricMs: number | undefined; hops: number }
  /** A relay dropped a frame of ours to `destination`: it has no route there. */
  | { kind: "unreachable"; destination: NodeId; reportedBy: NodeId }
  /** A ping or trace finished or timed out (`engine.ping` / `engine.trace`). */
  | { kind: "probe"; result: ProbeResult };

export type NodeEventKind = NodeEvent["kind"];

/** The engine's side of the contract, as the drivers see it. */
export interface EngineIo {
  acceptPath(now: number, address: Address): PathId | undefined;
  pathOpened(now: number, pathId: PathId): void;
  pathClosed(now: number, pathId: PathId, reason: string): void;
  /**
   * One packet (a UDP datagram, or one or more whole frames cut from a TCP stream). The engine may
   * keep views into `packet` (delivered messages are not copied): the driver must not reuse it.
   */
  receive(now: number, pathId: PathId, packet: Uint8Array): void;
  tick(now: number): void;
  nextDeadline(): number;
  pollOutput(): EngineOutput | undefined;
}

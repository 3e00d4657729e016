/**
 * The runtime driver of one NodeEngine (src/node/io.ts): it stamps every input with a monotonic
 * `now` (performance.now()), drains `pollOutput()` after every input and carries the outputs to
 * the transports, and keeps one timer armed for `nextDeadline()`.
 *
 * Speed matters here (the data path runs through it for every packet), so:
 *  - a drain is one loop over `pollOutput()`; the TCP sockets written during it are corked and
 *    uncorked once at its end, so the frames of one drain leave in one writev;
 *  - API calls (node.send) do not drain one by one: they schedule one drain with setImmediate,
 *    or drain at once when more than DRAIN_BATCH_BYTES were queued since the last drain;
 *  - the timer is only re-armed when the deadline moved earlier; a timer that fires before the
 *    current deadline re-arms itself without ticking the engine;
 *  - no closure or promise is created per packet.
 */
import type { Address, TransportKind } from "../core/address.js";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import type { NodeEngine } from "../node/engine.js";
import type { NodeEvent, PathId } from "../node/io.js";
import type { LatencyEmulator } from "./latency.js";
import { bump, type Transport, type TransportSink } from "./transport.js";

/**
 * API bytes queued into the engine since the last drain that force a drain right away. As large
 * as STREAM_RECORD_MAX_BYTES, so that a burst of large sends fills whole records.
 */
export const DRAIN_BATCH_BYTES = 512 * 1024;

export interface DriverOptions {
  engine: NodeEngine;
  transports: Transport[];
  latency?: LatencyEmulator | undefined;
  logger: Logger;
  /** Every engine event, in order. Exceptions thrown by it are logged and swallowed. */
  onEvent: (event: NodeEvent) => void;
  /** Called after each drain while `wantsWake()` is true (congested senders may go on). */
  onWake?: () => void;
  wantsWake?: () => boolean;
  /** Monotonic milliseconds; performance.now() unless a test passes its own. */
  clock?: () => number;
}

export class Driver implements TransportSink {
  readonly engine: NodeEngine;
  readonly counters = new Map<string, number>();
  private readonly transports = new Map<TransportKind, Transport>();
  private readonly transportList: Transport[];
  private readonly latency: LatencyEmulator | undefined;
  private readonly logger: Logger;
  private readonly onEvent: (event: NodeEvent) => void;
  private readonly onWake: (() => void) | undefined;
  private readonly wantsWake: () => boolean;
  readonly now: () => number;
  /** Which transport carries each live path. */
  private readonly paths = new Map<PathId, Transport>();
  /** The path each peer was last transmitted to (for congestion checks). */
  private readonly peerPaths = new Map<NodeId, PathId>();
  private draining = false;
  private drainScheduled = false;
  private undrainedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Infinity;
  private stopped = false;

  constructor(options: DriverOptions) {
    this.engine = options.engine;
    this.transportList = options.transports;
    for (const transport of options.transports) {
      this.transports.set(transport.kind, transport);
      transport.setSink(this);
    }
    this.latency = options.latency;
    this.logger = options.logger;
    this.onEvent = options.onEvent;
    this.onWake = options.onWake;
    this.wantsWake = options.wantsWake ?? (() => false);
    this.now = options.clock ?? (() => performance.now());
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** True while a drain is carrying outputs out (an event listener runs inside it). */
  get isDraining(): boolean {
    return this.draining;
  }

  start(): void {
    this.guard("start", () => this.engine.start(this.now()));
    this.drain();
  }

  // ---- TransportSink: inputs from the transports ----

  acceptPath(address: Address): PathId | undefined {
    if (this.stopped) return undefined;
    const transport = this.transports.get(address.transport);
    if (transport === undefined) return undefined;
    let pathId: PathId | undefined;
    try {
      pathId = this.engine.acceptPath(this.now(), address);
    } catch (error) {
      this.engineError("acceptPath", error);
      return undefined;
    }
    if (pathId !== undefined) this.paths.set(pathId, transport);
    // Not drained here: the transport registers the path when this returns, and an output for it
    // (a hello) must find it registered. The receive that usually follows drains; else setImmediate.
    this.scheduleDrain();
    return pathId;
  }

  pathOpened(pathId: PathId): void {
    if (this.stopped || !this.paths.has(pathId)) return;
    this.guard("pathOpened", () => this.engine.pathOpened(this.now(), pathId));
    this.drain();
  }

  pathClosed(pathId: PathId, reason: string): void {
    if (this.stopped || !this.paths.delete(pathId)) return;
    this.latency?.forget(pathId);
    this.guard("pathClosed", () => this.engine.pathClosed(this.now(), pathId, reason));
    this.drain();
  }

  receive(pathId: PathId, packet: Uint8Array): void {
    if (this.stopped) return;
    try {
      this.engine.receive(this.now(), pathId, packet);
    } catch (error) {
      this.engineError("receive", error);
    }
    this.drain();
  }

  writable(_pathId: PathId): void {
    if (this.onWake !== undefined && this.wantsWake()) this.onWake();
  }

  // ---- API side ----

  /**
   * Runs an API call on the engine (e.g. send) and arranges the drain: batched with setImmediate,
   * or at once when `bytes` pushes the undrained total over DRAIN_BATCH_BYTES. Engine exceptions
   * propagate to the caller (they are the API's errors). Returns true when it drained at once.
   */
  noteApiCall(bytes: number): boolean {
    this.undrainedBytes += bytes;
    if (this.undrainedBytes >= DRAIN_BATCH_BYTES) {
      this.drain();
      return true;
    }
    this.scheduleDrain();
    return false;
  }

  /**
   * Bytes waiting for `destination` below the API: inside the engine, in the latency queue, in the
   * socket, on the way to its next hop (the destination itself, or a relay).
   */
  queuedBytes(destination: NodeId): number {
    let bytes = this.engine.backlogBytes(destination);
    const pathId = this.peerPaths.get(this.engine.nextHop(destination) ?? destination);
    if (pathId !== undefined) {
      const transport = this.paths.get(pathId);
      if (transport !== undefined) bytes += transport.queuedBytes(pathId);
      if (this.latency !== undefined) bytes += this.latency.queuedBytes(pathId);
    }
    return bytes;
  }

  /** A path's transport-level write queue (socket plus latency queue), for tests and metrics. */
  pathQueuedBytes(pathId: PathId): number {
    const transport = this.paths.get(pathId);
    return (transport?.queuedBytes(pathId) ?? 0) + (this.latency?.queuedBytes(pathId) ?? 0);
  }

  /** Latency queue released packets (called by the emulator). */
  released(_pathId: PathId): void {
    if (this.onWake !== undefined && this.wantsWake()) this.onWake();
  }

  // ---- the drain loop ----

  scheduleDrain(): void {
    if (this.drainScheduled || this.stopped) return;
    this.drainScheduled = true;
    setImmediate(this.scheduledDrain);
  }

  private readonly scheduledDrain = (): void => {
    this.drainScheduled = false;
    this.drain();
  };

  /** Drains every pending output. Re-entrant calls (from inputs made while draining) return at once. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.undrainedBytes = 0;
    try {
      for (;;) {
        let output;
        try {
          output = this.engine.pollOutput();
        } catch (error) {
          this.engineError("pollOutput", error);
          break;
        }
        if (output === undefined) break;
        switch (output.kind) {
          case "transmit": {
            const transport = this.paths.get(output.pathId);
            if (transport === undefined) {
              bump(this.counters, "transmit_on_unknown_path");
              break;
            }
            const peer = output.peer;
            if (peer !== undefined && this.peerPaths.get(peer) !== output.pathId) this.peerPaths.set(peer, output.pathId);
            const rest = output.rest;
            if (this.latency !== undefined) {
              this.latency.transmit(transport, output.pathId, output.packet, peer);
              if (rest !== undefined) for (const piece of rest) this.latency.transmit(transport, output.pathId, piece, peer);
            } else {
              transport.transmit(output.pathId, output.packet);
              // Stream paths only: the next writes join the first in the corked writev.
              if (rest !== undefined) for (const piece of rest) transport.transmit(output.pathId, piece);
            }
            break;
          }
          case "open_path": {
            const transport = this.transports.get(output.address.transport);
            if (transport === undefined || this.stopped) {
              const reason = this.stopped ? "node is closing" : `this node has no ${output.address.transport} transport (give it a --${output.address.transport}-port)`;
              this.guard("pathClosed", () => this.engine.pathClosed(this.now(), output.pathId, reason));
              break;
            }
            this.paths.set(output.pathId, transport);
            transport.open(output.pathId, output.address);
            break;
          }
          case "close_path": {
            const transport = this.paths.get(output.pathId);
            if (transport === undefined) break;
            this.paths.delete(output.pathId);
            if (this.latency !== undefined) this.latency.close(transport, output.pathId);
            else transport.close(output.pathId);
            break;
          }
          case "event": {
            try {
              this.onEvent(output.event);
            } catch (error) {
              bump(this.counters, "listener_error");
              this.logger.error({ err: errorText(error), event: output.event.kind }, "event listener threw");
            }
            break;
          }
        }
      }
    } finally {
      for (const transport of this.transportList) transport.flush();
      this.draining = false;
    }
    if (!this.stopped) this.armTimer();
    if (this.onWake !== undefined && this.wantsWake()) this.onWake();
  }

  private armTimer(): void {
    let deadline: number;
    try {
      deadline = this.engine.nextDeadline();
    } catch (error) {
      this.engineError("nextDeadline", error);
      return;
    }
    if (!(deadline < Infinity)) return; // Infinity or NaN: nothing to wake for (an armed timer re-checks)
    if (this.timer !== undefined) {
      if (deadline >= this.timerDeadline) return;
      clearTimeout(this.timer);
    }
    this.timerDeadline = deadline;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(deadline - this.now())));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    if (this.stopped) return;
    const now = this.now();
    let deadline: number;
    try {
      deadline = this.engine.nextDeadline();
    } catch (error) {
      this.engineError("nextDeadline", error);
      return;
    }
    if (now >= deadline) {
      try {
        this.engine.tick(now);
      } catch (error) {
        this.engineError("tick", error);
      }
    }
    this.drain();
  };

  // ---- shutdown ----

  /** engine.shutdown, drain its goodbyes, release the latency queues, stop the timer. */
  shutdown(): void {
    if (this.stopped) return;
    this.guard("shutdown", () => this.engine.shutdown(this.now()));
    this.drain();
    this.stopped = true;
    this.latency?.flushAll();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.paths.clear();
  }

  private guard(what: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.engineError(what, error);
    }
  }

  private engineError(what: string, error: unknown): void {
    bump(this.counters, `engine_error_${what}`);
    this.logger.error({ err: errorText(error), call: what }, "engine call threw");
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.stack ?? error.message;
  return String(error);
}

/**
 * The deterministic simulator: N node engines on a virtual network, in virtual time. It is a driver
 * of `EngineIo` (node/io.ts) exactly like the runtime, with a virtual UDP instead of sockets:
 *
 *  - every node listens on one fake address `/ip4/10.a.b.c/udp/7000` (c = id for ids up to 254);
 *  - `open_path` → `pathOpened` at the same virtual time (UDP needs no handshake); the path is the
 *    remote address, the simulator remembers address → path for each node;
 *  - `transmit` → the network (network.ts) drops the packet or delivers a copy after RTT/2 ± jitter;
 *    on arrival the receiver's path for the sender's address is looked up, and for an unknown
 *    sender `acceptPath(now, senderAddress)` is called first (undefined = refused: dropped);
 *  - `close_path` → forgotten; a later packet from that address is a new path again;
 *  - `event` → recorded with its time and node;
 *  - `tick(now)` is called at `nextDeadline()`, re-read after every input.
 *
 * Determinism: one seeded PRNG, forked once per node (each incarnation of a node gets a fork of that
 * node's stream) and once for the network; events at the same time run in insertion order; maps
 * are iterated in insertion order. Nothing reads the clock or Math.random.
 */
import { type Address, formatAddress } from "../core/address.js";
import { SkeinError } from "../core/errors.js";
import { type Logger, nullLogger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import { SeededRng } from "../core/rng.js";
import { SeededEntropy } from "../core/entropy.js";
import { type NodeIdentity, generateIdentity } from "../crypto/identity.js";
import { NodeEngine } from "../node/engine.js";
import { ENGINE_DEFAULTS, type EngineConfig } from "../node/engine-config.js";
import type { EngineIo, EngineOutput, NeighbourInfo, NodeEvent, PathId } from "../node/io.js";
import { EventQueue } from "./event-queue.js";
import { type Matrix, matrixNames, directedRtt } from "./matrix.js";
import { type DropReason, type NetworkOptions, SimNetwork } from "./network.js";
import { concatBytes } from "../crypto/primitives.js";

/** What the simulator needs of an engine (NodeEngine has it; tests may pass a fake). */
export interface SimEngine extends EngineIo {
  readonly id: NodeId;
  start(now: number): void;
  neighbours(): NeighbourInfo[];
  shutdown(now: number): void;
}

export type EngineTunables = Partial<Pick<EngineConfig, "maxNeighbours" | "probeIntervalMs" | "linkTimeoutMs" | "udpMtu" | "routeHopCostMs">>;

export interface SimulatorOptions<E extends SimEngine = NodeEngine> {
  matrix: Matrix;
  /** Simulate the first N names of the matrix (sorted); default all. */
  nodes?: number;
  seed?: number;
  /** Which nodes every node is given as seeds (default [1]); a node never gets itself. */
  seeds?: readonly NodeId[];
  engine?: EngineTunables;
  network?: NetworkOptions;
  /**
   * Seed nodes start at 0; every other node starts at a random time in [0, startSpreadMs]
   * (default 500), drawn from the simulator's PRNG.
   */
  startSpreadMs?: number;
  /** Do not start nodes automatically (call `start(id)` yourself). Default false. */
  manualStart?: boolean;
  /** Bounds: a run stops with SkeinError SIM_LIMIT past these (defaults 1 h virtual, 20 M events). */
  maxDurationMs?: number;
  maxEvents?: number;
  /** At most this many engine events are kept in `records` (default 200 000); later ones are counted only. */
  maxRecords?: number;
  /** Base logger; each node logs through a child `{ node: id }` (default nullLogger). */
  logger?: Logger;
  /** Builds an engine (default `new NodeEngine(config)`). */
  createEngine?: (config: EngineConfig) => E;
}

export interface SimRecord {
  at: number;
  node: NodeId;
  event: NodeEvent;
}

/**
 * One packet a node transmitted, as the network saw it (`onTransmit`): the frames a scenario can
 * observe to learn the hops frames actually took. `packet` is the simulator's copy (do not modify).
 */
/** The simulated wall clock starts here (2025-01-01T00:00:00Z): certificates and end-to-end sessions see a fixed epoch. */
export const SIM_WALL_CLOCK_EPOCH_MS = Date.UTC(2025, 0, 1);

export interface TransmitRecord {
  at: number;
  from: NodeId;
  to: NodeId;
  packet: Uint8Array;
  /** The frames the packet's record seals (undefined for handshake units): what tracing reads. */
  plaintext: Uint8Array | undefined;
  /** False when the network dropped it (loss, partition, blocked link). */
  delivered: boolean;
}

/** Things done to the simulated world (crashes, partitions…), for reports and debugging. */
export interface SimFault {
  at: number;
  action: string;
  detail: string;
}

export interface SimStats {
  now: number;
  eventsProcessed: number;
  packetsSent: number;
  packetsDelivered: number;
  bytesSent: number;
  /** Packets dropped, by reason (network reasons, and node_down, no_host, unknown_path, refused). */
  dropped: Record<string, number>;
  /** Engine events, by kind. */
  engineEvents: Record<string, number>;
  recordsDropped: number;
  /**
   * Ticks after which the engine still wanted a tick at or before now (an engine bug: its
   * `nextDeadline()` and its own timeout checks disagree); each was retried 1 µs later.
   */
  stalledTicks: number;
}

interface SimNode<E> {
  readonly id: NodeId;
  readonly name: string;
  readonly address: Address;
  readonly addressKey: string;
  readonly rngSource: SeededRng;
  /** Randomness for handshakes and end-to-end sessions: forked again at every boot. */
  readonly entropySource: SeededEntropy;
  /** The node's keys: generated once, kept across restarts (as a key file would be). */
  readonly identity: NodeIdentity;
  engine: E | undefined;
  /** Bumped at every crash/restart: events for an older incarnation are ignored. */
  incarnation: number;
  /** remote address key, per path */
  paths: Map<PathId, string>;
  pathByRemote: Map<string, PathId>;
  /** Time of the live tick event, or Infinity. */
  tickAt: number;
  /** Identifies the live tick event (older ones are stale). */
  tickToken: number;
  /** Ticks in a row after which the engine still wanted a tick at once (busy-loop detection). */
  stalls: number;
}

type Scheduled =
  | { kind: "start"; node: NodeId; incarnation: number }
  | { kind: "tick"; node: NodeId; incarnation: number; token: number }
  | { kind: "path_opened"; node: NodeId; incarnation: number; pathId: PathId }
  | { kind: "path_closed"; node: NodeId; incarnation: number; pathId: PathId; reason: string }
  | { kind: "deliver"; to: NodeId; from: NodeId; packet: Uint8Array }
  | { kind: "action"; run: () => void };

export const SIM_UDP_PORT = 7000;
const MAX_OUTPUTS_PER_FLUSH = 1_000_000;
/** See `flush`: how much later a tick that made no progress is retried, and how often in a row. */
export const STALLED_TICK_RETRY_MS = 0.001;
const MAX_STALLED_TICKS = 10_000;

/** The fake address of node `id`: /ip4/10.0.0.id/udp/7000 up to 254, then more octets. */
export function simAddress(id: NodeId): Address {
  return { transport: "udp", host: `10.${(id >>> 16) & 0xff}.${(id >>> 8) & 0xff}.${id & 0xff}`, port: SIM_UDP_PORT };
}

export class Simulator<E extends SimEngine = NodeEngine> {
  readonly network: SimNetwork;
  readonly records: SimRecord[] = [];
  readonly faults: SimFault[] = [];
  private readonly queue = new EventQueue<Scheduled>();
  private readonly nodes: SimNode<E>[] = [];
  private readonly byAddress = new Map<string, NodeId>();
  private readonly seedIds: NodeId[];
  private readonly tunables: Required<Omit<EngineTunables, "routeHopCostMs">> & Pick<EngineTunables, "routeHopCostMs">;
  private readonly logger: Logger;
  private readonly createEngine: (config: EngineConfig) => E;
  private readonly listeners: ((record: SimRecord) => void)[] = [];
  private readonly transmitListeners: ((record: TransmitRecord) => void)[] = [];
  private readonly maxDurationMs: number;
  private readonly maxEvents: number;
  private readonly maxRecords: number;
  private current = 0;
  private processed = 0;
  private packetsSent = 0;
  private packetsDelivered = 0;
  private bytesSent = 0;
  private recordsDropped = 0;
  private stalledTicks = 0;
  private readonly dropped: Record<string, number> = {};
  private readonly engineEvents: Record<string, number> = {};
  readonly seed: number;

  constructor(options: SimulatorOptions<E>) {
    const names = matrixNames(options.matrix);
    const n = options.nodes ?? names.length;
    if (!Number.isInteger(n) || n < 1 || n > names.length) throw new RangeError(`nodes must be an integer in 1..${names.length} (the matrix's size), got ${n}`);
    if (n > 0xfffffe) throw new RangeError(`at most ${0xfffffe} simulated nodes`);
    this.seed = options.seed ?? 1;
    const rng = new SeededRng(this.seed);
    const chosen = names.slice(0, n);
    this.network = new SimNetwork(n, (a, b) => directedRtt(options.matrix, chosen[a - 1]!, chosen[b - 1]!), rng.fork(), options.network);
    const startRng = rng.fork();
    this.seedIds = [...(options.seeds ?? [1])];
    for (const id of this.seedIds) if (!Number.isInteger(id) || id < 1 || id > n) throw new RangeError(`seed node ${id} is not in 1..${n}`);
    this.tunables = {
      maxNeighbours: options.engine?.maxNeighbours ?? ENGINE_DEFAULTS.maxNeighbours,
      probeIntervalMs: options.engine?.probeIntervalMs ?? ENGINE_DEFAULTS.probeIntervalMs,
      linkTimeoutMs: options.engine?.linkTimeoutMs ?? ENGINE_DEFAULTS.linkTimeoutMs,
      udpMtu: options.engine?.udpMtu ?? ENGINE_DEFAULTS.udpMtu,
      routeHopCostMs: options.engine?.routeHopCostMs,
    };
    this.logger = options.logger ?? nullLogger;
    this.createEngine = options.createEngine ?? ((config) => new NodeEngine(config) as unknown as E);
    this.maxDurationMs = options.maxDurationMs ?? 3_600_000;
    this.maxEvents = options.maxEvents ?? 20_000_000;
    this.maxRecords = options.maxRecords ?? 200_000;
    const entropy = new SeededEntropy(`skein simulator ${this.seed}`);
    for (let id = 1; id <= n; id++) {
      const nodeEntropy = entropy.fork();
      const address = simAddress(id);
      const addressKey = formatAddress(address);
      this.nodes.push({
        id,
        name: chosen[id - 1]!,
        address,
        addressKey,
        rngSource: rng.fork(),
        entropySource: nodeEntropy,
        identity: generateIdentity(nodeEntropy),
        engine: undefined,
        incarnation: 0,
        paths: new Map(),
        pathByRemote: new Map(),
        tickAt: Infinity,
        tickToken: 0,
        stalls: 0,
      });
      this.byAddress.set(addressKey, id);
    }
    const spread = options.startSpreadMs ?? 500;
    if (!options.manualStart) {
      for (const node of this.nodes) {
        const at = this.seedIds.includes(node.id) ? 0 : startRng.nextFloat() * spread;
        this.queue.push(at, { kind: "start", node: node.id, incarnation: node.incarnation });
      }
    }
  }

  /** Virtual time, ms since the start of the run. */
  get now(): number {
    return this.current;
  }

  get size(): number {
    return this.nodes.length;
  }

  nodeIds(): NodeId[] {
    return this.nodes.map((node) => node.id);
  }

  private node(id: NodeId): SimNode<E> {
    const node = this.nodes[id - 1];
    if (node === undefined) throw new RangeError(`node ${id} is not in 1..${this.nodes.length}`);
    return node;
  }

  /** The matrix name node `id` stands for. */
  name(id: NodeId): string {
    return this.node(id).name;
  }

  address(id: NodeId): string {
    return this.node(id).addressKey;
  }

  /** The node's engine, or undefined while it is down (crashed, or not started yet). */
  engine(id: NodeId): E | undefined {
    return this.node(id).engine;
  }

  isUp(id: NodeId): boolean {
    return this.node(id).engine !== undefined;
  }

  /** The node's neighbours as its engine sees them ([] while it is down). */
  neighbours(id: NodeId): NeighbourInfo[] {
    return this.node(id).engine?.neighbours() ?? [];
  }

  /** Undirected pairs [a, b] (a < b) where both sides see the link as up. */
  upLinks(): [NodeId, NodeId][] {
    const up = new Set<number>();
    const n = this.nodes.length;
    const links: [NodeId, NodeId][] = [];
    for (const node of this.nodes) {
      for (const neighbour of this.neighbours(node.id)) {
        if (neighbour.state === "up" && neighbour.id >= 1 && neighbour.id <= n) up.add(node.id * (n + 1) + neighbour.id);
      }
    }
    for (let a = 1; a <= n; a++) for (let b = a + 1; b <= n; b++) if (up.has(a * (n + 1) + b) && up.has(b * (n + 1) + a)) links.push([a, b]);
    return links;
  }

  /** Calls `listener` for every engine event from now on. Returns a function that unsubscribes. */
  onEvent(listener: (record: SimRecord) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /**
   * Calls `listener` for every packet a node transmits from now on (after the network decided its
   * fate). Returns a function that unsubscribes.
   */
  onTransmit(listener: (record: TransmitRecord) => void): () => void {
    this.transmitListeners.push(listener);
    return () => {
      const index = this.transmitListeners.indexOf(listener);
      if (index >= 0) this.transmitListeners.splice(index, 1);
    };
  }

  stats(): SimStats {
    return {
      now: this.current,
      eventsProcessed: this.processed,
      packetsSent: this.packetsSent,
      packetsDelivered: this.packetsDelivered,
      bytesSent: this.bytesSent,
      dropped: { ...this.dropped },
      engineEvents: { ...this.engineEvents },
      recordsDropped: this.recordsDropped,
      stalledTicks: this.stalledTicks,
    };
  }

  // ---- the world ---------------------------------------------------------------------------------

  /** Runs `action` at virtual time `at` (≥ now), between events. */
  at(at: number, action: () => void): void {
    this.queue.push(Math.max(at, this.current), { kind: "action", run: action });
  }

  /** Starts a node that is down (with `manualStart`, or after `crash` use `restart`). */
  start(id: NodeId): void {
    const node = this.node(id);
    if (node.engine !== undefined) throw new RangeError(`node ${id} is already running`);
    this.boot(node);
  }

  /** The node dies at once: its engine is discarded, packets to it are dropped. */
  crash(id: NodeId): void {
    const node = this.node(id);
    this.fault("crash", `node ${id}`);
    this.down(node);
  }

  /** Graceful stop: `shutdown(now)` (goodbyes go out), then the node is down like after a crash. */
  stop(id: NodeId): void {
    const node = this.node(id);
    this.fault("stop", `node ${id}`);
    if (node.engine !== undefined) {
      node.engine.shutdown(this.current);
      this.flush(node);
    }
    this.down(node);
  }

  /** A fresh engine with the same id, address and seeds; it rejoins through its seeds. */
  restart(id: NodeId): void {
    const node = this.node(id);
    this.fault("restart", `node ${id}`);
    if (node.engine !== undefined) this.down(node);
    this.boot(node);
  }

  /** See SimNetwork.partition; logged as a fault. */
  partition(groups: readonly (readonly NodeId[])[]): number {
    const handle = this.network.partition(groups);
    this.fault("partition", `#${handle} ${groups.map((group) => `[${group.join(",")}]`).join(" | ")}`);
    return handle;
  }

  heal(handle?: number): void {
    this.fault("heal", handle === undefined ? "all partitions" : `#${handle}`);
    this.network.heal(handle);
  }

  /** The link a–b goes down (packets dropped both ways) until `linkUp(a, b)`. */
  linkDown(a: NodeId, b: NodeId): void {
    this.fault("link_down", `${a}-${b}`);
    this.network.block(a, b);
  }

  linkUp(a: NodeId, b: NodeId): void {
    this.fault("link_up", `${a}-${b}`);
    this.network.unblock(a, b);
  }

  /**
   * Calls the engine of node `id` (e.g. `send`) at the current virtual time and carries out what it
   * produced. Throws when the node is down.
   */
  call<R>(id: NodeId, fn: (engine: E, now: number) => R): R {
    const node = this.node(id);
    const engine = node.engine;
    if (engine === undefined) throw new SkeinError("SIM_NODE_DOWN", `node ${id} is down: restart it first`);
    try {
      return fn(engine, this.current);
    } finally {
      if (node.engine === engine) this.flush(node);
    }
  }

  // ---- running -----------------------------------------------------------------------------------

  /** Processes every event up to and including `time`, then sets now = time. */
  runUntil(time: number): void {
    if (time > this.maxDurationMs) {
      throw new SkeinError("SIM_LIMIT", `run to ${time} ms exceeds the simulator's maxDurationMs (${this.maxDurationMs} ms): raise it in SimulatorOptions`);
    }
    for (;;) {
      const next = this.queue.peek();
      if (next === undefined || next.at > time) break;
      this.queue.pop();
      if (++this.processed > this.maxEvents) {
        throw new SkeinError("SIM_LIMIT", `the run processed more than maxEvents (${this.maxEvents}) events by ${next.at.toFixed(3)} ms: an engine may be busy-looping, or raise maxEvents`);
      }
      this.current = next.at;
      this.dispatch(next.item);
    }
    if (time > this.current) this.current = time;
  }

  runFor(durationMs: number): void {
    this.runUntil(this.current + durationMs);
  }

  /**
   * Runs until `predicate()` holds (checked after every event at a new time, and at `deadline`) or
   * the deadline passes; returns whether it held.
   */
  runUntilCondition(predicate: () => boolean, deadline: number): boolean {
    if (predicate()) return true;
    for (;;) {
      const next = this.queue.peek();
      if (next === undefined || next.at > deadline) {
        this.runUntil(deadline);
        return predicate();
      }
      this.runUntil(next.at);
      if (predicate()) return true;
    }
  }

  // ---- internals ---------------------------------------------------------------------------------

  private fault(action: string, detail: string): void {
    this.faults.push({ at: this.current, action, detail });
  }

  private drop(reason: DropReason | "node_down" | "no_host" | "unknown_path" | "refused"): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  private boot(node: SimNode<E>): void {
    const seeds = this.seedIds.filter((id) => id !== node.id).map((id) => ({ nodeId: id, address: { ...this.node(id).address } }));
    const config: EngineConfig = {
      nodeId: node.id,
      listenAddresses: [{ ...node.address }],
      seeds,
      maxNeighbours: this.tunables.maxNeighbours,
      probeIntervalMs: this.tunables.probeIntervalMs,
      linkTimeoutMs: this.tunables.linkTimeoutMs,
      udpMtu: this.tunables.udpMtu,
      ...(this.tunables.routeHopCostMs !== undefined ? { routeHopCostMs: this.tunables.routeHopCostMs } : {}),
      rng: node.rngSource.fork(),
      logger: this.logger.child({ node: node.id }),
      // Secured links, deterministic: seeded entropy and a fixed wall-clock epoch.
      identity: node.identity,
      entropy: node.entropySource.fork(),
      wallClockOffsetMs: SIM_WALL_CLOCK_EPOCH_MS,
      exposePlaintext: true,
    };
    node.incarnation++;
    node.paths.clear();
    node.pathByRemote.clear();
    node.tickAt = Infinity;
    node.stalls = 0;
    const engine = this.createEngine(config);
    node.engine = engine;
    engine.start(this.current);
    this.flush(node);
  }

  private down(node: SimNode<E>): void {
    node.engine = undefined;
    node.incarnation++;
    node.paths.clear();
    node.pathByRemote.clear();
    node.tickAt = Infinity;
  }

  private dispatch(item: Scheduled): void {
    switch (item.kind) {
      case "action":
        item.run();
        return;
      case "start": {
        const node = this.node(item.node);
        if (node.incarnation === item.incarnation && node.engine === undefined) this.boot(node);
        return;
      }
      case "tick": {
        const node = this.node(item.node);
        if (node.incarnation !== item.incarnation || node.tickToken !== item.token || node.tickAt === Infinity || node.engine === undefined) return;
        node.tickAt = Infinity;
        node.engine.tick(this.current);
        this.flush(node, true);
        return;
      }
      case "path_opened": {
        const node = this.node(item.node);
        if (node.incarnation !== item.incarnation || node.engine === undefined || !node.paths.has(item.pathId)) return;
        node.engine.pathOpened(this.current, item.pathId);
        this.flush(node);
        return;
      }
      case "path_closed": {
        const node = this.node(item.node);
        if (node.incarnation !== item.incarnation || node.engine === undefined || !node.paths.has(item.pathId)) return;
        this.forgetPath(node, item.pathId);
        node.engine.pathClosed(this.current, item.pathId, item.reason);
        this.flush(node);
        return;
      }
      case "deliver":
        this.deliver(item.to, item.from, item.packet);
        return;
    }
  }

  private deliver(to: NodeId, from: NodeId, packet: Uint8Array): void {
    const node = this.node(to);
    const engine = node.engine;
    if (engine === undefined) {
      this.drop("node_down");
      return;
    }
    const sender = this.node(from);
    let pathId = node.pathByRemote.get(sender.addressKey);
    if (pathId === undefined) {
      pathId = engine.acceptPath(this.current, { ...sender.address });
      if (pathId === undefined) {
        this.drop("refused");
        this.flush(node);
        return;
      }
      node.paths.set(pathId, sender.addressKey);
      node.pathByRemote.set(sender.addressKey, pathId);
    }
    this.packetsDelivered++;
    engine.receive(this.current, pathId, packet);
    this.flush(node);
  }

  private forgetPath(node: SimNode<E>, pathId: PathId): void {
    const remote = node.paths.get(pathId);
    node.paths.delete(pathId);
    if (remote !== undefined && node.pathByRemote.get(remote) === pathId) node.pathByRemote.delete(remote);
  }

  /**
   * Carries out everything the engine produced, then (re)schedules its tick. After a tick, an
   * engine that still asks for a tick at or before now made no progress (typically a float
   * rounding mismatch between its deadline and its own timeout check): like a real timer, the next
   * tick then comes STALLED_TICK_RETRY_MS later; such ticks are counted in `stats().stalledTicks`.
   */
  private flush(node: SimNode<E>, afterTick = false): void {
    const engine = node.engine;
    if (engine === undefined) return;
    let count = 0;
    for (let output = engine.pollOutput(); output !== undefined; output = engine.pollOutput()) {
      if (++count > MAX_OUTPUTS_PER_FLUSH) {
        throw new SkeinError("SIM_BUSY_ENGINE", `node ${node.id} produced more than ${MAX_OUTPUTS_PER_FLUSH} outputs in one call at ${this.current} ms`);
      }
      this.handleOutput(node, output);
    }
    if (node.engine !== engine) return;
    const deadline = engine.nextDeadline();
    if (!(deadline < Infinity)) {
      node.tickAt = Infinity;
      return;
    }
    let at = Math.max(deadline, this.current);
    if (afterTick) {
      if (deadline <= this.current) {
        this.stalledTicks++;
        if (++node.stalls > MAX_STALLED_TICKS) {
          throw new SkeinError(
            "SIM_BUSY_ENGINE",
            `node ${node.id} still asked for a tick at ${deadline} ms after ${MAX_STALLED_TICKS} ticks in a row at ${this.current} ms: tick(now) does not move nextDeadline() past now`,
          );
        }
        at = this.current + STALLED_TICK_RETRY_MS;
      } else {
        node.stalls = 0;
      }
    }
    if (at !== node.tickAt) {
      node.tickAt = at;
      node.tickToken++;
      this.queue.push(at, { kind: "tick", node: node.id, incarnation: node.incarnation, token: node.tickToken });
    }
  }

  private handleOutput(node: SimNode<E>, output: EngineOutput): void {
    switch (output.kind) {
      case "open_path": {
        const key = formatAddress(output.address);
        node.paths.set(output.pathId, key);
        if (output.address.transport === "udp") {
          node.pathByRemote.set(key, output.pathId);
          this.queue.push(this.current, { kind: "path_opened", node: node.id, incarnation: node.incarnation, pathId: output.pathId });
        } else {
          this.queue.push(this.current, {
            kind: "path_closed",
            node: node.id,
            incarnation: node.incarnation,
            pathId: output.pathId,
            reason: "the simulator models UDP only",
          });
        }
        return;
      }
      case "close_path":
        this.forgetPath(node, output.pathId);
        return;
      case "transmit": {
        const remote = node.paths.get(output.pathId);
        if (remote === undefined) {
          this.drop("unknown_path");
          return;
        }
        const to = this.byAddress.get(remote);
        this.packetsSent++;
        this.bytesSent += output.packet.byteLength;
        if (to === undefined) {
          this.drop("no_host");
          return;
        }
        const decision = this.network.decide(node.id, to, this.current);
        if (decision.kind === "drop") {
          this.drop(decision.reason);
          if (this.transmitListeners.length > 0) {
            const packet = output.rest === undefined ? output.packet.slice() : concatBytes(output.packet, ...output.rest);
            for (const listener of this.transmitListeners) listener({ at: this.current, from: node.id, to, packet, plaintext: output.plaintext?.slice(), delivered: false });
          }
          return;
        }
        // A copy: the engine may reuse its buffer once the call returns.
        const packet = output.rest === undefined ? output.packet.slice() : concatBytes(output.packet, ...output.rest);
        for (const listener of this.transmitListeners) listener({ at: this.current, from: node.id, to, packet, plaintext: output.plaintext?.slice(), delivered: true });
        this.queue.push(this.current + decision.delayMs, { kind: "deliver", to, from: node.id, packet });
        if (decision.duplicateDelayMs !== undefined) {
          this.queue.push(this.current + decision.duplicateDelayMs, { kind: "deliver", to, from: node.id, packet: packet.slice() });
        }
        return;
      }
      case "event": {
        const record: SimRecord = { at: this.current, node: node.id, event: output.event };
        this.engineEvents[output.event.kind] = (this.engineEvents[output.event.kind] ?? 0) + 1;
        if (this.records.length < this.maxRecords) this.records.push(record);
        else this.recordsDropped++;
        for (const listener of this.listeners) listener(record);
        return;
      }
    }
  }
}

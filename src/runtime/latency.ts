/**
 * `--emulate-latency FILE`: makes a set of nodes on one host behave as if they sat far apart.
 *
 * The file is an RTT matrix `{ "1": { "2": 80.5, … }, … }` keyed by NodeIds as decimal strings,
 * values in milliseconds. The RTT of a pair is the mean of both directions when both are given,
 * either one when only one is, and absent pairs get no delay. Every packet this node transmits
 * to a peer waits half that RTT before it leaves, so the round trip seen by both ends is the RTT.
 *
 * Packets keep their order per path: each path has one FIFO queue and one timer armed for its
 * head (never one timer per packet), and a packet never leaves before one queued ahead of it.
 */
import { readFile } from "node:fs/promises";
import { SkeinError } from "../core/errors.js";
import { type NodeId, parseNodeId } from "../core/node-id.js";
import type { PathId } from "../node/io.js";
import type { Transport } from "./transport.js";

const MATRIX_HELP =
  'expected a JSON object of RTTs in milliseconds keyed by NodeIds as decimal strings, e.g. { "1": { "2": 80.5 }, "2": { "1": 79.5 } }';

/** Packets due within this much of now leave on the current timer firing (timers are ~1 ms coarse). */
const LATENCY_EARLY_TOLERANCE_MS = 0.5;

export class LatencyMatrix {
  private readonly rtts = new Map<NodeId, Map<NodeId, number>>();

  /** Sets the RTT measured from `from` to `to` (one direction of the file). */
  set(from: NodeId, to: NodeId, rttMs: number): void {
    let row = this.rtts.get(from);
    if (row === undefined) this.rtts.set(from, (row = new Map()));
    row.set(to, rttMs);
  }

  /** The symmetric RTT of a pair, or undefined when the file says nothing about it. */
  rttMs(a: NodeId, b: NodeId): number | undefined {
    const ab = this.rtts.get(a)?.get(b);
    const ba = this.rtts.get(b)?.get(a);
    if (ab !== undefined && ba !== undefined) return (ab + ba) / 2;
    return ab ?? ba;
  }

  /** Half the RTT, 0 when unknown. */
  oneWayDelayMs(a: NodeId, b: NodeId): number {
    const rtt = this.rttMs(a, b);
    return rtt === undefined ? 0 : rtt / 2;
  }

  get nodeIds(): NodeId[] {
    const ids = new Set<NodeId>();
    for (const [from, row] of this.rtts) {
      ids.add(from);
      for (const to of row.keys()) ids.add(to);
    }
    return [...ids].sort((x, y) => x - y);
  }
}

function badConfig(file: string, what: string): SkeinError {
  return new SkeinError("BAD_CONFIG", `latency matrix ${file}: ${what}; ${MATRIX_HELP}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses the text of a matrix file; `file` names it in errors. Throws SkeinError BAD_CONFIG. */
export function parseLatencyMatrix(text: string, file: string): LatencyMatrix {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw badConfig(file, `not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(json)) throw badConfig(file, `the top level is ${describe(json)}, not an object`);
  const matrix = new LatencyMatrix();
  for (const [fromKey, row] of Object.entries(json)) {
    const from = parseNodeId(fromKey);
    if (from === undefined) throw badConfig(file, `key "${fromKey}" is not a NodeId (an integer in 1..4294967295)`);
    if (!isPlainObject(row)) throw badConfig(file, `the entry for node ${fromKey} is ${describe(row)}, not an object`);
    for (const [toKey, rtt] of Object.entries(row)) {
      const to = parseNodeId(toKey);
      if (to === undefined) throw badConfig(file, `key "${toKey}" under node ${fromKey} is not a NodeId (an integer in 1..4294967295)`);
      if (typeof rtt !== "number" || !Number.isFinite(rtt) || rtt < 0) {
        throw badConfig(file, `the RTT from ${fromKey} to ${toKey} is ${describe(rtt)}, not a finite number of milliseconds >= 0`);
      }
      matrix.set(from, to, rtt);
    }
  }
  return matrix;
}

/** Reads and parses a matrix file. Throws SkeinError BAD_CONFIG when unreadable or malformed. */
export async function loadLatencyMatrix(file: string): Promise<LatencyMatrix> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SkeinError("BAD_CONFIG", `cannot read latency matrix ${file} (${code ?? (error as Error).message}); ${MATRIX_HELP}`, { cause: error });
  }
  return parseLatencyMatrix(text, file);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
  if (typeof value === "number") return String(value);
  return `a ${typeof value}`;
}

/** A queued close marker (the engine closed the path after packets still waiting). */
const CLOSE = null;

class PathQueue {
  readonly items: (Uint8Array | typeof CLOSE)[] = [];
  readonly due: number[] = [];
  head = 0;
  bytes = 0;
  timer: NodeJS.Timeout | undefined = undefined;
  readonly fire: () => void;

  constructor(
    readonly pathId: PathId,
    readonly transport: Transport,
    emulator: LatencyEmulator,
  ) {
    this.fire = () => emulator.fire(this);
  }

  get length(): number {
    return this.items.length - this.head;
  }

  get lastDue(): number {
    return this.due.length > this.head ? this.due[this.due.length - 1]! : -Infinity;
  }

  push(item: Uint8Array | typeof CLOSE, due: number): void {
    this.items.push(item);
    this.due.push(due);
    if (item !== CLOSE) this.bytes += item.byteLength;
  }

  shift(): Uint8Array | typeof CLOSE {
    const item = this.items[this.head]!;
    this.items[this.head] = CLOSE;
    this.head++;
    if (item !== CLOSE) this.bytes -= item.byteLength;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.due.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.due.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }
}

/**
 * Sits between the driver and the transports. `transmit` either passes a packet straight through
 * (no delay and nothing queued on the path) or queues it until `now + delay`.
 */
export class LatencyEmulator {
  private readonly queues = new Map<PathId, PathQueue>();
  private readonly delays = new Map<NodeId, number>();
  private closed = false;

  constructor(
    private readonly localId: NodeId,
    private readonly matrix: LatencyMatrix,
    private readonly clock: () => number,
    /** Called after a timer let packets out (senders waiting on congestion may go on). */
    private readonly onReleased: (pathId: PathId) => void,
  ) {}

  delayTo(peer: NodeId | undefined): number {
    if (peer === undefined) return 0;
    let delay = this.delays.get(peer);
    if (delay === undefined) {
      delay = this.matrix.oneWayDelayMs(this.localId, peer);
      this.delays.set(peer, delay);
    }
    return delay;
  }

  transmit(transport: Transport, pathId: PathId, packet: Uint8Array, peer: NodeId | undefined): void {
    const delay = this.closed ? 0 : this.delayTo(peer);
    const queue = this.queues.get(pathId);
    if (queue === undefined || queue.length === 0) {
      if (delay <= 0) {
        transport.transmit(pathId, packet);
        return;
      }
    }
    const q = queue ?? this.newQueue(transport, pathId);
    const due = Math.max(this.clock() + delay, q.lastDue);
    q.push(packet, due);
    if (q.timer === undefined) this.arm(q);
  }

  /** Engine `close_path`: closes after the packets still queued on the path have left. */
  close(transport: Transport, pathId: PathId): void {
    const queue = this.queues.get(pathId);
    if (queue === undefined || queue.length === 0) {
      this.forget(pathId);
      transport.close(pathId);
      return;
    }
    queue.push(CLOSE, queue.lastDue);
  }

  /** The path died underneath: drop what was waiting for it. */
  forget(pathId: PathId): void {
    const queue = this.queues.get(pathId);
    if (queue === undefined) return;
    if (queue.timer !== undefined) clearTimeout(queue.timer);
    this.queues.delete(pathId);
  }

  queuedBytes(pathId: PathId): number {
    return this.queues.get(pathId)?.bytes ?? 0;
  }

  /** Sends everything now (node shutting down): goodbyes should not wait. */
  flushAll(): void {
    this.closed = true;
    for (const queue of [...this.queues.values()]) {
      if (queue.timer !== undefined) clearTimeout(queue.timer);
      queue.timer = undefined;
      this.release(queue, Infinity);
      queue.transport.flush();
    }
    this.queues.clear();
  }

  /** Timer callback of one path queue. */
  fire(queue: PathQueue): void {
    queue.timer = undefined;
    this.release(queue, this.clock() + LATENCY_EARLY_TOLERANCE_MS);
    queue.transport.flush();
    // An emptied queue stays in the map (a path that is sending queues again soon); it goes
    // when the path closes.
    if (queue.length > 0 && this.queues.get(queue.pathId) === queue) this.arm(queue);
    this.onReleased(queue.pathId);
  }

  private release(queue: PathQueue, until: number): void {
    while (queue.length > 0 && queue.due[queue.head]! <= until) {
      const item = queue.shift();
      if (item === CLOSE) {
        this.forget(queue.pathId);
        queue.transport.close(queue.pathId);
        // Anything queued after a close belongs to a dead path.
        while (queue.length > 0) queue.shift();
        return;
      }
      queue.transport.transmit(queue.pathId, item);
    }
  }

  private newQueue(transport: Transport, pathId: PathId): PathQueue {
    const queue = new PathQueue(pathId, transport, this);
    this.queues.set(pathId, queue);
    return queue;
  }

  private arm(queue: PathQueue): void {
    const wait = Math.max(0, queue.due[queue.head]! - this.clock());
    queue.timer = setTimeout(queue.fire, wait);
  }
}

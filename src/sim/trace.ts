/**
 * What scenarios measure about routes, from frames actually transmitted (never from an engine's
 * own estimate): a `FrameTracer` watches every packet the simulator carries and
 *
 *  - follows tagged data frames (datagram class, module 2, payload starting with TRACE_MAGIC, a u32
 *    `a` and a u32 `b`) hop by hop: the hops a frame took; whether it LOOPED (took the same hop
 *    twice: it went round a cycle of the forwarding state and on into it again), and whether it
 *    REVISITED a node (came back to a node whose route improved while the frame was on its way: the
 *    node then sends it elsewhere; Babel's loop freedom is a property of the forwarding state at
 *    each instant, which a frame in flight may see change under it);
 *  - counts routing control bytes (LINK frames of module 3, header included).
 *
 * A frame relayed on secured links is sealed end to end (node/e2e-paths.ts): nobody on the way,
 * the tracer included, can read its payload. So the tracer is told what it sends (`expect`, before
 * `engine.send`) and gives each new sealed data frame that leaves its source the oldest key
 * expected for that source and destination (frames to one destination leave in order); from then
 * on it follows the sealed frame by its end-to-end session and counter, which no relay changes.
 *
 * Plus the reference figures: symmetric RTTs of a matrix and all-pairs shortest paths over them.
 */
import { ModuleId } from "../core/module.js";
import type { NodeId } from "../core/node-id.js";
import { FRAME_HEADER_BYTES, FrameFlag, FrameKind, type FrameHeader, forEachFrame, readU32, writeU32 } from "../wire/frame.js";
import { type Matrix, symmetricRtt } from "./matrix.js";
import type { NodeEngine } from "../node/engine.js";
import type { SimEngine, Simulator, TransmitRecord } from "./simulator.js";

/** "SKTR": marks a traced data frame. */
export const TRACE_MAGIC = 0x534b_5452;
export const TRACE_PAYLOAD_BYTES = 12;

/** A traced frame's payload: the magic, then two u32 that identify it (e.g. flow and sequence). */
export function tracePayload(a: number, b: number, size = TRACE_PAYLOAD_BYTES): Uint8Array {
  const payload = new Uint8Array(Math.max(TRACE_PAYLOAD_BYTES, size));
  writeU32(payload, 0, TRACE_MAGIC);
  writeU32(payload, 4, a);
  writeU32(payload, 8, b);
  return payload;
}

/** The key of a traced payload, or undefined when it is not one. */
export function traceKey(payload: Uint8Array): number | undefined {
  if (payload.byteLength < TRACE_PAYLOAD_BYTES || readU32(payload, 0) !== TRACE_MAGIC) return undefined;
  return readU32(payload, 4) * 0x1_0000_0000 + readU32(payload, 8);
}

export interface TracedFrame {
  /** Nodes the frame visited, the source first. */
  hops: NodeId[];
  /** It took the same hop (a → b) twice: it went round a forwarding loop. */
  loop: boolean;
  /** It came back to a node it had visited (counted once per frame). */
  revisit: boolean;
}

export class FrameTracer {
  readonly frames = new Map<number, TracedFrame>();
  /** Routing control bytes transmitted (LINK frames of module 3, 20-byte header included). */
  controlBytes = 0;
  /** Traced frames that took the same hop twice (went round a forwarding loop). */
  loops = 0;
  /** Traced frames that came back to a node they had visited (routes changed under them). */
  revisits = 0;
  private tracing = true;
  private readonly unsubscribe: () => void;
  /** Keys sent from a source to a destination whose frame has not left the source yet, oldest first. */
  private readonly expected = new Map<string, number[]>();
  /** Sealed frames (source, destination, e2e session and counter) → their key, and back. */
  private readonly sealedKeys = new Map<string, number>();
  private readonly sealedIds = new Map<number, string>();

  constructor(sim: Simulator<SimEngine>) {
    this.unsubscribe = sim.onTransmit((record) => this.onTransmit(record));
  }

  /** Stops following traced frames (control bytes are still counted). */
  pauseTracing(): void {
    this.tracing = false;
  }

  resumeTracing(): void {
    this.tracing = true;
  }

  stop(): void {
    this.unsubscribe();
  }

  /** Forgets a frame (e.g. once delivered) to bound memory in long runs. */
  forget(key: number): void {
    this.frames.delete(key);
    const id = this.sealedIds.get(key);
    if (id !== undefined) {
      this.sealedIds.delete(key);
      this.sealedKeys.delete(id);
    }
  }

  /** `source` is about to send traced `payload` to `destination` (call `unexpect` if the send fails). */
  expect(source: NodeId, destination: NodeId, payload: Uint8Array): void {
    const key = traceKey(payload);
    if (key === undefined) return;
    const pair = `${source}>${destination}`;
    const keys = this.expected.get(pair);
    if (keys === undefined) this.expected.set(pair, [key]);
    else keys.push(key);
  }

  unexpect(source: NodeId, destination: NodeId, payload: Uint8Array): void {
    const key = traceKey(payload);
    const keys = this.expected.get(`${source}>${destination}`);
    if (key === undefined || keys === undefined) return;
    const index = keys.lastIndexOf(key);
    if (index >= 0) keys.splice(index, 1);
  }

  /** The key of a data frame seen leaving `from`: from its payload, or for a sealed one from `expect`. */
  private keyOf(from: NodeId, header: FrameHeader, payload: Uint8Array): number | undefined {
    const pair = `${header.source}>${header.destination}`;
    if ((header.flags & FrameFlag.Sealed) === 0) {
      const key = traceKey(payload);
      const keys = from === header.source && key !== undefined ? this.expected.get(pair) : undefined;
      const index = keys === undefined ? -1 : keys.indexOf(key!);
      if (index >= 0) keys!.splice(index, 1);
      return key;
    }
    if (payload.byteLength < 16) return undefined;
    const id = `${pair}:${Buffer.from(payload.buffer, payload.byteOffset, 16).toString("hex")}`;
    let key = this.sealedKeys.get(id);
    if (key === undefined && from === header.source) {
      key = this.expected.get(pair)?.shift();
      if (key !== undefined) {
        this.sealedKeys.set(id, key);
        this.sealedIds.set(key, id);
      }
    }
    return key;
  }

  private onTransmit(record: TransmitRecord): void {
    if (record.plaintext === undefined) return; // a handshake unit
    forEachFrame(record.plaintext, (header, payload) => {
      if (header.kind === FrameKind.Link) {
        if (header.module === ModuleId.Routing) this.controlBytes += FRAME_HEADER_BYTES + payload.byteLength;
        return;
      }
      if (header.kind !== FrameKind.Routed || header.module !== ModuleId.Data || (header.flags & FrameFlag.Reliable) !== 0) return;
      const key = this.keyOf(record.from, header, payload);
      if (!this.tracing || !record.delivered || key === undefined) return;
      let frame = this.frames.get(key);
      if (frame === undefined) {
        frame = { hops: [record.from], loop: false, revisit: false };
        this.frames.set(key, frame);
      }
      // A transmission from elsewhere than where the frame last arrived is a copy (the network
      // duplicated a packet), not this frame's path.
      const hops = frame.hops;
      if (hops[hops.length - 1] !== record.from) return;
      if (!frame.revisit && hops.includes(record.to)) {
        frame.revisit = true;
        this.revisits++;
      }
      if (!frame.loop) {
        for (let index = 1; index < hops.length - 1; index++) {
          if (hops[index - 1] === record.from && hops[index] === record.to) {
            frame.loop = true;
            this.loops++;
            break;
          }
        }
      }
      if (hops.length < 64) hops.push(record.to);
    });
  }
}

/** Symmetric RTTs (mean of both directions) between the first n names, row-major n×n, ms. */
export function rttTable(matrix: Matrix, names: readonly string[]): Float64Array {
  const n = names.length;
  const table = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const rtt = symmetricRtt(matrix, names[a]!, names[b]!);
      table[a * n + b] = rtt;
      table[b * n + a] = rtt;
    }
  }
  return table;
}

/** All-pairs shortest path lengths over `table` (Floyd–Warshall), row-major n×n. */
export function allPairsShortest(table: Float64Array, n: number): Float64Array {
  const distance = table.slice();
  for (let k = 0; k < n; k++) {
    const rowK = k * n;
    for (let i = 0; i < n; i++) {
      const rowI = i * n;
      const viaK = distance[rowI + k]!;
      for (let j = 0; j < n; j++) {
        const candidate = viaK + distance[rowK + j]!;
        if (candidate < distance[rowI + j]!) distance[rowI + j] = candidate;
      }
    }
  }
  return distance;
}

/** Sum of the table's RTTs along a path of NodeIds (1-based). */
export function pathRtt(table: Float64Array, n: number, hops: readonly NodeId[]): number {
  let sum = 0;
  for (let index = 1; index < hops.length; index++) sum += table[(hops[index - 1]! - 1) * n + (hops[index]! - 1)]!;
  return sum;
}

export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export type ForwardingWalk =
  | { kind: "delivered"; hops: NodeId[] }
  | { kind: "loop"; hops: NodeId[] }
  /** A node on the way has no next hop, is down, or its next hop is not an up link. */
  | { kind: "dead_end"; hops: NodeId[] };

/**
 * Follows the forwarding state (each engine's `nextHop`) from `source` toward `destination`, as a
 * frame would at this instant: a static check of loop freedom and reachability.
 */
export function walkForwarding(sim: Simulator<NodeEngine>, source: NodeId, destination: NodeId): ForwardingWalk {
  const hops: NodeId[] = [source];
  let at = source;
  while (at !== destination) {
    const engine = sim.engine(at);
    const next = engine?.nextHop(destination);
    if (engine === undefined || next === undefined) return { kind: "dead_end", hops };
    if (!engine.neighbours().some((neighbour) => neighbour.id === next && neighbour.state === "up")) return { kind: "dead_end", hops };
    if (hops.includes(next)) {
      hops.push(next);
      return { kind: "loop", hops };
    }
    hops.push(next);
    at = next;
  }
  return { kind: "delivered", hops };
}

/** Node groups connected by links both ends see as up (the underlying graph), as a component id per node. */
export function upLinkComponents(sim: Simulator<NodeEngine>): Map<NodeId, number> {
  const adjacency = new Map<NodeId, NodeId[]>();
  for (const id of sim.nodeIds()) adjacency.set(id, []);
  for (const [a, b] of sim.upLinks()) {
    adjacency.get(a)!.push(b);
    adjacency.get(b)!.push(a);
  }
  const component = new Map<NodeId, number>();
  let next = 0;
  for (const id of sim.nodeIds()) {
    if (component.has(id) || !sim.isUp(id)) continue;
    const stack = [id];
    component.set(id, next);
    while (stack.length > 0) {
      const at = stack.pop()!;
      for (const other of adjacency.get(at)!) {
        if (component.has(other)) continue;
        component.set(other, next);
        stack.push(other);
      }
    }
    next++;
  }
  return component;
}

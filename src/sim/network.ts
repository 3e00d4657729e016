/**
 * The simulated network between N nodes (NodeIds 1..N): what happens to one packet sent from a to b.
 * Pure policy, no queue: the simulator asks `decide(from, to, now)` and schedules the delivery.
 *
 *  - delay: one way = RTT(a→b) / 2 from the matrix (so a round trip measures the mean of both
 *    directions, `symmetricRtt`), plus jitter, never below 0; by default packets of one direction
 *    of a pair never overtake each other (`fifo`);
 *  - loss: a global probability and a per-link one (undirected), drawn independently per packet;
 *  - partitions: groups of nodes that cannot talk to each other, each healable;
 *  - blocked links: one pair that cannot talk (a link that goes down, then up again).
 *
 * Crashed nodes are the simulator's business (it drops packets to a node that is down).
 */
import type { NodeId } from "../core/node-id.js";
import type { Rng } from "../core/rng.js";
import { gaussian } from "./generate.js";

export type JitterModel =
  | { kind: "none" }
  /** Uniform in [-maxMs, +maxMs]. */
  | { kind: "uniform"; maxMs: number }
  /** Normal with standard deviation sdMs, clipped at ±3 sd. */
  | { kind: "normal"; sdMs: number }
  /** Normal with standard deviation ratio × the pair's one-way delay, clipped at ±3 sd. */
  | { kind: "relative"; ratio: number };

export interface NetworkOptions {
  /** Probability that any packet is lost, 0..1 (default 0). */
  loss?: number;
  jitter?: JitterModel;
  /** Keep packets of one direction of a pair in order despite jitter (default true). */
  fifo?: boolean;
  /** Probability that a delivered packet arrives twice (the copy with its own delay), 0..1. */
  duplicate?: number;
}

export type DropReason = "loss" | "partition" | "link_down";

export type Decision = { kind: "deliver"; delayMs: number; duplicateDelayMs: number | undefined } | { kind: "drop"; reason: DropReason };

export class SimNetwork {
  private readonly n: number;
  /** oneWayMs[(a-1)*n + (b-1)] */
  private readonly oneWayMs: Float64Array;
  /** Earliest time the next packet a→b may arrive (fifo). */
  private readonly lastArrival: Float64Array;
  private loss: number;
  private jitter: JitterModel;
  private readonly fifo: boolean;
  private readonly duplicate: number;
  private readonly linkLoss = new Map<number, number>();
  private readonly blocked = new Set<number>();
  /** Active partitions: handle → group index per node (index 0 unused; -1 = not listed). */
  private readonly partitions = new Map<number, Int32Array>();
  private nextPartition = 1;

  /** `rttMs(a, b)` gives the round trip a→b in ms for 1 ≤ a, b ≤ n, a ≠ b. */
  constructor(
    n: number,
    rttMs: (a: NodeId, b: NodeId) => number,
    private readonly rng: Rng,
    options: NetworkOptions = {},
  ) {
    this.n = n;
    this.oneWayMs = new Float64Array(n * n);
    this.lastArrival = new Float64Array(n * n);
    for (let a = 1; a <= n; a++) for (let b = 1; b <= n; b++) if (a !== b) this.oneWayMs[this.index(a, b)] = rttMs(a, b) / 2;
    this.loss = checkProbability(options.loss ?? 0, "loss");
    this.jitter = options.jitter ?? { kind: "none" };
    this.fifo = options.fifo ?? true;
    this.duplicate = checkProbability(options.duplicate ?? 0, "duplicate");
  }

  get size(): number {
    return this.n;
  }

  private index(a: NodeId, b: NodeId): number {
    return (a - 1) * this.n + (b - 1);
  }

  private pairKey(a: NodeId, b: NodeId): number {
    return a < b ? this.index(a, b) : this.index(b, a);
  }

  private check(id: NodeId): void {
    if (!Number.isInteger(id) || id < 1 || id > this.n) throw new RangeError(`node ${id} is not in 1..${this.n}`);
  }

  /** Decides the fate of one packet from `from` to `to` sent at `now`. */
  decide(from: NodeId, to: NodeId, now: number): Decision {
    if (this.blocked.has(this.pairKey(from, to))) return { kind: "drop", reason: "link_down" };
    for (const groups of this.partitions.values()) if (groups[from] !== groups[to]) return { kind: "drop", reason: "partition" };
    const linkLoss = this.linkLoss.get(this.pairKey(from, to)) ?? 0;
    if (this.loss > 0 || linkLoss > 0) {
      const p = 1 - (1 - this.loss) * (1 - linkLoss);
      if (this.rng.nextFloat() < p) return { kind: "drop", reason: "loss" };
    }
    const index = this.index(from, to);
    const base = this.oneWayMs[index]!;
    let delay = base + this.drawJitter(base);
    if (delay < 0) delay = 0;
    if (this.fifo) {
      const earliest = this.lastArrival[index]!;
      if (now + delay < earliest) delay = earliest - now;
      this.lastArrival[index] = now + delay;
    }
    let duplicateDelayMs: number | undefined;
    if (this.duplicate > 0 && this.rng.nextFloat() < this.duplicate) duplicateDelayMs = Math.max(0, base + this.drawJitter(base));
    return { kind: "deliver", delayMs: delay, duplicateDelayMs };
  }

  private drawJitter(baseMs: number): number {
    switch (this.jitter.kind) {
      case "none":
        return 0;
      case "uniform":
        return (this.rng.nextFloat() * 2 - 1) * this.jitter.maxMs;
      case "normal": {
        const z = Math.max(-3, Math.min(3, gaussian(this.rng)));
        return z * this.jitter.sdMs;
      }
      case "relative": {
        const z = Math.max(-3, Math.min(3, gaussian(this.rng)));
        return z * this.jitter.ratio * baseMs;
      }
    }
  }

  /** Whether a packet from a to b could get through now (ignoring random loss). */
  canTalk(a: NodeId, b: NodeId): boolean {
    if (this.blocked.has(this.pairKey(a, b))) return false;
    for (const groups of this.partitions.values()) if (groups[a] !== groups[b]) return false;
    return true;
  }

  /** The one-way delay a→b without jitter (ms). */
  oneWayDelayMs(a: NodeId, b: NodeId): number {
    this.check(a);
    this.check(b);
    return this.oneWayMs[this.index(a, b)]!;
  }

  /** Changes the RTT of a pair (both directions get rttMs / 2) from now on. */
  setRtt(a: NodeId, b: NodeId, rttMs: number): void {
    this.check(a);
    this.check(b);
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) throw new RangeError(`RTT must be a finite number ≥ 0, got ${rttMs}`);
    this.oneWayMs[this.index(a, b)] = rttMs / 2;
    this.oneWayMs[this.index(b, a)] = rttMs / 2;
  }

  setLoss(probability: number): void {
    this.loss = checkProbability(probability, "loss");
  }

  getLoss(): number {
    return this.loss;
  }

  /** Loss of one link (both directions), on top of the global loss; 0 removes it. */
  setLinkLoss(a: NodeId, b: NodeId, probability: number): void {
    this.check(a);
    this.check(b);
    checkProbability(probability, "link loss");
    if (probability === 0) this.linkLoss.delete(this.pairKey(a, b));
    else this.linkLoss.set(this.pairKey(a, b), probability);
  }

  setJitter(jitter: JitterModel): void {
    this.jitter = jitter;
  }

  /** The link between a and b goes down: every packet between them is dropped until `unblock`. */
  block(a: NodeId, b: NodeId): void {
    this.check(a);
    this.check(b);
    this.blocked.add(this.pairKey(a, b));
  }

  unblock(a: NodeId, b: NodeId): void {
    this.check(a);
    this.check(b);
    this.blocked.delete(this.pairKey(a, b));
  }

  isBlocked(a: NodeId, b: NodeId): boolean {
    return this.blocked.has(this.pairKey(a, b));
  }

  /**
   * Splits the network: nodes in different groups cannot talk; nodes in no group form one more
   * group together ("the rest"). Returns a handle for `heal`. Partitions stack: two nodes talk only
   * when no active partition separates them.
   */
  partition(groups: readonly (readonly NodeId[])[]): number {
    const assignment = new Int32Array(this.n + 1).fill(-1);
    groups.forEach((group, index) => {
      for (const id of group) {
        this.check(id);
        if (assignment[id] !== -1) throw new RangeError(`node ${id} is in two groups of one partition`);
        assignment[id] = index;
      }
    });
    const handle = this.nextPartition++;
    this.partitions.set(handle, assignment);
    return handle;
  }

  /** Heals one partition, or all of them when no handle is given. */
  heal(handle?: number): void {
    if (handle === undefined) this.partitions.clear();
    else this.partitions.delete(handle);
  }

  activePartitions(): number[] {
    return [...this.partitions.keys()];
  }
}

function checkProbability(value: number, what: string): number {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${what} must be a probability in 0..1, got ${value}`);
  return value;
}

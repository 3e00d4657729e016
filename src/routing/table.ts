/**
 * The route table's storage: compact typed arrays, because a node keeps every neighbour's route to
 * every destination (multipath needs them all) and the simulator runs a thousand nodes at once.
 *
 *  - a destination has an index d (Map NodeId → d, freed indexes reused);
 *  - a neighbour has a slot s (Map NodeId → s, freed slots reused);
 *  - the route that neighbour s advertised for destination d lives in cell d·slotCap + s:
 *    advertised metric (u32 µs, METRIC_INFINITY = none), seqno (u16), hops (u8), expiry (u32, in
 *    centiseconds since the table's epoch): 11 bytes per cell;
 *  - per destination: the feasibility distance (seqno, metric), the selected slot and what was last
 *    advertised, and a few timers.
 *
 * The router (router.ts) holds the logic; this class only stores, grows and frees.
 */
import type { NodeId } from "../core/node-id.js";
import { METRIC_INFINITY } from "./constants.js";

/** Dirty flags of a destination (what the next triggered update must carry). */
export const Dirty = {
  None: 0,
  /** Advertise the current state in the next triggered update. */
  Trigger: 1,
  /** A retraction or a seqno change: send at once and repeat once (URGENT_REPEAT_MS). */
  Urgent: 2,
} as const;

const INITIAL_DESTINATIONS = 16;
const INITIAL_SLOTS = 4;

export class RouteTable {
  /** The time `cellExpiry` counts from (ms, the router's clock). */
  readonly epochMs: number;
  slotCap = INITIAL_SLOTS;
  destCap = INITIAL_DESTINATIONS;
  /** Destination indexes below this may be in use. */
  highWater = 0;
  private readonly indexById = new Map<NodeId, number>();
  private readonly freeIndexes: number[] = [];
  private readonly slotById = new Map<NodeId, number>();

  // Per neighbour slot.
  slotPeer = new Uint32Array(INITIAL_SLOTS);
  /** Link cost in µs (METRIC_INFINITY: unknown or unusable). */
  slotCost = new Uint32Array(INITIAL_SLOTS).fill(METRIC_INFINITY);
  /** The link's smoothed RTT in µs, for diagnostics (0xffffffff unknown). */
  slotRttUs = new Uint32Array(INITIAL_SLOTS).fill(0xffff_ffff);
  /** 1 while the link is on probation: its routes are stored and judged, never selected. */
  slotProbation = new Uint8Array(INITIAL_SLOTS);

  // Per cell (destination × slot).
  cellMetric = new Uint32Array(INITIAL_DESTINATIONS * INITIAL_SLOTS).fill(METRIC_INFINITY);
  cellSeqno = new Uint16Array(INITIAL_DESTINATIONS * INITIAL_SLOTS);
  cellHops = new Uint8Array(INITIAL_DESTINATIONS * INITIAL_SLOTS);
  cellExpiryCs = new Uint32Array(INITIAL_DESTINATIONS * INITIAL_SLOTS);

  // Per destination.
  destId = new Uint32Array(INITIAL_DESTINATIONS);
  /** Feasibility distance: metric METRIC_INFINITY means "none yet". */
  fdSeqno = new Uint16Array(INITIAL_DESTINATIONS);
  fdMetric = new Uint32Array(INITIAL_DESTINATIONS).fill(METRIC_INFINITY);
  /** Selected slot, -1 when unreachable. */
  selSlot = new Int16Array(INITIAL_DESTINATIONS).fill(-1);
  selMetric = new Uint32Array(INITIAL_DESTINATIONS).fill(METRIC_INFINITY);
  selSeqno = new Uint16Array(INITIAL_DESTINATIONS);
  selHops = new Uint8Array(INITIAL_DESTINATIONS);
  /** What the last update we sent said (advMetric METRIC_INFINITY: a retraction, or never advertised). */
  advMetric = new Uint32Array(INITIAL_DESTINATIONS).fill(METRIC_INFINITY);
  advSeqno = new Uint16Array(INITIAL_DESTINATIONS);
  advertised = new Uint8Array(INITIAL_DESTINATIONS);
  dirty = new Uint8Array(INITIAL_DESTINATIONS);
  /** When the destination last had a selected route (for GC), or when it was created. */
  lastRoutedAt = new Float64Array(INITIAL_DESTINATIONS);
  /** Since when a better route than the selected one has existed (NaN: none). */
  holdSince = new Float64Array(INITIAL_DESTINATIONS).fill(Number.NaN);
  lastSeqnoRequestAt = new Float64Array(INITIAL_DESTINATIONS).fill(-Infinity);
  forwardedSeqno = new Uint16Array(INITIAL_DESTINATIONS);
  forwardedSeqnoAt = new Float64Array(INITIAL_DESTINATIONS).fill(-Infinity);

  constructor(epochMs: number) {
    this.epochMs = epochMs;
  }

  get destinationCount(): number {
    return this.indexById.size;
  }

  indexOf(destination: NodeId): number | undefined {
    return this.indexById.get(destination);
  }

  /** The index of `destination`, created when new; undefined when the table is full. */
  ensureIndex(destination: NodeId, now: number, limit: number): number | undefined {
    const existing = this.indexById.get(destination);
    if (existing !== undefined) return existing;
    if (this.indexById.size >= limit) return undefined;
    let index = this.freeIndexes.pop();
    if (index === undefined) {
      if (this.highWater >= this.destCap) this.growDestinations(this.destCap * 2);
      index = this.highWater++;
    }
    this.indexById.set(destination, index);
    this.resetDestination(index, destination, now);
    return index;
  }

  freeIndex(index: number): void {
    const destination = this.destId[index]!;
    if (destination === 0 || this.indexById.get(destination) !== index) return;
    this.indexById.delete(destination);
    this.destId[index] = 0;
    const base = index * this.slotCap;
    this.cellMetric.fill(METRIC_INFINITY, base, base + this.slotCap);
    this.freeIndexes.push(index);
  }

  slotOf(peer: NodeId): number | undefined {
    return this.slotById.get(peer);
  }

  /** A slot for a new neighbour, its column cleared. */
  addSlot(peer: NodeId): number {
    const existing = this.slotById.get(peer);
    if (existing !== undefined) return existing;
    let slot = this.slotPeer.indexOf(0);
    if (slot < 0) {
      slot = this.slotCap;
      this.growSlots(this.slotCap * 2);
    }
    this.slotPeer[slot] = peer;
    this.slotCost[slot] = METRIC_INFINITY;
    this.slotRttUs[slot] = 0xffff_ffff;
    this.slotProbation[slot] = 0;
    this.slotById.set(peer, slot);
    this.clearColumn(slot);
    return slot;
  }

  removeSlot(peer: NodeId): number | undefined {
    const slot = this.slotById.get(peer);
    if (slot === undefined) return undefined;
    this.slotById.delete(peer);
    this.slotPeer[slot] = 0;
    this.slotCost[slot] = METRIC_INFINITY;
    this.slotRttUs[slot] = 0xffff_ffff;
    this.slotProbation[slot] = 0;
    this.clearColumn(slot);
    return slot;
  }

  /** Neighbour slots in use, ascending. */
  slots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.slotCap; slot++) if (this.slotPeer[slot] !== 0) slots.push(slot);
    return slots;
  }

  clearColumn(slot: number): void {
    for (let index = 0; index < this.highWater; index++) this.cellMetric[index * this.slotCap + slot] = METRIC_INFINITY;
  }

  expiryCs(atMs: number): number {
    const cs = Math.ceil((atMs - this.epochMs) / 10);
    return cs <= 0 ? 0 : cs >= 0xffff_ffff ? 0xffff_ffff : cs;
  }

  expiryMs(cell: number): number {
    return this.epochMs + this.cellExpiryCs[cell]! * 10;
  }

  /** Bytes held by the arrays (the Maps add roughly 40 bytes per destination and neighbour). */
  memoryBytes(): number {
    const arrays = [
      this.slotPeer, this.slotCost, this.slotRttUs, this.slotProbation, this.cellMetric, this.cellSeqno, this.cellHops, this.cellExpiryCs, this.destId, this.fdSeqno,
      this.fdMetric, this.selSlot, this.selMetric, this.selSeqno, this.selHops, this.advMetric, this.advSeqno, this.advertised, this.dirty,
      this.lastRoutedAt, this.holdSince, this.lastSeqnoRequestAt, this.forwardedSeqno, this.forwardedSeqnoAt,
    ];
    let bytes = 0;
    for (const array of arrays) bytes += array.byteLength;
    return bytes + 40 * (this.indexById.size + this.slotById.size);
  }

  private resetDestination(index: number, destination: NodeId, now: number): void {
    this.destId[index] = destination;
    this.fdSeqno[index] = 0;
    this.fdMetric[index] = METRIC_INFINITY;
    this.selSlot[index] = -1;
    this.selMetric[index] = METRIC_INFINITY;
    this.selSeqno[index] = 0;
    this.selHops[index] = 0;
    this.advMetric[index] = METRIC_INFINITY;
    this.advSeqno[index] = 0;
    this.advertised[index] = 0;
    this.dirty[index] = Dirty.None;
    this.lastRoutedAt[index] = now;
    this.holdSince[index] = Number.NaN;
    this.lastSeqnoRequestAt[index] = -Infinity;
    this.forwardedSeqno[index] = 0;
    this.forwardedSeqnoAt[index] = -Infinity;
    const base = index * this.slotCap;
    this.cellMetric.fill(METRIC_INFINITY, base, base + this.slotCap);
  }

  private growDestinations(capacity: number): void {
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Int16Array | Float64Array>(array: T, fill?: number): T => {
      const next = new (array.constructor as new (length: number) => T)(capacity);
      if (fill !== undefined) next.fill(fill);
      next.set(array);
      return next;
    };
    this.destId = grow(this.destId);
    this.fdSeqno = grow(this.fdSeqno);
    this.fdMetric = grow(this.fdMetric, METRIC_INFINITY);
    this.selSlot = grow(this.selSlot, -1);
    this.selMetric = grow(this.selMetric, METRIC_INFINITY);
    this.selSeqno = grow(this.selSeqno);
    this.selHops = grow(this.selHops);
    this.advMetric = grow(this.advMetric, METRIC_INFINITY);
    this.advSeqno = grow(this.advSeqno);
    this.advertised = grow(this.advertised);
    this.dirty = grow(this.dirty);
    this.lastRoutedAt = grow(this.lastRoutedAt);
    this.holdSince = grow(this.holdSince, Number.NaN);
    this.lastSeqnoRequestAt = grow(this.lastSeqnoRequestAt, -Infinity);
    this.forwardedSeqno = grow(this.forwardedSeqno);
    this.forwardedSeqnoAt = grow(this.forwardedSeqnoAt, -Infinity);
    this.relayoutCells(this.destCap, this.slotCap, capacity, this.slotCap);
    this.destCap = capacity;
  }

  private growSlots(slotCap: number): void {
    const grow = <T extends Uint32Array | Uint8Array>(array: T, fill: number): T => {
      const next = new (array.constructor as new (length: number) => T)(slotCap);
      next.fill(fill);
      next.set(array);
      return next;
    };
    this.slotPeer = grow(this.slotPeer, 0);
    this.slotCost = grow(this.slotCost, METRIC_INFINITY);
    this.slotRttUs = grow(this.slotRttUs, 0xffff_ffff);
    this.slotProbation = grow(this.slotProbation, 0);
    this.relayoutCells(this.destCap, this.slotCap, this.destCap, slotCap);
    this.slotCap = slotCap;
  }

  /** Rebuilds the cell arrays for a new (destCap, slotCap), keeping every cell where it belongs. */
  private relayoutCells(oldDestCap: number, oldSlotCap: number, destCap: number, slotCap: number): void {
    const metric = new Uint32Array(destCap * slotCap).fill(METRIC_INFINITY);
    const seqno = new Uint16Array(destCap * slotCap);
    const hops = new Uint8Array(destCap * slotCap);
    const expiry = new Uint32Array(destCap * slotCap);
    const rows = Math.min(oldDestCap, destCap);
    const columns = Math.min(oldSlotCap, slotCap);
    for (let row = 0; row < rows; row++) {
      const from = row * oldSlotCap;
      const to = row * slotCap;
      metric.set(this.cellMetric.subarray(from, from + columns), to);
      seqno.set(this.cellSeqno.subarray(from, from + columns), to);
      hops.set(this.cellHops.subarray(from, from + columns), to);
      expiry.set(this.cellExpiryCs.subarray(from, from + columns), to);
    }
    this.cellMetric = metric;
    this.cellSeqno = seqno;
    this.cellHops = hops;
    this.cellExpiryCs = expiry;
  }
}

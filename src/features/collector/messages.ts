/**
 * Collector messages (module 5) and their codec. Byte layouts: docs/protocol.md, "Collector
 * (module 5)". Every decoder is total: it returns an Error (never throws) on truncated input,
 * unknown types, counts over their limits, bad UTF-8 or trailing bytes.
 */
import type { NodeId } from "../../core/node-id.js";
import { ByteReader, ByteWriter } from "../../wire/bytes.js";
import {
  MAX_SNAPSHOT_NEIGHBOURS,
  MAX_SNAPSHOT_ROUTES,
  MAX_TAG_BYTES,
  MAX_TAGS,
  MAX_VERSION_BYTES,
  SNAPSHOT_FORMAT_VERSION,
} from "./constants.js";

export const CollectorMessageType = {
  /** "I am a collector": flooded hop by hop. */
  Advert: 1,
  /** A node's report, routed end to end to one collector. */
  Snapshot: 2,
} as const;

/** SNAPSHOT flags. */
export const SnapshotFlag = {
  /** The sender is a collector itself. */
  Collector: 1,
  /** The sender had more neighbours or routes than a snapshot carries: the lists are cut. */
  Truncated: 2,
} as const;

/** "Unknown" RTT and "unreachable" metric on the wire. */
export const WIRE_UNKNOWN_U32 = 0xffff_ffff;

export interface SnapshotNeighbour {
  id: NodeId;
  /** Smoothed RTT, ms (undefined: not measured yet). Carried in µs. */
  srttMs: number | undefined;
  rttvarMs: number | undefined;
  /** Share of probes lost, 0..1 (carried in 1/65535). */
  loss: number;
}

export interface SnapshotRoute {
  destination: NodeId;
  /** undefined: no usable route. */
  nextHop: NodeId | undefined;
  /** One-way delay estimate of the selected route, ms (undefined: unreachable). Carried in µs. */
  metricMs: number | undefined;
  hops: number;
}

export interface SnapshotCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  framesForwarded: number;
  framesDropped: number;
}

export interface Snapshot {
  /** Counts the sender's snapshots (serial arithmetic modulo 2^32): a collector keeps the newest. */
  seq: number;
  flags: number;
  /** The sender's reporting interval: the collector judges staleness by it. */
  intervalMs: number;
  /** Seconds since the sender's engine started. */
  uptimeS: number;
  version: string;
  tags: string[];
  counters: SnapshotCounters;
  neighbours: SnapshotNeighbour[];
  routes: SnapshotRoute[];
}

export type CollectorMessage = { type: "advert"; collector: NodeId; seq: number } | { type: "snapshot"; snapshot: Snapshot };

const COUNTER_KEYS = ["framesIn", "framesOut", "bytesIn", "bytesOut", "framesForwarded", "framesDropped"] as const;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function msToUs(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value) || value < 0) return WIRE_UNKNOWN_U32;
  return Math.min(WIRE_UNKNOWN_U32 - 1, Math.round(value * 1000));
}

function usToMs(value: number): number | undefined {
  return value === WIRE_UNKNOWN_U32 ? undefined : value / 1000;
}

function writeStr8(writer: ByteWriter, value: string, max: number): void {
  // Cut by characters, never inside one: what is sent stays valid UTF-8.
  let text = value;
  let bytes = encoder.encode(text);
  while (bytes.byteLength > max) {
    text = text.slice(0, -1);
    bytes = encoder.encode(text);
  }
  writer.u8(bytes.byteLength).bytes(bytes);
}

function readStr8(reader: ByteReader, max: number, what: string): string | Error {
  const length = reader.u8();
  if (length > max) return new Error(`${what} of ${length} bytes exceeds ${max}`);
  const raw = reader.bytesView(length);
  if (reader.failed) return new Error(`truncated ${what}`);
  try {
    return strictDecoder.decode(raw);
  } catch {
    return new Error(`${what} is not valid UTF-8`);
  }
}

export function encodeAdvert(collector: NodeId, seq: number): Uint8Array {
  return new ByteWriter(9).u8(CollectorMessageType.Advert).u32(collector).u32(seq >>> 0).finish();
}

/** Encodes a snapshot; lists longer than the limits are cut (the caller sets TRUNCATED). */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const neighbours = snapshot.neighbours.slice(0, MAX_SNAPSHOT_NEIGHBOURS);
  const routes = snapshot.routes.slice(0, MAX_SNAPSHOT_ROUTES);
  const tags = snapshot.tags.slice(0, MAX_TAGS);
  const writer = new ByteWriter(96 + 14 * neighbours.length + 13 * routes.length);
  writer.u8(CollectorMessageType.Snapshot).u8(SNAPSHOT_FORMAT_VERSION).u8(snapshot.flags & 0xff);
  writer.u32(snapshot.seq >>> 0).u32(Math.min(WIRE_UNKNOWN_U32, Math.max(0, Math.round(snapshot.intervalMs))));
  writer.u32(Math.min(WIRE_UNKNOWN_U32, Math.max(0, Math.floor(snapshot.uptimeS))));
  writeStr8(writer, snapshot.version, MAX_VERSION_BYTES);
  writer.u8(tags.length);
  for (const tag of tags) writeStr8(writer, tag, MAX_TAG_BYTES);
  for (const key of COUNTER_KEYS) writer.f64(Math.max(0, snapshot.counters[key]));
  writer.u16(neighbours.length);
  for (const neighbour of neighbours) {
    writer.u32(neighbour.id).u32(msToUs(neighbour.srttMs)).u32(msToUs(neighbour.rttvarMs));
    writer.u16(Math.round(Math.min(1, Math.max(0, neighbour.loss)) * 0xffff));
  }
  writer.u16(routes.length);
  for (const route of routes) {
    writer.u32(route.destination).u32(route.nextHop ?? 0).u32(msToUs(route.metricMs)).u8(Math.min(255, Math.max(0, route.hops)));
  }
  return writer.finish();
}

export function decodeCollectorMessage(payload: Uint8Array): CollectorMessage | Error {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  if (reader.failed) return new Error("empty collector message");
  let message: CollectorMessage;
  if (type === CollectorMessageType.Advert) {
    const collector = reader.u32();
    const seq = reader.u32();
    if (reader.failed) return new Error("truncated ADVERT");
    if (collector === 0) return new Error("ADVERT from node 0");
    message = { type: "advert", collector, seq };
  } else if (type === CollectorMessageType.Snapshot) {
    const snapshot = decodeSnapshotBody(reader);
    if (snapshot instanceof Error) return snapshot;
    message = { type: "snapshot", snapshot };
  } else {
    return new Error(`unknown collector message type ${type}`);
  }
  if (reader.remaining !== 0) return new Error(`${reader.remaining} trailing bytes after a collector message`);
  return message;
}

function decodeSnapshotBody(reader: ByteReader): Snapshot | Error {
  const format = reader.u8();
  if (reader.failed) return new Error("truncated SNAPSHOT");
  if (format !== SNAPSHOT_FORMAT_VERSION) return new Error(`SNAPSHOT format ${format} unknown (this node reads ${SNAPSHOT_FORMAT_VERSION})`);
  const flags = reader.u8();
  const seq = reader.u32();
  const intervalMs = reader.u32();
  const uptimeS = reader.u32();
  if (reader.failed) return new Error("truncated SNAPSHOT");
  if (intervalMs === 0) return new Error("SNAPSHOT with a zero interval");
  const version = readStr8(reader, MAX_VERSION_BYTES, "version");
  if (version instanceof Error) return version;
  const tagCount = reader.u8();
  if (tagCount > MAX_TAGS) return new Error(`${tagCount} tags exceed ${MAX_TAGS}`);
  const tags: string[] = [];
  for (let i = 0; i < tagCount; i++) {
    const tag = readStr8(reader, MAX_TAG_BYTES, "tag");
    if (tag instanceof Error) return tag;
    tags.push(tag);
  }
  const values: number[] = [];
  for (let i = 0; i < COUNTER_KEYS.length; i++) values.push(reader.f64());
  if (reader.failed) return new Error("truncated SNAPSHOT counters");
  if (values.some((value) => !Number.isFinite(value) || value < 0)) return new Error("SNAPSHOT counter is not a finite non-negative number");
  const counters = Object.fromEntries(COUNTER_KEYS.map((key, index) => [key, values[index]!])) as unknown as SnapshotCounters;
  const neighbourCount = reader.u16();
  if (neighbourCount > MAX_SNAPSHOT_NEIGHBOURS) return new Error(`${neighbourCount} neighbours exceed ${MAX_SNAPSHOT_NEIGHBOURS}`);
  if (reader.remaining < neighbourCount * 14) return new Error("truncated SNAPSHOT neighbours");
  const neighbours: SnapshotNeighbour[] = [];
  for (let i = 0; i < neighbourCount; i++) {
    const id = reader.u32();
    const srtt = reader.u32();
    const rttvar = reader.u32();
    const loss = reader.u16();
    if (id === 0) return new Error("SNAPSHOT neighbour 0");
    neighbours.push({ id, srttMs: usToMs(srtt), rttvarMs: usToMs(rttvar), loss: loss / 0xffff });
  }
  const routeCount = reader.u16();
  if (reader.failed) return new Error("truncated SNAPSHOT");
  if (routeCount > MAX_SNAPSHOT_ROUTES) return new Error(`${routeCount} routes exceed ${MAX_SNAPSHOT_ROUTES}`);
  if (reader.remaining < routeCount * 13) return new Error("truncated SNAPSHOT routes");
  const routes: SnapshotRoute[] = [];
  for (let i = 0; i < routeCount; i++) {
    const destination = reader.u32();
    const nextHop = reader.u32();
    const metric = reader.u32();
    const hops = reader.u8();
    if (destination === 0) return new Error("SNAPSHOT route to node 0");
    routes.push({ destination, nextHop: nextHop === 0 ? undefined : nextHop, metricMs: usToMs(metric), hops });
  }
  return { seq, flags, intervalMs, uptimeS, version, tags, counters, neighbours, routes };
}

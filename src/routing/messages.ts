/**
 * Routing messages (module id 3). Byte layouts are in docs/protocol.md ("Routing"). Every payload
 * starts with a u8 type; integers are big-endian. Two families:
 *
 *  - hop by hop, in LINK frames to one neighbour: `update`, `route_request`, `seqno_request`;
 *  - end to end, in ROUTED frames: `unreachable` (a relay could not forward a frame),
 *    `echo_request`, `echo_reply`, `time_exceeded` (ping and trace, like ICMP).
 *
 * The decoder is total: any input gives a value or an error, never an exception, and it allocates
 * at most what a MAX_ROUTE_MESSAGE_BYTES message can describe. Encoders never produce more than
 * MAX_ROUTE_MESSAGE_BYTES: `encodeUpdates` and friends split long lists into several messages.
 */
import { type Decoded, decodeError, decoded } from "../core/errors.js";
import type { NodeId } from "../core/node-id.js";
import { readU32, writeU32 } from "../wire/frame.js";
import { MAX_ROUTE_MESSAGE_BYTES } from "./constants.js";

export const RouteMessageType = {
  Update: 1,
  RouteRequest: 2,
  SeqnoRequest: 3,
  Unreachable: 16,
  EchoRequest: 17,
  EchoReply: 18,
  TimeExceeded: 19,
} as const;

export const UnreachableReason = {
  /** The relay has no route to the destination. */
  NoRoute: 1,
} as const;
export type UnreachableReason = (typeof UnreachableReason)[keyof typeof UnreachableReason];

export interface UpdateEntry {
  destination: NodeId;
  /** The destination's sequence number (u16). */
  seqno: number;
  /** Relays between the sender and the destination, plus one (0 = the sender itself). */
  hops: number;
  /** One-way metric in µs from the sender to the destination; METRIC_INFINITY = retraction. */
  metricUs: number;
}

export interface SeqnoRequestEntry {
  destination: NodeId;
  /** The sequence number asked for (the requester's feasibility distance seqno + 1). */
  seqno: number;
  /** Forwarded while > 1, decremented at each hop. */
  hopLimit: number;
}

export type RouteMessage =
  /** Routes of the sender. `intervalMs`: the sender's periodic update interval (routes expire after 3.5×). */
  | { type: "update"; intervalMs: number; entries: UpdateEntry[] }
  /** "Send me your routes to these destinations" (none listed: the whole table). */
  | { type: "route_request"; destinations: NodeId[] }
  /** "Send a route to this destination with at least this seqno" (forwarded toward it). */
  | { type: "seqno_request"; requests: SeqnoRequestEntry[] }
  /** Sent by a relay to a frame's source: the frame to `destination` was dropped. */
  | { type: "unreachable"; reason: UnreachableReason; destination: NodeId }
  | { type: "echo_request"; id: number }
  /**
   * The answer of the destination (echo_reply) or of the relay where the probe's TTL ran out
   * (time_exceeded). `previousHop`: the neighbour the probe arrived from; `linkRttUs`: the
   * reporter's smoothed RTT of that link (0xffffffff when unknown).
   */
  | { type: "echo_reply"; id: number; previousHop: NodeId; linkRttUs: number }
  | { type: "time_exceeded"; id: number; previousHop: NodeId; linkRttUs: number };

export const UPDATE_HEADER_BYTES = 6;
export const UPDATE_ENTRY_BYTES = 11;
export const MAX_UPDATE_ENTRIES = Math.floor((MAX_ROUTE_MESSAGE_BYTES - UPDATE_HEADER_BYTES) / UPDATE_ENTRY_BYTES);
const ROUTE_REQUEST_HEADER_BYTES = 3;
export const MAX_ROUTE_REQUEST_ENTRIES = Math.floor((MAX_ROUTE_MESSAGE_BYTES - ROUTE_REQUEST_HEADER_BYTES) / 4);
const SEQNO_REQUEST_HEADER_BYTES = 3;
const SEQNO_REQUEST_ENTRY_BYTES = 7;
export const MAX_SEQNO_REQUEST_ENTRIES = Math.floor((MAX_ROUTE_MESSAGE_BYTES - SEQNO_REQUEST_HEADER_BYTES) / SEQNO_REQUEST_ENTRY_BYTES);
/** Update interval on the wire: u16 centiseconds. */
const MAX_INTERVAL_CS = 0xffff;
export const UNKNOWN_RTT_US = 0xffff_ffff;

function writeU16(target: Uint8Array, offset: number, value: number): void {
  target[offset] = (value >>> 8) & 0xff;
  target[offset + 1] = value & 0xff;
}

function readU16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

/** Clamps a number into a u32 field. */
function u32(value: number): number {
  if (!(value >= 0)) return 0;
  return value >= 0xffff_ffff ? 0xffff_ffff : Math.floor(value);
}

/**
 * Updates as messages of at most MAX_UPDATE_ENTRIES entries each (≤ MAX_ROUTE_MESSAGE_BYTES).
 * `entries` may be longer; an empty list gives no message.
 */
export function encodeUpdates(intervalMs: number, entries: readonly UpdateEntry[]): Uint8Array[] {
  const messages: Uint8Array[] = [];
  const intervalCs = Math.min(MAX_INTERVAL_CS, Math.max(1, Math.round(intervalMs / 10)));
  for (let start = 0; start < entries.length; start += MAX_UPDATE_ENTRIES) {
    const count = Math.min(MAX_UPDATE_ENTRIES, entries.length - start);
    const bytes = new Uint8Array(UPDATE_HEADER_BYTES + count * UPDATE_ENTRY_BYTES);
    bytes[0] = RouteMessageType.Update;
    bytes[1] = 0; // flags, reserved
    writeU16(bytes, 2, intervalCs);
    writeU16(bytes, 4, count);
    let offset = UPDATE_HEADER_BYTES;
    for (let index = start; index < start + count; index++) {
      const entry = entries[index]!;
      writeU32(bytes, offset, entry.destination);
      writeU16(bytes, offset + 4, entry.seqno & 0xffff);
      bytes[offset + 6] = Math.min(255, Math.max(0, entry.hops));
      writeU32(bytes, offset + 7, u32(entry.metricUs));
      offset += UPDATE_ENTRY_BYTES;
    }
    messages.push(bytes);
  }
  return messages;
}

/** Route requests (an empty list: one "everything" request). */
export function encodeRouteRequests(destinations: readonly NodeId[]): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let start = 0;
  do {
    const count = Math.min(MAX_ROUTE_REQUEST_ENTRIES, destinations.length - start);
    const bytes = new Uint8Array(ROUTE_REQUEST_HEADER_BYTES + count * 4);
    bytes[0] = RouteMessageType.RouteRequest;
    writeU16(bytes, 1, count);
    for (let index = 0; index < count; index++) writeU32(bytes, ROUTE_REQUEST_HEADER_BYTES + index * 4, destinations[start + index]!);
    messages.push(bytes);
    start += count;
  } while (start < destinations.length);
  return messages;
}

export function encodeSeqnoRequests(requests: readonly SeqnoRequestEntry[]): Uint8Array[] {
  const messages: Uint8Array[] = [];
  for (let start = 0; start < requests.length; start += MAX_SEQNO_REQUEST_ENTRIES) {
    const count = Math.min(MAX_SEQNO_REQUEST_ENTRIES, requests.length - start);
    const bytes = new Uint8Array(SEQNO_REQUEST_HEADER_BYTES + count * SEQNO_REQUEST_ENTRY_BYTES);
    bytes[0] = RouteMessageType.SeqnoRequest;
    writeU16(bytes, 1, count);
    let offset = SEQNO_REQUEST_HEADER_BYTES;
    for (let index = start; index < start + count; index++) {
      const request = requests[index]!;
      writeU32(bytes, offset, request.destination);
      writeU16(bytes, offset + 4, request.seqno & 0xffff);
      bytes[offset + 6] = Math.min(255, Math.max(0, request.hopLimit));
      offset += SEQNO_REQUEST_ENTRY_BYTES;
    }
    messages.push(bytes);
  }
  return messages;
}

/** Encodes one end-to-end message (unreachable, echo_request, echo_reply, time_exceeded). */
export function encodeRoutedMessage(
  message: Extract<RouteMessage, { type: "unreachable" | "echo_request" | "echo_reply" | "time_exceeded" }>,
): Uint8Array {
  switch (message.type) {
    case "unreachable": {
      const bytes = new Uint8Array(6);
      bytes[0] = RouteMessageType.Unreachable;
      bytes[1] = message.reason;
      writeU32(bytes, 2, message.destination);
      return bytes;
    }
    case "echo_request": {
      const bytes = new Uint8Array(5);
      bytes[0] = RouteMessageType.EchoRequest;
      writeU32(bytes, 1, message.id);
      return bytes;
    }
    case "echo_reply":
    case "time_exceeded": {
      const bytes = new Uint8Array(13);
      bytes[0] = message.type === "echo_reply" ? RouteMessageType.EchoReply : RouteMessageType.TimeExceeded;
      writeU32(bytes, 1, message.id);
      writeU32(bytes, 5, message.previousHop);
      writeU32(bytes, 9, u32(message.linkRttUs));
      return bytes;
    }
  }
}

/** Any message, for tests and tools (the router encodes lists with the functions above). */
export function encodeRouteMessage(message: RouteMessage): Uint8Array {
  switch (message.type) {
    case "update":
      if (message.entries.length > MAX_UPDATE_ENTRIES) throw new RangeError(`at most ${MAX_UPDATE_ENTRIES} entries per update`);
      return encodeUpdates(message.intervalMs, message.entries)[0] ?? emptyUpdate(message.intervalMs);
    case "route_request":
      if (message.destinations.length > MAX_ROUTE_REQUEST_ENTRIES) throw new RangeError(`at most ${MAX_ROUTE_REQUEST_ENTRIES} destinations per route request`);
      return encodeRouteRequests(message.destinations)[0]!;
    case "seqno_request": {
      if (message.requests.length > MAX_SEQNO_REQUEST_ENTRIES) throw new RangeError(`at most ${MAX_SEQNO_REQUEST_ENTRIES} entries per seqno request`);
      return encodeSeqnoRequests(message.requests)[0] ?? new Uint8Array([RouteMessageType.SeqnoRequest, 0, 0]);
    }
    default:
      return encodeRoutedMessage(message);
  }
}

function emptyUpdate(intervalMs: number): Uint8Array {
  const bytes = new Uint8Array(UPDATE_HEADER_BYTES);
  bytes[0] = RouteMessageType.Update;
  writeU16(bytes, 2, Math.min(MAX_INTERVAL_CS, Math.max(1, Math.round(intervalMs / 10))));
  return bytes;
}

/** Decodes any routing message. Total: never throws; refuses trailing bytes and bad counts. */
export function decodeRouteMessage(bytes: Uint8Array): Decoded<RouteMessage> {
  if (bytes.byteLength === 0) return decodeError("empty routing message");
  if (bytes.byteLength > MAX_ROUTE_MESSAGE_BYTES) return decodeError(`routing message of ${bytes.byteLength} bytes exceeds ${MAX_ROUTE_MESSAGE_BYTES}`);
  const type = bytes[0]!;
  switch (type) {
    case RouteMessageType.Update: {
      if (bytes.byteLength < UPDATE_HEADER_BYTES) return decodeError("truncated update header");
      if (bytes[1] !== 0) return decodeError(`update flags 0x${bytes[1]!.toString(16)} are reserved`);
      const intervalCs = readU16(bytes, 2);
      if (intervalCs === 0) return decodeError("update interval 0");
      const count = readU16(bytes, 4);
      if (count > MAX_UPDATE_ENTRIES) return decodeError(`update with ${count} entries (at most ${MAX_UPDATE_ENTRIES})`);
      if (bytes.byteLength !== UPDATE_HEADER_BYTES + count * UPDATE_ENTRY_BYTES) {
        return decodeError(`update of ${bytes.byteLength} bytes does not hold ${count} entries`);
      }
      const entries: UpdateEntry[] = [];
      let offset = UPDATE_HEADER_BYTES;
      for (let index = 0; index < count; index++) {
        const destination = readU32(bytes, offset);
        if (destination === 0) return decodeError("update entry for node 0");
        entries.push({ destination, seqno: readU16(bytes, offset + 4), hops: bytes[offset + 6]!, metricUs: readU32(bytes, offset + 7) });
        offset += UPDATE_ENTRY_BYTES;
      }
      return decoded({ type: "update", intervalMs: intervalCs * 10, entries });
    }
    case RouteMessageType.RouteRequest: {
      if (bytes.byteLength < ROUTE_REQUEST_HEADER_BYTES) return decodeError("truncated route request");
      const count = readU16(bytes, 1);
      if (count > MAX_ROUTE_REQUEST_ENTRIES) return decodeError(`route request with ${count} entries (at most ${MAX_ROUTE_REQUEST_ENTRIES})`);
      if (bytes.byteLength !== ROUTE_REQUEST_HEADER_BYTES + count * 4) return decodeError(`route request of ${bytes.byteLength} bytes does not hold ${count} entries`);
      const destinations: NodeId[] = [];
      for (let index = 0; index < count; index++) {
        const destination = readU32(bytes, ROUTE_REQUEST_HEADER_BYTES + index * 4);
        if (destination === 0) return decodeError("route request for node 0");
        destinations.push(destination);
      }
      return decoded({ type: "route_request", destinations });
    }
    case RouteMessageType.SeqnoRequest: {
      if (bytes.byteLength < SEQNO_REQUEST_HEADER_BYTES) return decodeError("truncated seqno request");
      const count = readU16(bytes, 1);
      if (count > MAX_SEQNO_REQUEST_ENTRIES) return decodeError(`seqno request with ${count} entries (at most ${MAX_SEQNO_REQUEST_ENTRIES})`);
      if (bytes.byteLength !== SEQNO_REQUEST_HEADER_BYTES + count * SEQNO_REQUEST_ENTRY_BYTES) {
        return decodeError(`seqno request of ${bytes.byteLength} bytes does not hold ${count} entries`);
      }
      const requests: SeqnoRequestEntry[] = [];
      let offset = SEQNO_REQUEST_HEADER_BYTES;
      for (let index = 0; index < count; index++) {
        const destination = readU32(bytes, offset);
        if (destination === 0) return decodeError("seqno request for node 0");
        requests.push({ destination, seqno: readU16(bytes, offset + 4), hopLimit: bytes[offset + 6]! });
        offset += SEQNO_REQUEST_ENTRY_BYTES;
      }
      return decoded({ type: "seqno_request", requests });
    }
    case RouteMessageType.Unreachable: {
      if (bytes.byteLength !== 6) return decodeError(`unreachable report of ${bytes.byteLength} bytes (expected 6)`);
      const reason = bytes[1]!;
      if (reason !== UnreachableReason.NoRoute) return decodeError(`unknown unreachable reason ${reason}`);
      const destination = readU32(bytes, 2);
      if (destination === 0) return decodeError("unreachable report for node 0");
      return decoded({ type: "unreachable", reason, destination });
    }
    case RouteMessageType.EchoRequest: {
      if (bytes.byteLength !== 5) return decodeError(`echo request of ${bytes.byteLength} bytes (expected 5)`);
      return decoded({ type: "echo_request", id: readU32(bytes, 1) });
    }
    case RouteMessageType.EchoReply:
    case RouteMessageType.TimeExceeded: {
      if (bytes.byteLength !== 13) return decodeError(`echo answer of ${bytes.byteLength} bytes (expected 13)`);
      const id = readU32(bytes, 1);
      const previousHop = readU32(bytes, 5);
      const linkRttUs = readU32(bytes, 9);
      return decoded(type === RouteMessageType.EchoReply ? { type: "echo_reply", id, previousHop, linkRttUs } : { type: "time_exceeded", id, previousHop, linkRttUs });
    }
    default:
      return decodeError(`unknown routing message type ${type}`);
  }
}

/** True for the message types that travel hop by hop (LINK frames). */
export function isHopByHop(message: RouteMessage): boolean {
  return message.type === "update" || message.type === "route_request" || message.type === "seqno_request";
}

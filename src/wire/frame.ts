/**
 * The fixed frame header (docs/protocol.md, "Frame header"). Relays decide on these 20 bytes
 * alone, so the layout is fixed, big-endian and aligned, and decoding it allocates nothing.
 *
 *   0  u8   version          (FRAME_VERSION)
 *   1  u8   kind             (FrameKind)
 *   2  u8   flags            (FrameFlag bits)
 *   3  u8   ttl              hops left; decremented by each relay
 *   4  u32  source NodeId
 *   8  u32  destination NodeId (0 = the neighbour at the other end of the link)
 *  12  u16  module id        (which module's codec reads the payload)
 *  14  u16  reserved         must be 0 in version 1
 *  16  u32  payload length   bytes that follow the header
 */
import type { NodeId } from "../core/node-id.js";
import { type Decoded, decodeError } from "../core/errors.js";

export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 20;
/** Hard cap on one frame's payload: bounds every allocation a peer can cause. */
export const MAX_FRAME_PAYLOAD_BYTES = 4 * 1024 * 1024;
export const DEFAULT_TTL = 32;

export const FrameKind = {
  /** Reserved for the secure handshake (before any other frame on a link). */
  Handshake: 0,
  /** Link-local control (hello, probes, peer lists): never forwarded. */
  Link: 1,
  /** An end-to-end frame from `source` to `destination`, possibly through relays. */
  Routed: 2,
  /** One segment of the UDP reliable class (link/arq.ts). */
  ArqSegment: 3,
  /** Acknowledgement of UDP reliable segments. */
  ArqAck: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];
const FRAME_KIND_COUNT = 5;

export const FrameFlag = {
  /** The frame travels on the reliable-ordered class. */
  Reliable: 0x01,
  /**
   * ROUTED frames: the payload is sealed end to end between source and destination
   * (crypto/e2e.ts, node/e2e-paths.ts); relays forward it unread.
   */
  Sealed: 0x02,
} as const;
const KNOWN_FLAGS = 0x03;

export interface FrameHeader {
  version: number;
  kind: FrameKind;
  flags: number;
  ttl: number;
  source: NodeId;
  destination: NodeId;
  module: number;
  length: number;
}

/**
 * Writes a frame header. `ttl` and `length` are arguments, not fields, so no caller builds a
 * header object per frame: V8 11 (Node 20) gives every `{ ...header, length }` a fresh hidden
 * class, and at 15,000 bulk frames a second those maps alone forced a full GC every 200 ms.
 */
export function writeFrameHeader(target: Uint8Array, offset: number, header: Omit<FrameHeader, "version" | "length" | "ttl">, ttl: number, length: number): void {
  target[offset] = FRAME_VERSION;
  target[offset + 1] = header.kind;
  target[offset + 2] = header.flags;
  target[offset + 3] = ttl;
  writeU32(target, offset + 4, header.source);
  writeU32(target, offset + 8, header.destination);
  target[offset + 12] = header.module >>> 8;
  target[offset + 13] = header.module & 0xff;
  target[offset + 14] = 0;
  target[offset + 15] = 0;
  writeU32(target, offset + 16, length);
}

/** Header and payload in one fresh buffer (one transport write). */
export function encodeFrame(header: Omit<FrameHeader, "version" | "length">, payload: Uint8Array): Uint8Array {
  // Hot path (every message): one allocation, no intermediate header object.
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  frame[0] = FRAME_VERSION;
  frame[1] = header.kind;
  frame[2] = header.flags;
  frame[3] = header.ttl;
  writeU32(frame, 4, header.source);
  writeU32(frame, 8, header.destination);
  frame[12] = header.module >>> 8;
  frame[13] = header.module & 0xff;
  writeU32(frame, 16, payload.byteLength);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Checks everything a relay must trust in the header at `offset` — version, kind, flags, reserved
 * bits and the payload bound — without allocating; returns an error text or undefined. It does not
 * check that the payload is all present (see `frameSizeAt` for stream reassembly).
 */
export function checkFrameHeader(bytes: Uint8Array, offset: number): string | undefined {
  if (bytes.byteLength - offset < FRAME_HEADER_BYTES) return "truncated frame header";
  const version = bytes[offset]!;
  if (version !== FRAME_VERSION) return `unsupported frame version ${version} (this node speaks ${FRAME_VERSION})`;
  const kind = bytes[offset + 1]!;
  if (kind >= FRAME_KIND_COUNT) return `unknown frame kind ${kind}`;
  const flags = bytes[offset + 2]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) return `unknown frame flags 0x${flags.toString(16)}`;
  if (bytes[offset + 14] !== 0 || bytes[offset + 15] !== 0) return "reserved header bytes are not zero";
  const length = readU32(bytes, offset + 16);
  if (length > MAX_FRAME_PAYLOAD_BYTES) return `frame payload of ${length} bytes exceeds the ${MAX_FRAME_PAYLOAD_BYTES}-byte limit`;
  return undefined;
}

/** Fills `into` from a header that `checkFrameHeader` accepted. */
function fillFrameHeader(bytes: Uint8Array, offset: number, into: FrameHeader): void {
  into.version = bytes[offset]!;
  into.kind = bytes[offset + 1]! as FrameKind;
  into.flags = bytes[offset + 2]!;
  into.ttl = bytes[offset + 3]!;
  into.source = readU32(bytes, offset + 4);
  into.destination = readU32(bytes, offset + 8);
  into.module = (bytes[offset + 12]! << 8) | bytes[offset + 13]!;
  into.length = readU32(bytes, offset + 16);
}

/** Reads and checks the header at `offset` (see `checkFrameHeader`). */
export function readFrameHeader(bytes: Uint8Array, offset: number): Decoded<FrameHeader> {
  const error = checkFrameHeader(bytes, offset);
  if (error !== undefined) return decodeError(error);
  const header = emptyFrameHeader();
  fillFrameHeader(bytes, offset, header);
  return { ok: true, value: header };
}

export function emptyFrameHeader(): FrameHeader {
  return { version: 0, kind: FrameKind.Handshake, flags: 0, ttl: 0, source: 0, destination: 0, module: 0, length: 0 };
}

/**
 * For stream transports: the total size of the frame starting at `offset`, `0` when more bytes are
 * needed to tell, or a DecodeError when the header is invalid (the stream cannot be resynchronised).
 */
export function frameSizeAt(bytes: Uint8Array, offset: number): number | Decoded<never> {
  if (bytes.byteLength - offset < FRAME_HEADER_BYTES) return 0;
  const error = checkFrameHeader(bytes, offset);
  if (error !== undefined) return decodeError(error);
  return FRAME_HEADER_BYTES + readU32(bytes, offset + 16);
}

/**
 * A packet (one UDP datagram, or frames cut from a TCP stream) holds one or more whole frames back
 * to back. Calls `onFrame` for each with the header and a view of the payload (copy it before
 * keeping it past the call). Returns an error text for the first malformed frame (frames before it
 * have been delivered), or undefined.
 *
 * Hot path: one header object per call is reused for every frame, so `header` is only valid
 * during its callback.
 */
export function forEachFrame(packet: Uint8Array, onFrame: (header: FrameHeader, payload: Uint8Array) => void): string | undefined {
  if (packet.byteLength === 0) return "empty packet";
  const header = emptyFrameHeader();
  let offset = 0;
  while (offset < packet.byteLength) {
    const error = checkFrameHeader(packet, offset);
    if (error !== undefined) return error;
    fillFrameHeader(packet, offset, header);
    const start = offset + FRAME_HEADER_BYTES;
    const end = start + header.length;
    if (end > packet.byteLength) return `frame payload truncated: header says ${header.length} bytes, ${packet.byteLength - start} present`;
    onFrame(header, packet.subarray(start, end));
    offset = end;
  }
  return undefined;
}

export function writeU32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = (value >>> 16) & 0xff;
  target[offset + 2] = (value >>> 8) & 0xff;
  target[offset + 3] = value & 0xff;
}

export function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

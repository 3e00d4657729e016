/**
 * What travels on a secured path: a sequence of *units*, each a 4-byte clear header and a body.
 * Handshake messages and records are units; the engine's frames only ever travel inside records.
 *
 *   0  u8   type    0x10 HS_INIT, 0x11 HS_RESPONSE, 0x12 HS_FINISH, 0x13 HS_REJECT, 0x20 RECORD
 *   1  u24  length  of the body that follows (big-endian), at most UNIT_MAX_BODY_BYTES
 *   4  …    body
 *
 * On a stream transport the units follow each other (the length delimits them: `unitSizeAt` is
 * what TCP reassembly calls); on a datagram transport one datagram is exactly one unit.
 *
 * Type values start at 0x10 so that a plaintext skein v1 frame (first byte 1, its version) is
 * recognisable and refused with a clear message instead of being taken for garbage.
 */
import { FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD_BYTES } from "../wire/frame.js";
import { type Result, fail, ok } from "./result.js";

export const UnitType = {
  HandshakeInit: 0x10,
  HandshakeResponse: 0x11,
  HandshakeFinish: 0x12,
  HandshakeReject: 0x13,
  Record: 0x20,
} as const;
export type UnitType = (typeof UnitType)[keyof typeof UnitType];

export const UNIT_HEADER_BYTES = 4;
/** Record body: u32 epoch + u64 counter + ciphertext + 16-byte tag. */
export const RECORD_OVERHEAD_BYTES = UNIT_HEADER_BYTES + 12 + 16;
/** The largest plaintext one record carries: one whole frame of the largest size. */
export const RECORD_MAX_PLAINTEXT_BYTES = FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES;
/** The largest unit body: a record of the largest plaintext. */
export const UNIT_MAX_BODY_BYTES = RECORD_MAX_PLAINTEXT_BYTES + RECORD_OVERHEAD_BYTES - UNIT_HEADER_BYTES;
/** Handshake units are small: anything larger is refused before it is buffered. */
export const HANDSHAKE_UNIT_MAX_BYTES = 2048;

/** The plaintext skein v1 frame version byte (a peer that does not speak the secure protocol). */
const PLAINTEXT_FRAME_VERSION = 1;

export function isUnitType(value: number): value is UnitType {
  return (value >= UnitType.HandshakeInit && value <= UnitType.HandshakeReject) || value === UnitType.Record;
}

export function isHandshakeType(value: number): boolean {
  return value >= UnitType.HandshakeInit && value <= UnitType.HandshakeReject;
}

export function writeUnitHeader(target: Uint8Array, offset: number, type: UnitType, bodyLength: number): void {
  if (bodyLength > UNIT_MAX_BODY_BYTES || bodyLength < 0) throw new RangeError(`unit body of ${bodyLength} bytes is over the limit`);
  target[offset] = type;
  target[offset + 1] = (bodyLength >>> 16) & 0xff;
  target[offset + 2] = (bodyLength >>> 8) & 0xff;
  target[offset + 3] = bodyLength & 0xff;
}

/** A whole unit (header and body) in a fresh array. */
export function encodeUnit(type: UnitType, body: Uint8Array): Uint8Array {
  const unit = new Uint8Array(UNIT_HEADER_BYTES + body.byteLength);
  writeUnitHeader(unit, 0, type, body.byteLength);
  unit.set(body, UNIT_HEADER_BYTES);
  return unit;
}

function headerError(bytes: Uint8Array, offset: number): string | undefined {
  const type = bytes[offset]!;
  if (!isUnitType(type)) {
    if (type === PLAINTEXT_FRAME_VERSION) return "the peer speaks the plaintext skein protocol v1 (no handshake, no encryption): upgrade it";
    return `unknown unit type 0x${type.toString(16).padStart(2, "0")}`;
  }
  const length = bodyLengthAt(bytes, offset);
  if (length > UNIT_MAX_BODY_BYTES) return `unit of ${length} bytes exceeds the ${UNIT_MAX_BODY_BYTES}-byte limit`;
  if (type !== UnitType.Record && UNIT_HEADER_BYTES + length > HANDSHAKE_UNIT_MAX_BYTES) return `handshake unit of ${length} bytes exceeds ${HANDSHAKE_UNIT_MAX_BYTES}`;
  return undefined;
}

function bodyLengthAt(bytes: Uint8Array, offset: number): number {
  return (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
}

/**
 * For stream reassembly: the size of the unit starting at `offset`, `0` when more bytes are
 * needed to tell, or an error text when the header is invalid (the stream cannot be
 * resynchronised: close it).
 */
export function unitSizeAt(bytes: Uint8Array, offset: number): number | string {
  if (bytes.byteLength - offset < UNIT_HEADER_BYTES) return 0;
  const error = headerError(bytes, offset);
  if (error !== undefined) return error;
  return UNIT_HEADER_BYTES + bodyLengthAt(bytes, offset);
}

export interface Unit {
  type: UnitType;
  /** The whole unit, header included (records authenticate their header). */
  bytes: Uint8Array;
  /** A view of the body. */
  body: Uint8Array;
}

/** Exactly one unit, nothing after it (a datagram, or one unit cut from a stream). Total. */
export function readUnit(bytes: Uint8Array): Result<Unit, "malformed"> {
  if (bytes.byteLength < UNIT_HEADER_BYTES) return fail("malformed", `${bytes.byteLength} bytes: too short for a unit header`);
  const error = headerError(bytes, 0);
  if (error !== undefined) return fail("malformed", error);
  const length = bodyLengthAt(bytes, 0);
  if (UNIT_HEADER_BYTES + length !== bytes.byteLength) {
    return fail("malformed", `unit header says ${length} body bytes, ${bytes.byteLength - UNIT_HEADER_BYTES} present`);
  }
  return ok({ type: bytes[0] as UnitType, bytes, body: bytes.subarray(UNIT_HEADER_BYTES) });
}

/**
 * Calls `onUnit` for each whole unit in `bytes` (several units cut from a stream at once).
 * Returns an error text for the first malformed or truncated unit, or undefined.
 */
export function forEachUnit(bytes: Uint8Array, onUnit: (unit: Uint8Array) => void): string | undefined {
  if (bytes.byteLength === 0) return "empty packet";
  let offset = 0;
  while (offset < bytes.byteLength) {
    const size = unitSizeAt(bytes, offset);
    if (typeof size === "string") return size;
    if (size === 0 || offset + size > bytes.byteLength) return "truncated unit";
    onUnit(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return undefined;
}

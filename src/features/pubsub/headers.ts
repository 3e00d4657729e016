/**
 * Message headers in NATS's wire form, the block HPUB/HMSG carry before the payload:
 *
 *   NATS/1.0[ STATUS[ DESCRIPTION]]\r\n
 *   Key: Value\r\n        (zero or more; a key may repeat)
 *   \r\n
 *
 * The broker carries this block as raw bytes (it never parses it on the data path); the library
 * API parses it lazily into `MsgHeaders`. A status of 503 with no payload is NATS's
 * "no responders" answer to a request.
 */
import { SkeinError } from "../../core/errors.js";
import { type Decoded, decodeError, decoded } from "../../core/errors.js";

export const HEADER_VERSION_LINE = "NATS/1.0";
export const NO_RESPONDERS_STATUS = 503;

/** The exact block nats-server sends to a requester when nobody is subscribed. */
export const NO_RESPONDERS_BLOCK = new TextEncoder().encode("NATS/1.0 503\r\n\r\n");

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) throw new SkeinError("BAD_HEADER", `bad header key ${JSON.stringify(key)}: expected a non-empty string`);
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code <= 0x20 || code === 0x3a || code >= 0x7f) {
      throw new SkeinError("BAD_HEADER", `bad header key ${JSON.stringify(key)}: keys are printable ASCII without spaces or ":"`);
    }
  }
}

function checkValue(key: string, value: string): void {
  if (typeof value !== "string") throw new SkeinError("BAD_HEADER", `bad value for header ${JSON.stringify(key)}: expected a string`);
  if (/[\r\n]/.test(value)) throw new SkeinError("BAD_HEADER", `bad value for header ${JSON.stringify(key)}: values cannot contain CR or LF`);
}

export class MsgHeaders implements Iterable<[string, string[]]> {
  /** 0 when the block has no status (an ordinary message). */
  status = 0;
  description = "";
  private readonly map = new Map<string, string[]>();

  static from(init: Record<string, string | string[]> | Iterable<[string, string | string[]]> | MsgHeaders): MsgHeaders {
    if (init instanceof MsgHeaders) return init;
    const headers = new MsgHeaders();
    const pairs = Symbol.iterator in Object(init) ? (init as Iterable<[string, string | string[]]>) : Object.entries(init);
    for (const [key, value] of pairs) {
      for (const one of Array.isArray(value) ? value : [value]) headers.append(key, one);
    }
    return headers;
  }

  get(key: string): string | undefined {
    return this.map.get(key)?.[0];
  }
  values(key: string): string[] {
    return [...(this.map.get(key) ?? [])];
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
  set(key: string, value: string): void {
    checkKey(key);
    checkValue(key, value);
    this.map.set(key, [value]);
  }
  append(key: string, value: string): void {
    checkKey(key);
    checkValue(key, value);
    const list = this.map.get(key);
    if (list === undefined) this.map.set(key, [value]);
    else list.push(value);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  keys(): string[] {
    return [...this.map.keys()];
  }
  get size(): number {
    return this.map.size;
  }
  [Symbol.iterator](): Iterator<[string, string[]]> {
    return this.map.entries();
  }

  /** The wire block, `NATS/1.0…\r\n\r\n`. */
  encode(): Uint8Array {
    let text = HEADER_VERSION_LINE;
    if (this.status !== 0) text += ` ${this.status}${this.description === "" ? "" : ` ${this.description}`}`;
    text += "\r\n";
    for (const [key, values] of this.map) for (const value of values) text += `${key}: ${value}\r\n`;
    text += "\r\n";
    return encoder.encode(text);
  }

  /** Parses a header block. Lenient about the trailing blank line, strict about the version line. */
  static decode(block: Uint8Array): Decoded<MsgHeaders> {
    const text = decoder.decode(block);
    const lines = text.split("\r\n");
    const first = lines[0] ?? "";
    if (!first.startsWith(HEADER_VERSION_LINE)) return decodeError(`header block does not start with ${HEADER_VERSION_LINE}`);
    const headers = new MsgHeaders();
    const rest = first.slice(HEADER_VERSION_LINE.length).trim();
    if (rest.length > 0) {
      const space = rest.indexOf(" ");
      const code = Number(space < 0 ? rest : rest.slice(0, space));
      if (!Number.isInteger(code) || code < 0 || code > 999) return decodeError(`bad header status ${JSON.stringify(rest)}`);
      headers.status = code;
      headers.description = space < 0 ? "" : rest.slice(space + 1).trim();
    }
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.length === 0) continue;
      const colon = line.indexOf(":");
      if (colon <= 0) return decodeError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      const key = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      const list = headers.map.get(key);
      if (list === undefined) headers.map.set(key, [value]);
      else list.push(value);
    }
    return decoded(headers);
  }
}

/** True when a header block starts with `NATS/1.0 503` (no responders). */
export function isNoRespondersBlock(block: Uint8Array, offset = 0, length = block.byteLength - offset): boolean {
  const expect = "NATS/1.0 503";
  if (length < expect.length) return false;
  for (let i = 0; i < expect.length; i++) if (block[offset + i] !== expect.charCodeAt(i)) return false;
  const next = length > expect.length ? block[offset + expect.length] : 0x0d;
  return next === 0x0d || next === 0x20;
}

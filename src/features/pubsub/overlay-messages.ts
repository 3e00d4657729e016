/**
 * Pub/sub overlay messages (module 4), their codec and the tunables of the overlay
 * (overlay.ts). Byte layouts: docs/protocol.md, "Pub/sub (module 4)". Every decoder is total: it
 * returns an Error (never throws) on truncated input, counts over their limits or trailing bytes.
 */
import type { NodeId } from "../../core/node-id.js";

export const PubSubMessageType = {
  Update: 1,
  Snapshot: 2,
  Digest: 3,
  Pull: 4,
  Data: 5,
  DataBatch: 6,
} as const;

/**
 * DATA frames for one next hop are batched (DATA_BATCH: type 6, then per frame a u32 length and
 * the DATA frame) until the engine flushes its links, or until a batch holds this many bytes. A
 * DATA frame larger than this travels alone.
 */
export const DATA_BATCH_MAX_BYTES = 32 * 1024;

/** Entries one UPDATE or SNAPSHOT chunk carries at most. */
export const MAX_ENTRIES_PER_MESSAGE = 512;
/** A SNAPSHOT chunk is closed once it holds this many bytes (subjects can be long). */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;
/** Digest items per DIGEST message (12 bytes each). */
export const MAX_DIGEST_ITEMS = 1024;
/** Origins per PULL message. */
export const MAX_PULL_ORIGINS = 1024;
/** Destinations one DATA frame lists at most (a publish to more nodes sends several frames per hop). */
export const MAX_DATA_DESTINATIONS = 1024;
/** Queue groups per destination in a DATA frame. */
export const MAX_QUEUES_PER_DESTINATION = 255;
/** Hops a DATA frame may take (loop guard during route changes). */
export const DATA_TTL = 32;
/** Longest subject or reply subject carried (bytes of UTF-8). */
export const MAX_SUBJECT_BYTES = 65_535;
/** Longest queue group name (bytes). */
export const MAX_QUEUE_BYTES = 255;

/** SNAPSHOT flags. */
export const SnapshotFlag = { First: 1, Last: 2 } as const;

export interface InterestItem {
  subject: string;
  /** undefined = plain subscription. */
  queue: string | undefined;
  /** Local subscriptions on (subject, queue) at the origin; 0 withdraws. */
  count: number;
}

export interface DigestItem {
  origin: NodeId;
  epoch: number;
  seq: number;
}

export interface DataDestination {
  node: NodeId;
  queues: string[];
}

export type PubSubMessage =
  | { type: "update"; origin: NodeId; epoch: number; seq: number; items: InterestItem[] }
  | { type: "snapshot"; origin: NodeId; epoch: number; seq: number; flags: number; items: InterestItem[] }
  | { type: "digest"; items: DigestItem[] }
  | { type: "pull"; origins: NodeId[] };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// ─── Writing ──────────────────────────────────────────────────────────────────────────────────

class Writer {
  bytes: Uint8Array;
  view: DataView;
  length = 0;
  constructor(initial: number) {
    this.bytes = new Uint8Array(initial);
    this.view = new DataView(this.bytes.buffer);
  }
  private room(n: number): void {
    if (this.length + n <= this.bytes.byteLength) return;
    const next = new Uint8Array(Math.max(this.bytes.byteLength * 2, this.length + n));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.room(1);
    this.bytes[this.length++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
  }
  raw(b: Uint8Array): void {
    this.room(b.byteLength);
    this.bytes.set(b, this.length);
    this.length += b.byteLength;
  }
  str16(s: string): void {
    const b = encoder.encode(s);
    this.u16(b.byteLength);
    this.raw(b);
  }
  str8(s: string): void {
    const b = encoder.encode(s);
    this.u8(b.byteLength);
    this.raw(b);
  }
  done(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

function writeItems(w: Writer, items: readonly InterestItem[]): void {
  w.u16(items.length);
  for (const item of items) {
    w.u32(item.count);
    w.str16(item.subject);
    w.str8(item.queue ?? "");
  }
}

export function encodePubSubMessage(message: PubSubMessage): Uint8Array {
  const w = new Writer(64);
  switch (message.type) {
    case "update":
      w.u8(PubSubMessageType.Update);
      w.u32(message.origin);
      w.u32(message.epoch);
      w.u32(message.seq);
      writeItems(w, message.items);
      break;
    case "snapshot":
      w.u8(PubSubMessageType.Snapshot);
      w.u32(message.origin);
      w.u32(message.epoch);
      w.u32(message.seq);
      w.u8(message.flags);
      writeItems(w, message.items);
      break;
    case "digest":
      w.u8(PubSubMessageType.Digest);
      w.u16(message.items.length);
      for (const item of message.items) {
        w.u32(item.origin);
        w.u32(item.epoch);
        w.u32(item.seq);
      }
      break;
    case "pull":
      w.u8(PubSubMessageType.Pull);
      w.u16(message.origins.length);
      for (const origin of message.origins) w.u32(origin);
      break;
  }
  return w.done();
}

/** Encoded size of one interest item (for chunking). */
export function itemBytes(item: InterestItem): number {
  return 4 + 2 + encoder.encode(item.subject).byteLength + 1 + (item.queue === undefined ? 0 : encoder.encode(item.queue).byteLength);
}

/**
 * The message part of a DATA frame (everything after the destination list): subject, reply,
 * header length and the header block + payload bytes, contiguous.
 */
export function encodeDataBody(subject: string, reply: string, headerLength: number, bytes: Uint8Array): Uint8Array {
  const s = encodeSubject(subject);
  const r = reply === "" ? EMPTY : encodeSubject(reply);
  const out = new Uint8Array(2 + s.byteLength + 2 + r.byteLength + 4 + bytes.byteLength);
  let at = 0;
  out[at++] = s.byteLength >>> 8;
  out[at++] = s.byteLength & 0xff;
  out.set(s, at);
  at += s.byteLength;
  out[at++] = r.byteLength >>> 8;
  out[at++] = r.byteLength & 0xff;
  out.set(r, at);
  at += r.byteLength;
  out[at++] = headerLength >>> 24;
  out[at++] = (headerLength >>> 16) & 0xff;
  out[at++] = (headerLength >>> 8) & 0xff;
  out[at++] = headerLength & 0xff;
  out.set(bytes, at);
  return out;
}

const EMPTY = new Uint8Array(0);

/**
 * A DATA body not yet encoded: what a publishing node writes straight into its per-hop batches
 * (writeDataFrame), so that no buffer is allocated per message. `size` = encodeDataBody's length.
 */
export interface DataBodyParts {
  subject: Uint8Array;
  reply: Uint8Array;
  headerLength: number;
  bytes: Uint8Array;
  size: number;
}

/** Fills `parts` (reused by the caller) for a message; subjects come from a small cache. */
export function dataBodyParts(parts: DataBodyParts, subject: string, reply: string, headerLength: number, bytes: Uint8Array): DataBodyParts {
  parts.subject = encodeSubject(subject);
  parts.reply = reply === "" ? EMPTY : encodeSubject(reply);
  parts.headerLength = headerLength;
  parts.bytes = bytes;
  parts.size = 2 + parts.subject.byteLength + 2 + parts.reply.byteLength + 4 + bytes.byteLength;
  return parts;
}

export function bodyBytes(body: Uint8Array | DataBodyParts): number {
  return body instanceof Uint8Array ? body.byteLength : body.size;
}

/** The encoded body (encodeDataBody's bytes) of parts, or the body itself. */
export function materializeBody(body: Uint8Array | DataBodyParts): Uint8Array {
  if (body instanceof Uint8Array) return body;
  const out = new Uint8Array(body.size);
  writeBody(out, 0, body);
  return out;
}

function writeBody(out: Uint8Array, at: number, parts: DataBodyParts): number {
  const s = parts.subject;
  const r = parts.reply;
  const headerLength = parts.headerLength;
  out[at++] = s.byteLength >>> 8;
  out[at++] = s.byteLength & 0xff;
  out.set(s, at);
  at += s.byteLength;
  out[at++] = r.byteLength >>> 8;
  out[at++] = r.byteLength & 0xff;
  if (r.byteLength > 0) out.set(r, at);
  at += r.byteLength;
  out[at++] = headerLength >>> 24;
  out[at++] = (headerLength >>> 16) & 0xff;
  out[at++] = (headerLength >>> 8) & 0xff;
  out[at++] = headerLength & 0xff;
  out.set(parts.bytes, at);
  return at + parts.bytes.byteLength;
}
/** Subjects seen recently, encoded (most publishes repeat a few subjects). */
const SUBJECT_CACHE_MAX = 1024;
const subjectCache = new Map<string, Uint8Array>();

function encodeSubject(subject: string): Uint8Array {
  let bytes = subjectCache.get(subject);
  if (bytes === undefined) {
    bytes = encoder.encode(subject);
    if (subjectCache.size >= SUBJECT_CACHE_MAX) subjectCache.clear();
    subjectCache.set(subject, bytes);
  }
  return bytes;
}

/** The last subject decoded (a stream of messages usually repeats its subject). */
let lastSubject = "";
let lastSubjectBytes = new Uint8Array(0);

function lastSubjectMatches(bytes: Uint8Array, at: number, n: number): boolean {
  if (n !== lastSubjectBytes.byteLength || n === 0) return false;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== lastSubjectBytes[i]) return false;
  return true;
}

function rememberSubject(bytes: Uint8Array, at: number, n: number): string {
  const subject = textAt(bytes, at, n);
  lastSubject = subject;
  lastSubjectBytes = bytes.slice(at, at + n);
  return subject;
}

/** UTF-8 text at `at` (n bytes; the caller checked the bounds), with a fast path for short ASCII. */
function textAt(bytes: Uint8Array, at: number, n: number): string {
  if (n <= 64) {
    let ascii = true;
    for (let i = at; i < at + n; i++) {
      if (bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes.subarray(at, at + n) as unknown as number[]);
  }
  return decoder.decode(bytes.subarray(at, at + n));
}

/** A DATA frame: type, ttl, the destination list, then `body` (from encodeDataBody) unchanged. */
export function encodeDataFrame(ttl: number, destinations: readonly DataDestination[], body: Uint8Array): Uint8Array {
  let size = 1 + 1 + 2;
  const queueBytes: Uint8Array[][] = [];
  for (const destination of destinations) {
    const encoded = destination.queues.map((queue) => encoder.encode(queue));
    queueBytes.push(encoded);
    size += 4 + 1;
    for (const q of encoded) size += 1 + q.byteLength;
  }
  const out = new Uint8Array(size + body.byteLength);
  const view = new DataView(out.buffer);
  out[0] = PubSubMessageType.Data;
  out[1] = ttl;
  view.setUint16(2, destinations.length);
  let at = 4;
  for (let i = 0; i < destinations.length; i++) {
    view.setUint32(at, destinations[i]!.node);
    at += 4;
    const queues = queueBytes[i]!;
    out[at++] = queues.length;
    for (const q of queues) {
      out[at++] = q.byteLength;
      out.set(q, at);
      at += q.byteLength;
    }
  }
  out.set(body, at);
  return out;
}

/** Bytes of a DATA frame for `destinations` before its body (encodeDataFrame's layout). */
export function dataFrameHeaderBytes(destinations: readonly DataDestination[]): number {
  let size = 1 + 1 + 2;
  for (const destination of destinations) {
    size += 4 + 1;
    for (const queue of destination.queues) size += 1 + encoder.encode(queue).byteLength;
  }
  return size;
}

/**
 * Writes the DATA frame encodeDataFrame would return into `out` at `at` (the caller sized it with
 * dataFrameHeaderBytes + body). Returns the offset after it.
 */
export function writeDataFrame(out: Uint8Array, view: DataView, at: number, ttl: number, destinations: readonly DataDestination[], body: Uint8Array | DataBodyParts): number {
  out[at] = PubSubMessageType.Data;
  out[at + 1] = ttl;
  view.setUint16(at + 2, destinations.length);
  at += 4;
  for (const destination of destinations) {
    view.setUint32(at, destination.node);
    at += 4;
    out[at++] = destination.queues.length;
    for (const queue of destination.queues) {
      const q = encoder.encode(queue);
      out[at++] = q.byteLength;
      out.set(q, at);
      at += q.byteLength;
    }
  }
  if (!(body instanceof Uint8Array)) return writeBody(out, at, body);
  out.set(body, at);
  return at + body.byteLength;
}

/**
 * Calls `each` with every DATA frame of a DATA_BATCH payload (subarrays, no copy). Returns an
 * Error on a truncated or empty entry (the entries before it were handed over).
 */
export function forEachBatchedData(payload: Uint8Array, each: (frame: Uint8Array) => void): Error | undefined {
  if (payload.byteLength < 1 || payload[0] !== PubSubMessageType.DataBatch) return new Error("not a DATA_BATCH frame");
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let at = 1;
  if (at === payload.byteLength) return new Error("empty DATA_BATCH");
  while (at < payload.byteLength) {
    if (payload.byteLength - at < 4) return new Error("truncated DATA_BATCH entry length");
    const length = view.getUint32(at);
    at += 4;
    if (length === 0 || length > payload.byteLength - at) return new Error(`DATA_BATCH entry of ${length} bytes: expected 1..${payload.byteLength - at}`);
    each(payload.subarray(at, at + length));
    at += length;
  }
  return undefined;
}

// ─── Reading ──────────────────────────────────────────────────────────────────────────────────

class Reader {
  at = 0;
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  left(): number {
    return this.bytes.byteLength - this.at;
  }
  u8(): number {
    if (this.left() < 1) throw truncated;
    return this.bytes[this.at++]!;
  }
  u16(): number {
    if (this.left() < 2) throw truncated;
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    if (this.left() < 4) throw truncated;
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  text(n: number): string {
    if (this.left() < n) throw truncated;
    const s = decoder.decode(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
}

const truncated = new Error("truncated pub/sub message");

function readItems(r: Reader): InterestItem[] {
  const n = r.u16();
  if (n > MAX_ENTRIES_PER_MESSAGE) throw new Error(`${n} interest items exceed the limit of ${MAX_ENTRIES_PER_MESSAGE}`);
  const items: InterestItem[] = [];
  for (let i = 0; i < n; i++) {
    const count = r.u32();
    const subject = r.text(r.u16());
    const queue = r.text(r.u8());
    items.push({ subject, queue: queue === "" ? undefined : queue, count });
  }
  return items;
}

/** Decodes a control message (types 1-4). DATA frames are read with decodeDataHeader/decodeDataBody. */
export function decodePubSubMessage(bytes: Uint8Array): PubSubMessage | Error {
  try {
    const r = new Reader(bytes);
    const type = r.u8();
    let message: PubSubMessage;
    switch (type) {
      case PubSubMessageType.Update:
        message = { type: "update", origin: r.u32(), epoch: r.u32(), seq: r.u32(), items: readItems(r) };
        break;
      case PubSubMessageType.Snapshot: {
        const origin = r.u32();
        const epoch = r.u32();
        const seq = r.u32();
        const flags = r.u8();
        if ((flags & ~3) !== 0) return new Error(`snapshot flags ${flags} have reserved bits set`);
        message = { type: "snapshot", origin, epoch, seq, flags, items: readItems(r) };
        break;
      }
      case PubSubMessageType.Digest: {
        const n = r.u16();
        if (n > MAX_DIGEST_ITEMS) return new Error(`${n} digest items exceed the limit of ${MAX_DIGEST_ITEMS}`);
        const items: DigestItem[] = [];
        for (let i = 0; i < n; i++) items.push({ origin: r.u32(), epoch: r.u32(), seq: r.u32() });
        message = { type: "digest", items };
        break;
      }
      case PubSubMessageType.Pull: {
        const n = r.u16();
        if (n > MAX_PULL_ORIGINS) return new Error(`${n} pulled origins exceed the limit of ${MAX_PULL_ORIGINS}`);
        const origins: NodeId[] = [];
        for (let i = 0; i < n; i++) origins.push(r.u32());
        message = { type: "pull", origins };
        break;
      }
      default:
        return new Error(`unknown pub/sub message type ${type}`);
    }
    if (r.left() !== 0) return new Error(`${r.left()} trailing bytes after a pub/sub ${message.type} message`);
    return message;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

export interface DataHeader {
  ttl: number;
  destinations: DataDestination[];
  /** Offset of the body (subject, reply, header length, bytes) in the frame payload. */
  bodyOffset: number;
}

/** Reads a DATA frame's ttl and destination list only: what a relay needs. */
export function decodeDataHeader(bytes: Uint8Array): DataHeader | Error {
  try {
    const end = bytes.byteLength;
    if (end < 4) throw truncated;
    if (bytes[0] !== PubSubMessageType.Data) return new Error("not a DATA frame");
    const ttl = bytes[1]!;
    const n = (bytes[2]! << 8) | bytes[3]!;
    if (n === 0 || n > MAX_DATA_DESTINATIONS) return new Error(`${n} destinations: expected 1..${MAX_DATA_DESTINATIONS}`);
    let at = 4;
    const destinations: DataDestination[] = [];
    for (let i = 0; i < n; i++) {
      if (end - at < 5) throw truncated;
      const node = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
      const q = bytes[at + 4]!;
      at += 5;
      const queues: string[] = [];
      for (let k = 0; k < q; k++) {
        if (end - at < 1) throw truncated;
        const length = bytes[at++]!;
        if (end - at < length) throw truncated;
        queues.push(textAt(bytes, at, length));
        at += length;
      }
      destinations.push({ node, queues });
    }
    return { ttl, destinations, bodyOffset: at };
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

export interface DataBody {
  subject: string;
  reply: string;
  headerLength: number;
  /** Offset of the header block (then the payload) in the given bytes. */
  offset: number;
}

export function decodeDataBody(bytes: Uint8Array, from: number): DataBody | Error {
  try {
    const end = bytes.byteLength;
    let at = from;
    if (end - at < 2) throw truncated;
    const subjectLength = (bytes[at]! << 8) | bytes[at + 1]!;
    at += 2;
    if (end - at < subjectLength) throw truncated;
    const subject = lastSubjectMatches(bytes, at, subjectLength) ? lastSubject : rememberSubject(bytes, at, subjectLength);
    at += subjectLength;
    if (end - at < 2) throw truncated;
    const replyLength = (bytes[at]! << 8) | bytes[at + 1]!;
    at += 2;
    if (end - at < replyLength) throw truncated;
    const reply = replyLength === 0 ? "" : textAt(bytes, at, replyLength);
    at += replyLength;
    if (end - at < 4) throw truncated;
    const headerLength = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
    at += 4;
    if (headerLength > end - at) return new Error(`header length ${headerLength} exceeds the ${end - at} bytes left`);
    return { subject, reply, headerLength, offset: at };
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

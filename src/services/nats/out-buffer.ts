/**
 * Outbound bytes of one connection, coalesced into 64 KiB chunks so that many small MSG lines
 * become one socket write. Pure: the server takes the chunks and writes them.
 *
 * Bytes handed out by `take()` are never written again (the socket may still hold them): the next
 * writes continue after them in the same slab, and a new slab is allocated only when one is full.
 * So a connection allocates one slab per 64 KiB of output, however often it flushes (a flush per
 * request/reply round trip would otherwise allocate 64 KiB each time and keep the GC busy).
 */

/**
 * Node's Buffer has had `latin1Write`/`utf8Write` (what `buf.write(text, offset, encoding)` calls
 * after normalising its arguments) since v0.x; they are not in @types/node. Falls back to `write`.
 */
interface FastWrite {
  latin1Write?(text: string, offset: number): number;
  utf8Write?(text: string, offset: number): number;
}
const proto = Buffer.prototype as unknown as FastWrite;
const HAS_FAST_WRITE = typeof proto.latin1Write === "function" && typeof proto.utf8Write === "function";

export function writeLatin1(buf: Buffer, text: string, offset: number): number {
  return HAS_FAST_WRITE ? (buf as unknown as Required<FastWrite>).latin1Write(text, offset) : buf.write(text, offset, "latin1");
}

export function writeUtf8(buf: Buffer, text: string, offset: number): number {
  return HAS_FAST_WRITE ? (buf as unknown as Required<FastWrite>).utf8Write(text, offset) : buf.write(text, offset, "utf8");
}

export const OUT_CHUNK_BYTES = 64 * 1024;
/** Payloads at least this large are copied into a chunk of their own instead of the current one. */
const LARGE_BYTES = 16 * 1024;

export class OutBuffer {
  private chunk: Buffer = Buffer.allocUnsafe(OUT_CHUNK_BYTES);
  /** Where the bytes not yet taken start in `chunk`. */
  private start = 0;
  private pos = 0;
  private readonly full: Buffer[] = [];
  private fullBytes = 0;

  /** Bytes waiting. */
  get length(): number {
    return this.fullBytes + this.pos - this.start;
  }

  /** Makes room for `bytes` in the current chunk (starting a new one when needed); returns the chunk. */
  reserve(bytes: number): Buffer {
    if (this.pos + bytes > this.chunk.length) {
      this.seal();
      this.chunk = Buffer.allocUnsafe(Math.max(OUT_CHUNK_BYTES, bytes));
      this.start = 0;
      this.pos = 0;
    }
    return this.chunk;
  }

  get position(): number {
    return this.pos;
  }

  /** After writing into `reserve()`'s chunk directly, moves the position. */
  advance(bytes: number): void {
    this.pos += bytes;
  }

  writeAscii(text: string): void {
    const chunk = this.reserve(text.length);
    this.pos += writeLatin1(chunk, text, this.pos);
  }

  writeUtf8(text: string): void {
    const chunk = this.reserve(text.length * 3);
    this.pos += writeUtf8(chunk, text, this.pos);
  }

  /** Copies `source[start, end)`. */
  writeBytes(source: Uint8Array, start: number, end: number): void {
    const length = end - start;
    if (length >= LARGE_BYTES) {
      this.seal();
      const copy = Buffer.allocUnsafe(length);
      copy.set(source.subarray(start, end), 0);
      this.full.push(copy);
      this.fullBytes += length;
      return;
    }
    const chunk = this.reserve(length);
    chunk.set(length === source.length ? source : source.subarray(start, end), this.pos);
    this.pos += length;
  }

  /** Everything waiting, in order; the buffer is empty afterwards. */
  take(): Buffer[] {
    this.seal();
    const out = this.full.splice(0);
    this.fullBytes = 0;
    return out;
  }

  /** Drops everything waiting (a connection closed without flushing). */
  clear(): void {
    this.full.length = 0;
    this.fullBytes = 0;
    this.pos = this.start;
  }

  /** Moves the bytes written since the last take into `full`; later writes go after them. */
  private seal(): void {
    if (this.pos === this.start) return;
    this.full.push(this.chunk.subarray(this.start, this.pos));
    this.fullBytes += this.pos - this.start;
    this.start = this.pos;
  }
}

/** Writes the decimal digits of a non-negative integer; returns the new position. */
export function writeUint(buf: Buffer, pos: number, value: number): number {
  if (value < 10) {
    buf[pos] = 48 + value;
    return pos + 1;
  }
  let digits = 1;
  for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
  let p = pos + digits - 1;
  let v = value;
  while (v >= 10) {
    const q = Math.floor(v / 10);
    buf[p--] = 48 + (v - q * 10);
    v = q;
  }
  buf[p] = 48 + v;
  return pos + digits;
}

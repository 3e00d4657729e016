/**
 * Hand-written byte reader and writer for the frame codecs. They sit on the hot path, so they work
 * on a DataView over the caller's buffer and never throw: a read past the end sets `failed`, returns
 * zero, and the codec turns that into a DecodeError.
 */
export class ByteReader {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  offset = 0;
  failed = false;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private take(size: number): number {
    if (this.failed || this.offset + size > this.bytes.byteLength) {
      this.failed = true;
      return -1;
    }
    const at = this.offset;
    this.offset += size;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.view.getUint8(at);
  }

  u16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getUint16(at);
  }

  u32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getUint32(at);
  }

  /** A non-negative double carried as an IEEE 754 float64 (timestamps in ms). */
  f64(): number {
    const at = this.take(8);
    return at < 0 ? 0 : this.view.getFloat64(at);
  }

  /** A view (no copy) of the next `size` bytes; the caller copies if it keeps them. */
  bytesView(size: number): Uint8Array {
    const at = this.take(size);
    return at < 0 ? new Uint8Array(0) : this.bytes.subarray(at, at + size);
  }

  /** A u8-length-prefixed UTF-8 string of at most 255 bytes. */
  shortString(): string {
    const length = this.u8();
    const raw = this.bytesView(length);
    return this.failed ? "" : textDecoder.decode(raw);
  }
}

export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  offset = 0;

  constructor(initialSize = 256) {
    this.buffer = new Uint8Array(initialSize);
    this.view = new DataView(this.buffer.buffer);
  }

  private ensure(extra: number): void {
    if (this.offset + extra <= this.buffer.byteLength) return;
    let size = this.buffer.byteLength * 2;
    while (size < this.offset + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.offset));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(value: number): this {
    this.ensure(1);
    this.view.setUint8(this.offset, value);
    this.offset += 1;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.view.setUint16(this.offset, value);
    this.offset += 2;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.view.setUint32(this.offset, value >>> 0);
    this.offset += 4;
    return this;
  }

  f64(value: number): this {
    this.ensure(8);
    this.view.setFloat64(this.offset, value);
    this.offset += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.byteLength);
    this.buffer.set(value, this.offset);
    this.offset += value.byteLength;
    return this;
  }

  /** Writes a u8-length-prefixed UTF-8 string; longer strings are a programming error. */
  shortString(value: string): this {
    const encoded = textEncoder.encode(value);
    if (encoded.byteLength > 255) throw new RangeError(`string longer than 255 bytes: ${value.slice(0, 40)}…`);
    this.u8(encoded.byteLength);
    return this.bytes(encoded);
  }

  finish(): Uint8Array {
    return this.buffer.subarray(0, this.offset);
  }
}

export const textEncoder = new TextEncoder();
export const textDecoder = new TextDecoder("utf-8", { fatal: false });

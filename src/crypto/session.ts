/**
 * Record protection for one link, after the handshake: every packet the engine sends on the path
 * (one or more whole frames, headers included) becomes the plaintext of one RECORD unit.
 *
 *   0   u8    type = 0x20 (RECORD)            ┐
 *   1   u24   body length = 12 + n + 16       │ associated data: the 16 bytes before the
 *   4   u32   epoch (key generation)          │ ciphertext (bytes 4..16 are also the nonce)
 *   8   u64   counter (per epoch, from 0)     ┘
 *   16  n     ciphertext (ChaCha20-Poly1305)
 *   …   16    tag
 *
 * Nothing of the packet travels in clear: a frame's kind, NodeIds, module and length are inside
 * the ciphertext. What an observer sees is the record's size, its epoch and counter.
 *
 * Keys: epoch 0 uses the handshake's Split() key for that direction; epoch e+1 uses
 * K(e+1) = HKDF-Expand(PRK = K(e), info = "skein record rekey v1", 32). The sender moves to the
 * next epoch when an epoch has carried `afterRecords` records or `afterBytes` plaintext bytes, or
 * is `afterMs` old; the receiver follows the epoch number in the record, so the two sides never
 * need to agree on when, only on how. Old keys are dropped (datagram receivers keep the previous
 * epoch for PREVIOUS_EPOCH_GRACE_MS, for records reordered across the change).
 *
 * Replay: on a stream transport the counter must be exactly the next one (a gap, a repeat or a
 * reorder is an attack or a bug, and fatal for the connection); on a datagram transport a sliding
 * window of REPLAY_WINDOW_RECORDS accepts reordering within it and refuses repeats and anything
 * older.
 *
 * Bounds: `open` allocates one array the size of the plaintext (smaller than the record) and
 * returns a failure, never throws, whatever the bytes.
 */
import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey } from "node:crypto";
import { AEAD_ALGORITHM, KEY_BYTES, TAG_BYTES, hkdfExpand, utf8, wipe } from "./primitives.js";
import { type Result, fail, ok } from "./result.js";
import { RECORD_MAX_PLAINTEXT_BYTES, RECORD_OVERHEAD_BYTES, UNIT_HEADER_BYTES, UnitType, writeUnitHeader } from "./units.js";

export const RECORD_HEADER_BYTES = 16;
export const REPLAY_WINDOW_RECORDS = 2048;
/** Default rekey bounds: whichever comes first. */
export const REKEY_AFTER_RECORDS = 1 << 24;
export const REKEY_AFTER_BYTES = 2 ** 30;
export const REKEY_AFTER_MS = 120_000;
/** Datagram receivers accept the previous epoch this long after the next one began. */
export const PREVIOUS_EPOCH_GRACE_MS = 5_000;
const REKEY_INFO = utf8.encode("skein record rekey v1");
/** Counters are u64 on the wire; this implementation refuses any beyond 2^53 − 1. */
const MAX_COUNTER_HIGH = 0x1f_ffff;
const MAX_EPOCH = 0xffff_ffff;

export type RecordTransport = "stream" | "datagram";

export type RecordErrorCode =
  /** Not a well-formed record unit. */
  | "malformed"
  /** The tag does not verify: altered, forged, or keyed for another session. */
  | "auth"
  /** Datagram: this counter was already accepted. */
  | "replay"
  /** Datagram: older than the replay window. */
  | "too_old"
  /** An epoch this receiver has no key for (stale, or a jump of more than one). */
  | "epoch"
  /** Stream: not the next counter. */
  | "out_of_order";

export interface RekeyLimits {
  afterRecords: number;
  afterBytes: number;
  afterMs: number;
}

export interface RecordSessionOptions {
  transport: RecordTransport;
  /** The driver's clock (ms): the time-based rekey and the previous-epoch grace period. */
  now: number;
  limits?: Partial<RekeyLimits> | undefined;
}

export interface RecordKeys {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
}

/** K(e+1) from K(e). */
export function nextEpochKey(key: Uint8Array): Uint8Array {
  return hkdfExpand(key, REKEY_INFO, KEY_BYTES);
}

/** A sliding window of accepted counters (datagram transports). */
export class ReplayWindow {
  private highest = -1;
  private readonly bits: Uint32Array;
  readonly size: number;

  constructor(size = REPLAY_WINDOW_RECORDS) {
    if (size % 32 !== 0 || size <= 0) throw new RangeError("replay window size must be a positive multiple of 32");
    this.size = size;
    this.bits = new Uint32Array(size / 32);
  }

  /** Whether `counter` may be accepted (nothing changes until `accept`). */
  check(counter: number): "ok" | "replay" | "too_old" {
    if (counter > this.highest) return "ok";
    if (this.highest - counter >= this.size) return "too_old";
    const index = counter % this.size;
    return (this.bits[index >>> 5]! & (1 << (index & 31))) !== 0 ? "replay" : "ok";
  }

  accept(counter: number): void {
    if (counter > this.highest) {
      if (counter - this.highest >= this.size) {
        this.bits.fill(0);
      } else {
        let next = this.highest + 1;
        while (next < counter) {
          const index = next % this.size;
          if ((index & 31) === 0 && counter - next >= 32) {
            this.bits[index >>> 5] = 0;
            next += 32;
          } else {
            this.bits[index >>> 5]! &= ~(1 << (index & 31));
            next += 1;
          }
        }
      }
      this.highest = counter;
      const index = counter % this.size;
      this.bits[index >>> 5] = (this.bits[index >>> 5]! & ~(1 << (index & 31))) | (1 << (index & 31));
      return;
    }
    const index = counter % this.size;
    this.bits[index >>> 5]! |= 1 << (index & 31);
  }

  get highestAccepted(): number {
    return this.highest;
  }
}

interface ReceiveEpoch {
  epoch: number;
  raw: Uint8Array;
  key: KeyObject;
  /** Datagram transports. */
  window: ReplayWindow | undefined;
  /** Stream transports: the next counter expected. */
  next: number;
  /** Previous epoch only: dropped after this time. */
  until: number;
}

export interface RecordStats {
  sealedRecords: number;
  sealedBytes: number;
  openedRecords: number;
  openedBytes: number;
  sendEpoch: number;
  receiveEpoch: number;
}

export class RecordSession {
  readonly transport: RecordTransport;
  private readonly limits: RekeyLimits;
  // Send side.
  private sendRaw: Uint8Array;
  private sendKey: KeyObject;
  private sendEpoch = 0;
  private sendCounter = 0;
  private sendEpochBytes = 0;
  private sendEpochStart: number;
  // Receive side.
  private current: ReceiveEpoch;
  private previous: ReceiveEpoch | undefined;
  private upcoming: ReceiveEpoch | undefined;
  private readonly counters = { sealedRecords: 0, sealedBytes: 0, openedRecords: 0, openedBytes: 0 };

  constructor(keys: RecordKeys, options: RecordSessionOptions) {
    if (keys.sendKey.byteLength !== KEY_BYTES || keys.receiveKey.byteLength !== KEY_BYTES) throw new RangeError(`record keys are ${KEY_BYTES} bytes`);
    this.transport = options.transport;
    this.limits = {
      afterRecords: options.limits?.afterRecords ?? REKEY_AFTER_RECORDS,
      afterBytes: options.limits?.afterBytes ?? REKEY_AFTER_BYTES,
      afterMs: options.limits?.afterMs ?? REKEY_AFTER_MS,
    };
    if (this.limits.afterRecords < 1 || this.limits.afterRecords > 2 ** 48) throw new RangeError("afterRecords must be in 1..2^48");
    this.sendRaw = Uint8Array.from(keys.sendKey);
    this.sendKey = createSecretKey(this.sendRaw);
    this.sendEpochStart = options.now;
    this.current = this.receiveEpoch(0, Uint8Array.from(keys.receiveKey), Infinity);
  }

  stats(): RecordStats {
    return { ...this.counters, sendEpoch: this.sendEpoch, receiveEpoch: this.current.epoch };
  }

  /**
   * Seals one packet into one record unit (a single array: for datagrams, or small packets).
   * Small records are views into Node's shared buffer pool: mind `byteOffset`.
   */
  seal(now: number, plaintext: Uint8Array): Uint8Array {
    const length = plaintext.byteLength;
    // Every byte is written below (header, ciphertext, tag): no need to zero it first.
    const unit: Uint8Array = Buffer.allocUnsafe(RECORD_OVERHEAD_BYTES + length);
    const cipher = this.beginSeal(now, unit, length);
    if (length > 0) unit.set(cipher.update(plaintext), RECORD_HEADER_BYTES);
    cipher.final();
    unit.set(cipher.getAuthTag(), RECORD_HEADER_BYTES + length);
    return unit;
  }

  /**
   * Seals the concatenation of `parts` into one record, returned as pieces to write back to back
   * (writev): [16-byte header, ciphertext of each non-empty part…, 16-byte tag]. No plaintext is
   * copied to join the parts.
   */
  sealParts(now: number, parts: readonly Uint8Array[]): Uint8Array[] {
    let length = 0;
    for (const part of parts) length += part.byteLength;
    const header: Uint8Array = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    const cipher = this.beginSeal(now, header, length);
    const out: Uint8Array[] = [header];
    for (const part of parts) if (part.byteLength > 0) out.push(cipher.update(part));
    cipher.final();
    out.push(cipher.getAuthTag());
    return out;
  }

  private beginSeal(now: number, header: Uint8Array, length: number) {
    if (length > RECORD_MAX_PLAINTEXT_BYTES) throw new RangeError(`record plaintext of ${length} bytes exceeds ${RECORD_MAX_PLAINTEXT_BYTES}`);
    if (this.sendCounter >= this.limits.afterRecords || this.sendEpochBytes >= this.limits.afterBytes || now - this.sendEpochStart >= this.limits.afterMs) {
      this.rekeySend(now);
    }
    writeUnitHeader(header, 0, UnitType.Record, RECORD_OVERHEAD_BYTES - UNIT_HEADER_BYTES + length);
    const view = new DataView(header.buffer, header.byteOffset, RECORD_HEADER_BYTES);
    view.setUint32(4, this.sendEpoch);
    view.setUint32(8, Math.floor(this.sendCounter / 0x1_0000_0000));
    view.setUint32(12, this.sendCounter >>> 0);
    this.sendCounter += 1;
    this.sendEpochBytes += length;
    this.counters.sealedRecords += 1;
    this.counters.sealedBytes += length;
    const cipher = createCipheriv(AEAD_ALGORITHM, this.sendKey, header.subarray(4, RECORD_HEADER_BYTES), { authTagLength: TAG_BYTES });
    cipher.setAAD(header.subarray(0, RECORD_HEADER_BYTES), { plaintextLength: length });
    return cipher;
  }

  private rekeySend(now: number): void {
    if (this.sendEpoch >= MAX_EPOCH) throw new RangeError("record epochs exhausted: a new handshake is needed");
    const next = nextEpochKey(this.sendRaw);
    wipe(this.sendRaw);
    this.sendRaw = next;
    this.sendKey = createSecretKey(next);
    this.sendEpoch += 1;
    this.sendCounter = 0;
    this.sendEpochBytes = 0;
    this.sendEpochStart = now;
  }

  /** Checks and decrypts one record unit (exactly one, nothing after it). Total. */
  open(now: number, unit: Uint8Array): Result<Uint8Array, RecordErrorCode> {
    if (unit.byteLength < RECORD_OVERHEAD_BYTES) return fail("malformed", `record of ${unit.byteLength} bytes is shorter than ${RECORD_OVERHEAD_BYTES}`);
    if (unit[0] !== UnitType.Record) return fail("malformed", `unit type 0x${unit[0]!.toString(16)} is not a record`);
    const bodyLength = (unit[1]! << 16) | (unit[2]! << 8) | unit[3]!;
    if (UNIT_HEADER_BYTES + bodyLength !== unit.byteLength) return fail("malformed", `record header says ${bodyLength} body bytes, ${unit.byteLength - UNIT_HEADER_BYTES} present`);
    const length = unit.byteLength - RECORD_OVERHEAD_BYTES;
    if (length > RECORD_MAX_PLAINTEXT_BYTES) return fail("malformed", `record of ${length} plaintext bytes is over the limit`);
    const view = new DataView(unit.buffer, unit.byteOffset, RECORD_HEADER_BYTES);
    const epoch = view.getUint32(4);
    const high = view.getUint32(8);
    if (high > MAX_COUNTER_HIGH) return fail("malformed", "record counter beyond 2^53");
    const counter = high * 0x1_0000_0000 + view.getUint32(12);

    const slot = this.transport === "stream" ? this.streamSlot(epoch, counter) : this.datagramSlot(now, epoch, counter);
    if (!slot.ok) return slot;
    const plaintext = decrypt(slot.value.key, unit, length);
    if (plaintext === undefined) return fail("auth", `record (epoch ${epoch}, counter ${counter}) does not authenticate: altered or forged`);

    const state = slot.value;
    if (this.transport === "stream") {
      state.next = counter + 1;
    } else {
      state.window!.accept(counter);
    }
    if (state === this.upcoming) {
      // The peer moved to the next epoch. The old key stays only as a KeyObject, and only on
      // datagram transports, for records reordered across the change.
      this.upcoming = undefined;
      const old = this.current;
      wipe(old.raw);
      this.previous = this.transport === "datagram" ? { ...old, until: now + PREVIOUS_EPOCH_GRACE_MS } : undefined;
      this.current = state;
    }
    this.counters.openedRecords += 1;
    this.counters.openedBytes += length;
    return ok(plaintext);
  }

  private streamSlot(epoch: number, counter: number): Result<ReceiveEpoch, RecordErrorCode> {
    const current = this.current;
    if (epoch === current.epoch) {
      if (counter !== current.next) return fail("out_of_order", `record counter ${counter} where ${current.next} was next (epoch ${epoch}): replayed, dropped or reordered`);
      return ok(current);
    }
    if (epoch === current.epoch + 1) {
      if (counter !== 0) return fail("out_of_order", `first record of epoch ${epoch} has counter ${counter}, not 0`);
      return ok(this.upcomingEpoch());
    }
    return fail("epoch", `record of epoch ${epoch} while in epoch ${current.epoch}`);
  }

  private datagramSlot(now: number, epoch: number, counter: number): Result<ReceiveEpoch, RecordErrorCode> {
    const current = this.current;
    let state: ReceiveEpoch;
    if (epoch === current.epoch) {
      state = current;
    } else if (epoch === current.epoch + 1) {
      state = this.upcomingEpoch();
    } else if (this.previous !== undefined && epoch === this.previous.epoch) {
      if (now > this.previous.until) {
        this.previous = undefined;
        return fail("epoch", `record of epoch ${epoch}, whose grace period ended`);
      }
      state = this.previous;
    } else {
      return fail("epoch", `record of epoch ${epoch} while in epoch ${current.epoch}`);
    }
    const verdict = state.window!.check(counter);
    if (verdict === "replay") return fail("replay", `record (epoch ${epoch}, counter ${counter}) was already received`);
    if (verdict === "too_old") return fail("too_old", `record (epoch ${epoch}, counter ${counter}) is older than the ${REPLAY_WINDOW_RECORDS}-record window`);
    return ok(state);
  }

  private upcomingEpoch(): ReceiveEpoch {
    if (this.upcoming === undefined || this.upcoming.epoch !== this.current.epoch + 1) {
      this.upcoming = this.receiveEpoch(this.current.epoch + 1, nextEpochKey(this.current.raw), Infinity);
    }
    return this.upcoming;
  }

  private receiveEpoch(epoch: number, raw: Uint8Array, until: number): ReceiveEpoch {
    return {
      epoch,
      raw,
      key: createSecretKey(raw),
      window: this.transport === "datagram" ? new ReplayWindow() : undefined,
      next: 0,
      until,
    };
  }
}

function decrypt(key: KeyObject, unit: Uint8Array, length: number): Uint8Array | undefined {
  try {
    const decipher = createDecipheriv(AEAD_ALGORITHM, key, unit.subarray(4, RECORD_HEADER_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(unit.subarray(0, RECORD_HEADER_BYTES), { plaintextLength: length });
    decipher.setAuthTag(unit.subarray(RECORD_HEADER_BYTES + length));
    const plaintext = length > 0 ? decipher.update(unit.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length)) : new Uint8Array(0);
    decipher.final();
    return plaintext;
  } catch {
    return undefined;
  }
}

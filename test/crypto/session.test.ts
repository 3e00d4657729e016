/** Records: round trips, tampering, replay, reordering, rekeying, bounds. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy } from "../../src/core/entropy.js";
import { toHex } from "../../src/crypto/primitives.js";
import { PREVIOUS_EPOCH_GRACE_MS, REPLAY_WINDOW_RECORDS, RecordSession, ReplayWindow, type RecordTransport, type RekeyLimits, nextEpochKey } from "../../src/crypto/session.js";
import { RECORD_OVERHEAD_BYTES, UnitType, forEachUnit, readUnit, unitSizeAt } from "../../src/crypto/units.js";
import { flipByte, text } from "./helpers.js";

function pair(transport: RecordTransport, limits?: Partial<RekeyLimits>): { a: RecordSession; b: RecordSession } {
  const entropy = new SeededEntropy(41);
  const k1 = entropy.randomBytes(32);
  const k2 = entropy.randomBytes(32);
  return {
    a: new RecordSession({ sendKey: k1, receiveKey: k2 }, { transport, now: 0, limits }),
    b: new RecordSession({ sendKey: k2, receiveKey: k1 }, { transport, now: 0, limits }),
  };
}

const hex = (bytes: Uint8Array): string => toHex(bytes);

describe("records", () => {
  for (const transport of ["stream", "datagram"] as const) {
    it(`${transport}: round trip both ways, empty and large records, the wire layout`, () => {
      const { a, b } = pair(transport);
      const payloads = [text("hello"), new Uint8Array(0), new Uint8Array(70_000).fill(7)];
      for (const payload of payloads) {
        const unit = a.seal(1, payload);
        assert.equal(unit.byteLength, payload.byteLength + RECORD_OVERHEAD_BYTES);
        assert.equal(unit[0], UnitType.Record);
        assert.equal(unitSizeAt(unit, 0), unit.byteLength);
        const opened = b.open(1, unit);
        assert.ok(opened.ok, opened.ok ? "" : opened.error);
        assert.equal(hex(opened.value), hex(payload));
      }
      const back = b.open(1, a.seal(1, text("x")));
      assert.ok(back.ok);
      const reply = a.open(1, b.seal(1, text("reply")));
      assert.ok(reply.ok);
      assert.equal(new TextDecoder().decode(reply.value), "reply");
      assert.deepEqual({ ...a.stats(), sealedBytes: 0 }, { sealedRecords: 4, sealedBytes: 0, openedRecords: 1, openedBytes: 5, sendEpoch: 0, receiveEpoch: 0 });
    });

    it(`${transport}: no byte of the plaintext appears in the record`, () => {
      const { a } = pair(transport);
      const secret = text("DISTINCTIVE-PAYLOAD-0123456789");
      const unit = a.seal(1, secret);
      assert.ok(!Buffer.from(unit).includes(Buffer.from(secret)));
      assert.ok(!Buffer.from(unit).includes(Buffer.from(secret.subarray(0, 6))));
    });

    it(`${transport}: one flipped bit anywhere in a record, header included, and it is refused`, () => {
      const { a } = pair(transport);
      const unit = a.seal(1, text("a record to tamper with"));
      for (let index = 0; index < unit.byteLength; index += 1) {
        for (const mask of [0x01, 0x80]) {
          const { b } = pair(transport);
          const result = b.open(1, flipByte(unit, index, mask));
          assert.equal(result.ok, false, `byte ${index} mask ${mask}`);
        }
      }
      const { b } = pair(transport);
      assert.equal(b.open(1, unit.subarray(0, unit.byteLength - 1)).ok, false, "truncated");
      assert.equal(b.open(1, new Uint8Array([...unit, 0])).ok, false, "extended");
      assert.ok(b.open(1, unit).ok, "the original still opens");
    });

    it(`${transport}: a replayed record is refused`, () => {
      const { a, b } = pair(transport);
      const first = a.seal(1, text("once"));
      assert.ok(b.open(1, first).ok);
      const again = b.open(2, first);
      assert.equal(again.ok, false);
      assert.equal(!again.ok && again.code, transport === "stream" ? "out_of_order" : "replay");
    });
  }

  it("stream: a gap or a reorder is refused (the connection is done for)", () => {
    const { a, b } = pair("stream");
    const r0 = a.seal(1, text("0"));
    const r1 = a.seal(1, text("1"));
    const result = b.open(1, r1);
    assert.equal(!result.ok && result.code, "out_of_order");
    assert.ok(b.open(1, r0).ok);
    assert.ok(b.open(1, r1).ok);
  });

  it("datagram: reordering within the window is accepted; older than the window is refused", () => {
    const { a, b } = pair("datagram");
    const records = Array.from({ length: REPLAY_WINDOW_RECORDS + 10 }, (_, index) => a.seal(1, text(String(index))));
    // Deliver 5..end first, then the early ones (late but inside the window), then replays.
    for (const record of records.slice(5, 100)) assert.ok(b.open(1, record).ok);
    for (const record of records.slice(0, 5).reverse()) assert.ok(b.open(1, record).ok);
    for (const record of records.slice(0, 100)) assert.equal((b.open(1, record) as { code: string }).code, "replay");
    for (const record of records.slice(100)) assert.ok(b.open(1, record).ok);
    const { a: a2, b: b2 } = pair("datagram");
    const many = Array.from({ length: REPLAY_WINDOW_RECORDS + 1 }, (_, index) => a2.seal(1, text(String(index))));
    assert.ok(b2.open(1, many[REPLAY_WINDOW_RECORDS]!).ok);
    assert.equal((b2.open(1, many[0]!) as { code: string }).code, "too_old");
    assert.ok(b2.open(1, many[1]!).ok, "the oldest counter inside the window");
  });

  it("rekey after a number of records: epochs advance on both sides, the keys follow HKDF", () => {
    for (const transport of ["stream", "datagram"] as const) {
      const { a, b } = pair(transport, { afterRecords: 3 });
      for (let index = 0; index < 10; index += 1) {
        const unit = a.seal(1, text(`r${index}`));
        const view = new DataView(unit.buffer, unit.byteOffset);
        assert.equal(view.getUint32(4), Math.floor(index / 3), "epoch");
        assert.equal(view.getUint32(12), index % 3, "counter restarts at 0");
        assert.ok(b.open(1, unit).ok, `${transport} record ${index}`);
      }
      assert.equal(a.stats().sendEpoch, 3);
      assert.equal(b.stats().receiveEpoch, 3);
    }
    const key = new Uint8Array(32).fill(1);
    assert.notEqual(hex(nextEpochKey(key)), hex(key));
    assert.equal(hex(nextEpochKey(key)), hex(nextEpochKey(new Uint8Array(32).fill(1))));
  });

  it("rekey after an amount of data, and after time", () => {
    const bytes = pair("stream", { afterBytes: 100 });
    bytes.a.seal(1, new Uint8Array(60));
    bytes.a.seal(1, new Uint8Array(60));
    assert.equal(bytes.a.stats().sendEpoch, 0);
    bytes.a.seal(1, new Uint8Array(1));
    assert.equal(bytes.a.stats().sendEpoch, 1);
    const time = pair("datagram", { afterMs: 1000 });
    const early = time.a.seal(999, text("early"));
    const late = time.a.seal(1000, text("late"));
    assert.equal(new DataView(early.buffer, early.byteOffset).getUint32(4), 0);
    assert.equal(new DataView(late.buffer, late.byteOffset).getUint32(4), 1);
    // Reordered across the change: the late one first, then the early one (previous epoch, in grace).
    assert.ok(time.b.open(1001, late).ok);
    assert.ok(time.b.open(1002, early).ok);
  });

  it("datagram: the previous epoch is accepted only during its grace period; unknown epochs never", () => {
    const { a, b } = pair("datagram", { afterRecords: 1 });
    const e0 = a.seal(0, text("0"));
    const e1 = a.seal(0, text("1"));
    const e2 = a.seal(0, text("2"));
    assert.equal((b.open(0, e2) as { code: string }).code, "epoch", "a jump of two epochs");
    assert.ok(b.open(0, e1).ok);
    assert.ok(b.open(PREVIOUS_EPOCH_GRACE_MS, e0).ok, "previous epoch within grace");
    assert.ok(b.open(PREVIOUS_EPOCH_GRACE_MS + 1, e2).ok);
    const stale = a.seal(0, text("3"));
    void stale;
    const { a: a2, b: b2 } = pair("datagram", { afterRecords: 1 });
    const f0 = a2.seal(0, text("0"));
    const f1 = a2.seal(0, text("1"));
    assert.ok(b2.open(0, f1).ok);
    assert.equal((b2.open(PREVIOUS_EPOCH_GRACE_MS + 1, f0) as { code: string }).code, "epoch", "grace period over");
  });

  it("sealParts writes the same record as seal, without joining the parts", () => {
    const { a } = pair("stream");
    const { a: a2, b } = pair("stream");
    const parts = [text("header-"), new Uint8Array(0), new Uint8Array(5000).fill(3), text("-tail")];
    const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.byteLength;
    }
    const pieces = a.sealParts(1, parts);
    assert.equal(pieces.length, 5, "header, three non-empty parts, tag");
    const unit = Buffer.concat(pieces);
    assert.equal(hex(unit), hex(a2.seal(1, joined)));
    const opened = b.open(1, unit);
    assert.ok(opened.ok);
    assert.equal(hex(opened.value), hex(joined));
  });

  it("units: stream reassembly sizes, several units at once, plaintext v1 frames named", () => {
    const { a } = pair("stream");
    const units = [a.seal(1, text("one")), a.seal(1, text("two"))];
    const joined = Buffer.concat(units);
    assert.equal(unitSizeAt(joined, 0), units[0]!.byteLength);
    assert.equal(unitSizeAt(joined.subarray(0, 3), 0), 0, "need more bytes");
    const seen: number[] = [];
    assert.equal(forEachUnit(joined, (unit) => seen.push(unit.byteLength)), undefined);
    assert.deepEqual(seen, units.map((unit) => unit.byteLength));
    assert.equal(forEachUnit(joined.subarray(0, joined.byteLength - 1), () => {}), "truncated unit");
    const v1 = new Uint8Array(20);
    v1[0] = 1;
    assert.match(String(unitSizeAt(v1, 0)), /plaintext skein protocol v1/);
    assert.equal(readUnit(new Uint8Array([0x20, 0xff, 0xff, 0xff])).ok, false, "over the size limit");
  });

  it("the replay window slides correctly over long gaps", () => {
    const window = new ReplayWindow(64);
    window.accept(0);
    window.accept(100);
    assert.equal(window.check(0), "too_old");
    assert.equal(window.check(37), "ok");
    assert.equal(window.check(100), "replay");
    window.accept(37);
    window.accept(130);
    assert.equal(window.check(37), "too_old");
    assert.equal(window.check(100), "replay");
    assert.equal(window.check(99), "ok");
    for (let counter = 131; counter < 400; counter += 3) window.accept(counter); // highest: 398
    for (let counter = 335; counter <= 400; counter += 1) {
      const expected = counter > 398 ? "ok" : counter <= 398 - 64 ? "too_old" : (counter - 131) % 3 === 0 ? "replay" : "ok";
      assert.equal(window.check(counter), expected, `counter ${counter}`);
    }
  });
});

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  MAX_FRAME_PAYLOAD_BYTES,
  encodeFrame,
  forEachFrame,
  frameSizeAt,
  readFrameHeader,
} from "../../src/wire/frame.js";
import { decodeLinkMessage, encodeLinkMessage, type LinkMessage } from "../../src/link/messages.js";
import { parseAddress, parseSeed } from "../../src/core/address.js";

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

test("frame header round-trips every field", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...Object.values(FrameKind)),
      fc.constantFrom(0, 1),
      fc.integer({ min: 0, max: 255 }),
      u32,
      u32,
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 300 }),
      (kind, flags, ttl, source, destination, module, payload) => {
        const frame = encodeFrame({ kind, flags, ttl, source, destination, module }, payload);
        const header = readFrameHeader(frame, 0);
        assert.ok(header.ok);
        assert.deepEqual(header.value, { version: 1, kind, flags, ttl, source, destination, module, length: payload.byteLength });
        assert.equal(frameSizeAt(frame, 0), FRAME_HEADER_BYTES + payload.byteLength);
        const seen: Uint8Array[] = [];
        assert.equal(forEachFrame(frame, (_header, payload) => seen.push(payload)), undefined);
        assert.deepEqual(seen, [payload]);
      },
    ),
  );
});

test("several frames in one packet are all delivered, in order", () => {
  const a = encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 3, source: 1, destination: 2, module: 2 }, new Uint8Array([1, 2, 3]));
  const b = encodeFrame({ kind: FrameKind.Link, flags: 0, ttl: 1, source: 1, destination: 2, module: 1 }, new Uint8Array([9]));
  const packet = new Uint8Array([...a, ...b]);
  const kinds: number[] = [];
  assert.equal(forEachFrame(packet, (header) => kinds.push(header.kind)), undefined);
  assert.deepEqual(kinds, [FrameKind.Routed, FrameKind.Link]);
});

test("frame decoding rejects bad versions, kinds, flags, reserved bytes, truncation and oversize", () => {
  const good = encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 3, source: 1, destination: 2, module: 2 }, new Uint8Array(10));
  const mutate = (offset: number, value: number): Uint8Array => {
    const copy = good.slice();
    copy[offset] = value;
    return copy;
  };
  assert.match(String(forEachFrame(mutate(0, 2), () => {})), /unsupported frame version 2/);
  assert.match(String(forEachFrame(mutate(1, 77), () => {})), /unknown frame kind 77/);
  assert.match(String(forEachFrame(mutate(2, 0x80), () => {})), /unknown frame flags/);
  assert.match(String(forEachFrame(mutate(14, 1), () => {})), /reserved/);
  assert.match(String(forEachFrame(good.subarray(0, 25), () => {})), /truncated/);
  assert.match(String(forEachFrame(good.subarray(0, 7), () => {})), /truncated frame header/);
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(16, MAX_FRAME_PAYLOAD_BYTES + 1);
  assert.match(String(forEachFrame(huge, () => {})), /exceeds/);
  const size = frameSizeAt(huge, 0);
  assert.ok(typeof size === "object" && !size.ok);
  assert.equal(frameSizeAt(good.subarray(0, 10), 0), 0);
});

test("random bytes never make the frame or link decoders throw", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      forEachFrame(bytes, () => {});
      frameSizeAt(bytes, 0);
      const message = decodeLinkMessage(bytes);
      if (message.ok) assert.ok(typeof message.value.type === "string");
    }),
    { numRuns: 5000 },
  );
});

test("link messages round-trip", () => {
  const address = { transport: "udp" as const, host: "127.0.0.1", port: 4000 };
  const messages: LinkMessage[] = [
    { type: "hello", session: 0xdeadbeef, addresses: [address, { transport: "tcp", host: "10.0.0.1", port: 1 }] },
    { type: "hello_ack", session: 7, addresses: [] },
    { type: "hello_reject", reason: 1, detail: "full" },
    { type: "probe", seq: 42 },
    { type: "probe_ack", seq: 0xffffffff },
    { type: "peers", peers: [{ nodeId: 5, addresses: [address] }, { nodeId: 6, addresses: [] }] },
    { type: "goodbye", detail: "bye" },
    { type: "reset" },
  ];
  for (const message of messages) {
    const decoded = decodeLinkMessage(encodeLinkMessage(message));
    assert.ok(decoded.ok, `${message.type}: ${decoded.ok ? "" : decoded.error}`);
    assert.deepEqual(decoded.value, message);
  }
});

test("link message decoding names what is wrong", () => {
  const probe = encodeLinkMessage({ type: "probe", seq: 1 });
  const check = (bytes: Uint8Array, pattern: RegExp): void => {
    const decoded = decodeLinkMessage(bytes);
    assert.ok(!decoded.ok);
    assert.match(decoded.error, pattern);
  };
  check(probe.subarray(0, 3), /truncated probe/);
  check(new Uint8Array([...probe, 0]), /trailing/);
  check(new Uint8Array([99]), /unknown link message type 99/);
  check(new Uint8Array([6, 200]), /too many peers/);
});

test("addresses and seeds parse, and bad ones say what is expected", () => {
  assert.deepEqual(parseAddress("/ip4/127.0.0.1/udp/10001"), { ok: true, value: { transport: "udp", host: "127.0.0.1", port: 10001 } });
  const seed = parseSeed("1@/ip4/127.0.0.1/tcp/9");
  assert.ok(seed.ok);
  assert.equal(seed.value.nodeId, 1);
  const bad = parseSeed("1@/ip4/999.1.1.1/udp/x");
  assert.ok(!bad.ok);
  assert.match(bad.error, /"999\.1\.1\.1" is not an IPv4 address/);
  for (const text of ["/ip4/1.2.3.4/udp/0", "/ip4/1.2.3.4/udp/70000", "/ip6/::1/udp/1", "/ip4/1.2.3.4/sctp/1", "ip4/1.2.3.4/udp/1"]) {
    assert.equal(parseAddress(text).ok, false, text);
  }
  for (const text of ["x@/ip4/1.2.3.4/udp/1", "0@/ip4/1.2.3.4/udp/1", "4294967296@/ip4/1.2.3.4/udp/1", "/ip4/1.2.3.4/udp/1"]) {
    assert.equal(parseSeed(text).ok, false, text);
  }
});

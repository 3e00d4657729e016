/**
 * The pub/sub overlay's DATA codec (features/pubsub/overlay-messages.ts): DATA frames written in
 * place (writeDataFrame) equal encodeDataFrame's, decode back to what was sent (subjects, reply,
 * headers, queue groups, UTF-8), and a DATA_BATCH hands over its frames in order; truncated or
 * malformed input is an Error, never a throw.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  dataBodyParts,
  dataFrameHeaderBytes,
  decodeDataBody,
  decodeDataHeader,
  encodeDataBody,
  encodeDataFrame,
  forEachBatchedData,
  PubSubMessageType,
  writeDataFrame,
} from "../../src/features/pubsub/overlay-messages.js";

const destinationArb = fc.record({ node: fc.integer({ min: 1, max: 0xffffffff }), queues: fc.array(fc.string({ minLength: 1, maxLength: 20 }).filter((q) => new TextEncoder().encode(q).byteLength <= 255), { maxLength: 3 }) });
const subjectArb = fc.oneof(fc.constantFrom("orders.eu.new", "a", "$SKEIN.NATS.URL.127_0_0_1.4222"), fc.string({ minLength: 1, maxLength: 100 }));

test("DATA frames: written in place = encoded; decoded back to what was sent", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 255 }), fc.array(destinationArb, { minLength: 1, maxLength: 4 }), subjectArb, fc.oneof(fc.constant(""), subjectArb), fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), (ttl, destinations, subject, reply, bytes, headerCut) => {
      const headerLength = Math.min(headerCut, bytes.byteLength);
      const body = encodeDataBody(subject, reply, headerLength, bytes);
      const frame = encodeDataFrame(ttl, destinations, body);
      const out = new Uint8Array(3 + dataFrameHeaderBytes(destinations) + body.byteLength);
      const end = writeDataFrame(out, new DataView(out.buffer), 3, ttl, destinations, body);
      assert.equal(end, out.byteLength);
      assert.deepEqual(out.subarray(3), frame);
      // The same frame written from the parts (a publishing node: no body buffer).
      const parts = dataBodyParts({ subject: new Uint8Array(0), reply: new Uint8Array(0), headerLength: 0, bytes: new Uint8Array(0), size: 0 }, subject, reply, headerLength, bytes);
      assert.equal(parts.size, body.byteLength);
      const fromParts = new Uint8Array(dataFrameHeaderBytes(destinations) + parts.size);
      assert.equal(writeDataFrame(fromParts, new DataView(fromParts.buffer), 0, ttl, destinations, parts), fromParts.byteLength);
      assert.deepEqual(fromParts, frame);
      const header = decodeDataHeader(frame);
      assert.ok(!(header instanceof Error), String(header));
      assert.equal(header.ttl, ttl);
      assert.deepEqual(header.destinations, destinations.map((d) => ({ node: d.node, queues: [...d.queues] })));
      const decoded = decodeDataBody(frame, header.bodyOffset);
      assert.ok(!(decoded instanceof Error), String(decoded));
      assert.equal(decoded.subject, subject);
      assert.equal(decoded.reply, reply);
      assert.equal(decoded.headerLength, headerLength);
      assert.deepEqual(frame.subarray(decoded.offset), bytes);
    }),
  );
});

test("DATA frames: every truncation is an Error, never a throw", () => {
  const frame = encodeDataFrame(7, [{ node: 2, queues: ["w"] }, { node: 3, queues: [] }], encodeDataBody("orders.eu", "_INBOX.x.1", 2, new Uint8Array([1, 2, 3, 4])));
  // The payload runs to the end of the frame (its length is the frame's): cuts inside it are not
  // detectable; every cut before it is.
  const full = decodeDataHeader(frame);
  assert.ok(!(full instanceof Error));
  const body = decodeDataBody(frame, full.bodyOffset);
  assert.ok(!(body instanceof Error));
  for (let cut = 0; cut < body.offset + body.headerLength; cut++) {
    const part = frame.subarray(0, cut);
    const header = decodeDataHeader(part);
    if (header instanceof Error) continue;
    assert.ok(decodeDataBody(part, header.bodyOffset) instanceof Error, `cut at ${cut}`);
  }
  const badUtf8 = encodeDataFrame(1, [{ node: 2, queues: [] }], new Uint8Array([0, 1, 0xff, 0, 0, 0, 0, 0, 0]));
  const header = decodeDataHeader(badUtf8);
  assert.ok(!(header instanceof Error));
  assert.ok(decodeDataBody(badUtf8, header.bodyOffset) instanceof Error, "invalid UTF-8 in a subject");
});

test("DATA_BATCH: frames handed over in order; bad lengths stop it with an Error", () => {
  const frames = [1, 2, 3].map((n) => encodeDataFrame(5, [{ node: n, queues: [] }], encodeDataBody(`s.${n}`, "", 0, new Uint8Array(n))));
  const size = 1 + frames.reduce((sum, frame) => sum + 4 + frame.byteLength, 0);
  const batch = new Uint8Array(size);
  const view = new DataView(batch.buffer);
  batch[0] = PubSubMessageType.DataBatch;
  let at = 1;
  for (const frame of frames) {
    view.setUint32(at, frame.byteLength);
    batch.set(frame, at + 4);
    at += 4 + frame.byteLength;
  }
  const seen: Uint8Array[] = [];
  assert.equal(forEachBatchedData(batch, (frame) => seen.push(frame.slice())), undefined);
  assert.deepEqual(seen, frames);

  const truncated: Uint8Array[] = [];
  assert.ok(forEachBatchedData(batch.subarray(0, batch.byteLength - 1), (frame) => truncated.push(frame)) instanceof Error);
  assert.equal(truncated.length, 2, "the whole entries before the damage were handed over");
  assert.ok(forEachBatchedData(new Uint8Array([PubSubMessageType.DataBatch]), () => {}) instanceof Error, "empty batch");
  assert.ok(forEachBatchedData(new Uint8Array([PubSubMessageType.DataBatch, 0, 0, 0, 0]), () => {}) instanceof Error, "zero-length entry");
  assert.ok(forEachBatchedData(new Uint8Array([PubSubMessageType.Data]), () => {}) instanceof Error, "not a batch");
});

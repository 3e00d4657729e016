/**
 * The engine's end-to-end layer on its own (node/e2e-paths.ts): the key exchange between two
 * nodes that are not neighbours, frames held in order until the key arrives, the bound on what is
 * held, the timeout that drops them, and which identity records may (not) replace a known key.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededEntropy } from "../../src/core/entropy.js";
import { nullLogger } from "../../src/core/log.js";
import { ModuleId } from "../../src/core/module.js";
import { encodeIdentityRecord, generateIdentity } from "../../src/crypto/identity.js";
import { E2E_KEY_ATTEMPTS, E2E_KEY_RETRY_MS, E2E_PENDING_MAX_FRAMES, EndToEndPaths, type EndToEndOutput, KeyMessageType } from "../../src/node/e2e-paths.js";
import { FRAME_HEADER_BYTES, FrameFlag, FrameKind, readFrameHeader, writeFrameHeader } from "../../src/wire/frame.js";

const WALL = Date.UTC(2030, 0, 1);

function node(seed: string, nodeId?: number): { paths: EndToEndPaths; id: number; identity: ReturnType<typeof generateIdentity> } {
  const identity = generateIdentity(new SeededEntropy(seed));
  const id = nodeId ?? identity.derivedNodeId;
  const paths = new EndToEndPaths({ nodeId: id, identity, entropy: new SeededEntropy(`${seed} e2e`), certificate: undefined, trust: {}, wallClock: (now) => WALL + now, log: nullLogger });
  return { paths, id, identity };
}

function drain(paths: EndToEndPaths): EndToEndOutput[] {
  const outputs: EndToEndOutput[] = [];
  for (let output = paths.poll(); output !== undefined; output = paths.poll()) outputs.push(output);
  return outputs;
}

/** Seals `payload` from `from` to `to` and opens it at `to`, as the engine does with a frame. */
function carry(from: ReturnType<typeof node>, to: ReturnType<typeof node>, payload: Uint8Array) {
  const header = { kind: FrameKind.Routed, flags: FrameFlag.Sealed, source: from.id, destination: to.id, module: ModuleId.Data };
  const sealed = from.paths.seal(0, header, payload)!;
  const frame = new Uint8Array(FRAME_HEADER_BYTES + sealed.byteLength);
  writeFrameHeader(frame, 0, header, 30, sealed.byteLength);
  frame.set(sealed, FRAME_HEADER_BYTES);
  const read = readFrameHeader(frame, 0);
  assert.ok(read.ok);
  return to.paths.open(0, read.value, frame.subarray(FRAME_HEADER_BYTES));
}

test("e2e key exchange: frames wait in order for the key; a request carries the requester's record, the reply the destination's; then both seal", () => {
  const a = node("a");
  const c = node("c");
  assert.equal(a.paths.hasKey(c.id), false);
  for (let index = 0; index < 3; index += 1) assert.ok(a.paths.hold(0, c.id, { module: ModuleId.Data, payload: new Uint8Array([index]), reliable: true, ttl: 32 }));
  const [request, ...rest] = drain(a.paths);
  assert.deepEqual(rest, [], "one request for the three frames");
  assert.equal(request?.kind, "send_key");
  assert.equal(request.kind === "send_key" && request.payload[0], KeyMessageType.Request);
  // C learns A's key from the request itself and answers with its record.
  assert.equal(c.paths.onKeyMessage(0, a.id, (request as { payload: Uint8Array }).payload), undefined);
  assert.equal(c.paths.hasKey(a.id), true);
  const [reply] = drain(c.paths);
  assert.equal(reply?.kind, "send_key");
  assert.equal(a.paths.onKeyMessage(5, c.id, (reply as { payload: Uint8Array }).payload), undefined);
  const [released] = drain(a.paths);
  assert.equal(released?.kind, "release");
  assert.deepEqual(released.kind === "release" && released.frames.map((frame) => frame.payload[0]), [0, 1, 2]);
  const opened = carry(a, c, new TextEncoder().encode("hello"));
  assert.ok(opened.ok);
  assert.equal(new TextDecoder().decode(opened.payload), "hello");
  const back = carry(c, a, new TextEncoder().encode("back"));
  assert.ok(back.ok);
  assert.equal(a.paths.stats.keysFromRecords, 1);
  assert.equal(c.paths.stats.keysFromRecords, 1);
});

test("e2e key exchange: unanswered requests are repeated, then the held frames are dropped and counted; the queue is bounded", () => {
  const a = node("a");
  const c = node("c");
  assert.ok(a.paths.hold(0, c.id, { module: ModuleId.Data, payload: new Uint8Array(10), reliable: false, ttl: 32 }));
  let requests = drain(a.paths).length;
  let now = 0;
  const dropped: EndToEndOutput[] = [];
  while (a.paths.nextDeadline() !== Infinity) {
    now = a.paths.nextDeadline();
    a.paths.tick(now);
    for (const output of drain(a.paths)) if (output.kind === "send_key") requests += 1;
    else dropped.push(output);
  }
  assert.equal(requests, E2E_KEY_ATTEMPTS);
  assert.equal(now, E2E_KEY_ATTEMPTS * E2E_KEY_RETRY_MS);
  assert.deepEqual(dropped, [{ kind: "dropped", reason: "e2e_key_timeout", count: 1 }]);
  assert.equal(a.paths.stats.pendingFrames, 0);

  for (let index = 0; index < E2E_PENDING_MAX_FRAMES; index += 1) assert.ok(a.paths.hold(now, c.id, { module: 2, payload: new Uint8Array(1), reliable: true, ttl: 32 }));
  assert.equal(a.paths.hold(now, c.id, { module: 2, payload: new Uint8Array(1), reliable: true, ttl: 32 }), false, "the queue per destination is bounded");
});

test("e2e records: a claimed NodeId keeps its first key; a record for another NodeId than its sender, or badly signed, is refused", () => {
  const a = node("a");
  // Two different keys both claiming NodeId 77 (--node-id without a CA).
  const first = generateIdentity(new SeededEntropy("first"));
  const second = generateIdentity(new SeededEntropy("second"));
  const message = (identity: typeof first, nodeId: number, issuedAt: number): Uint8Array => {
    const record = encodeIdentityRecord(identity, nodeId, issuedAt);
    return Uint8Array.from([KeyMessageType.Reply, ...record]);
  };
  assert.equal(a.paths.onKeyMessage(0, 77, message(first, 77, WALL)), undefined);
  assert.match(String(a.paths.onKeyMessage(0, 77, message(second, 77, WALL + 1000))), /node 77 names key [0-9a-f]{16}, but that node is known with key [0-9a-f]{16}/);
  assert.match(String(a.paths.onKeyMessage(0, 78, message(second, 77, WALL))), /identity record for node 77 sent by node 78/);
  const forged = message(second, second.derivedNodeId, WALL);
  forged[forged.byteLength - 1]! ^= 1;
  assert.match(String(a.paths.onKeyMessage(0, second.derivedNodeId, forged)), /invalid signature/);
  assert.match(String(a.paths.onKeyMessage(0, 5, Uint8Array.from([9, 1, 2]))), /malformed key exchange message/);
});

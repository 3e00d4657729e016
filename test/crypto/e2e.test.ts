/** End-to-end sealing of ROUTED frames: only the destination opens; relays cannot read, alter or forge. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy } from "../../src/core/entropy.js";
import { E2E_OVERHEAD_BYTES, EndToEnd } from "../../src/crypto/e2e.js";
import type { NodeIdentity } from "../../src/crypto/identity.js";
import { toHex } from "../../src/crypto/primitives.js";
import { DEFAULT_TTL, FrameKind, type FrameHeader, readFrameHeader } from "../../src/wire/frame.js";
import { WALL_2030, flipByte, identities, text } from "./helpers.js";

const [sIdentity, dIdentity, rIdentity] = identities(61, 3) as [NodeIdentity, NodeIdentity, NodeIdentity];
const S = 1;
const D = 2;
const R = 3;

function node(identity: NodeIdentity, nodeId: number, startedAtMs = WALL_2030, seed = nodeId): EndToEnd {
  return new EndToEnd({ identity, nodeId, entropy: new SeededEntropy(seed), startedAtMs });
}

/** Everyone knows everyone's static key (as handshakes and identity records would teach them). */
function network(): { s: EndToEnd; d: EndToEnd; r: EndToEnd } {
  const s = node(sIdentity, S);
  const d = node(dIdentity, D);
  const r = node(rIdentity, R);
  for (const [end, others] of [
    [s, [[D, dIdentity], [R, rIdentity]]],
    [d, [[S, sIdentity], [R, rIdentity]]],
    [r, [[S, sIdentity], [D, dIdentity]]],
  ] as const) {
    for (const [id, identity] of others) assert.ok(end.setPeerKey(id, identity.dh.publicKey));
  }
  return { s, d, r };
}

const header = { kind: FrameKind.Routed, flags: 1, source: S, destination: D, module: 2 } as const;

function split(frame: Uint8Array): { header: FrameHeader; payload: Uint8Array } {
  const read = readFrameHeader(frame, 0);
  assert.ok(read.ok);
  return { header: read.value, payload: frame.subarray(20) };
}

describe("end-to-end", () => {
  it("the destination opens what the source sealed; the payload is not in the frame", () => {
    const { s, d } = network();
    const secret = text("END-TO-END SECRET PAYLOAD");
    const frame = s.sealFrame(header, DEFAULT_TTL, secret);
    assert.ok(frame.ok);
    assert.equal(frame.value.byteLength, 20 + secret.byteLength + E2E_OVERHEAD_BYTES);
    assert.ok(!Buffer.from(frame.value).includes(Buffer.from("SECRET")));
    const { header: read, payload } = split(frame.value);
    const opened = d.open(read, payload);
    assert.ok(opened.ok, opened.ok ? "" : opened.error);
    assert.equal(new TextDecoder().decode(opened.value), "END-TO-END SECRET PAYLOAD");
  });

  it("relays decrement the TTL: still opens. Any other header or payload byte changed: refused", () => {
    const { s, d } = network();
    const frame = s.sealFrame(header, DEFAULT_TTL, text("payload")).ok ? (s.sealFrame(header, DEFAULT_TTL, text("payload")) as { value: Uint8Array }).value : new Uint8Array(0);
    const relayed = Uint8Array.from(frame);
    relayed[3] = DEFAULT_TTL - 5;
    const { header: h1, payload: p1 } = split(relayed);
    assert.ok(d.open(h1, p1).ok, "TTL is not covered");
    for (let index = 0; index < frame.byteLength; index += 1) {
      if (index === 3) continue;
      const fresh = network().d;
      const tampered = flipByte(frame, index);
      const read = readFrameHeader(tampered, 0);
      if (!read.ok) continue; // the frame codec refuses it before e2e sees it
      const result = fresh.open(read.value, tampered.subarray(20, 20 + read.value.length));
      assert.equal(result.ok, false, `byte ${index}`);
    }
  });

  it("a relay can neither open the payload nor forge the source", () => {
    const { s, d, r } = network();
    const frame = (s.sealFrame(header, DEFAULT_TTL, text("for D only")) as { value: Uint8Array }).value;
    const { header: read, payload } = split(frame);
    const relayTry = r.open({ ...read, destination: R }, payload);
    assert.equal(!relayTry.ok && relayTry.code, "auth", "the relay's keys do not open it");
    assert.equal(r.open(read, payload).ok, false);
    // The relay seals its own message and claims S as the source.
    const forged = (r.sealFrame({ ...header, source: S }, DEFAULT_TTL, text("forged")) as { value: Uint8Array }).value;
    const { header: fh, payload: fp } = split(forged);
    const result = d.open(fh, fp);
    assert.equal(!result.ok && result.code, "auth");
    assert.match(!result.ok ? result.error : "", /claiming to come from node 1 does not authenticate/);
    // Re-addressing S's message to another destination fails too.
    assert.equal(d.open({ ...read, source: R }, payload).ok, false);
  });

  it("replays are refused; reordering within the window is accepted", () => {
    const { s, d } = network();
    const frames = [0, 1, 2, 3].map((index) => split((s.sealFrame(header, DEFAULT_TTL, text(`m${index}`)) as { value: Uint8Array }).value));
    for (const index of [2, 0, 3, 1]) assert.ok(d.open(frames[index]!.header, frames[index]!.payload).ok, `m${index}`);
    const again = d.open(frames[2]!.header, frames[2]!.payload);
    assert.equal(!again.ok && again.code, "replay");
  });

  it("a restarted source has a new session (new key); its old messages are then stale", () => {
    const { s, d } = network();
    const old = split((s.sealFrame(header, DEFAULT_TTL, text("old life")) as { value: Uint8Array }).value);
    assert.ok(d.open(old.header, old.payload).ok);
    const restarted = node(sIdentity, S, WALL_2030 + 60_000, 99);
    restarted.setPeerKey(D, dIdentity.dh.publicKey);
    const fresh = split((restarted.sealFrame(header, DEFAULT_TTL, text("new life")) as { value: Uint8Array }).value);
    assert.equal(toHex(fresh.payload.subarray(8, 16)), "0000000000000000", "counters restart at 0 ...");
    assert.notEqual(toHex(fresh.payload.subarray(0, 8)), toHex(old.payload.subarray(0, 8)), "... under a new session");
    assert.ok(d.open(fresh.header, fresh.payload).ok);
    const replay = d.open(old.header, old.payload);
    assert.equal(!replay.ok && replay.code, "stale_session");
  });

  it("unknown keys and bounded state", () => {
    const s = node(sIdentity, S);
    const sealed = s.seal(header, text("x"));
    assert.equal(!sealed.ok && sealed.code, "unknown_key");
    assert.equal(s.setPeerKey(D, new Uint8Array(32)), false, "a low-order key is refused");
    const small = new EndToEnd({ identity: sIdentity, nodeId: S, entropy: new SeededEntropy(1), startedAtMs: WALL_2030, maxPeers: 2 });
    small.setPeerKey(10, dIdentity.dh.publicKey);
    small.setPeerKey(11, rIdentity.dh.publicKey);
    small.setPeerKey(12, dIdentity.dh.publicKey);
    assert.equal(small.peerCount, 2);
    assert.equal(small.hasPeerKey(10), false, "the least recently used is forgotten");
  });
});

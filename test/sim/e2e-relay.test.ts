/**
 * End-to-end protection through a relay, in the simulator with secured links: nodes 1 and 3 are
 * linked only through node 2. Node 2 (what it transmits is exactly what it decrypted from its links:
 * the simulator exposes each record's plaintext) never holds the payload in clear, and a malicious
 * node 2 — an engine whose forwarding is tampered with — can neither alter, replay, nor forge the
 * source of what node 3 accepts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ModuleId } from "../../src/core/module.js";
import { NodeEngine } from "../../src/node/engine.js";
import type { EngineConfig } from "../../src/node/engine-config.js";
import { Simulator } from "../../src/sim/simulator.js";
import { FRAME_HEADER_BYTES, FrameFlag, FrameKind, type FrameHeader, encodeFrame } from "../../src/wire/frame.js";

const SECRET = new TextEncoder().encode("skein-e2e-secret-payload-7f3a91");

type Tamper = "none" | "flip" | "source" | "replay" | "forge_unsealed" | "forge_sealed";

interface RelayInternals {
  forward(from: unknown, header: FrameHeader, payload: Uint8Array, reliable: boolean): void;
  links: Map<number, { path: unknown }>;
  queueFrame(path: unknown, frame: Uint8Array): void;
}

/** A relay that misbehaves on data frames (module 2) from 1 to 3, as `mode` says. */
function maliciousRelay(config: EngineConfig, mode: () => Tamper): NodeEngine {
  const engine = new NodeEngine(config);
  const internals = engine as unknown as RelayInternals;
  const forward = internals.forward.bind(engine);
  internals.forward = (from, header, payload, reliable) => {
    const tamper = header.module === ModuleId.Data && header.source === 1 && header.destination === 3 ? mode() : "none";
    const frame = new Uint8Array(payload.buffer, payload.byteOffset - FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + payload.byteLength);
    switch (tamper) {
      case "flip":
        payload[payload.byteLength >> 1]! ^= 0x01;
        break;
      case "source":
        frame[7] = 2; // claims node 2 wrote it
        break;
      case "replay":
        forward(from, header, payload, reliable);
        break;
      case "forge_unsealed":
      case "forge_sealed": {
        // Made up by the relay, claiming node 1 as its source: in clear, or with a made-up seal.
        const sealed = tamper === "forge_sealed";
        // A made-up seal: a newer session than node 1's (all-ones time), counter 0, random bytes.
        const body = sealed ? Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...new Uint8Array(SECRET.byteLength + 16).fill(7)]) : SECRET;
        const forged = encodeFrame({ kind: FrameKind.Routed, flags: sealed ? FrameFlag.Sealed : 0, ttl: 30, source: 1, destination: 3, module: ModuleId.Data }, body);
        internals.queueFrame(internals.links.get(3)!.path, forged);
        break;
      }
      case "none":
        break;
    }
    forward(from, header, payload, reliable);
  };
  return engine;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle) >= 0;
}

function line(mode: () => Tamper = () => "none"): { sim: Simulator; delivered: Uint8Array[]; relayPlaintexts: Uint8Array[] } {
  const sim = new Simulator({
    matrix: { a: { b: 10, c: 10 }, b: { c: 10 } },
    seeds: [2],
    seed: 5,
    createEngine: (config) => (config.nodeId === 2 ? maliciousRelay(config, mode) : new NodeEngine(config)),
  });
  sim.linkDown(1, 3);
  const delivered: Uint8Array[] = [];
  sim.onEvent((record) => {
    if (record.node === 3 && record.event.kind === "message" && record.event.from === 1) delivered.push(Uint8Array.from(record.event.data));
  });
  const relayPlaintexts: Uint8Array[] = [];
  sim.onTransmit((record) => {
    if (record.from === 2 && record.plaintext !== undefined) relayPlaintexts.push(Uint8Array.from(record.plaintext));
  });
  const routed = sim.runUntilCondition(() => sim.engine(1)?.nextHop(3) === 2 && sim.engine(3)?.nextHop(1) === 2, 30_000);
  assert.ok(routed, "1 and 3 route through 2");
  return { sim, delivered, relayPlaintexts };
}

function send(sim: Simulator, count: number, reliable: boolean): void {
  for (let index = 0; index < count; index += 1) sim.call(1, (engine, now) => engine.send(now, 3, SECRET, { reliable }));
}

test("e2e through a relay: the relay forwards sealed frames it cannot read, the destination gets them intact", () => {
  const { sim, delivered, relayPlaintexts } = line();
  send(sim, 5, false);
  send(sim, 5, true);
  sim.runFor(3_000);
  assert.equal(delivered.length, 10);
  for (const data of delivered) assert.deepEqual(data, SECRET);
  assert.ok(relayPlaintexts.length > 0);
  assert.ok(!relayPlaintexts.some((plaintext) => contains(plaintext, SECRET)), "the relay's decrypted link traffic never holds the payload");
  const relay = sim.engine(2)!.stats().endToEnd;
  assert.ok(relay.forwardedSealed >= 10, JSON.stringify(relay));
  const source = sim.engine(1)!.stats().endToEnd;
  assert.ok(source.sealed >= 10 && source.keyRequestsSent >= 1 && source.keysFromRecords >= 1, JSON.stringify(source));
  const destination = sim.engine(3)!.stats();
  assert.ok(destination.endToEnd.opened >= 10, JSON.stringify(destination.endToEnd));
  assert.deepEqual(Object.keys(destination.dropped).filter((reason) => reason.startsWith("e2e_")), []);
});

for (const [mode, reason] of [
  ["flip", "e2e_auth"],
  ["source", "e2e_auth"],
  ["replay", "e2e_replay"],
  ["forge_unsealed", "e2e_unsealed"],
  ["forge_sealed", "e2e_auth"],
] as const) {
  test(`e2e through a malicious relay (${mode}): the destination drops it (${reason}) and never delivers a wrong or forged payload`, () => {
    let tamper: Tamper = "none";
    const { sim, delivered } = line(() => tamper);
    // A first message unharmed: the key exchange is done, and the destination knows node 1's key.
    send(sim, 1, false);
    sim.runFor(1_000);
    assert.equal(delivered.length, 1);
    tamper = mode;
    send(sim, 3, false);
    sim.runFor(1_000);
    const dropped = sim.engine(3)!.stats().dropped[reason] ?? 0;
    assert.ok(dropped >= 3, `${reason}: ${dropped} (${JSON.stringify(sim.engine(3)!.stats().dropped)})`);
    // Replays and forgeries drop only the copy: the genuine frames arrive, once each, intact.
    const expected = mode === "replay" || mode.startsWith("forge") ? 4 : 1;
    assert.equal(delivered.length, expected);
    for (const data of delivered) assert.deepEqual(data, SECRET);
  });
}

test("e2e after the destination restarts: it has forgotten the source's key, asks for it, and sealed frames open again", () => {
  const { sim, delivered } = line();
  send(sim, 1, false);
  sim.runFor(1_000);
  assert.equal(delivered.length, 1);
  sim.crash(3);
  sim.runFor(1_000);
  sim.restart(3);
  assert.ok(sim.runUntilCondition(() => sim.engine(1)?.nextHop(3) === 2, sim.now + 30_000), "3 is routed again through 2");
  // Node 1 still holds 3's key (same key file): it seals at once; the restarted 3 must catch up.
  for (let round = 0; round < 20 && delivered.length < 2; round += 1) {
    send(sim, 1, false);
    sim.runFor(500);
  }
  assert.equal(delivered.length, 2);
  assert.deepEqual(delivered[1], SECRET);
  assert.ok((sim.engine(3)!.stats().dropped.e2e_unknown_key ?? 0) >= 1, "the first frames after the restart could not be opened");
  assert.ok(sim.engine(3)!.stats().endToEnd.keyRequestsSent >= 1, "…so 3 asked 1 for its key");
});

/** The secure channel: handshake then records, over stream and (lossy) datagram transports. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy } from "../../src/core/entropy.js";
import { generateCertificateAuthority, signCertificate } from "../../src/crypto/certificate.js";
import { SecureChannel, warmUpCrypto } from "../../src/crypto/channel.js";
import type { NodeIdentity } from "../../src/crypto/identity.js";
import { UnitType } from "../../src/crypto/units.js";
import { DAY, WALL_2030, channelConfig, drain, flipByte, identities, pump, text } from "./helpers.js";

const [alice, bob] = identities(51, 2) as [NodeIdentity, NodeIdentity];
const networkKey = new SeededEntropy(52).randomBytes(32);

function decode(received: ReturnType<SecureChannel["receive"]>): string {
  assert.equal(received.kind, "packet", JSON.stringify(received));
  return new TextDecoder().decode((received as { packet: Uint8Array }).packet);
}

describe("secure channel", () => {
  it("stream: handshake, then records both ways; every unit is a record or a handshake message", () => {
    const a = new SecureChannel(channelConfig("initiator", alice, { networkKey }), 0);
    const b = new SecureChannel(channelConfig("responder", bob, { networkKey }), 0);
    a.start(0);
    const wire: Uint8Array[] = [];
    const events = pump(a, b, 1, (unit) => (wire.push(unit), unit));
    assert.deepEqual(events.map((event) => event.kind), ["established", "established"]);
    assert.ok(a.established && b.established);
    assert.equal(a.peerNodeId, bob.derivedNodeId);
    assert.equal(b.peerNodeId, alice.derivedNodeId);
    assert.equal(decode(b.receive(2, a.seal(2, text("ping")))), "ping");
    assert.equal(decode(a.receive(2, b.seal(2, text("pong")))), "pong");
    assert.deepEqual(wire.map((unit) => unit[0]), [UnitType.HandshakeInit, UnitType.HandshakeResponse, UnitType.HandshakeFinish]);
  });

  it("stream: a tampered record is fatal; a record before the handshake is fatal", () => {
    const a = new SecureChannel(channelConfig("initiator", alice), 0);
    const b = new SecureChannel(channelConfig("responder", bob), 0);
    a.start(0);
    pump(a, b, 1);
    const record = a.seal(2, text("data"));
    const result = b.receive(2, flipByte(record, 20));
    assert.deepEqual([result.kind, (result as { fatal: boolean }).fatal, (result as { code: string }).code], ["dropped", true, "auth"]);
    const fresh = new SecureChannel(channelConfig("responder", bob), 0);
    const early = fresh.receive(0, record);
    assert.deepEqual([early.kind, (early as { fatal: boolean }).fatal, (early as { code: string }).code], ["dropped", true, "no_session"]);
  });

  it("datagram: completes through heavy loss (retransmissions), then records flow", () => {
    const a = new SecureChannel(channelConfig("initiator", alice, { transport: "datagram", timeoutMs: 20_000 }), 0);
    const b = new SecureChannel(channelConfig("responder", bob, { transport: "datagram", timeoutMs: 20_000 }), 0);
    a.start(0);
    const random = new SeededEntropy(53);
    let now = 0;
    let lost = 0;
    for (; now < 20_000 && !(a.established && b.established); now += 50) {
      pump(a, b, now, (unit) => (random.randomBytes(1)[0]! < 102 ? (lost += 1, undefined) : unit)); // 40% loss
      a.tick(now);
      b.tick(now);
    }
    assert.ok(a.established && b.established, `established by ${now} ms`);
    assert.ok(lost > 0, "some handshake messages were lost");
    assert.equal(decode(b.receive(now, a.seal(now, text("through")))), "through");
  });

  it("datagram: a lost HS_FINISH is recovered (the responder repeats HS_RESPONSE, the initiator repeats HS_FINISH)", () => {
    const a = new SecureChannel(channelConfig("initiator", alice, { transport: "datagram" }), 0);
    const b = new SecureChannel(channelConfig("responder", bob, { transport: "datagram" }), 0);
    a.start(0);
    pump(a, b, 1, (unit) => (unit[0] === UnitType.HandshakeFinish ? undefined : unit));
    assert.ok(a.established && !b.established);
    // The initiator may already send: the responder cannot read it yet (dropped, not fatal).
    const early = b.receive(2, a.seal(2, text("early")));
    assert.deepEqual([early.kind, (early as { fatal: boolean }).fatal], ["dropped", false]);
    b.tick(600); // retransmits HS_RESPONSE
    pump(a, b, 600);
    assert.ok(b.established);
    assert.equal(decode(b.receive(501, a.seal(501, text("late")))), "late");
  });

  it("datagram: simultaneous open on one path ends in exactly one handshake", () => {
    const a = new SecureChannel(channelConfig("initiator", alice, { transport: "datagram" }, 1), 0);
    const b = new SecureChannel(channelConfig("initiator", bob, { transport: "datagram" }, 2), 0);
    a.start(0);
    b.start(0);
    const events = pump(a, b, 1);
    assert.deepEqual(events.map((event) => event.kind), ["established", "established"]);
    assert.notEqual(a.role, b.role, "one of them became the responder");
    assert.equal(decode(b.receive(2, a.seal(2, text("x")))), "x");
    assert.equal(decode(a.receive(2, b.seal(2, text("y")))), "y");
  });

  it("datagram: a restarted peer's new handshake replaces the session; until then the old one keeps working", () => {
    const a = new SecureChannel(channelConfig("initiator", alice, { transport: "datagram" }), 0);
    const b = new SecureChannel(channelConfig("responder", bob, { transport: "datagram" }), 0);
    a.start(0);
    pump(a, b, 1);
    assert.equal(decode(b.receive(2, a.seal(2, text("before")))), "before");
    // Alice restarts: a new channel, new ephemeral keys (another seed), same identity.
    const a2 = new SecureChannel(channelConfig("initiator", alice, { transport: "datagram" }, 99), 10);
    a2.start(10);
    const init = drain(a2).find((output) => output.kind === "transmit")!;
    assert.equal(b.receive(10, (init as { unit: Uint8Array }).unit).kind, "handshake");
    // The old session still opens (an unauthenticated HS_INIT cannot end it).
    assert.equal(decode(b.receive(11, a.seal(11, text("still")))), "still");
    const events = pump(a2, b, 12);
    assert.deepEqual(
      events.map((event) => [event.kind, (event as { renewed?: boolean }).renewed]),
      [
        ["established", false],
        ["established", true],
      ],
    );
    assert.equal(decode(b.receive(13, a2.seal(13, text("after")))), "after");
    assert.equal(b.receive(13, a.seal(13, text("old"))).kind, "dropped", "the old session is gone");
  });

  it("the responder refuses the initiator's certificate after the initiator completed: the initiator's channel fails with the reason", () => {
    const ca = generateCertificateAuthority(new SeededEntropy(54));
    const trust = { caPublicKey: ca.publicKey };
    const expired = signCertificate(ca, { nodeId: 1, publicKey: alice.signing.publicKey, tags: [], notBefore: 0, notAfter: WALL_2030 - DAY });
    const valid = signCertificate(ca, { nodeId: 2, publicKey: bob.signing.publicKey, tags: [], notBefore: 0, notAfter: WALL_2030 + DAY });
    for (const transport of ["stream", "datagram"] as const) {
      const a = new SecureChannel(channelConfig("initiator", alice, { nodeId: 1, certificate: expired, trust, transport }), 0);
      const b = new SecureChannel(channelConfig("responder", bob, { nodeId: 2, certificate: valid, trust, transport }), 0);
      a.start(0);
      const events = pump(a, b, 1);
      const failures = events.filter((event) => event.kind === "failed").map((event) => (event as { failure: { code: string; message: string } }).failure);
      assert.deepEqual(
        failures.map((failure) => failure.code).sort(),
        ["certificate_expired", "rejected"],
        transport,
      );
      assert.ok(failures.some((failure) => failure.message === "the peer refused the handshake: our certificate has expired"));
      assert.equal(a.state.kind, "failed");
      assert.equal(b.state.kind, "failed");
    }
  });

  it("a failed channel says so; timeouts come from tick", () => {
    const a = new SecureChannel(channelConfig("initiator", alice), 0);
    a.start(0);
    drain(a);
    assert.equal(a.nextDeadline(), 3000);
    a.tick(3000);
    const outputs = drain(a);
    assert.equal(outputs[0]?.kind, "failed");
    assert.equal((outputs[0] as { failure: { code: string } }).failure.code, "timeout");
    assert.deepEqual(a.receive(3001, new Uint8Array([0x20, 0, 0, 0])).kind, "dropped");
  });

  it("warmUpCrypto runs a throwaway handshake in memory and reports its duration from the given clock", () => {
    let tick = 0;
    assert.equal(warmUpCrypto(new SeededEntropy(55), () => (tick += 10)), 10);
  });
});

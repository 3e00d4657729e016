/** The skein link handshake: both patterns, every refusal on both sides, tampering, determinism. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy } from "../../src/core/entropy.js";
import { generateCertificateAuthority, signCertificate } from "../../src/crypto/certificate.js";
import { HS_INIT_BYTES, LinkHandshake, type HandshakeStep } from "../../src/crypto/handshake.js";
import type { NodeIdentity } from "../../src/crypto/identity.js";
import { toHex } from "../../src/crypto/primitives.js";
import { UnitType } from "../../src/crypto/units.js";
import { DAY, WALL_2030, exchange, flipByte, handshakeConfig, identities, text } from "./helpers.js";

const [alice, bob, carol] = identities(21, 3) as [NodeIdentity, NodeIdentity, NodeIdentity];
const networkKey = new SeededEntropy(22).randomBytes(32);
const otherKey = new SeededEntropy(23).randomBytes(32);

function results(run: ReturnType<typeof exchange>) {
  const find = (steps: HandshakeStep[]) => ({
    result: steps.find((step) => step.result !== undefined)?.result,
    failure: steps.find((step) => step.failure !== undefined)?.failure,
  });
  return { initiator: find(run.initiatorSteps), responder: find(run.responderSteps) };
}

describe("handshake: success", () => {
  for (const keyed of [false, true]) {
    it(`${keyed ? "Noise_XXpsk3 (network key)" : "Noise_XX (open network)"}: both sides complete with matching keys and verified identities`, () => {
      const key = keyed ? networkKey : undefined;
      const run = exchange(
        handshakeConfig("initiator", alice, { networkKey: key, extension: text("alice's hello") }),
        handshakeConfig("responder", bob, { networkKey: key, extension: text("bob's hello") }),
      );
      const { initiator, responder } = results(run);
      assert.ok(initiator.result && responder.result, `failures: ${initiator.failure?.message} / ${responder.failure?.message}`);
      assert.equal(initiator.result.pattern, keyed ? "XXpsk3" : "XX");
      assert.equal(toHex(initiator.result.handshakeHash), toHex(responder.result.handshakeHash));
      assert.equal(toHex(initiator.result.sendKey), toHex(responder.result.receiveKey));
      assert.equal(toHex(initiator.result.receiveKey), toHex(responder.result.sendKey));
      assert.notEqual(toHex(initiator.result.sendKey), toHex(initiator.result.receiveKey));
      assert.equal(initiator.result.peer.nodeId, bob.derivedNodeId);
      assert.equal(responder.result.peer.nodeId, alice.derivedNodeId);
      assert.equal(initiator.result.peer.binding, "derived");
      assert.equal(toHex(initiator.result.peer.signingKey), toHex(bob.signing.publicKey));
      assert.equal(toHex(responder.result.peer.staticKey), toHex(alice.dh.publicKey));
      assert.equal(new TextDecoder().decode(initiator.result.peer.extension), "bob's hello");
      assert.equal(new TextDecoder().decode(responder.result.peer.extension), "alice's hello");
      assert.deepEqual(
        run.transcript.map((entry) => [entry.from, entry.unit[0]]),
        [
          ["initiator", UnitType.HandshakeInit],
          ["responder", UnitType.HandshakeResponse],
          ["initiator", UnitType.HandshakeFinish],
        ],
      );
      assert.equal(run.transcript[0]!.unit.byteLength, HS_INIT_BYTES);
      assert.equal(run.initiator.state.kind, "complete");
      assert.equal(run.responder.state.kind, "complete");
    });
  }

  it("a NodeId chosen by the operator is accepted as claimed (open network without a CA)", () => {
    const run = exchange(handshakeConfig("initiator", alice, { nodeId: 1 }), handshakeConfig("responder", bob, { nodeId: 2 }));
    const { initiator, responder } = results(run);
    assert.equal(initiator.result?.peer.nodeId, 2);
    assert.equal(initiator.result?.peer.binding, "claimed");
    assert.equal(responder.result?.peer.nodeId, 1);
  });

  it("seeded entropy: the same seeds give the same transcript, byte for byte; other seeds another", () => {
    const transcript = (seed: number) =>
      exchange(handshakeConfig("initiator", alice, { networkKey }, seed), handshakeConfig("responder", bob, { networkKey }, seed)).transcript.map((entry) => toHex(entry.unit));
    assert.deepEqual(transcript(5), transcript(5));
    assert.notDeepEqual(transcript(5), transcript(6));
  });
});

describe("handshake: network admission", () => {
  it("a different network key: the responder refuses at message 1, and both sides say why", () => {
    const run = exchange(handshakeConfig("initiator", alice, { networkKey }), handshakeConfig("responder", bob, { networkKey: otherKey }));
    const { initiator, responder } = results(run);
    assert.equal(responder.failure?.code, "network_key");
    assert.match(responder.failure!.message, /does not authenticate under our network key \(id [0-9a-f]{16}\): it has another network key/);
    assert.equal(initiator.failure?.code, "rejected");
    assert.equal(initiator.failure?.peerReason, "network_key");
    assert.equal(initiator.failure?.message, "the peer refused the handshake: our network key is not its network key");
    // What the outsider received: one HS_REJECT of 2 bytes of body. No ephemeral, no static key, no identity.
    const fromResponder = run.transcript.filter((entry) => entry.from === "responder");
    assert.equal(fromResponder.length, 1);
    assert.equal(fromResponder[0]!.unit[0], UnitType.HandshakeReject);
    assert.equal(fromResponder[0]!.unit.byteLength, 6);
  });

  it("a full responder (admitInit) refuses at message 1 with `full` and its referrals, before any DH; an outsider to a keyed network is refused for its key first", () => {
    const referrals = `node 9 has its 2 neighbours; try ${Array.from({ length: 7 }, (_, index) => `${index + 10}@/ip4/127.0.0.1/udp/${40000 + index}`).join(" ")}`;
    assert.ok(referrals.length > 96 && referrals.length <= 240);
    let asked = 0;
    const admitInit = (): { reason: "full"; detail: string } => {
      asked += 1;
      return { reason: "full", detail: referrals };
    };
    const run = exchange(handshakeConfig("initiator", alice, { networkKey }), handshakeConfig("responder", bob, { networkKey, admitInit }));
    const { initiator, responder } = results(run);
    assert.equal(responder.failure?.code, "full");
    assert.equal(initiator.failure?.code, "rejected");
    assert.equal(initiator.failure?.peerReason, "full");
    assert.equal(initiator.failure?.peerDetail, referrals, "a full refusal carries up to 240 bytes of referrals");
    const fromResponder = run.transcript.filter((entry) => entry.from === "responder");
    assert.deepEqual(fromResponder.map((entry) => entry.unit[0]), [UnitType.HandshakeReject], "no HS_RESPONSE: no DH was done");
    assert.equal(asked, 1);
    // Without the network key, the key is what is refused: the outsider learns no referrals.
    const outsider = results(exchange(handshakeConfig("initiator", alice, { networkKey: otherKey }), handshakeConfig("responder", bob, { networkKey, admitInit })));
    assert.equal(outsider.initiator.failure?.peerReason, "network_key");
    assert.equal(outsider.initiator.failure?.peerDetail, "");
    assert.equal(asked, 1);
  });

  it("a missing network key, either way round: refused with the mode named on both sides", () => {
    const keyedResponder = results(exchange(handshakeConfig("initiator", alice), handshakeConfig("responder", bob, { networkKey })));
    assert.equal(keyedResponder.responder.failure?.code, "network_key_required");
    assert.equal(keyedResponder.initiator.failure?.peerReason, "network_key_required");
    assert.match(keyedResponder.initiator.failure!.message, /requires a network key \(--network-key\)/);
    const openResponder = results(exchange(handshakeConfig("initiator", alice, { networkKey }), handshakeConfig("responder", bob)));
    assert.equal(openResponder.responder.failure?.code, "open_network");
    assert.equal(openResponder.initiator.failure?.peerReason, "open_network");
  });
});

describe("handshake: tampering and identity", () => {
  for (const keyed of [false, true]) {
    it(`${keyed ? "XXpsk3" : "XX"}: one flipped bit anywhere in any handshake message and no side completes with the other`, () => {
      const key = keyed ? networkKey : undefined;
      const clean = exchange(handshakeConfig("initiator", alice, { networkKey: key }), handshakeConfig("responder", bob, { networkKey: key }));
      for (let message = 0; message < 3; message += 1) {
        const length = clean.transcript[message]!.unit.byteLength;
        for (let index = 0; index < length; index += message === 0 ? 7 : 1) {
          const run = exchange(handshakeConfig("initiator", alice, { networkKey: key }), handshakeConfig("responder", bob, { networkKey: key }), (unit, at) =>
            at === message ? flipByte(unit, index) : unit,
          );
          // A flipped unit type is ignored as an unexpected message (the handshake then times out);
          // everything else fails at once.
          run.initiatorSteps.push(run.initiator.tick(10_000));
          run.responderSteps.push(run.responder.tick(10_000));
          const { initiator, responder } = results(run);
          assert.ok(!(initiator.result && responder.result), `message ${message} byte ${index}: both completed`);
          assert.ok(initiator.failure || responder.failure, `message ${message} byte ${index}: a failure is reported`);
          if (message === 2) assert.ok(responder.failure, `message 3 byte ${index}: the responder refuses it`);
        }
      }
    });
  }

  it("an identity proof signed by another key than the one it names is refused on both sides", () => {
    // Names bob's signing key, signs with carol's.
    const liar: NodeIdentity = { ...alice, signing: { ...carol.signing, publicKey: bob.signing.publicKey }, derivedNodeId: bob.derivedNodeId };
    const run = exchange(handshakeConfig("initiator", alice), handshakeConfig("responder", liar));
    const { initiator, responder } = results(run);
    assert.equal(initiator.failure?.code, "identity_invalid");
    assert.equal(responder.failure?.peerReason, "identity_invalid");
    // The responder's proof, checked against another static key (a man in the middle relaying it) fails too.
    const run2 = exchange(handshakeConfig("initiator", liar, { nodeId: 77 }), handshakeConfig("responder", bob));
    assert.equal(results(run2).responder.failure?.code, "identity_invalid");
  });

  it("the initiator refuses a node other than the one it dialled; the responder learns why", () => {
    const { initiator, responder } = results(exchange(handshakeConfig("initiator", alice, { expectedPeer: 12345 }), handshakeConfig("responder", bob)));
    assert.equal(initiator.failure?.code, "unexpected_node_id");
    assert.match(initiator.failure!.message, new RegExp(`expected node 12345 at this address, found node ${bob.derivedNodeId}`));
    assert.equal(responder.failure?.peerReason, "unexpected_node_id");
  });

  it("a node that reaches itself refuses itself", () => {
    const { initiator } = results(exchange(handshakeConfig("initiator", alice), handshakeConfig("responder", alice)));
    assert.equal(initiator.failure?.code, "self");
  });

  it("the engine's policy hook refuses a peer; the refusal text reaches the peer", () => {
    const { initiator, responder } = results(
      exchange(handshakeConfig("initiator", alice), handshakeConfig("responder", bob, { acceptPeer: (peer) => `NodeId ${peer.nodeId} is already bound to another key` })),
    );
    assert.equal(responder.failure?.code, "refused");
    assert.equal(initiator.failure?.code, undefined, "the initiator completed before the refusal (the channel handles that)");
    assert.ok(initiator.result);
  });
});

describe("handshake: certificates", () => {
  const ca = generateCertificateAuthority(new SeededEntropy(31));
  const foreign = generateCertificateAuthority(new SeededEntropy(32));
  const cert = (identity: NodeIdentity, nodeId: number, options: { notAfter?: number; notBefore?: number; issuer?: typeof ca } = {}) =>
    signCertificate(options.issuer ?? ca, {
      nodeId,
      publicKey: identity.signing.publicKey,
      tags: ["test"],
      notBefore: options.notBefore ?? WALL_2030 - DAY,
      notAfter: options.notAfter ?? WALL_2030 + DAY,
    });
  const trust = { caPublicKey: ca.publicKey };

  it("valid certificates: accepted, the binding says so, tags are readable", () => {
    const run = exchange(
      handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }),
      handshakeConfig("responder", bob, { nodeId: 2, certificate: cert(bob, 2), trust }),
    );
    const { initiator, responder } = results(run);
    assert.equal(initiator.result?.peer.binding, "certificate");
    assert.deepEqual(initiator.result?.peer.certificate?.tags, ["test"]);
    assert.equal(responder.result?.peer.nodeId, 1);
  });

  const refusals: [string, () => ReturnType<typeof exchange>, string][] = [
    ["expired", () => exchange(handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }), handshakeConfig("responder", bob, { nodeId: 2, certificate: cert(bob, 2, { notAfter: WALL_2030 - 1 }), trust })), "certificate_expired"],
    ["not yet valid", () => exchange(handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }), handshakeConfig("responder", bob, { nodeId: 2, certificate: cert(bob, 2, { notBefore: WALL_2030 + 1000 }), trust })), "certificate_not_yet_valid"],
    ["foreign CA", () => exchange(handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }), handshakeConfig("responder", bob, { nodeId: 2, certificate: cert(bob, 2, { issuer: foreign }), trust })), "certificate_foreign_ca"],
    ["NodeId mismatch", () => exchange(handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }), handshakeConfig("responder", bob, { nodeId: 3, certificate: cert(bob, 2), trust })), "certificate_node_id_mismatch"],
    ["someone else's certificate", () => exchange(handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }), handshakeConfig("responder", bob, { nodeId: 1, certificate: cert(alice, 1), trust })), "certificate_key_mismatch"],
    ["missing", () => exchange(handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1), trust }), handshakeConfig("responder", bob, { nodeId: 2, trust })), "certificate_missing"],
  ];
  for (const [name, run, code] of refusals) {
    it(`the responder's certificate ${name}: the initiator refuses it (${code}) and tells the responder`, () => {
      const { initiator, responder } = results(run());
      assert.equal(initiator.failure?.code, code);
      assert.equal(responder.failure?.code, "rejected");
      assert.equal(responder.failure?.peerReason, code);
    });
  }

  it("the initiator's certificate expired: the responder refuses HS_FINISH", () => {
    const run = exchange(
      handshakeConfig("initiator", alice, { nodeId: 1, certificate: cert(alice, 1, { notAfter: WALL_2030 - 1 }), trust }),
      handshakeConfig("responder", bob, { nodeId: 2, certificate: cert(bob, 2), trust }),
    );
    const { responder } = results(run);
    assert.equal(responder.failure?.code, "certificate_expired");
    assert.equal(run.transcript.at(-1)!.unit[0], UnitType.HandshakeReject);
  });
});

describe("handshake: timers and datagrams", () => {
  it("datagram: the initiator resends HS_INIT, the responder answers a copy with the same HS_RESPONSE, the initiator a copy of that with the same HS_FINISH", () => {
    const initiator = new LinkHandshake(handshakeConfig("initiator", alice, { transport: "datagram" }));
    const responder = new LinkHandshake(handshakeConfig("responder", bob, { transport: "datagram" }));
    const init = initiator.start(0).send[0]!;
    assert.equal(initiator.nextDeadline(), 500);
    assert.deepEqual(initiator.tick(499).send, []);
    assert.equal(toHex(initiator.tick(500).send[0]!), toHex(init));
    const response = responder.receive(510, init).send[0]!;
    assert.equal(toHex(responder.receive(520, init).send[0]!), toHex(response));
    const finish = initiator.receive(530, response);
    assert.ok(finish.result);
    assert.equal(toHex(initiator.receive(540, response).send[0]!), toHex(finish.send[0]!));
    assert.ok(responder.receive(550, finish.send[0]!).result);
    // A copy of HS_FINISH after completion is ignored.
    const late = responder.receive(560, finish.send[0]!);
    assert.deepEqual(late.send, []);
  });

  it("stream: no retransmission; a handshake not done in time fails with `timeout`", () => {
    const initiator = new LinkHandshake(handshakeConfig("initiator", alice));
    initiator.start(0);
    assert.equal(initiator.nextDeadline(), 3000);
    assert.deepEqual(initiator.tick(2999).send, []);
    const step = initiator.tick(3000);
    assert.equal(step.failure?.code, "timeout");
    assert.equal(initiator.state.kind, "failed");
  });

  it("an HS_REJECT before anything else, or an unexpected message, does not disturb a responder", () => {
    const responder = new LinkHandshake(handshakeConfig("responder", bob));
    const initiator = new LinkHandshake(handshakeConfig("initiator", alice));
    const init = initiator.start(0).send[0]!;
    const response = new LinkHandshake(handshakeConfig("responder", carol)).receive(0, init).send[0]!;
    assert.ok(responder.receive(0, response).ignored);
    assert.equal(responder.expecting, UnitType.HandshakeInit);
    assert.ok(responder.receive(0, init).send.length === 1);
  });
});

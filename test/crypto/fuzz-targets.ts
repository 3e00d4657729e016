/**
 * Every crypto decoder as a fuzz target, in the shape of fuzz/targets.ts (`{ name, corpus, feed }`:
 * `feed` must never throw, whatever the bytes). The corpus is real traffic: the units of seeded
 * handshakes (open and keyed, with certificates), records of both transports, certificates,
 * identity records, e2e frames, and the text files the CLI writes.
 *
 * Used by test/crypto/fuzz.test.ts; fuzz/targets.ts can append `...cryptoFuzzTargets()` to run
 * them in `npm run fuzz` as well.
 */
import { SeededEntropy } from "../../src/core/entropy.js";
import { SecureChannel } from "../../src/crypto/channel.js";
import {
  decodeCaKeyFile,
  decodeCaPublicFile,
  decodeCertificate,
  decodeCertificateFile,
  encodeCaKeyFile,
  encodeCaPublicFile,
  encodeCertificateFile,
  generateCertificateAuthority,
  signCertificate,
  verifyCertificate,
} from "../../src/crypto/certificate.js";
import { E2E_OVERHEAD_BYTES, EndToEnd } from "../../src/crypto/e2e.js";
import { LinkHandshake, decodeReject, parseIdentityPayload } from "../../src/crypto/handshake.js";
import {
  decodeKeyFile,
  decodePublicKeyFile,
  encodeIdentityRecord,
  encodeKeyFile,
  encodePublicKeyFile,
  formatNetworkKey,
  parseNetworkKey,
  verifyIdentityRecord,
} from "../../src/crypto/identity.js";
import { RecordSession } from "../../src/crypto/session.js";
import { UnitType, forEachUnit, readUnit, unitSizeAt } from "../../src/crypto/units.js";
import { DEFAULT_TTL, FrameKind, readFrameHeader } from "../../src/wire/frame.js";
import { DAY, WALL_2030, channelConfig, drain, exchange, handshakeConfig, identities, pump, text } from "./helpers.js";

export interface CryptoFuzzTarget {
  name: string;
  corpus: Uint8Array[];
  feed(input: Uint8Array): void;
}

const decoder = new TextDecoder();

export function cryptoFuzzTargets(): CryptoFuzzTarget[] {
  const [alice, bob] = identities(71, 2) as [ReturnType<typeof identities>[0], ReturnType<typeof identities>[0]];
  const networkKey = new SeededEntropy(72).randomBytes(32);
  const ca = generateCertificateAuthority(new SeededEntropy(73));
  const certA = signCertificate(ca, { nodeId: 1, publicKey: alice.signing.publicKey, tags: ["a", "b"], notBefore: 0, notAfter: WALL_2030 + DAY });
  const certB = signCertificate(ca, { nodeId: 2, publicKey: bob.signing.publicKey, tags: [], notBefore: 0, notAfter: WALL_2030 + DAY });
  const trust = { caPublicKey: ca.publicKey };

  // Handshake captures: open, keyed, keyed with certificates.
  const runs = [
    exchange(handshakeConfig("initiator", alice), handshakeConfig("responder", bob)),
    exchange(handshakeConfig("initiator", alice, { networkKey }), handshakeConfig("responder", bob, { networkKey })),
    exchange(handshakeConfig("initiator", alice, { networkKey, nodeId: 1, certificate: certA, trust }), handshakeConfig("responder", bob, { networkKey, nodeId: 2, certificate: certB, trust })),
    exchange(handshakeConfig("initiator", alice, { networkKey }), handshakeConfig("responder", bob, { networkKey: new Uint8Array(32) })),
  ];
  const handshakeUnits = runs.flatMap((run) => run.transcript.map((entry) => entry.unit));
  const ofType = (type: number) => handshakeUnits.filter((unit) => unit[0] === type);

  // Record captures, both transports, and live receivers for them.
  const keys = new SeededEntropy(74);
  const k1 = keys.randomBytes(32);
  const k2 = keys.randomBytes(32);
  const senders = {
    stream: new RecordSession({ sendKey: k1, receiveKey: k2 }, { transport: "stream", now: 0, limits: { afterRecords: 4 } }),
    datagram: new RecordSession({ sendKey: k1, receiveKey: k2 }, { transport: "datagram", now: 0, limits: { afterRecords: 4 } }),
  };
  const records = [...[0, 1, 5, 100, 1400].map((size) => senders.datagram.seal(0, new Uint8Array(size).fill(size & 0xff))), ...[3, 64].map((size) => senders.stream.seal(0, new Uint8Array(size)))];
  let receivers = { stream: new RecordSession({ sendKey: k2, receiveKey: k1 }, { transport: "stream", now: 0 }), datagram: new RecordSession({ sendKey: k2, receiveKey: k1 }, { transport: "datagram", now: 0 }) };
  let recordInputs = 0;

  // Established channels to feed whole units to.
  const established = (transport: "stream" | "datagram"): SecureChannel => {
    const a = new SecureChannel(channelConfig("initiator", alice, { transport, networkKey }), 0);
    const b = new SecureChannel(channelConfig("responder", bob, { transport, networkKey }), 0);
    a.start(0);
    pump(a, b, 1);
    return b;
  };
  let channels = { stream: established("stream"), datagram: established("datagram") };
  let channelInputs = 0;

  // E2E captures.
  const e2eSender = new EndToEnd({ identity: alice, nodeId: 1, entropy: new SeededEntropy(75), startedAtMs: WALL_2030 });
  e2eSender.setPeerKey(2, bob.dh.publicKey);
  const frames = [0, 10, 300].map((size) => (e2eSender.sealFrame({ kind: FrameKind.Routed, flags: 0, source: 1, destination: 2, module: 2 }, DEFAULT_TTL, new Uint8Array(size)) as { value: Uint8Array }).value);
  let e2eReceiver = new EndToEnd({ identity: bob, nodeId: 2, entropy: new SeededEntropy(76), startedAtMs: WALL_2030 });
  e2eReceiver.setPeerKey(1, alice.dh.publicKey);
  let e2eInputs = 0;

  let handshakeInputs = 0;
  const fresh = <T>(make: () => T, holder: { value: T | undefined }): T => {
    handshakeInputs += 1;
    if (holder.value === undefined || handshakeInputs % 500 === 0) holder.value = make();
    return holder.value;
  };
  const responder = { value: undefined as LinkHandshake | undefined };
  const keyedResponder = { value: undefined as LinkHandshake | undefined };
  const awaitingResponse = { value: undefined as LinkHandshake | undefined };
  const awaitingFinish = { value: undefined as LinkHandshake | undefined };

  const files = [
    encodeKeyFile(alice),
    encodePublicKeyFile(alice),
    encodeCaKeyFile(ca),
    encodeCaPublicFile(ca),
    encodeCertificateFile(certA),
    formatNetworkKey(networkKey),
  ].map((file) => text(file));

  return [
    {
      name: "secure units (crypto/units.ts readUnit, unitSizeAt, forEachUnit)",
      corpus: [...handshakeUnits, ...records],
      feed(input) {
        readUnit(input);
        unitSizeAt(input, 0);
        forEachUnit(input, () => {});
      },
    },
    {
      name: "records (crypto/session.ts open, stream and datagram)",
      corpus: records,
      feed(input) {
        recordInputs += 1;
        if (recordInputs % 1000 === 0) {
          receivers = { stream: new RecordSession({ sendKey: k2, receiveKey: k1 }, { transport: "stream", now: 0 }), datagram: new RecordSession({ sendKey: k2, receiveKey: k1 }, { transport: "datagram", now: 0 }) };
        }
        receivers.stream.open(recordInputs, input);
        receivers.datagram.open(recordInputs, input);
      },
    },
    {
      name: "handshake, responder (crypto/handshake.ts receive: HS_INIT, open and keyed)",
      corpus: [...ofType(UnitType.HandshakeInit), ...ofType(UnitType.HandshakeReject)],
      feed(input) {
        fresh(() => new LinkHandshake(handshakeConfig("responder", bob, { transport: "datagram" })), responder).receive(handshakeInputs, input);
        fresh(() => new LinkHandshake(handshakeConfig("responder", bob, { networkKey, transport: "datagram" })), keyedResponder).receive(handshakeInputs, input);
        // A responder that already answered takes the rest of the conversation too.
        if (handshakeInputs % 100 === 0) responder.value = undefined;
      },
    },
    {
      name: "handshake, initiator awaiting HS_RESPONSE",
      corpus: ofType(UnitType.HandshakeResponse),
      feed(input) {
        const handshake = fresh(() => {
          const h = new LinkHandshake(handshakeConfig("initiator", alice, { networkKey, transport: "datagram" }));
          h.start(0);
          return h;
        }, awaitingResponse);
        handshake.receive(handshakeInputs, input);
        if (handshake.state.kind !== "awaiting_response") awaitingResponse.value = undefined;
      },
    },
    {
      name: "handshake, responder awaiting HS_FINISH",
      corpus: ofType(UnitType.HandshakeFinish),
      feed(input) {
        const handshake = fresh(() => {
          const initiator = new LinkHandshake(handshakeConfig("initiator", alice, { networkKey }));
          const h = new LinkHandshake(handshakeConfig("responder", bob, { networkKey, transport: "datagram" }));
          h.receive(0, initiator.start(0).send[0]!);
          return h;
        }, awaitingFinish);
        handshake.receive(handshakeInputs, input);
        if (handshake.state.kind !== "awaiting_finish") awaitingFinish.value = undefined;
      },
    },
    {
      name: "identity payloads and rejects (crypto/handshake.ts parseIdentityPayload, decodeReject)",
      corpus: [...ofType(UnitType.HandshakeReject).map((unit) => unit.subarray(4)), text("\x01"), new Uint8Array(170)],
      feed(input) {
        parseIdentityPayload(input);
        decodeReject(input);
      },
    },
    {
      name: "established channels (crypto/channel.ts receive, stream and datagram)",
      corpus: [...records, ...handshakeUnits],
      feed(input) {
        channelInputs += 1;
        if (channelInputs % 1000 === 0 || channels.stream.state.kind === "failed") channels = { stream: established("stream"), datagram: established("datagram") };
        channels.stream.receive(channelInputs, input);
        channels.datagram.receive(channelInputs, input);
        drain(channels.stream);
        drain(channels.datagram);
      },
    },
    {
      name: "certificates (crypto/certificate.ts decode, verify)",
      corpus: [certA, certB],
      feed(input) {
        decodeCertificate(input);
        verifyCertificate(input, ca.publicKey, WALL_2030, { nodeId: 1, publicKey: alice.signing.publicKey });
      },
    },
    {
      name: "identity records (crypto/identity.ts verifyIdentityRecord)",
      corpus: [encodeIdentityRecord(alice, alice.derivedNodeId, WALL_2030), encodeIdentityRecord(bob, 2, WALL_2030, certB)],
      feed(input) {
        verifyIdentityRecord(input, {}, WALL_2030);
        verifyIdentityRecord(input, trust, WALL_2030);
      },
    },
    {
      name: "end-to-end frames (crypto/e2e.ts open)",
      corpus: frames,
      feed(input) {
        e2eInputs += 1;
        if (e2eInputs % 2000 === 0) {
          e2eReceiver = new EndToEnd({ identity: bob, nodeId: 2, entropy: new SeededEntropy(76), startedAtMs: WALL_2030 });
          e2eReceiver.setPeerKey(1, alice.dh.publicKey);
        }
        const header = readFrameHeader(input, 0);
        if (header.ok) e2eReceiver.open(header.value, input.subarray(20));
        if (input.byteLength >= E2E_OVERHEAD_BYTES) e2eReceiver.open({ version: 1, kind: FrameKind.Routed, flags: 0, ttl: 1, source: 1, destination: 2, module: 2, length: input.byteLength }, input);
      },
    },
    {
      name: "key, CA, certificate and network key files",
      corpus: files,
      feed(input) {
        const file = decoder.decode(input);
        decodeKeyFile(file);
        decodePublicKeyFile(file);
        decodeCaKeyFile(file);
        decodeCaPublicFile(file);
        decodeCertificateFile(file);
        parseNetworkKey(file);
      },
    },
  ];
}

/**
 * `npm run bench -- crypto [--quick] [--plain-link-mb-per-s X] [--plain-msgs-per-s Y]`
 *
 * The crypto layer alone, in this process, each figure beside its baseline measured in the same
 * run: record sealing and opening (ChaCha20-Poly1305 through node:crypto, one createCipheriv per
 * record) against a plain copy of the same bytes, the alternatives for building a record, handshakes
 * per second (both sides in process, and the responder's share alone: what a node can accept), and
 * end-to-end sealing. Then projections against the targets for an encrypted link:
 *
 *   bulk ≥ 1,000 MB/s, 1 KiB messages ≥ 147 k/s, connect including the handshake to first echo < 3 ms
 *
 * A projection combines the plaintext link's figure (docs/benchmarks.md, or the flags) with the
 * crypto cost per byte or per message measured here, each side of a link on its own CPU:
 * 1 / (1/plain + 1/crypto). It is an estimate until the link benchmark runs encrypted.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { SeededEntropy } from "../src/core/entropy.js";
import { SecureChannel, type ChannelConfig } from "../src/crypto/channel.js";
import { generateCertificateAuthority, signCertificate } from "../src/crypto/certificate.js";
import { EndToEnd } from "../src/crypto/e2e.js";
import { LinkHandshake, type HandshakeConfig } from "../src/crypto/handshake.js";
import { type NodeIdentity, generateIdentity } from "../src/crypto/identity.js";
import { RecordSession } from "../src/crypto/session.js";
import { FrameKind } from "../src/wire/frame.js";

export const CRYPTO_USAGE = [
  "usage: npm run bench -- crypto [options]",
  "  --quick                       short runs (a smoke test; figures are rough)",
  "  --plain-link-mb-per-s X       plaintext TCP link bulk figure for the projection (default 2129, docs/benchmarks.md)",
  "  --plain-msgs-per-s Y          plaintext TCP link 1 KiB msgs/s for the projection (default 534000)",
  "  --plain-udp-msgs-per-s Z      plaintext UDP (MTU 1400) 1 KiB msgs/s for the projection (default 89000)",
].join("\n");

const KIB = 1024;
const MB = 1e6;
const WALL_2030 = Date.UTC(2030, 0, 1);
/** The targets for the encrypted link (and js-libp2p's figures they derive from). */
const TARGETS = { bulkMbPerS: 1000, msgsPerS: 147_000, connectMs: 3 };
const LIBP2P = { bulkMbPerS: 501, msgsPerS: 36_700, connectMs: 17.5 };

interface Options {
  quick: boolean;
  measureMs: number;
  plainLinkMbPerS: number;
  plainMsgsPerS: number;
  plainUdpMsgsPerS: number;
}

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: "crypto", ...line })}\n`);
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Runs `body` repeatedly for `ms` (after a warm-up of a fifth of that); operations per second. */
function rate(ms: number, body: () => void, batch = 16): number {
  const warmUntil = performance.now() + ms / 5;
  while (performance.now() < warmUntil) for (let index = 0; index < batch; index += 1) body();
  let operations = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let index = 0; index < batch; index += 1) body();
    operations += batch;
    now = performance.now();
  }
  return (operations * 1000) / (now - start);
}

/** The median of three runs: this VM's figures move between runs. */
function median3(run: () => number): number {
  const values = [run(), run(), run()].sort((a, b) => a - b);
  return values[1]!;
}

function keys(): { a: Uint8Array; b: Uint8Array } {
  const entropy = new SeededEntropy(1);
  return { a: entropy.randomBytes(32), b: entropy.randomBytes(32) };
}

function benchRecords(options: Options): { seal64: number; open64: number; sealOpen1k: number; seal1400: number; open1400: number } {
  const { a, b } = keys();
  /** seal64: the better of the ways the engine would seal a 64 KiB frame (sealParts with 2 parts, or seal). */
  const results = { seal64: 0, open64: 0, sealOpen1k: 0, seal1400: 0, open1400: 0 };
  for (const size of [64 * KIB, 16 * KIB, 1400, KIB]) {
    const plaintext = randomBytes(size);
    const sender = new RecordSession({ sendKey: a, receiveKey: b }, { transport: "stream", now: 0 });
    const copyRate = median3(() => rate(options.measureMs, () => new Uint8Array(plaintext)));
    const sealRate = median3(() => rate(options.measureMs, () => sender.seal(0, plaintext)));
    const onePartRate = median3(() => rate(options.measureMs, () => sender.sealParts(0, [plaintext])));
    const partsRate = median3(() => rate(options.measureMs, () => sender.sealParts(0, [plaintext.subarray(0, 20), plaintext.subarray(20)])));
    // Opening needs records in counter order: a datagram receiver with a wide-open window does.
    const records: Uint8Array[] = [];
    const source = new RecordSession({ sendKey: a, receiveKey: b }, { transport: "datagram", now: 0 });
    const pool = Math.max(64, Math.min(4096, Math.floor((64 * 1024 * 1024) / size)));
    for (let index = 0; index < pool; index += 1) records.push(source.seal(0, plaintext));
    const openRate = median3(() => {
      let receiver = new RecordSession({ sendKey: b, receiveKey: a }, { transport: "datagram", now: 0 });
      let next = 0;
      return rate(options.measureMs, () => {
        if (next === records.length) {
          // Start over with a fresh receiver (the replay window would refuse the same records).
          next = 0;
          receiver = new RecordSession({ sendKey: b, receiveKey: a }, { transport: "datagram", now: 0 });
        }
        const opened = receiver.open(0, records[next++]!);
        if (!opened.ok) throw new Error(`bench: a record did not open: ${opened.error}`);
      });
    });
    const mb = (perSecond: number): number => (perSecond * size) / MB;
    emit({ metric: "record_seal_mb_per_s", record_bytes: size, unit: "MB/s", value: round(mb(sealRate)), baseline: "copy (new Uint8Array of the same bytes)", baseline_value: round(mb(copyRate)), ratio: round(sealRate / copyRate, 3), records_per_s: Math.round(sealRate), method: "RecordSession.seal: one createCipheriv per record, output assembled in one array" });
    emit({ metric: "record_seal_parts_mb_per_s", parts: 1, record_bytes: size, unit: "MB/s", value: round(mb(onePartRate)), baseline: "record_seal_mb_per_s", baseline_value: round(mb(sealRate)), ratio: round(onePartRate / sealRate, 3), method: "RecordSession.sealParts([packet]): pieces [header, ciphertext, tag] for writev, no join" });
    emit({ metric: "record_seal_parts_mb_per_s", parts: 2, record_bytes: size, unit: "MB/s", value: round(mb(partsRate)), baseline: "record_seal_mb_per_s", baseline_value: round(mb(sealRate)), ratio: round(partsRate / sealRate, 3), method: "RecordSession.sealParts([20-byte frame header, payload]): the engine's zero-copy path for large frames on TCP" });
    emit({ metric: "record_open_mb_per_s", record_bytes: size, unit: "MB/s", value: round(mb(openRate)), baseline: "copy (new Uint8Array of the same bytes)", baseline_value: round(mb(copyRate)), ratio: round(openRate / copyRate, 3), records_per_s: Math.round(openRate), method: "RecordSession.open (datagram: replay window)" });
    if (size === 64 * KIB) {
      results.seal64 = mb(Math.max(sealRate, partsRate));
      results.open64 = mb(openRate);
    }
    if (size === 1400) {
      results.seal1400 = sealRate;
      results.open1400 = openRate;
    }
    if (size === KIB) results.sealOpen1k = 1 / (1 / sealRate + 1 / openRate);
  }
  return results;
}

function benchPrimitiveChoices(options: Options): void {
  const key = randomBytes(32);
  const nonce = Buffer.alloc(12);
  const aad = Buffer.alloc(16);
  for (const size of [64 * KIB, KIB]) {
    const plaintext = randomBytes(size);
    const figures: Record<string, number> = {};
    for (const algorithm of ["chacha20-poly1305", "aes-256-gcm"] as const) {
      figures[algorithm] = median3(() =>
        rate(options.measureMs, () => {
          nonce.writeUInt32BE((nonce.readUInt32BE(8) + 1) >>> 0, 8);
          const cipher = algorithm === "aes-256-gcm" ? createCipheriv(algorithm, key, nonce, { authTagLength: 16 }) : createCipheriv(algorithm, key, nonce, { authTagLength: 16 });
          cipher.setAAD(aad, { plaintextLength: size });
          cipher.update(plaintext);
          cipher.final();
          cipher.getAuthTag();
        }),
      );
    }
    const chacha = figures["chacha20-poly1305"]!;
    emit({ metric: "aead_raw_seal_mb_per_s", record_bytes: size, algorithm: "aes-256-gcm", unit: "MB/s", value: round((figures["aes-256-gcm"]! * size) / MB), baseline: "chacha20-poly1305, same loop", baseline_value: round((chacha * size) / MB), ratio: round(figures["aes-256-gcm"]! / chacha, 3), note: "node:crypto, one createCipheriv per record, output not kept" });
  }
  // Fixed cost per record: an empty one.
  const empty = new Uint8Array(0);
  const { a, b } = keys();
  const sender = new RecordSession({ sendKey: a, receiveKey: b }, { transport: "stream", now: 0 });
  const perRecord = median3(() => rate(options.measureMs, () => sender.seal(0, empty)));
  emit({ metric: "record_fixed_cost_us", unit: "µs", value: round(1e6 / perRecord, 2), note: "sealing an empty record: createCipheriv + setAAD + final + getAuthTag" });
  // Decipher objects cannot be reused after final(); nor can ciphers (node:crypto has no reset).
  void createDecipheriv;
}

function identities(count: number): NodeIdentity[] {
  const entropy = new SeededEntropy(3);
  return Array.from({ length: count }, () => generateIdentity(entropy));
}

function handshakeConfigs(kind: "XX" | "XXpsk3" | "XXpsk3+cert", entropy: SeededEntropy): { initiator: HandshakeConfig; responder: HandshakeConfig } {
  const [alice, bob] = identities(2) as [NodeIdentity, NodeIdentity];
  const networkKey = kind === "XX" ? undefined : new SeededEntropy(4).randomBytes(32);
  const base = { trust: {}, entropy, wallClockOffsetMs: WALL_2030, transport: "stream" as const, networkKey };
  if (kind !== "XXpsk3+cert") {
    return {
      initiator: { ...base, role: "initiator", identity: alice, nodeId: alice.derivedNodeId },
      responder: { ...base, role: "responder", identity: bob, nodeId: bob.derivedNodeId },
    };
  }
  const ca = generateCertificateAuthority(new SeededEntropy(5));
  const cert = (identity: NodeIdentity, nodeId: number) => signCertificate(ca, { nodeId, publicKey: identity.signing.publicKey, tags: ["bench"], notBefore: 0, notAfter: WALL_2030 + 1e10 });
  const trust = { caPublicKey: ca.publicKey };
  return {
    initiator: { ...base, trust, role: "initiator", identity: alice, nodeId: 1, certificate: cert(alice, 1) },
    responder: { ...base, trust, role: "responder", identity: bob, nodeId: 2, certificate: cert(bob, 2) },
  };
}

/** One full handshake in process; returns the µs the responder spent. */
function oneHandshake(configs: { initiator: HandshakeConfig; responder: HandshakeConfig }): number {
  const initiator = new LinkHandshake(configs.initiator);
  const responder = new LinkHandshake(configs.responder);
  const init = initiator.start(0).send[0]!;
  let t = performance.now();
  const response = responder.receive(0, init).send[0]!;
  let responderMs = performance.now() - t;
  const finish = initiator.receive(0, response);
  if (finish.result === undefined) throw new Error(`handshake failed: ${finish.failure?.message}`);
  t = performance.now();
  const done = responder.receive(0, finish.send[0]!);
  responderMs += performance.now() - t;
  if (done.result === undefined) throw new Error(`handshake failed: ${done.failure?.message}`);
  return responderMs * 1000;
}

function benchHandshakes(options: Options): { handshakeUs: number; coldMs: number } {
  const entropy = new SeededEntropy(6);
  // Cold: the first handshake of this process (JIT and OpenSSL cold), channels included.
  const [alice, bob] = identities(2) as [NodeIdentity, NodeIdentity];
  const coldStart = performance.now();
  const base = { trust: {}, entropy, wallClockOffsetMs: WALL_2030, transport: "stream" as const };
  const a = new SecureChannel({ ...base, role: "initiator", identity: alice, nodeId: alice.derivedNodeId } as ChannelConfig, 0);
  const b = new SecureChannel({ ...base, role: "responder", identity: bob, nodeId: bob.derivedNodeId } as ChannelConfig, 0);
  a.start(0);
  for (let moved = true; moved; ) {
    moved = false;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (let output = from.poll(); output !== undefined; output = from.poll()) {
        moved = true;
        if (output.kind === "transmit") to.receive(0, output.unit);
      }
    }
  }
  const echo = b.receive(0, a.seal(0, new Uint8Array(KIB)));
  if (echo.kind !== "packet") throw new Error("cold handshake failed");
  a.receive(0, b.seal(0, new Uint8Array(KIB)));
  const coldMs = performance.now() - coldStart;
  emit({ metric: "handshake_cold_ms", unit: "ms", value: round(coldMs, 2), note: "first handshake of the process, both sides and one 1 KiB echo, in process (no network): what connect-to-first-echo pays on top of a round trip and a half", target_max: TARGETS.connectMs, reference: { name: "js-libp2p 3.3 connect to first echo", value: LIBP2P.connectMs } });

  let warmUs = 0;
  for (const kind of ["XX", "XXpsk3", "XXpsk3+cert"] as const) {
    const configs = handshakeConfigs(kind, entropy);
    const ms = options.quick ? options.measureMs : options.measureMs * 2;
    let responderUs = 0;
    let count = 0;
    const perSecond = median3(() =>
      rate(
        ms,
        () => {
          responderUs += oneHandshake(configs);
          count += 1;
        },
        4,
      ),
    );
    const acceptPerSecond = 1e6 / (responderUs / count);
    emit({ metric: "handshakes_per_s", pattern: kind, unit: "handshakes/s", value: Math.round(perSecond), note: "both sides in one process, one CPU: 3 messages, 3 X25519 + 1 keygen per side, 1 Ed25519 sign + verify per side", us_per_handshake: round(1e6 / perSecond, 1) });
    emit({ metric: "handshakes_accepted_per_s", pattern: kind, unit: "handshakes/s", value: Math.round(acceptPerSecond), note: "the responder's CPU alone (HS_INIT in, HS_RESPONSE out, HS_FINISH in): what one core of a node can accept", responder_us: round(responderUs / count, 1) });
    if (kind === "XXpsk3") warmUs = 1e6 / perSecond;
  }
  return { handshakeUs: warmUs, coldMs };
}

function benchE2e(options: Options): number {
  const [alice, bob] = identities(2) as [NodeIdentity, NodeIdentity];
  const sender = new EndToEnd({ identity: alice, nodeId: 1, entropy: new SeededEntropy(7), startedAtMs: WALL_2030 });
  sender.setPeerKey(2, bob.dh.publicKey);
  const payload = randomBytes(KIB);
  const header = { kind: FrameKind.Routed, flags: 0, source: 1, destination: 2, module: 2 } as const;
  const copyRate = median3(() => rate(options.measureMs, () => new Uint8Array(payload)));
  const sealRate = median3(() => rate(options.measureMs, () => sender.seal(header, payload)));
  const sealed: Uint8Array[] = [];
  for (let index = 0; index < 4096; index += 1) sealed.push((sender.seal(header, payload) as { value: Uint8Array }).value);
  const openRate = median3(() => {
    let receiver = new EndToEnd({ identity: bob, nodeId: 2, entropy: new SeededEntropy(8), startedAtMs: WALL_2030 });
    receiver.setPeerKey(1, alice.dh.publicKey);
    let next = 0;
    return rate(options.measureMs, () => {
      if (next === sealed.length) {
        next = 0;
        receiver = new EndToEnd({ identity: bob, nodeId: 2, entropy: new SeededEntropy(8), startedAtMs: WALL_2030 });
        receiver.setPeerKey(1, alice.dh.publicKey);
      }
      const payloadOf = sealed[next++]!;
      receiver.open({ version: 1, kind: FrameKind.Routed, flags: 0, ttl: 30, source: 1, destination: 2, module: 2, length: payloadOf.byteLength }, payloadOf);
    });
  });
  emit({ metric: "e2e_seal_per_s", message_bytes: KIB, unit: "msgs/s", value: Math.round(sealRate), baseline: "copy", baseline_value: Math.round(copyRate), ratio: round(sealRate / copyRate, 4) });
  emit({ metric: "e2e_open_per_s", message_bytes: KIB, unit: "msgs/s", value: Math.round(openRate), baseline: "copy", baseline_value: Math.round(copyRate), ratio: round(openRate / copyRate, 4) });
  return 1 / (1 / sealRate + 1 / openRate);
}

function project(options: Options, records: ReturnType<typeof benchRecords>, handshake: { handshakeUs: number; coldMs: number }, e2eBoth: number): void {
  // Bulk: each side pays its own crypto (sender seals, receiver opens) beside the plaintext pipeline.
  const slowerSide = Math.min(records.seal64, records.open64);
  const bulk = 1 / (1 / options.plainLinkMbPerS + 1 / slowerSide);
  emit({
    metric: "projected_encrypted_bulk_mb_per_s",
    unit: "MB/s",
    value: round(bulk),
    target_min: TARGETS.bulkMbPerS,
    meets_target: bulk >= TARGETS.bulkMbPerS,
    assumption: `plaintext TCP link ${options.plainLinkMbPerS} MB/s, one 64 KiB frame per record (sealParts: frame header + payload), slower side ${round(slowerSide)} MB/s of crypto`,
    reference: { name: "js-libp2p 3.3", value: LIBP2P.bulkMbPerS },
  });
  // 1 KiB messages over TCP: 64 KiB records hold ~63 frames of 1 KiB + 20 bytes.
  const perRecord = Math.floor((64 * KIB) / (KIB + 20));
  const cryptoPerMsgS = 1 / ((Math.min(records.seal64, records.open64) * MB) / (64 * KIB)) / perRecord;
  const tcpMsgs = 1 / (1 / options.plainMsgsPerS + cryptoPerMsgS);
  emit({
    metric: "projected_encrypted_msgs_per_s",
    transport: "tcp",
    message_bytes: KIB,
    unit: "msgs/s",
    value: Math.round(tcpMsgs),
    target_min: TARGETS.msgsPerS,
    meets_target: tcpMsgs >= TARGETS.msgsPerS,
    assumption: `plaintext TCP link ${options.plainMsgsPerS} msgs/s, ${perRecord} messages per 64 KiB record`,
    reference: { name: "js-libp2p 3.3", value: LIBP2P.msgsPerS },
  });
  const udpCrypto = 1 / Math.min(records.seal1400, records.open1400);
  const udpMsgs = 1 / (1 / options.plainUdpMsgsPerS + udpCrypto);
  emit({
    metric: "projected_encrypted_msgs_per_s",
    transport: "udp",
    message_bytes: KIB,
    unit: "msgs/s",
    value: Math.round(udpMsgs),
    target_min: TARGETS.msgsPerS,
    meets_target: udpMsgs >= TARGETS.msgsPerS,
    assumption: `plaintext UDP link at MTU 1400 ${options.plainUdpMsgsPerS} msgs/s (already below target), one record per datagram`,
  });
  emit({
    metric: "projected_handshake_cost_ms",
    unit: "ms",
    value: round(handshake.handshakeUs / 1000, 3),
    cold_ms: round(handshake.coldMs, 2),
    target_max_connect_to_first_echo: TARGETS.connectMs,
    note: "CPU of one handshake, both sides (warm XXpsk3); connect adds 1.5 round trips before the initiator may send, plus the node's own start-up when measured from createNode",
  });
  emit({ metric: "e2e_seal_open_per_s", message_bytes: KIB, unit: "msgs/s", value: Math.round(e2eBoth), note: "both ends' end-to-end work on one CPU; each end does half, beside the link records" });
}

export async function runCrypto(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      "plain-link-mb-per-s": { type: "string", default: "2129" },
      "plain-msgs-per-s": { type: "string", default: "534000" },
      "plain-udp-msgs-per-s": { type: "string", default: "89000" },
    },
  });
  const options: Options = {
    quick: values.quick === true,
    measureMs: values.quick === true ? 60 : 400,
    plainLinkMbPerS: Number(values["plain-link-mb-per-s"]),
    plainMsgsPerS: Number(values["plain-msgs-per-s"]),
    plainUdpMsgsPerS: Number(values["plain-udp-msgs-per-s"]),
  };
  for (const [name, value] of Object.entries({ plainLinkMbPerS: options.plainLinkMbPerS, plainMsgsPerS: options.plainMsgsPerS, plainUdpMsgsPerS: options.plainUdpMsgsPerS })) {
    if (!(value > 0)) {
      process.stderr.write(`bench crypto: ${name} must be a positive number\n${CRYPTO_USAGE}\n`);
      return 2;
    }
  }
  process.stderr.write("bench crypto: handshakes (cold first)\n");
  const handshake = benchHandshakes(options);
  process.stderr.write("bench crypto: records\n");
  const records = benchRecords(options);
  process.stderr.write("bench crypto: primitive choices\n");
  benchPrimitiveChoices(options);
  process.stderr.write("bench crypto: end-to-end\n");
  const e2e = benchE2e(options);
  project(options, records, handshake, e2e);
  return 0;
}

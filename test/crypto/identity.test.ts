/** Identity: NodeId derivation, binding, key files, network keys, identity records. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy } from "../../src/core/entropy.js";
import { generateCertificateAuthority, signCertificate } from "../../src/crypto/certificate.js";
import {
  bindNodeId,
  decodeKeyFile,
  decodePublicKeyFile,
  deriveNodeId,
  encodeIdentityRecord,
  encodeKeyFile,
  encodePublicKeyFile,
  formatNetworkKey,
  generateIdentity,
  generateNetworkKey,
  networkKeyId,
  parseNetworkKey,
  verifyIdentityRecord,
} from "../../src/crypto/identity.js";
import { sha256, toHex, utf8 } from "../../src/crypto/primitives.js";
import { DAY, WALL_2030, flipByte, identities } from "./helpers.js";

describe("identity", () => {
  it("NodeId = first non-zero big-endian u32 of SHA-256(label || Ed25519 key); stable, never 0", () => {
    const [node] = identities(1, 1);
    const digest = sha256(utf8.encode("skein node id v1"), node!.signing.publicKey);
    assert.equal(node!.derivedNodeId, new DataView(digest.buffer, digest.byteOffset).getUint32(0));
    assert.equal(deriveNodeId(node!.signing.publicKey), node!.derivedNodeId);
    const entropy = new SeededEntropy(2);
    for (let index = 0; index < 200; index += 1) assert.notEqual(generateIdentity(entropy).derivedNodeId, 0);
  });

  it("seeded entropy gives the same identity", () => {
    assert.equal(toHex(identities(5, 1)[0]!.dh.publicKey), toHex(identities(5, 1)[0]!.dh.publicKey));
  });

  it("binding: derived, claimed, refused when derived ones are required, certificate mode", () => {
    const [node] = identities(3, 1);
    const key = node!.signing.publicKey;
    assert.equal((bindNodeId(node!.derivedNodeId, key, undefined, {}, WALL_2030) as { value: { binding: string } }).value.binding, "derived");
    assert.equal((bindNodeId(12, key, undefined, {}, WALL_2030) as { value: { binding: string } }).value.binding, "claimed");
    const strict = bindNodeId(12, key, undefined, { requireDerivedNodeIds: true }, WALL_2030);
    assert.equal(!strict.ok && strict.code, "node_id_not_derived");
    const ca = generateCertificateAuthority(new SeededEntropy(4));
    const missing = bindNodeId(12, key, undefined, { caPublicKey: ca.publicKey }, WALL_2030);
    assert.equal(!missing.ok && missing.code, "certificate_missing");
    const cert = signCertificate(ca, { nodeId: 12, publicKey: key, tags: [], notBefore: WALL_2030, notAfter: WALL_2030 + DAY });
    assert.equal((bindNodeId(12, key, cert, { caPublicKey: ca.publicKey }, WALL_2030) as { value: { binding: string } }).value.binding, "certificate");
    const expired = bindNodeId(12, key, cert, { caPublicKey: ca.publicKey }, WALL_2030 + 2 * DAY);
    assert.equal(!expired.ok && expired.code, "certificate_expired");
    const mismatch = bindNodeId(13, key, cert, { caPublicKey: ca.publicKey }, WALL_2030);
    assert.equal(!mismatch.ok && mismatch.code, "certificate_node_id_mismatch");
  });

  it("key files round-trip; public files; an edited key file is refused", () => {
    const [node] = identities(6, 1);
    const text = encodeKeyFile(node!);
    const loaded = decodeKeyFile(text);
    assert.ok(loaded.ok);
    assert.equal(toHex(loaded.value.signing.privateKey), toHex(node!.signing.privateKey));
    assert.equal(toHex(loaded.value.dh.publicKey), toHex(node!.dh.publicKey));
    const publicText = encodePublicKeyFile(node!);
    assert.doesNotMatch(publicText, /private/);
    for (const source of [publicText, text, `${toHex(node!.signing.publicKey)}\n`]) {
      const parsed = decodePublicKeyFile(source);
      assert.ok(parsed.ok, source);
      assert.equal(toHex(parsed.value.signingKey), toHex(node!.signing.publicKey));
      assert.equal(parsed.value.derivedNodeId, node!.derivedNodeId);
    }
    const obj = JSON.parse(text) as Record<string, string>;
    obj.x25519_public = toHex(new Uint8Array(32).fill(9));
    assert.equal((decodeKeyFile(JSON.stringify(obj)) as { code: string }).code, "inconsistent");
    assert.equal((decodeKeyFile(publicText) as { code: string }).code, "wrong_type");
    assert.equal((decodeKeyFile("{") as { code: string }).code, "malformed");
  });

  it("network keys: 64 hex characters; clear errors otherwise; a loggable id", () => {
    const key = generateNetworkKey(new SeededEntropy(7));
    const text = formatNetworkKey(key);
    assert.match(text, /^[0-9a-f]{64}\n$/);
    assert.equal(toHex((parseNetworkKey(`  ${text}  `) as { value: Uint8Array }).value), toHex(key));
    const short = parseNetworkKey("abcd");
    assert.equal(!short.ok && short.error, "expected 64 hex characters (32 random bytes, as skein keygen --network writes), found 4 characters");
    const bad = parseNetworkKey("g".repeat(64));
    assert.match(!bad.ok ? bad.error : "", /found other characters/);
    assert.match(networkKeyId(key), /^[0-9a-f]{16}$/);
    assert.ok(!text.includes(networkKeyId(key)));
  });

  it("identity records: sign, verify, tamper, bind", () => {
    const [node] = identities(8, 1);
    const record = encodeIdentityRecord(node!, node!.derivedNodeId, WALL_2030);
    const verified = verifyIdentityRecord(record, {}, WALL_2030);
    assert.ok(verified.ok);
    assert.equal(toHex(verified.value.staticKey), toHex(node!.dh.publicKey));
    assert.equal(verified.value.binding, "derived");
    for (const index of [1, 10, 40, 70, record.byteLength - 1]) {
      const tampered = verifyIdentityRecord(flipByte(record, index), {}, WALL_2030);
      assert.equal(tampered.ok, false, `byte ${index}`);
    }
    const claimed = encodeIdentityRecord(node!, 99, WALL_2030);
    const strict = verifyIdentityRecord(claimed, { requireDerivedNodeIds: true }, WALL_2030);
    assert.equal(!strict.ok && strict.code, "node_id_not_derived");
  });
});

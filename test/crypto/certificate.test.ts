/** Certificates: issue, verify (every error), codec and files. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy } from "../../src/core/entropy.js";
import {
  CERTIFICATE_MAX_BYTES,
  CERTIFICATE_MAX_TAGS,
  type CertificateFields,
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
import { toHex } from "../../src/crypto/primitives.js";
import { DAY, WALL_2030, flipByte, identities } from "./helpers.js";

const entropy = new SeededEntropy(11);
const ca = generateCertificateAuthority(entropy);
const otherCa = generateCertificateAuthority(entropy);
const [node, stranger] = identities(12, 2) as [ReturnType<typeof identities>[0], ReturnType<typeof identities>[0]];

function fields(overrides: Partial<CertificateFields> = {}): CertificateFields {
  return { nodeId: 7, publicKey: node.signing.publicKey, tags: ["eu", "relay"], notBefore: WALL_2030 - DAY, notAfter: WALL_2030 + 30 * DAY, ...overrides };
}

describe("certificates", () => {
  it("a valid certificate verifies, and decodes to what was signed", () => {
    const bytes = signCertificate(ca, fields());
    const verified = verifyCertificate(bytes, ca.publicKey, WALL_2030, { nodeId: 7, publicKey: node.signing.publicKey });
    assert.ok(verified.ok, verified.ok ? "" : verified.error);
    assert.equal(verified.value.nodeId, 7);
    assert.deepEqual(verified.value.tags, ["eu", "relay"]);
    assert.equal(toHex(verified.value.issuer), toHex(ca.publicKey));
    assert.equal(verified.value.notAfter, WALL_2030 + 30 * DAY);
    // Boundaries are inclusive.
    assert.ok(verifyCertificate(bytes, ca.publicKey, WALL_2030 - DAY).ok);
    assert.ok(verifyCertificate(bytes, ca.publicKey, WALL_2030 + 30 * DAY).ok);
  });

  it("refuses expired, not yet valid, foreign CA, bad signature, NodeId and key mismatch, each by name", () => {
    const bytes = signCertificate(ca, fields());
    const cases: [string, ReturnType<typeof verifyCertificate>][] = [
      ["expired", verifyCertificate(bytes, ca.publicKey, WALL_2030 + 31 * DAY)],
      ["not_yet_valid", verifyCertificate(bytes, ca.publicKey, WALL_2030 - 2 * DAY)],
      ["foreign_ca", verifyCertificate(signCertificate(otherCa, fields()), ca.publicKey, WALL_2030)],
      ["bad_signature", verifyCertificate(flipByte(bytes, bytes.byteLength - 1), ca.publicKey, WALL_2030)],
      ["bad_signature", verifyCertificate(flipByte(bytes, 5), ca.publicKey, WALL_2030)], // NodeId changed after signing
      ["node_id_mismatch", verifyCertificate(bytes, ca.publicKey, WALL_2030, { nodeId: 8 })],
      ["key_mismatch", verifyCertificate(bytes, ca.publicKey, WALL_2030, { publicKey: stranger.signing.publicKey })],
      ["malformed", verifyCertificate(bytes.subarray(0, 100), ca.publicKey, WALL_2030)],
    ];
    for (const [code, result] of cases) {
      assert.equal(result.ok, false, code);
      assert.equal(!result.ok && result.code, code);
      assert.ok(!result.ok && result.error.length > 20, "a message that explains");
    }
    const expired = cases[0]![1];
    assert.match(!expired.ok ? expired.error : "", /expired at 2030-01-31T00:00:00\.000Z .*skein ca sign/);
  });

  it("a forged certificate reports the forgery before its dates", () => {
    const bytes = signCertificate(ca, fields({ notAfter: WALL_2030 - DAY / 2 }));
    const forged = flipByte(bytes, 100);
    const result = verifyCertificate(forged, ca.publicKey, WALL_2030);
    assert.equal(!result.ok && result.code, "bad_signature");
  });

  it("bounds: tags, size, fields", () => {
    const many = signCertificate(ca, fields({ tags: Array.from({ length: CERTIFICATE_MAX_TAGS }, (_, index) => `tag-${index}-${"x".repeat(24)}`) }));
    assert.ok(many.byteLength <= CERTIFICATE_MAX_BYTES);
    assert.ok(decodeCertificate(many).ok);
    assert.throws(() => signCertificate(ca, fields({ tags: Array.from({ length: CERTIFICATE_MAX_TAGS + 1 }, () => "a") })), /at most 8/);
    assert.throws(() => signCertificate(ca, fields({ tags: ["has space"] })), /tag/);
    assert.throws(() => signCertificate(ca, fields({ nodeId: 0 })), /NodeId/);
    assert.throws(() => signCertificate(ca, fields({ notAfter: WALL_2030 - 2 * DAY })), /before/);
    assert.throws(() => signCertificate(ca, fields({ publicKey: new Uint8Array(31) })), /Ed25519/);
  });

  it("files: CA key, CA public key, certificate; wrong and edited files are named", () => {
    const keyText = encodeCaKeyFile(ca);
    const loaded = decodeCaKeyFile(keyText);
    assert.ok(loaded.ok);
    assert.equal(toHex(loaded.value.publicKey), toHex(ca.publicKey));
    const publicText = encodeCaPublicFile(ca);
    assert.equal(toHex((decodeCaPublicFile(publicText) as { value: Uint8Array }).value), toHex(ca.publicKey));
    assert.equal(toHex((decodeCaPublicFile(keyText) as { value: Uint8Array }).value), toHex(ca.publicKey), "the key file works as --ca too");
    const edited = keyText.replace(toHex(ca.publicKey), toHex(otherCa.publicKey));
    assert.notEqual(edited, keyText);
    const refused = decodeCaKeyFile(edited);
    assert.equal(!refused.ok && refused.code, "inconsistent");

    const bytes = signCertificate(ca, fields());
    const certText = encodeCertificateFile(bytes);
    const cert = decodeCertificateFile(certText);
    assert.ok(cert.ok);
    assert.equal(toHex(cert.value.bytes), toHex(bytes));
    const wrong = decodeCertificateFile(publicText);
    assert.equal(!wrong.ok && wrong.code, "wrong_type");
    assert.match(!wrong.ok ? wrong.error : "", /a "skein-ca-public-key" file; expected a certificate file/);
    const lying = decodeCertificateFile(certText.replace('"node_id": 7', '"node_id": 8'));
    assert.equal(!lying.ok && lying.code, "inconsistent");
    assert.equal((decodeCertificateFile("not json") as { code: string }).code, "malformed");
    assert.equal((decodeCertificateFile('{"type":"skein-certificate","version":2}') as { code: string }).code, "unsupported_version");
  });
});

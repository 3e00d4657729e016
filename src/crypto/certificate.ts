/**
 * Network certificates (`--ca FILE --cert FILE`): a network CA (an Ed25519 key pair) vouches that a
 * NodeId belongs to a node's Ed25519 public key, with tags and a validity period. Certificates
 * travel in the handshake (handshake.ts) and in identity records (identity.ts).
 *
 * Certificate bytes, version 1 (big-endian; docs/protocol-security-draft.md):
 *
 *   0   u8      version = 1
 *   1   u8      flags = 0 (reserved)
 *   2   u32     NodeId (1..2^32-1)
 *   6   32      subject: the node's Ed25519 public key
 *   38  32      issuer: the CA's Ed25519 public key
 *   70  u64     notBefore, ms since the Unix epoch (≤ 2^53-1)
 *   78  u64     notAfter, ms since the Unix epoch, ≥ notBefore
 *   86  u8      tag count, ≤ 8
 *   87  …       tags: u8 length (1..32) + ASCII [A-Za-z0-9._:/-]
 *   …   64      Ed25519 signature by the issuer over "skein certificate v1" || 0x00 || all bytes above
 *
 * At most 87 + 8·33 + 64 = 415 bytes, so a certificate always fits a handshake datagram.
 * Verification checks, in this order: well-formed, issued by our CA (else `foreign_ca`), signature
 * (`bad_signature`), NodeId and key against what the peer claims (`node_id_mismatch`,
 * `key_mismatch`), then time (`not_yet_valid`, `expired`) — so a forged certificate reports the
 * forgery, not its dates.
 */
import type { Entropy } from "../core/entropy.js";
import { type NodeId, isNodeId } from "../core/node-id.js";
import { type Result, fail, ok } from "./result.js";
import {
  KEY_BYTES,
  type KeyPair,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  bytesEqual,
  concatBytes,
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
  isEd25519PublicKey,
  parseHex,
  toHex,
  utf8,
} from "./primitives.js";

export const CERTIFICATE_VERSION = 1;
export const CERTIFICATE_MAX_TAGS = 8;
export const CERTIFICATE_MAX_TAG_BYTES = 32;
const FIXED_BYTES = 87;
export const CERTIFICATE_MAX_BYTES = FIXED_BYTES + CERTIFICATE_MAX_TAGS * (1 + CERTIFICATE_MAX_TAG_BYTES) + SIGNATURE_BYTES;
const SIGNATURE_CONTEXT = utf8.encode("skein certificate v1\0");
const TAG_PATTERN = /^[A-Za-z0-9._:/-]{1,32}$/;
const MAX_TIME_MS = Number.MAX_SAFE_INTEGER;
export const DAY_MS = 86_400_000;

export type CertificateErrorCode = "malformed" | "foreign_ca" | "bad_signature" | "node_id_mismatch" | "key_mismatch" | "not_yet_valid" | "expired";

export interface CertificateFields {
  nodeId: NodeId;
  /** The node's Ed25519 public key (32 bytes). */
  publicKey: Uint8Array;
  tags: readonly string[];
  /** Wall-clock ms since the Unix epoch. */
  notBefore: number;
  notAfter: number;
}

export interface Certificate extends CertificateFields {
  /** The CA's Ed25519 public key. */
  issuer: Uint8Array;
  signature: Uint8Array;
  /** The exact encoded bytes (what travels and what is signed). */
  bytes: Uint8Array;
}

export interface CertificateAuthority {
  readonly signing: KeyPair;
  readonly publicKey: Uint8Array;
}

export function certificateAuthorityFromPrivateKey(privateKey: Uint8Array): CertificateAuthority {
  const signing = ed25519KeyPair(privateKey);
  return { signing, publicKey: signing.publicKey };
}

export function generateCertificateAuthority(entropy: Entropy): CertificateAuthority {
  return certificateAuthorityFromPrivateKey(entropy.randomBytes(KEY_BYTES));
}

/** Why these fields cannot be certified, or undefined when they can. */
export function checkCertificateFields(fields: CertificateFields): string | undefined {
  if (!isNodeId(fields.nodeId)) return `NodeId ${String(fields.nodeId)} is not an integer in 1..4294967295`;
  if (fields.publicKey.byteLength !== PUBLIC_KEY_BYTES || !isEd25519PublicKey(fields.publicKey)) return "the public key is not a 32-byte Ed25519 public key";
  if (fields.tags.length > CERTIFICATE_MAX_TAGS) return `${fields.tags.length} tags: at most ${CERTIFICATE_MAX_TAGS}`;
  for (const tag of fields.tags) {
    if (!TAG_PATTERN.test(tag)) return `tag ${JSON.stringify(tag)}: expected 1..${CERTIFICATE_MAX_TAG_BYTES} characters from A-Z a-z 0-9 . _ : / -`;
  }
  for (const time of [fields.notBefore, fields.notAfter]) {
    if (!Number.isSafeInteger(time) || time < 0 || time > MAX_TIME_MS) return `validity time ${time} is not a whole number of ms since 1970`;
  }
  if (fields.notAfter < fields.notBefore) return "notAfter is before notBefore";
  return undefined;
}

/** Signs and encodes a certificate. Throws RangeError on fields `checkCertificateFields` refuses. */
export function signCertificate(ca: CertificateAuthority, fields: CertificateFields): Uint8Array {
  const problem = checkCertificateFields(fields);
  if (problem !== undefined) throw new RangeError(`cannot certify: ${problem}`);
  const tags = fields.tags.map((tag) => utf8.encode(tag));
  let length = FIXED_BYTES;
  for (const tag of tags) length += 1 + tag.byteLength;
  const body = new Uint8Array(length);
  const view = new DataView(body.buffer);
  body[0] = CERTIFICATE_VERSION;
  body[1] = 0;
  view.setUint32(2, fields.nodeId);
  body.set(fields.publicKey, 6);
  body.set(ca.publicKey, 38);
  writeU64(view, 70, fields.notBefore);
  writeU64(view, 78, fields.notAfter);
  body[86] = tags.length;
  let offset = FIXED_BYTES;
  for (const tag of tags) {
    body[offset] = tag.byteLength;
    body.set(tag, offset + 1);
    offset += 1 + tag.byteLength;
  }
  const signature = ed25519Sign(ca.signing, concatBytes(SIGNATURE_CONTEXT, body));
  return concatBytes(body, signature);
}

/** Total decoder: structure only (no signature or time check). */
export function decodeCertificate(bytes: Uint8Array): Result<Certificate, "malformed"> {
  if (bytes.byteLength < FIXED_BYTES + SIGNATURE_BYTES) return fail("malformed", `certificate of ${bytes.byteLength} bytes is too short`);
  if (bytes.byteLength > CERTIFICATE_MAX_BYTES) return fail("malformed", `certificate of ${bytes.byteLength} bytes is over the ${CERTIFICATE_MAX_BYTES}-byte limit`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== CERTIFICATE_VERSION) return fail("malformed", `certificate version ${bytes[0]} (this node reads ${CERTIFICATE_VERSION})`);
  if (bytes[1] !== 0) return fail("malformed", "certificate flags are not zero");
  const nodeId = view.getUint32(2);
  if (!isNodeId(nodeId)) return fail("malformed", "certificate NodeId is 0");
  const notBefore = readU64(view, 70);
  const notAfter = readU64(view, 78);
  if (notBefore === undefined || notAfter === undefined || notAfter < notBefore) return fail("malformed", "certificate validity period is invalid");
  const count = bytes[86]!;
  if (count > CERTIFICATE_MAX_TAGS) return fail("malformed", `certificate has ${count} tags, over ${CERTIFICATE_MAX_TAGS}`);
  const tags: string[] = [];
  let offset = FIXED_BYTES;
  for (let index = 0; index < count; index += 1) {
    const length = bytes[offset];
    if (length === undefined || length < 1 || length > CERTIFICATE_MAX_TAG_BYTES || offset + 1 + length > bytes.byteLength - SIGNATURE_BYTES) {
      return fail("malformed", "certificate tag length is invalid");
    }
    const tag = String.fromCharCode(...bytes.subarray(offset + 1, offset + 1 + length));
    if (!TAG_PATTERN.test(tag)) return fail("malformed", "certificate tag has characters outside A-Z a-z 0-9 . _ : / -");
    tags.push(tag);
    offset += 1 + length;
  }
  if (offset + SIGNATURE_BYTES !== bytes.byteLength) return fail("malformed", "certificate has trailing bytes");
  const copy = Uint8Array.from(bytes);
  return ok({
    nodeId,
    publicKey: copy.subarray(6, 38),
    issuer: copy.subarray(38, 70),
    notBefore,
    notAfter,
    tags,
    signature: copy.subarray(offset),
    bytes: copy,
  });
}

export interface CertificateExpectation {
  /** The NodeId the holder claims. */
  nodeId?: NodeId | undefined;
  /** The Ed25519 key the holder proved it holds. */
  publicKey?: Uint8Array | undefined;
}

/**
 * Verifies a certificate against the network CA at wall-clock time `nowMs` (ms since the Unix
 * epoch), and against what its holder claims. Errors name the first problem (order above).
 */
export function verifyCertificate(
  certificate: Uint8Array | Certificate,
  caPublicKey: Uint8Array,
  nowMs: number,
  expect: CertificateExpectation = {},
): Result<Certificate, CertificateErrorCode> {
  let parsed: Certificate;
  if (certificate instanceof Uint8Array) {
    const decoded = decodeCertificate(certificate);
    if (!decoded.ok) return decoded;
    parsed = decoded.value;
  } else {
    parsed = certificate;
  }
  if (!bytesEqual(parsed.issuer, caPublicKey)) {
    return fail("foreign_ca", `certificate for node ${parsed.nodeId} was issued by another CA (${fingerprint(parsed.issuer)}, ours is ${fingerprint(caPublicKey)})`);
  }
  const body = parsed.bytes.subarray(0, parsed.bytes.byteLength - SIGNATURE_BYTES);
  if (!ed25519Verify(caPublicKey, concatBytes(SIGNATURE_CONTEXT, body), parsed.signature)) {
    return fail("bad_signature", `certificate for node ${parsed.nodeId} has an invalid CA signature (altered or forged)`);
  }
  if (expect.nodeId !== undefined && expect.nodeId !== parsed.nodeId) {
    return fail("node_id_mismatch", `certificate is for node ${parsed.nodeId}, but its holder claims node ${expect.nodeId}`);
  }
  if (expect.publicKey !== undefined && !bytesEqual(expect.publicKey, parsed.publicKey)) {
    return fail("key_mismatch", `certificate for node ${parsed.nodeId} names another key (${fingerprint(parsed.publicKey)}) than its holder's (${fingerprint(expect.publicKey)})`);
  }
  if (nowMs < parsed.notBefore) {
    return fail("not_yet_valid", `certificate for node ${parsed.nodeId} is not valid before ${isoTime(parsed.notBefore)} (now ${isoTime(nowMs)}; check the clocks)`);
  }
  if (nowMs > parsed.notAfter) {
    return fail("expired", `certificate for node ${parsed.nodeId} expired at ${isoTime(parsed.notAfter)} (now ${isoTime(nowMs)}); issue a new one with skein ca sign`);
  }
  return ok(parsed);
}

/** A short, stable name for a public key in logs: the first 8 bytes of it in hex. */
export function fingerprint(publicKey: Uint8Array): string {
  return toHex(publicKey.subarray(0, 8));
}

export function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

function writeU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

function readU64(view: DataView, offset: number): number | undefined {
  const high = view.getUint32(offset);
  if (high > 0x1f_ffff) return undefined;
  return high * 0x1_0000_0000 + view.getUint32(offset + 4);
}

// ─── Files ───────────────────────────────────────────────────────────────────────────────────────
//
// Text files, JSON with a `type` and a `version`, so a wrong file is named as such:
//   CA key         {"type":"skein-ca-key","version":1,"ed25519_private":"<64 hex>","ed25519_public":"<64 hex>"}
//   CA public key  {"type":"skein-ca-public-key","version":1,"ed25519_public":"<64 hex>"}
//   certificate    {"type":"skein-certificate","version":1,"certificate":"<base64>", + readable copies
//                   of node_id, tags, not_before, not_after, issuer (ignored when read)}

export const CA_KEY_FILE_TYPE = "skein-ca-key";
export const CA_PUBLIC_FILE_TYPE = "skein-ca-public-key";
export const CERTIFICATE_FILE_TYPE = "skein-certificate";
const FILE_VERSION = 1;

export type FileErrorCode = "malformed" | "wrong_type" | "unsupported_version" | "inconsistent";

export function encodeCaKeyFile(ca: CertificateAuthority): string {
  return `${JSON.stringify({ type: CA_KEY_FILE_TYPE, version: FILE_VERSION, ed25519_private: toHex(ca.signing.privateKey), ed25519_public: toHex(ca.publicKey) }, null, 2)}\n`;
}

export function encodeCaPublicFile(ca: CertificateAuthority | Uint8Array): string {
  const publicKey = ca instanceof Uint8Array ? ca : ca.publicKey;
  return `${JSON.stringify({ type: CA_PUBLIC_FILE_TYPE, version: FILE_VERSION, ed25519_public: toHex(publicKey) }, null, 2)}\n`;
}

export function decodeCaKeyFile(text: string): Result<CertificateAuthority, FileErrorCode> {
  const object = parseTypedJson(text, [CA_KEY_FILE_TYPE], "a CA key file (skein ca init)");
  if (!object.ok) return object;
  const privateKey = hexField(object.value, "ed25519_private", KEY_BYTES);
  if (privateKey === undefined) return fail("malformed", 'CA key file: "ed25519_private" must be 64 hex characters');
  const ca = certificateAuthorityFromPrivateKey(privateKey);
  const declared = object.value.ed25519_public;
  if (declared !== undefined && (typeof declared !== "string" || declared.toLowerCase() !== toHex(ca.publicKey))) {
    return fail("inconsistent", 'CA key file: "ed25519_public" does not match the private key (edited or corrupted file)');
  }
  return ok(ca);
}

/** The CA public key from a CA public key file, or from a CA key file (its public half). */
export function decodeCaPublicFile(text: string): Result<Uint8Array, FileErrorCode> {
  const object = parseTypedJson(text, [CA_PUBLIC_FILE_TYPE, CA_KEY_FILE_TYPE], "a CA public key file (skein ca init writes ca.pub)");
  if (!object.ok) return object;
  if (object.value.type === CA_KEY_FILE_TYPE) {
    const ca = decodeCaKeyFile(text);
    return ca.ok ? ok(ca.value.publicKey) : ca;
  }
  const publicKey = hexField(object.value, "ed25519_public", PUBLIC_KEY_BYTES);
  if (publicKey === undefined || !isEd25519PublicKey(publicKey)) return fail("malformed", 'CA public key file: "ed25519_public" must be 64 hex characters of an Ed25519 key');
  return ok(publicKey);
}

export function encodeCertificateFile(certificate: Uint8Array): string {
  const decoded = decodeCertificate(certificate);
  if (!decoded.ok) throw new RangeError(`not a certificate: ${decoded.error}`);
  const fields = decoded.value;
  return `${JSON.stringify(
    {
      type: CERTIFICATE_FILE_TYPE,
      version: FILE_VERSION,
      certificate: Buffer.from(certificate).toString("base64"),
      node_id: fields.nodeId,
      public_key: toHex(fields.publicKey),
      tags: fields.tags,
      not_before: isoTime(fields.notBefore),
      not_after: isoTime(fields.notAfter),
      issuer: toHex(fields.issuer),
    },
    null,
    2,
  )}\n`;
}

/** The certificate bytes of a certificate file (structure checked; not verified against a CA). */
export function decodeCertificateFile(text: string): Result<Certificate, FileErrorCode> {
  const object = parseTypedJson(text, [CERTIFICATE_FILE_TYPE], "a certificate file (skein ca sign)");
  if (!object.ok) return object;
  const encoded = object.value.certificate;
  if (typeof encoded !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length > 1024) {
    return fail("malformed", 'certificate file: "certificate" must be base64');
  }
  const decoded = decodeCertificate(new Uint8Array(Buffer.from(encoded, "base64")));
  if (!decoded.ok) return fail("malformed", `certificate file: ${decoded.error}`);
  const declared = object.value.node_id;
  if (declared !== undefined && declared !== decoded.value.nodeId) {
    return fail("inconsistent", `certificate file: "node_id" ${JSON.stringify(declared)} does not match the certificate's NodeId ${decoded.value.nodeId} (edited file?)`);
  }
  return ok(decoded.value);
}

type JsonObject = Record<string, unknown>;

/** Parses a typed JSON file; shared by identity.ts. */
export function parseTypedJson(text: string, types: readonly string[], expected: string): Result<JsonObject, FileErrorCode> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail("malformed", `not JSON; expected ${expected}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("malformed", `not a JSON object; expected ${expected}`);
  const object = value as JsonObject;
  if (typeof object.type !== "string" || !types.includes(object.type)) {
    const found = typeof object.type === "string" ? `a "${object.type}" file` : "a file without a type";
    return fail("wrong_type", `${found}; expected ${expected}`);
  }
  if (object.version !== FILE_VERSION) return fail("unsupported_version", `${object.type} file version ${JSON.stringify(object.version)}; this skein reads version ${FILE_VERSION}`);
  return ok(object);
}

export function hexField(object: JsonObject, name: string, bytes: number): Uint8Array | undefined {
  const value = object[name];
  if (typeof value !== "string" || value.length !== bytes * 2) return undefined;
  return parseHex(value);
}

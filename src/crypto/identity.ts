/**
 * Node identity: an Ed25519 key pair (signatures: handshake identity proofs, identity records) and
 * an X25519 key pair (the Noise static key; end-to-end keys). Both are built from raw 32-byte
 * private keys, so entropy (seeded in the simulator) drives them.
 *
 * NodeId derivation (when the operator gives no --node-id):
 *
 *   digest = SHA-256("skein node id v1" || Ed25519 public key)     (32 bytes)
 *   NodeId = the first of digest[0..4), digest[4..8), … read as a big-endian u32 that is not 0;
 *            1 if all eight are 0 (probability 2^-256).
 *
 * So a derived NodeId is stable for a key, never 0, and anyone can check it. How a NodeId is bound
 * to a key — derived, vouched for by the network CA, or merely claimed — is `bindNodeId`.
 */
import type { Entropy } from "../core/entropy.js";
import { type NodeId, isNodeId } from "../core/node-id.js";
import {
  type Certificate,
  type CertificateErrorCode,
  type FileErrorCode,
  CERTIFICATE_MAX_BYTES,
  hexField,
  parseTypedJson,
  verifyCertificate,
} from "./certificate.js";
import {
  KEY_BYTES,
  type KeyPair,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  concatBytes,
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
  isEd25519PublicKey,
  parseHex,
  sha256,
  toHex,
  utf8,
  x25519KeyPair,
} from "./primitives.js";
import { type Result, fail, ok } from "./result.js";

export interface NodeIdentity {
  /** Ed25519: signs identity proofs and records. */
  readonly signing: KeyPair;
  /** X25519: the Noise static key and the end-to-end key. */
  readonly dh: KeyPair;
  /** The NodeId derived from `signing.publicKey`. */
  readonly derivedNodeId: NodeId;
}

const NODE_ID_LABEL = utf8.encode("skein node id v1");

export function deriveNodeId(signingPublicKey: Uint8Array): NodeId {
  const digest = sha256(NODE_ID_LABEL, signingPublicKey);
  const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
  for (let offset = 0; offset < digest.byteLength; offset += 4) {
    const candidate = view.getUint32(offset);
    if (candidate !== 0) return candidate;
  }
  return 1;
}

export function identityFromPrivateKeys(signingPrivateKey: Uint8Array, dhPrivateKey: Uint8Array): NodeIdentity {
  const signing = ed25519KeyPair(signingPrivateKey);
  return { signing, dh: x25519KeyPair(dhPrivateKey), derivedNodeId: deriveNodeId(signing.publicKey) };
}

export function generateIdentity(entropy: Entropy): NodeIdentity {
  return identityFromPrivateKeys(entropy.randomBytes(KEY_BYTES), entropy.randomBytes(KEY_BYTES));
}

// ─── NodeId binding ──────────────────────────────────────────────────────────────────────────────

/** What makes a peer's NodeId its own. */
export type NodeIdBinding =
  /** NodeId = deriveNodeId(its Ed25519 key): nobody else can claim it without that key. */
  | "derived"
  /** The network CA vouched for it in a certificate. */
  | "certificate"
  /** Chosen by the operator (--node-id) in a network without a CA: first come, first served. */
  | "claimed";

export interface TrustPolicy {
  /** The network CA: when set, every peer must present a valid certificate from it. */
  caPublicKey?: Uint8Array | undefined;
  /** Without a CA: refuse NodeIds that are not derived from the peer's key (no `claimed`). */
  requireDerivedNodeIds?: boolean | undefined;
}

export type BindingErrorCode = `certificate_${CertificateErrorCode}` | "certificate_missing" | "node_id_not_derived";

export interface Binding {
  binding: NodeIdBinding;
  certificate: Certificate | undefined;
}

/**
 * Decides whether `nodeId` may belong to the holder of `signingKey`, who presented `certificate`
 * (or none), at wall-clock `nowMs`. With a CA, the certificate is required and decides; without
 * one, a certificate is ignored (nobody to check it against) and the NodeId is derived or claimed.
 */
export function bindNodeId(nodeId: NodeId, signingKey: Uint8Array, certificate: Uint8Array | undefined, trust: TrustPolicy, nowMs: number): Result<Binding, BindingErrorCode> {
  if (trust.caPublicKey !== undefined) {
    if (certificate === undefined || certificate.byteLength === 0) {
      return fail("certificate_missing", `node ${nodeId} presented no certificate, and this network requires one from its CA (--cert)`);
    }
    const verified = verifyCertificate(certificate, trust.caPublicKey, nowMs, { nodeId, publicKey: signingKey });
    if (!verified.ok) return fail(`certificate_${verified.code}`, verified.error);
    return ok({ binding: "certificate", certificate: verified.value });
  }
  if (nodeId === deriveNodeId(signingKey)) return ok({ binding: "derived", certificate: undefined });
  if (trust.requireDerivedNodeIds === true) {
    return fail("node_id_not_derived", `node ${nodeId} is not the NodeId derived from its key (${deriveNodeId(signingKey)}), and this node accepts derived NodeIds only`);
  }
  return ok({ binding: "claimed", certificate: undefined });
}

/** A peer whose keys and NodeId have been checked. */
export interface VerifiedIdentity {
  nodeId: NodeId;
  /** Ed25519 public key. */
  signingKey: Uint8Array;
  /** X25519 public key (Noise static). */
  staticKey: Uint8Array;
  binding: NodeIdBinding;
  certificate: Certificate | undefined;
}

// ─── Identity records (key directory for end-to-end protection) ─────────────────────────────────
//
// A self-signed statement "node N has Ed25519 key A and X25519 key B", optionally with its
// certificate, that any node can pass along (routing announcements, a DHT) and anyone can check:
//
//   0   u8    version = 1
//   1   u32   NodeId
//   5   32    Ed25519 public key
//   37  32    X25519 public key
//   69  u64   issued at, wall-clock ms since the Unix epoch (newer replaces older)
//   77  u16   certificate length C (0 = none)
//   79  C     certificate
//   …   64    Ed25519 signature over "skein identity record v1" || 0x00 || all bytes above

const RECORD_VERSION = 1;
const RECORD_FIXED_BYTES = 79;
const RECORD_CONTEXT = utf8.encode("skein identity record v1\0");
export const IDENTITY_RECORD_MAX_BYTES = RECORD_FIXED_BYTES + CERTIFICATE_MAX_BYTES + SIGNATURE_BYTES;

export interface IdentityRecord {
  nodeId: NodeId;
  signingKey: Uint8Array;
  staticKey: Uint8Array;
  issuedAt: number;
  certificate: Uint8Array | undefined;
  signature: Uint8Array;
  bytes: Uint8Array;
}

export function encodeIdentityRecord(identity: NodeIdentity, nodeId: NodeId, issuedAtMs: number, certificate?: Uint8Array): Uint8Array {
  if (!isNodeId(nodeId)) throw new RangeError(`NodeId ${nodeId} is not in 1..4294967295`);
  if (!Number.isSafeInteger(issuedAtMs) || issuedAtMs < 0) throw new RangeError(`issuedAt ${issuedAtMs} is not ms since 1970`);
  const cert = certificate ?? new Uint8Array(0);
  if (cert.byteLength > CERTIFICATE_MAX_BYTES) throw new RangeError("certificate too large");
  const body = new Uint8Array(RECORD_FIXED_BYTES + cert.byteLength);
  const view = new DataView(body.buffer);
  body[0] = RECORD_VERSION;
  view.setUint32(1, nodeId);
  body.set(identity.signing.publicKey, 5);
  body.set(identity.dh.publicKey, 37);
  view.setUint32(69, Math.floor(issuedAtMs / 0x1_0000_0000));
  view.setUint32(73, issuedAtMs >>> 0);
  view.setUint16(77, cert.byteLength);
  body.set(cert, RECORD_FIXED_BYTES);
  return concatBytes(body, ed25519Sign(identity.signing, concatBytes(RECORD_CONTEXT, body)));
}

export function decodeIdentityRecord(bytes: Uint8Array): Result<IdentityRecord, "malformed"> {
  if (bytes.byteLength < RECORD_FIXED_BYTES + SIGNATURE_BYTES || bytes.byteLength > IDENTITY_RECORD_MAX_BYTES) {
    return fail("malformed", `identity record of ${bytes.byteLength} bytes (expected ${RECORD_FIXED_BYTES + SIGNATURE_BYTES}..${IDENTITY_RECORD_MAX_BYTES})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== RECORD_VERSION) return fail("malformed", `identity record version ${bytes[0]}`);
  const nodeId = view.getUint32(1);
  if (!isNodeId(nodeId)) return fail("malformed", "identity record NodeId is 0");
  const high = view.getUint32(69);
  if (high > 0x1f_ffff) return fail("malformed", "identity record time is out of range");
  const certLength = view.getUint16(77);
  if (RECORD_FIXED_BYTES + certLength + SIGNATURE_BYTES !== bytes.byteLength) return fail("malformed", "identity record length does not match its certificate length");
  const copy = Uint8Array.from(bytes);
  return ok({
    nodeId,
    signingKey: copy.subarray(5, 37),
    staticKey: copy.subarray(37, 69),
    issuedAt: high * 0x1_0000_0000 + view.getUint32(73),
    certificate: certLength === 0 ? undefined : copy.subarray(RECORD_FIXED_BYTES, RECORD_FIXED_BYTES + certLength),
    signature: copy.subarray(RECORD_FIXED_BYTES + certLength),
    bytes: copy,
  });
}

export type IdentityRecordErrorCode = "malformed" | "bad_signature" | BindingErrorCode;

/** Decodes and checks a record: its signature, then the NodeId binding under `trust`. */
export function verifyIdentityRecord(bytes: Uint8Array, trust: TrustPolicy, nowMs: number): Result<VerifiedIdentity & { issuedAt: number }, IdentityRecordErrorCode> {
  const decoded = decodeIdentityRecord(bytes);
  if (!decoded.ok) return decoded;
  const record = decoded.value;
  const body = record.bytes.subarray(0, record.bytes.byteLength - SIGNATURE_BYTES);
  if (!ed25519Verify(record.signingKey, concatBytes(RECORD_CONTEXT, body), record.signature)) {
    return fail("bad_signature", `identity record for node ${record.nodeId} has an invalid signature`);
  }
  const bound = bindNodeId(record.nodeId, record.signingKey, record.certificate, trust, nowMs);
  if (!bound.ok) return bound;
  return ok({
    nodeId: record.nodeId,
    signingKey: record.signingKey,
    staticKey: record.staticKey,
    binding: bound.value.binding,
    certificate: bound.value.certificate,
    issuedAt: record.issuedAt,
  });
}

// ─── Key files ───────────────────────────────────────────────────────────────────────────────────
//
//   node key     {"type":"skein-node-key","version":1,"ed25519_private":"<64 hex>","x25519_private":"<64 hex>",
//                 "ed25519_public":"<64 hex>","x25519_public":"<64 hex>","derived_node_id":N}   (mode 0600)
//   public key   {"type":"skein-node-public-key","version":1,"ed25519_public":…,"x25519_public":…,"derived_node_id":N}
//
// The public fields of a key file are checked against its private keys when read, so an edited
// file is refused instead of silently meaning another identity.

export const NODE_KEY_FILE_TYPE = "skein-node-key";
export const NODE_PUBLIC_FILE_TYPE = "skein-node-public-key";

export function encodeKeyFile(identity: NodeIdentity): string {
  return `${JSON.stringify(
    {
      type: NODE_KEY_FILE_TYPE,
      version: 1,
      ed25519_private: toHex(identity.signing.privateKey),
      x25519_private: toHex(identity.dh.privateKey),
      ed25519_public: toHex(identity.signing.publicKey),
      x25519_public: toHex(identity.dh.publicKey),
      derived_node_id: identity.derivedNodeId,
    },
    null,
    2,
  )}\n`;
}

export function decodeKeyFile(text: string): Result<NodeIdentity, FileErrorCode> {
  const object = parseTypedJson(text, [NODE_KEY_FILE_TYPE], "a node key file (skein keygen)");
  if (!object.ok) return object;
  const signing = hexField(object.value, "ed25519_private", KEY_BYTES);
  const dh = hexField(object.value, "x25519_private", KEY_BYTES);
  if (signing === undefined || dh === undefined) return fail("malformed", 'node key file: "ed25519_private" and "x25519_private" must be 64 hex characters each');
  const identity = identityFromPrivateKeys(signing, dh);
  const checks: [string, string][] = [
    ["ed25519_public", toHex(identity.signing.publicKey)],
    ["x25519_public", toHex(identity.dh.publicKey)],
  ];
  for (const [field, actual] of checks) {
    const declared = object.value[field];
    if (declared !== undefined && (typeof declared !== "string" || declared.toLowerCase() !== actual)) {
      return fail("inconsistent", `node key file: "${field}" does not match the private key (edited or corrupted file)`);
    }
  }
  const declaredId = object.value.derived_node_id;
  if (declaredId !== undefined && declaredId !== identity.derivedNodeId) {
    return fail("inconsistent", 'node key file: "derived_node_id" does not match the key (edited or corrupted file)');
  }
  return ok(identity);
}

export function encodePublicKeyFile(identity: NodeIdentity): string {
  return `${JSON.stringify(
    {
      type: NODE_PUBLIC_FILE_TYPE,
      version: 1,
      ed25519_public: toHex(identity.signing.publicKey),
      x25519_public: toHex(identity.dh.publicKey),
      derived_node_id: identity.derivedNodeId,
    },
    null,
    2,
  )}\n`;
}

export interface PublicIdentity {
  signingKey: Uint8Array;
  staticKey: Uint8Array | undefined;
  derivedNodeId: NodeId;
}

/**
 * A node's public keys from what `skein ca sign --pubkey` may be given: a public key file, a node
 * key file (only its public half is used), or the Ed25519 public key as 64 hex characters.
 */
export function decodePublicKeyFile(text: string): Result<PublicIdentity, FileErrorCode> {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    const signingKey = parseHex(trimmed)!;
    if (!isEd25519PublicKey(signingKey)) return fail("malformed", "the 64 hex characters are not an Ed25519 public key");
    return ok({ signingKey, staticKey: undefined, derivedNodeId: deriveNodeId(signingKey) });
  }
  const object = parseTypedJson(text, [NODE_PUBLIC_FILE_TYPE, NODE_KEY_FILE_TYPE], "a node public key file (skein keygen writes FILE.pub)");
  if (!object.ok) return object;
  if (object.value.type === NODE_KEY_FILE_TYPE) {
    const identity = decodeKeyFile(text);
    if (!identity.ok) return identity;
    return ok({ signingKey: identity.value.signing.publicKey, staticKey: identity.value.dh.publicKey, derivedNodeId: identity.value.derivedNodeId });
  }
  const signingKey = hexField(object.value, "ed25519_public", PUBLIC_KEY_BYTES);
  if (signingKey === undefined || !isEd25519PublicKey(signingKey)) return fail("malformed", 'public key file: "ed25519_public" must be 64 hex characters of an Ed25519 key');
  const staticKey = object.value.x25519_public === undefined ? undefined : hexField(object.value, "x25519_public", PUBLIC_KEY_BYTES);
  if (object.value.x25519_public !== undefined && staticKey === undefined) return fail("malformed", 'public key file: "x25519_public" must be 64 hex characters');
  const derivedNodeId = deriveNodeId(signingKey);
  if (object.value.derived_node_id !== undefined && object.value.derived_node_id !== derivedNodeId) {
    return fail("inconsistent", 'public key file: "derived_node_id" does not match the key (edited or corrupted file)');
  }
  return ok({ signingKey, staticKey, derivedNodeId });
}

// ─── Network key ─────────────────────────────────────────────────────────────────────────────────
//
// 32 random bytes written as 64 hex characters and a newline. Whitespace around it is ignored
// when read; anything else is refused with a message that says what was expected.

export const NETWORK_KEY_BYTES = 32;

export function generateNetworkKey(entropy: Entropy): Uint8Array {
  return entropy.randomBytes(NETWORK_KEY_BYTES);
}

export function formatNetworkKey(key: Uint8Array): string {
  if (key.byteLength !== NETWORK_KEY_BYTES) throw new RangeError(`a network key is ${NETWORK_KEY_BYTES} bytes`);
  return `${toHex(key)}\n`;
}

export function parseNetworkKey(text: string): Result<Uint8Array, "malformed"> {
  const trimmed = text.trim();
  if (trimmed.length !== NETWORK_KEY_BYTES * 2) {
    return fail("malformed", `expected ${NETWORK_KEY_BYTES * 2} hex characters (${NETWORK_KEY_BYTES} random bytes, as skein keygen --network writes), found ${trimmed.length} characters`);
  }
  const key = parseHex(trimmed);
  if (key === undefined) return fail("malformed", `expected ${NETWORK_KEY_BYTES * 2} hex characters (0-9, a-f), found other characters`);
  return ok(key);
}

const NETWORK_ID_LABEL = utf8.encode("skein network key id v1");

/** A public name for a network key, safe to log: 8 bytes of SHA-256(label || key), hex. */
export function networkKeyId(key: Uint8Array): string {
  return toHex(sha256(NETWORK_ID_LABEL, key).subarray(0, 8));
}


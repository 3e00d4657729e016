/**
 * The only file that talks to node:crypto: SHA-256, HMAC, HKDF, ChaCha20-Poly1305, X25519 and
 * Ed25519 over raw 32-byte keys. Everything here is deterministic (no randomness, no clock) and
 * total on untrusted input: a bad public key, a failed DH or a wrong tag gives `undefined`/`false`,
 * never an exception.
 *
 * Keys are imported as JWK, not DER: on Node 20 / OpenSSL 3 a PKCS#8 DER import costs ~360 µs
 * (the OpenSSL 3 decoder framework) where the JWK import of the same key costs ~37 µs, and a
 * public key ~6 µs against ~77 µs. DER remains as the fallback should a Node version refuse the JWK.
 */
import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
} from "node:crypto";

export const KEY_BYTES = 32;
export const HASH_BYTES = 32;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 12;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const AEAD_ALGORITHM = "chacha20-poly1305";

const EMPTY = new Uint8Array(0);

// ─── Hashing ─────────────────────────────────────────────────────────────────────────────────────

export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

export function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac("sha256", key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/**
 * RFC 5869 HKDF-SHA256 (extract then expand). `length` at most 255 · 32 bytes.
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = hmacSha256(salt.byteLength === 0 ? new Uint8Array(HASH_BYTES) : salt, ikm);
  return hkdfExpand(prk, info, length);
}

/** RFC 5869 HKDF-Expand with SHA-256. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * HASH_BYTES) throw new RangeError(`HKDF output of ${length} bytes is over the limit`);
  const out = new Uint8Array(length);
  let previous: Uint8Array = EMPTY;
  for (let offset = 0, counter = 1; offset < length; counter += 1) {
    previous = hmacSha256(prk, previous, info, new Uint8Array([counter]));
    out.set(previous.subarray(0, Math.min(HASH_BYTES, length - offset)), offset);
    offset += HASH_BYTES;
  }
  return out;
}

// ─── AEAD: ChaCha20-Poly1305 (RFC 8439) ──────────────────────────────────────────────────────────

/** Encrypts and authenticates: returns ciphertext || 16-byte tag (one new array). */
export function aeadSeal(key: Uint8Array | KeyObject, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv(AEAD_ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.byteLength });
  const out = new Uint8Array(plaintext.byteLength + TAG_BYTES);
  if (plaintext.byteLength > 0) out.set(cipher.update(plaintext), 0);
  cipher.final();
  out.set(cipher.getAuthTag(), plaintext.byteLength);
  return out;
}

/** Checks and decrypts ciphertext || tag; undefined when anything is wrong (never throws). */
export function aeadOpen(key: Uint8Array | KeyObject, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.byteLength < TAG_BYTES) return undefined;
  const length = sealed.byteLength - TAG_BYTES;
  try {
    const decipher = createDecipheriv(AEAD_ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad, { plaintextLength: length });
    decipher.setAuthTag(sealed.subarray(length));
    const plaintext = length > 0 ? decipher.update(sealed.subarray(0, length)) : EMPTY;
    decipher.final();
    return plaintext;
  } catch {
    return undefined;
  }
}

// ─── Keys from raw bytes ─────────────────────────────────────────────────────────────────────────

type Curve = "X25519" | "Ed25519";

const PKCS8_PREFIX: Record<Curve, Uint8Array> = {
  X25519: fromHex("302e020100300506032b656e04220420"),
  Ed25519: fromHex("302e020100300506032b657004220420"),
};
const SPKI_PREFIX: Record<Curve, Uint8Array> = {
  X25519: fromHex("302a300506032b656e032100"),
  Ed25519: fromHex("302a300506032b6570032100"),
};

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

function importPrivate(curve: Curve, raw: Uint8Array): KeyObject {
  if (raw.byteLength !== KEY_BYTES) throw new RangeError(`${curve} private key must be ${KEY_BYTES} bytes, got ${raw.byteLength}`);
  try {
    // `x` is recomputed from `d` by Node; an empty string satisfies the JWK shape check.
    return createPrivateKey({ key: { kty: "OKP", crv: curve, d: base64url(raw), x: "" }, format: "jwk" });
  } catch {
    return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[curve], raw]), format: "der", type: "pkcs8" });
  }
}

function publicOf(privateKey: KeyObject): Uint8Array {
  const jwk = privateKey.export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.x ?? "", "base64url"));
}

/** Imports a raw public key; undefined when the bytes are not a valid key of that curve. */
function importPublic(curve: Curve, raw: Uint8Array): KeyObject | undefined {
  if (raw.byteLength !== PUBLIC_KEY_BYTES) return undefined;
  try {
    return createPublicKey({ key: { kty: "OKP", crv: curve, x: base64url(raw) }, format: "jwk" });
  } catch {
    try {
      return createPublicKey({ key: Buffer.concat([SPKI_PREFIX[curve], raw]), format: "der", type: "spki" });
    } catch {
      return undefined;
    }
  }
}

export interface KeyPair {
  /** The raw 32-byte private key (X25519 scalar or Ed25519 seed). Secret. */
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** node:crypto's handle on the private key. */
  readonly keyObject: KeyObject;
}

/** An X25519 key pair from a raw 32-byte private key (any 32 bytes: X25519 clamps). */
export function x25519KeyPair(privateKey: Uint8Array): KeyPair {
  const keyObject = importPrivate("X25519", privateKey);
  return { privateKey: Uint8Array.from(privateKey), publicKey: publicOf(keyObject), keyObject };
}

/** An Ed25519 key pair from a raw 32-byte seed (RFC 8032 private key). */
export function ed25519KeyPair(privateKey: Uint8Array): KeyPair {
  const keyObject = importPrivate("Ed25519", privateKey);
  return { privateKey: Uint8Array.from(privateKey), publicKey: publicOf(keyObject), keyObject };
}

/**
 * X25519(private, remote public). Undefined when the remote key is malformed or of low order
 * (the shared secret would be all zeros: OpenSSL refuses it), so a peer cannot force a known key.
 */
export function x25519(own: KeyPair, remotePublic: Uint8Array): Uint8Array | undefined {
  const publicKey = importPublic("X25519", remotePublic);
  if (publicKey === undefined) return undefined;
  try {
    const shared = diffieHellman({ privateKey: own.keyObject, publicKey });
    return isAllZero(shared) ? undefined : shared;
  } catch {
    return undefined;
  }
}

export function ed25519Sign(own: KeyPair, message: Uint8Array): Uint8Array {
  return nodeSign(null, message, own.keyObject);
}

/** Total: false for a malformed key or signature as for a wrong one. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.byteLength !== SIGNATURE_BYTES) return false;
  const key = importPublic("Ed25519", publicKey);
  if (key === undefined) return false;
  try {
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** True when `raw` imports as an Ed25519 public key. */
export function isEd25519PublicKey(raw: Uint8Array): boolean {
  return importPublic("Ed25519", raw) !== undefined;
}

// ─── Bytes ───────────────────────────────────────────────────────────────────────────────────────

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let index = 0; index < a.byteLength; index += 1) if (a[index] !== b[index]) return false;
  return true;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.byteLength, b.byteLength);
  for (let index = 0; index < length; index += 1) {
    const difference = a[index]! - b[index]!;
    if (difference !== 0) return difference;
  }
  return a.byteLength - b.byteLength;
}

function isAllZero(bytes: Uint8Array): boolean {
  let accumulator = 0;
  for (let index = 0; index < bytes.byteLength; index += 1) accumulator |= bytes[index]!;
  return accumulator === 0;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Strict: undefined unless `text` is an even number of hex digits. */
export function parseHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** For constants in source; throws on a typo (a programming error). */
export function fromHex(text: string): Uint8Array {
  const bytes = parseHex(text);
  if (bytes === undefined) throw new RangeError(`not hex: ${text}`);
  return bytes;
}

export const utf8 = new TextEncoder();

/** Best-effort wipe of secret bytes we own (JavaScript gives no guarantee about copies). */
export function wipe(bytes: Uint8Array | undefined): void {
  bytes?.fill(0);
}

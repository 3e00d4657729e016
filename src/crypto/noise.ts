/**
 * The Noise Protocol Framework (revision 34, https://noiseprotocol.org/noise.html) for the two
 * protocols skein uses, built on node:crypto:
 *
 *   Noise_XX_25519_ChaChaPoly_SHA256        open networks
 *   Noise_XXpsk3_25519_ChaChaPoly_SHA256    networks with a network key (psk modifier, §9)
 *
 *   XX:  -> e                XXpsk3:  -> e
 *        <- e, ee, s, es              <- e, ee, s, es
 *        -> s, se                     -> s, se, psk
 *
 * This file is the spec, nothing more: CipherState, SymmetricState and HandshakeState exactly as
 * §5 defines them (checked against the cacophony test vectors in test/crypto/noise.test.ts).
 * What skein puts in the payloads, how messages travel and what is verified lives in
 * handshake.ts.
 *
 * Spec functions, with HASH = SHA-256, HASHLEN = 32, DH = X25519, cipher = ChaCha20-Poly1305:
 *   HKDF(ck, ikm, n): temp = HMAC(ck, ikm); out1 = HMAC(temp, 0x01);
 *                     out2 = HMAC(temp, out1 || 0x02); out3 = HMAC(temp, out2 || 0x03)
 *   MixKey(ikm):        ck, k = HKDF(ck, ikm, 2); n = 0
 *   MixHash(data):      h = HASH(h || data)
 *   MixKeyAndHash(ikm): ck, temp_h, k = HKDF(ck, ikm, 3); MixHash(temp_h); n = 0
 *   EncryptAndHash(p):  c = ENCRYPT(k, n++, h, p) (or p when k is empty); MixHash(c)
 *   nonce:              4 zero bytes || n as little-endian u64
 *   Split():            k1, k2 = HKDF(ck, "", 2): k1 initiator→responder, k2 responder→initiator
 * psk modifier: every `e` token also does MixKey(e.public_key) after MixHash; `psk` does
 * MixKeyAndHash(psk).
 */
import type { Entropy } from "../core/entropy.js";
import { type Failure, type Result, fail, ok } from "./result.js";
import {
  HASH_BYTES,
  KEY_BYTES,
  type KeyPair,
  NONCE_BYTES,
  PUBLIC_KEY_BYTES,
  TAG_BYTES,
  aeadOpen,
  aeadSeal,
  hmacSha256,
  sha256,
  utf8,
  x25519,
  x25519KeyPair,
} from "./primitives.js";

export type NoisePattern = "XX" | "XXpsk3";

export const NOISE_PROTOCOL_NAMES: Record<NoisePattern, string> = {
  XX: "Noise_XX_25519_ChaChaPoly_SHA256",
  XXpsk3: "Noise_XXpsk3_25519_ChaChaPoly_SHA256",
};

type Token = "e" | "s" | "ee" | "es" | "se" | "psk";

const MESSAGE_PATTERNS: Record<NoisePattern, readonly (readonly Token[])[]> = {
  XX: [["e"], ["e", "ee", "s", "es"], ["s", "se"]],
  XXpsk3: [["e"], ["e", "ee", "s", "es"], ["s", "se", "psk"]],
};

/** Noise caps every message at 65535 bytes (§3). */
export const NOISE_MAX_MESSAGE_BYTES = 65_535;
/** Nonce 2^64 − 1 is reserved; JavaScript numbers are exact to 2^53, far beyond any handshake. */
const MAX_NONCE = Number.MAX_SAFE_INTEGER;

export type NoiseErrorCode = "malformed" | "decrypt" | "bad_key" | "state";

const EMPTY = new Uint8Array(0);

/** Noise's HKDF (§4.3): 2 or 3 outputs of HASHLEN bytes. */
export function noiseHkdf(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hmacSha256(chainingKey, inputKeyMaterial);
  const output1 = hmacSha256(tempKey, new Uint8Array([1]));
  const output2 = hmacSha256(tempKey, output1, new Uint8Array([2]));
  if (outputs === 2) return [output1, output2];
  const output3 = hmacSha256(tempKey, output2, new Uint8Array([3]));
  return [output1, output2, output3];
}

/** The 12-byte ChaChaPoly nonce of §12.3: 32 bits of zeros, then n as a little-endian u64. */
export function noiseNonce(n: number): Uint8Array {
  const nonce = new Uint8Array(NONCE_BYTES);
  const view = new DataView(nonce.buffer);
  view.setUint32(4, n >>> 0, true);
  view.setUint32(8, Math.floor(n / 0x1_0000_0000), true);
  return nonce;
}

/** §5.1: a key (or none) and a nonce counter. */
export class CipherState {
  private key: Uint8Array | undefined;
  private nonce = 0;

  constructor(key?: Uint8Array) {
    this.key = key;
  }

  initializeKey(key: Uint8Array | undefined): void {
    this.key = key;
    this.nonce = 0;
  }

  hasKey(): boolean {
    return this.key !== undefined;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.key === undefined) return plaintext;
    if (this.nonce >= MAX_NONCE) throw new RangeError("Noise nonce exhausted");
    const out = aeadSeal(this.key, noiseNonce(this.nonce), ad, plaintext);
    this.nonce += 1;
    return out;
  }

  /** Undefined when authentication fails (the nonce does not advance then, as §5.1 says). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined {
    if (this.key === undefined) return ciphertext;
    if (this.nonce >= MAX_NONCE) return undefined;
    const plaintext = aeadOpen(this.key, noiseNonce(this.nonce), ad, ciphertext);
    if (plaintext !== undefined) this.nonce += 1;
    return plaintext;
  }
}

/** §5.2: chaining key, handshake hash and the current cipher. */
export class SymmetricState {
  private chainingKey: Uint8Array;
  private hash: Uint8Array;
  readonly cipher = new CipherState();

  constructor(protocolName: string) {
    const name = utf8.encode(protocolName);
    if (name.byteLength <= HASH_BYTES) {
      this.hash = new Uint8Array(HASH_BYTES);
      this.hash.set(name);
    } else {
      this.hash = sha256(name);
    }
    this.chainingKey = this.hash;
  }

  get handshakeHash(): Uint8Array {
    return this.hash;
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempKey] = noiseHkdf(this.chainingKey, inputKeyMaterial, 2);
    this.chainingKey = chainingKey!;
    this.cipher.initializeKey(tempKey!);
  }

  mixHash(data: Uint8Array): void {
    this.hash = sha256(this.hash, data);
  }

  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempHash, tempKey] = noiseHkdf(this.chainingKey, inputKeyMaterial, 3);
    this.chainingKey = chainingKey!;
    this.mixHash(tempHash!);
    this.cipher.initializeKey(tempKey!);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher.encryptWithAd(this.hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array | undefined {
    const plaintext = this.cipher.decryptWithAd(this.hash, ciphertext);
    if (plaintext === undefined) return undefined;
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** The two transport keys: [initiator → responder, responder → initiator]. */
  split(): [Uint8Array, Uint8Array] {
    const [key1, key2] = noiseHkdf(this.chainingKey, EMPTY, 2);
    return [key1!, key2!];
  }
}

export interface NoiseHandshakeOptions {
  pattern: NoisePattern;
  initiator: boolean;
  prologue: Uint8Array;
  /** The local static key pair. */
  staticKey: KeyPair;
  /** The pre-shared key (32 bytes), required by XXpsk3 and refused by XX. */
  psk?: Uint8Array | undefined;
  /** Source of the ephemeral key. */
  entropy: Entropy;
  /** Fixed ephemeral private key: for test vectors only. */
  ephemeralPrivateKey?: Uint8Array | undefined;
}

export interface NoiseRead {
  payload: Uint8Array;
  /** h just before the payload was decrypted: what the sender could sign in that payload. */
  hashBeforePayload: Uint8Array;
}

export interface NoiseTransportKeys {
  /** Initiator → responder. */
  initiatorToResponder: Uint8Array;
  /** Responder → initiator. */
  responderToInitiator: Uint8Array;
  handshakeHash: Uint8Array;
}

/**
 * §5.3 for XX and XXpsk3. `writeMessage` and `readMessage` alternate as the pattern says; a call
 * out of turn is a programming error for writes (throws) and a `state` failure for reads.
 */
export class NoiseHandshake {
  readonly pattern: NoisePattern;
  readonly initiator: boolean;
  private readonly symmetric: SymmetricState;
  private readonly staticKey: KeyPair;
  private readonly psk: Uint8Array | undefined;
  private readonly entropy: Entropy;
  private readonly fixedEphemeral: Uint8Array | undefined;
  private ephemeral: KeyPair | undefined;
  private remoteEphemeralKey: Uint8Array | undefined;
  private remoteStaticKey: Uint8Array | undefined;
  private messageIndex = 0;
  private failed = false;

  constructor(options: NoiseHandshakeOptions) {
    this.pattern = options.pattern;
    this.initiator = options.initiator;
    this.staticKey = options.staticKey;
    this.entropy = options.entropy;
    this.fixedEphemeral = options.ephemeralPrivateKey;
    const wantsPsk = options.pattern === "XXpsk3";
    if (wantsPsk !== (options.psk !== undefined)) throw new RangeError(`${options.pattern} ${wantsPsk ? "needs" : "takes no"} pre-shared key`);
    if (options.psk !== undefined && options.psk.byteLength !== KEY_BYTES) throw new RangeError(`a Noise psk is ${KEY_BYTES} bytes`);
    this.psk = options.psk;
    this.symmetric = new SymmetricState(NOISE_PROTOCOL_NAMES[options.pattern]);
    this.symmetric.mixHash(options.prologue);
    // XX has no pre-messages.
  }

  get messageCount(): number {
    return MESSAGE_PATTERNS[this.pattern].length;
  }

  /** Whose turn: true when the next message is ours to write. */
  get isMyTurn(): boolean {
    return (this.messageIndex % 2 === 0) === this.initiator;
  }

  get isComplete(): boolean {
    return this.messageIndex >= this.messageCount;
  }

  get handshakeHash(): Uint8Array {
    return this.symmetric.handshakeHash;
  }

  get remoteStatic(): Uint8Array | undefined {
    return this.remoteStaticKey;
  }

  get remoteEphemeral(): Uint8Array | undefined {
    return this.remoteEphemeralKey;
  }

  /** Our ephemeral public key, once the first `e` token ran. */
  get localEphemeral(): Uint8Array | undefined {
    return this.ephemeral?.publicKey;
  }

  /**
   * Writes the next message. `payload` may be a function of the handshake hash at the moment the
   * payload is encrypted (so that it can carry a signature over the transcript).
   */
  writeMessage(payload: Uint8Array | ((hashBeforePayload: Uint8Array) => Uint8Array)): Result<Uint8Array, NoiseErrorCode> {
    if (this.failed || this.isComplete || !this.isMyTurn) throw new Error("Noise writeMessage out of turn");
    const tokens = MESSAGE_PATTERNS[this.pattern][this.messageIndex]!;
    const parts: Uint8Array[] = [];
    for (const token of tokens) {
      switch (token) {
        case "e": {
          this.ephemeral = x25519KeyPair(this.fixedEphemeral ?? this.entropy.randomBytes(KEY_BYTES));
          parts.push(this.ephemeral.publicKey);
          this.symmetric.mixHash(this.ephemeral.publicKey);
          if (this.psk !== undefined) this.symmetric.mixKey(this.ephemeral.publicKey);
          break;
        }
        case "s":
          parts.push(this.symmetric.encryptAndHash(this.staticKey.publicKey));
          break;
        case "psk":
          this.symmetric.mixKeyAndHash(this.psk!);
          break;
        default: {
          const failure = this.mixDh(token);
          if (failure !== undefined) {
            this.failed = true;
            return failure;
          }
        }
      }
    }
    const body = typeof payload === "function" ? payload(this.symmetric.handshakeHash) : payload;
    parts.push(this.symmetric.encryptAndHash(body));
    this.messageIndex += 1;
    let length = 0;
    for (const part of parts) length += part.byteLength;
    if (length > NOISE_MAX_MESSAGE_BYTES) throw new RangeError(`Noise message of ${length} bytes exceeds ${NOISE_MAX_MESSAGE_BYTES}`);
    const message = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      message.set(part, offset);
      offset += part.byteLength;
    }
    return ok(message);
  }

  /** Reads the peer's next message. Any failure leaves the handshake failed for good. */
  readMessage(message: Uint8Array): Result<NoiseRead, NoiseErrorCode> {
    if (this.failed) return fail("state", "the handshake already failed");
    if (this.isComplete || this.isMyTurn) return fail("state", `message ${this.messageIndex + 1} is ours to send, not to receive`);
    const result = this.readTokens(message);
    if (!result.ok) this.failed = true;
    else this.messageIndex += 1;
    return result;
  }

  private readTokens(message: Uint8Array): Result<NoiseRead, NoiseErrorCode> {
    if (message.byteLength > NOISE_MAX_MESSAGE_BYTES) return fail("malformed", `message of ${message.byteLength} bytes exceeds ${NOISE_MAX_MESSAGE_BYTES}`);
    const tokens = MESSAGE_PATTERNS[this.pattern][this.messageIndex]!;
    let offset = 0;
    for (const token of tokens) {
      switch (token) {
        case "e": {
          if (message.byteLength - offset < PUBLIC_KEY_BYTES) return fail("malformed", "message too short for an ephemeral key");
          const remote = message.slice(offset, offset + PUBLIC_KEY_BYTES);
          offset += PUBLIC_KEY_BYTES;
          this.remoteEphemeralKey = remote;
          this.symmetric.mixHash(remote);
          if (this.psk !== undefined) this.symmetric.mixKey(remote);
          break;
        }
        case "s": {
          const size = PUBLIC_KEY_BYTES + (this.symmetric.cipher.hasKey() ? TAG_BYTES : 0);
          if (message.byteLength - offset < size) return fail("malformed", "message too short for a static key");
          const remote = this.symmetric.decryptAndHash(message.subarray(offset, offset + size));
          if (remote === undefined) return fail("decrypt", "the peer's static key does not decrypt");
          offset += size;
          this.remoteStaticKey = Uint8Array.from(remote);
          break;
        }
        case "psk":
          this.symmetric.mixKeyAndHash(this.psk!);
          break;
        default: {
          const failure = this.mixDh(token);
          if (failure !== undefined) return failure;
        }
      }
    }
    const hashBeforePayload = this.symmetric.handshakeHash;
    const rest = message.subarray(offset);
    if (this.symmetric.cipher.hasKey() && rest.byteLength < TAG_BYTES) return fail("malformed", "message too short for its payload tag");
    const payload = this.symmetric.decryptAndHash(rest);
    if (payload === undefined) return fail("decrypt", "the payload does not decrypt");
    return ok({ payload, hashBeforePayload });
  }

  private mixDh(token: "ee" | "es" | "se"): Failure<NoiseErrorCode> | undefined {
    // es: initiator's ephemeral with responder's static; se: initiator's static with responder's ephemeral.
    const localIsEphemeral = token === "ee" || (token === "es") === this.initiator;
    const remoteIsEphemeral = token === "ee" || (token === "se") === this.initiator;
    const local = localIsEphemeral ? this.ephemeral : this.staticKey;
    const remote = remoteIsEphemeral ? this.remoteEphemeralKey : this.remoteStaticKey;
    if (local === undefined || remote === undefined) return fail("state", `DH ${token} before its keys`);
    const shared = x25519(local, remote);
    if (shared === undefined) return fail("bad_key", `the peer's ${remoteIsEphemeral ? "ephemeral" : "static"} key is invalid (DH ${token} failed)`);
    this.symmetric.mixKey(shared);
    return undefined;
  }

  /** §5.2 Split, once the last message is written or read. */
  split(): NoiseTransportKeys {
    if (!this.isComplete || this.failed) throw new Error("Noise split before the handshake completed");
    const [initiatorToResponder, responderToInitiator] = this.symmetric.split();
    return { initiatorToResponder, responderToInitiator, handshakeHash: this.symmetric.handshakeHash };
  }
}

/** node:crypto wrappers against the RFC test vectors, and the seeded entropy. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededEntropy, systemEntropy } from "../../src/core/entropy.js";
import {
  aeadOpen,
  aeadSeal,
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
  fromHex,
  hkdfSha256,
  parseHex,
  toHex,
  x25519,
  x25519KeyPair,
} from "../../src/crypto/primitives.js";

describe("primitives", () => {
  it("X25519 (RFC 7748 §6.1): public keys from raw private keys, and the shared secret", () => {
    const alice = x25519KeyPair(fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    const bob = x25519KeyPair(fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    assert.equal(toHex(alice.publicKey), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    assert.equal(toHex(bob.publicKey), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    assert.equal(toHex(x25519(alice, bob.publicKey)!), shared);
    assert.equal(toHex(x25519(bob, alice.publicKey)!), shared);
    // Low-order points and bad lengths give undefined, never an exception.
    assert.equal(x25519(alice, new Uint8Array(32)), undefined);
    assert.equal(x25519(alice, new Uint8Array(31)), undefined);
  });

  it("Ed25519 (RFC 8032 §7.1 test 1): key from the seed, deterministic signature, total verify", () => {
    const key = ed25519KeyPair(fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
    assert.equal(toHex(key.publicKey), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const signature = ed25519Sign(key, new Uint8Array(0));
    assert.equal(
      toHex(signature),
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    assert.equal(ed25519Verify(key.publicKey, new Uint8Array(0), signature), true);
    assert.equal(ed25519Verify(key.publicKey, new Uint8Array(1), signature), false);
    assert.equal(ed25519Verify(key.publicKey, new Uint8Array(0), signature.subarray(1)), false);
    assert.equal(ed25519Verify(new Uint8Array(32).fill(0xff), new Uint8Array(0), signature), false);
    assert.equal(ed25519Verify(new Uint8Array(5), new Uint8Array(0), signature), false);
  });

  it("ChaCha20-Poly1305 (RFC 8439 §2.8.2), and a wrong tag, AAD or key is refused", () => {
    const key = Uint8Array.from({ length: 32 }, (_, index) => 0x80 + index);
    const nonce = fromHex("070000004041424344454647");
    const aad = fromHex("50515253c0c1c2c3c4c5c6c7");
    const plaintext = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const sealed = aeadSeal(key, nonce, aad, plaintext);
    assert.equal(
      toHex(sealed),
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
        "1ae10b594f09e26a7e902ecbd0600691",
    );
    assert.equal(toHex(aeadOpen(key, nonce, aad, sealed)!), toHex(plaintext));
    assert.equal(aeadOpen(key, nonce, new Uint8Array(0), sealed), undefined);
    assert.equal(aeadOpen(new Uint8Array(32), nonce, aad, sealed), undefined);
    assert.equal(aeadOpen(key, nonce, aad, sealed.subarray(0, 10)), undefined);
  });

  it("HKDF-SHA256 (RFC 5869 test case 1)", () => {
    const okm = hkdfSha256(new Uint8Array(22).fill(0x0b), fromHex("000102030405060708090a0b0c"), fromHex("f0f1f2f3f4f5f6f7f8f9"), 42);
    assert.equal(toHex(okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  });

  it("hex parsing is strict", () => {
    assert.deepEqual(parseHex("00ff"), new Uint8Array([0, 255]));
    assert.equal(parseHex("0"), undefined);
    assert.equal(parseHex("zz"), undefined);
  });

  it("seeded entropy: the same seed gives the same bytes, however they are requested; forks are independent", () => {
    const a = new SeededEntropy(42);
    const b = new SeededEntropy(42);
    const whole = a.randomBytes(100);
    const pieces = new Uint8Array([...b.randomBytes(7), ...b.randomBytes(33), ...b.randomBytes(60)]);
    assert.deepEqual(pieces, whole);
    assert.notDeepEqual(new SeededEntropy(43).randomBytes(32), new SeededEntropy(42).randomBytes(32));
    assert.notDeepEqual(new SeededEntropy(42).fork().randomBytes(32), new SeededEntropy(42).randomBytes(32));
    assert.equal(systemEntropy.randomBytes(32).byteLength, 32);
    assert.notDeepEqual(systemEntropy.randomBytes(32), systemEntropy.randomBytes(32));
  });
});

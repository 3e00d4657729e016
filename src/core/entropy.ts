/**
 * Randomness for key material, passed in like `Rng` so that the protocol code stays pure: the
 * runtime injects `systemEntropy` (node:crypto's CSPRNG), the simulator and tests a
 * `SeededEntropy`, so that a seeded run produces the same keys, handshakes and bytes every time.
 *
 * `Rng` (core/rng.ts) is for protocol decisions (jitter, shuffles); `Entropy` is for secrets
 * (ephemeral keys, session ids). Never derive secrets from `Rng`.
 */
import { createHash, randomFillSync } from "node:crypto";

export interface Entropy {
  /** `size` fresh random bytes (a new array the caller owns). */
  randomBytes(size: number): Uint8Array;
}

/** The operating system's CSPRNG (node:crypto). What every real node uses. */
export const systemEntropy: Entropy = {
  randomBytes(size: number): Uint8Array {
    return randomFillSync(new Uint8Array(size));
  },
};

const SEED_LABEL = new TextEncoder().encode("skein seeded entropy v1");

/**
 * A deterministic generator for simulations and tests: SHA-256 in counter mode,
 * block_i = SHA-256(SHA-256(label || seed) || u64be(i)). Predictable by construction: never use
 * it for a real node.
 */
export class SeededEntropy implements Entropy {
  private readonly state: Uint8Array;
  private counter = 0;
  private buffer = new Uint8Array(0);
  private offset = 0;

  constructor(seed: number | string | Uint8Array) {
    const bytes =
      typeof seed === "number"
        ? new Uint8Array([seed >>> 24, (seed >>> 16) & 0xff, (seed >>> 8) & 0xff, seed & 0xff])
        : typeof seed === "string"
          ? new TextEncoder().encode(seed)
          : seed;
    this.state = createHash("sha256").update(SEED_LABEL).update(bytes).digest();
  }

  randomBytes(size: number): Uint8Array {
    const out = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      if (this.offset >= this.buffer.byteLength) this.refill();
      const take = Math.min(size - filled, this.buffer.byteLength - this.offset);
      out.set(this.buffer.subarray(this.offset, this.offset + take), filled);
      this.offset += take;
      filled += take;
    }
    return out;
  }

  /** An independent generator (e.g. one per simulated node), derived from this one. */
  fork(): SeededEntropy {
    return new SeededEntropy(this.randomBytes(32));
  }

  private refill(): void {
    const block = new Uint8Array(8);
    const high = Math.floor(this.counter / 0x1_0000_0000);
    const low = this.counter >>> 0;
    new DataView(block.buffer).setUint32(0, high);
    new DataView(block.buffer).setUint32(4, low);
    this.counter += 1;
    this.buffer = createHash("sha256").update(this.state).update(block).digest();
    this.offset = 0;
  }
}

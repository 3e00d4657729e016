/**
 * Seeded mutations of valid inputs, in the style of AFL's havoc stage: bit flips, interesting
 * values at random offsets (lengths, counts and kinds are where decoders break), truncation,
 * extension, duplication and splicing of two inputs. The same seed gives the same sequence.
 */
import type { Rng } from "../src/core/rng.js";

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U32 = [0, 1, 0xff, 0x100, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
/** Inputs never grow past this: the point is odd values, not memory exhaustion of the fuzzer. */
const MAX_MUTANT_BYTES = 70_000;

export function mutate(rng: Rng, input: Uint8Array, other: Uint8Array | undefined): Uint8Array {
  let bytes: Uint8Array = input.slice();
  const rounds = 1 + rng.nextInt(4);
  for (let round = 0; round < rounds; round += 1) bytes = mutateOnce(rng, bytes, other);
  return bytes.byteLength > MAX_MUTANT_BYTES ? bytes.subarray(0, MAX_MUTANT_BYTES) : bytes;
}

function mutateOnce(rng: Rng, bytes: Uint8Array, other: Uint8Array | undefined): Uint8Array {
  const at = bytes.byteLength === 0 ? 0 : rng.nextInt(bytes.byteLength);
  switch (rng.nextInt(9)) {
    case 0: // flip one bit
      if (bytes.byteLength > 0) bytes[at] = bytes[at]! ^ (1 << rng.nextInt(8));
      return bytes;
    case 1: // an interesting byte
      if (bytes.byteLength > 0) bytes[at] = INTERESTING_BYTES[rng.nextInt(INTERESTING_BYTES.length)]!;
      return bytes;
    case 2: {
      // an interesting big-endian u32 (lengths, ids, sequence numbers)
      if (bytes.byteLength >= 4) {
        const offset = rng.nextInt(bytes.byteLength - 3);
        new DataView(bytes.buffer, bytes.byteOffset).setUint32(offset, INTERESTING_U32[rng.nextInt(INTERESTING_U32.length)]!);
      }
      return bytes;
    }
    case 3: // a random byte
      if (bytes.byteLength > 0) bytes[at] = rng.nextInt(256);
      return bytes;
    case 4: // truncate
      return bytes.subarray(0, at);
    case 5: {
      // extend with random bytes
      const extra = new Uint8Array(1 + rng.nextInt(64));
      for (let index = 0; index < extra.byteLength; index += 1) extra[index] = rng.nextInt(256);
      return concat(bytes, extra);
    }
    case 6: // duplicate a slice in place
      return concat(bytes.subarray(0, at), bytes.subarray(rng.nextInt(Math.max(1, bytes.byteLength))));
    case 7: {
      // splice with another valid input
      if (other === undefined || other.byteLength === 0) return bytes;
      return concat(bytes.subarray(0, at), other.subarray(rng.nextInt(other.byteLength)));
    }
    default: {
      // pure noise of a plausible size
      const noise = new Uint8Array(rng.nextInt(bytes.byteLength + 32));
      for (let index = 0; index < noise.byteLength; index += 1) noise[index] = rng.nextInt(256);
      return noise;
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a, 0);
  joined.set(b, a.byteLength);
  return joined;
}

/**
 * Keeps glibc's malloc from handing memory back to the kernel after every burst of freed Buffers.
 *
 * Why: node:crypto cannot seal into a caller's buffer. Every `Cipher.update` allocates its output
 * (and, for a stream cipher, a second one it copies into: Node sizes the first for one extra block),
 * and V8 frees those backing stores in batches, at each garbage collection. With glibc's default
 * thresholds (M_MMAP_THRESHOLD 128 KiB, M_TRIM_THRESHOLD 128 KiB) each batch shrinks the heap back
 * to the kernel and the next ones fault every page in again: a record larger than 128 KiB is even
 * mmap'd and unmapped whole. On the benchmark machine sealing 512 KiB records faulted in every
 * page of every output (64,000 faults per 250 MiB; primed: 5), and sealing ran at 1.9 GB/s instead
 * of 2.35 GB/s for 64 KiB records, 2.0 instead of 2.75 GB/s for 512 KiB ones. docs/benchmarks.md
 * has the link figures.
 *
 * How: glibc raises both thresholds on its own (mallopt(3), "dynamic mmap threshold") when a
 * chunk it had mmap'd and that is larger than the current threshold is freed: the mmap threshold
 * becomes that chunk's size and the trim threshold twice that. So the node allocates one such
 * chunk of PRIME_BYTES and drops it; the next garbage collection frees it. The cost is that up to
 * 2 × PRIME_BYTES of freed heap stay with the process instead of going back to the kernel. The
 * chunk itself is never touched, so it never becomes resident.
 *
 * Where glibc's thresholds were set explicitly (GLIBC_TUNABLES, MALLOC_TRIM_THRESHOLD_, …) glibc
 * ignores the freed chunk, so an operator's setting wins. On other allocators (musl, macOS) this
 * is one untouched allocation and nothing else.
 */

/**
 * Just below glibc's ceiling for the dynamic threshold (32 MiB on 64-bit systems), because the
 * trim threshold must exceed what one garbage collection frees at once: at 16 MiB, sealing
 * 256 KiB records still faulted nearly every page in again; at 31 MiB, almost none.
 */
export const PRIME_BYTES = 31 * 1024 * 1024;

let primed = false;

/** Once per process (createNode calls it; later calls do nothing). Returns whether it primed now. */
export function primeAllocator(): boolean {
  if (primed) return false;
  primed = true;
  // allocUnsafeSlow: straight from malloc (not Node's pool), and not zero-filled, so not resident.
  Buffer.allocUnsafeSlow(PRIME_BYTES);
  return true;
}

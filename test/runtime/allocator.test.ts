/**
 * primeAllocator (src/runtime/allocator.ts): a process that has created a node keeps its freed
 * Buffer memory instead of faulting it back in from the kernel after every garbage collection.
 * Measured as the minor page faults of sealing 64 KiB records in fresh child processes: page
 * faults are counts, not timings, and glibc's heap behaves the same on every run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { primeAllocator } from "../../src/runtime/allocator.js";

const ALLOCATOR_MODULE = fileURLToPath(new URL("../../src/runtime/allocator.js", import.meta.url));

const RECORD_BYTES = 256 * 1024;

/** Minor page faults of sealing `records` 256 KiB records in a fresh process, primed or not. */
function faultsOfSealing(prime: boolean, records: number): number {
  const script = `
    import { createCipheriv, createSecretKey } from "node:crypto";
    import { primeAllocator } from ${JSON.stringify(ALLOCATOR_MODULE)};
    if (${prime}) primeAllocator();
    const key = createSecretKey(Buffer.alloc(32, 7));
    const nonce = Buffer.alloc(12);
    const payload = new Uint8Array(${RECORD_BYTES});
    const seal = () => {
      const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
      cipher.update(payload);
      cipher.final();
      return cipher.getAuthTag();
    };
    // Warm up past the first collections (which free the priming chunk), then count.
    for (let i = 0; i < 200; i++) seal();
    const before = process.resourceUsage().minorPageFault;
    for (let i = 0; i < ${records}; i++) seal();
    process.stdout.write(String(process.resourceUsage().minorPageFault - before));
  `;
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }));
}

const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;

test("primeAllocator primes once per process", () => {
  // This test process may have primed already (another test file created a node): either way,
  // after one call every further call is a no-op.
  primeAllocator();
  assert.equal(primeAllocator(), false);
});

test(`a primed process seals records without faulting their memory in again (glibc ${glibc ?? "absent"})`, () => {
  const records = 1000; // 250 MiB of sealed output, freed by V8 in batches
  const pages = (records * RECORD_BYTES) / 4096;
  const unprimed = faultsOfSealing(false, records);
  const primed = faultsOfSealing(true, records);
  if (glibc === undefined) {
    // Other allocators keep their own policy: priming must not make anything worse.
    assert.ok(primed <= unprimed * 1.5 + 1000, `primed ${primed} faults, unprimed ${unprimed}`);
    return;
  }
  // With glibc's default thresholds (256 KiB is over M_MMAP_THRESHOLD) a large share of the
  // output's pages are faulted in anew: measured 18,000–64,000 of 64,000, the fewer the busier
  // the machine; primed, the heap keeps them: 280–1,500. One sixteenth of the pages lies between.
  assert.ok(unprimed > pages / 16, `unprimed: ${unprimed} faults for ${pages} pages of output (expected many: glibc defaults)`);
  assert.ok(primed < pages / 16, `primed: ${primed} faults for ${pages} pages of output (unprimed: ${unprimed})`);
});

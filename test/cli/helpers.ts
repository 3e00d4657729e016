/** Shared by the CLI option tests. */
import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/errors.js";
import { resolveNodeOptions, type ResolveInput } from "../../src/cli/options.js";

/** Asserts that resolving throws a UsageError (exit 2) with exactly this one-line message. */
export function assertUsage(input: ResolveInput, message: string, code = "BAD_OPTION"): void {
  assert.throws(
    () => resolveNodeOptions(input),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
      assert.equal(error.message, message);
      assert.equal(error.code, code);
      assert.equal(error.exitCode, 2);
      assert.ok(!error.message.includes("\n"), "one line");
      return true;
    },
  );
}

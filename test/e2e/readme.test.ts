/** The README's library example runs as written (against this package, by its own name). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

test("README library example prints the message it sent", () => {
  const readme = readFileSync(`${ROOT}README.md`, "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(code, "README has a ts example");
  assert.ok(code.split("\n").filter((line) => line.trim() !== "").length <= 12, "the example stays about ten lines");
  // Inside the package folder, `import "skein"` resolves to this package (self-reference).
  const file = `${ROOT}readme-example-${process.pid}.mjs`;
  writeFileSync(file, code);
  try {
    const result = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^2 hello$/m);
  } finally {
    rmSync(file, { force: true });
  }
});

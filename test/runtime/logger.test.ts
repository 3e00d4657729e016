import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/runtime/logger.js";

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { stream, raw: () => chunks.join(""), lines: () => chunks.join("").trim().split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

test("logger: JSON lines with (fields, message), level filtering, children that override bindings", () => {
  const out = capture();
  const logger = createLogger({ level: "info", bindings: { node: 7 }, destination: out.stream });
  logger.debug({ hidden: true }, "not shown");
  logger.info({ a: 1 }, "hello");
  const link = logger.child({ module: "engine" }).child({ module: "link", node: 7 });
  link.warn({ peer: 2 }, "link down");
  link.error({}, "bad");
  const lines = out.lines();
  assert.equal(lines.length, 3);
  assert.equal(lines[0]!.msg, "hello");
  assert.equal(lines[0]!.a, 1);
  assert.equal(lines[0]!.node, 7);
  assert.equal(lines[0]!.level, 30);
  assert.equal(lines[1]!.module, "link");
  assert.equal(lines[1]!.peer, 2);
  assert.equal(lines[1]!.level, 40);
  assert.equal(lines[2]!.level, 50);
  const warnLine = out.raw().split("\n")[1]!;
  assert.equal(warnLine.match(/"module"/g)?.length, 1, `one module key in ${warnLine}`);
  assert.equal(warnLine.match(/"node"/g)?.length, 1, `one node key in ${warnLine}`);
});

test("logger: silent writes nothing", () => {
  const out = capture();
  const logger = createLogger({ level: "silent", destination: out.stream });
  logger.error({}, "nothing");
  logger.child({ module: "x" }).info({}, "nothing");
  assert.deepEqual(out.lines(), []);
});

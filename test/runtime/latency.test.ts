import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SkeinError } from "../../src/core/errors.js";
import type { Address } from "../../src/core/address.js";
import type { PathId } from "../../src/node/io.js";
import { LatencyEmulator, loadLatencyMatrix, parseLatencyMatrix } from "../../src/runtime/latency.js";
import type { Transport, TransportSink } from "../../src/runtime/transport.js";
import { waitFor } from "./helpers.js";

test("matrix: symmetric mean, one direction, absent pair", () => {
  const matrix = parseLatencyMatrix(JSON.stringify({ "1": { "2": 80, "3": 30 }, "2": { "1": 100 }, "4": {} }), "m.json");
  assert.equal(matrix.rttMs(1, 2), 90);
  assert.equal(matrix.rttMs(2, 1), 90);
  assert.equal(matrix.rttMs(1, 3), 30);
  assert.equal(matrix.rttMs(3, 1), 30);
  assert.equal(matrix.rttMs(2, 3), undefined);
  assert.equal(matrix.oneWayDelayMs(1, 2), 45);
  assert.equal(matrix.oneWayDelayMs(2, 3), 0);
  assert.deepEqual(matrix.nodeIds, [1, 2, 3]);
});

function expectBadConfig(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseLatencyMatrix(text, "/tmp/lat.json"),
    (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, "BAD_CONFIG");
      assert.match(error.message, /\/tmp\/lat\.json/);
      assert.match(error.message, /keyed by NodeIds/);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("matrix: malformed files give BAD_CONFIG naming the file and what is expected", () => {
  expectBadConfig("{ nope", /not valid JSON/);
  expectBadConfig("[1, 2]", /top level is an array/);
  expectBadConfig("42", /top level is 42/);
  expectBadConfig(JSON.stringify({ "af-south-1": { "eu-west-1": 150 } }), /key "af-south-1" is not a NodeId/);
  expectBadConfig(JSON.stringify({ "0": {} }), /key "0" is not a NodeId/);
  expectBadConfig(JSON.stringify({ "1": 5 }), /entry for node 1 is 5/);
  expectBadConfig(JSON.stringify({ "1": { "x": 5 } }), /key "x" under node 1/);
  expectBadConfig(JSON.stringify({ "1": { "2": "80" } }), /RTT from 1 to 2 is the string "80"/);
  expectBadConfig(JSON.stringify({ "1": { "2": -1 } }), /RTT from 1 to 2 is -1/);
  expectBadConfig(JSON.stringify({ "1": { "2": null } }), /RTT from 1 to 2 is null/);
});

test("matrix: files are read; a missing file is BAD_CONFIG naming it", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-latency-"));
  try {
    const file = path.join(dir, "ok.json");
    writeFileSync(file, JSON.stringify({ "1": { "2": 10 } }));
    assert.equal((await loadLatencyMatrix(file)).rttMs(2, 1), 10);
    const missing = path.join(dir, "missing.json");
    await assert.rejects(loadLatencyMatrix(missing), (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, "BAD_CONFIG");
      assert.ok(error.message.includes(missing));
      assert.match(error.message, /ENOENT/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

class FakeTransport implements Transport {
  readonly kind = "udp" as const;
  readonly localAddress: Address = { transport: "udp", host: "127.0.0.1", port: 1 };
  readonly counters = new Map<string, number>();
  log: { at: number; pathId: PathId; what: string }[] = [];
  flushes = 0;
  constructor(private readonly clock: () => number) {}
  setSink(_sink: TransportSink): void {}
  open(): void {}
  transmit(pathId: PathId, packet: Uint8Array): void {
    this.log.push({ at: this.clock(), pathId, what: `p${packet[0]}` });
  }
  close(pathId: PathId): void {
    this.log.push({ at: this.clock(), pathId, what: "close" });
  }
  queuedBytes(): number {
    return 0;
  }
  flush(): void {
    this.flushes++;
  }
  async shutdown(): Promise<void> {}
}

test("emulator: packets to a peer wait half the RTT, keep FIFO order per path, and a close waits behind them", async () => {
  const matrix = parseLatencyMatrix(JSON.stringify({ "1": { "2": 60, "3": 0 } }), "m.json");
  const clock = (): number => performance.now();
  const transport = new FakeTransport(clock);
  const released: PathId[] = [];
  const emulator = new LatencyEmulator(1, matrix, clock, (pathId) => released.push(pathId));
  const start = clock();
  const packet = (n: number): Uint8Array => Uint8Array.of(n);
  emulator.transmit(transport, 7, packet(1), undefined); // no peer, nothing queued: straight through
  emulator.transmit(transport, 8, packet(9), 3); // zero RTT: straight through
  emulator.transmit(transport, 7, packet(2), 2);
  emulator.transmit(transport, 7, packet(3), undefined); // no delay of its own, but behind packet 2
  emulator.transmit(transport, 7, packet(4), 2);
  assert.equal(emulator.queuedBytes(7), 3);
  emulator.close(transport, 7);
  assert.deepEqual(transport.log.map((e) => e.what), ["p1", "p9"]);
  await waitFor(() => transport.log.some((e) => e.what === "close"), "the queued close");
  const path7 = transport.log.filter((e) => e.pathId === 7);
  assert.deepEqual(path7.map((e) => e.what), ["p1", "p2", "p3", "p4", "close"]);
  assert.ok(path7[1]!.at - start >= 29, `packet 2 left after ${path7[1]!.at - start} ms, expected about 30`);
  assert.equal(emulator.queuedBytes(7), 0);
  assert.ok(released.includes(7));
  assert.ok(transport.flushes >= 1);
});

test("emulator: flushAll sends everything at once and later packets are not delayed", () => {
  const matrix = parseLatencyMatrix(JSON.stringify({ "1": { "2": 10_000 } }), "m.json");
  const clock = (): number => performance.now();
  const transport = new FakeTransport(clock);
  const emulator = new LatencyEmulator(1, matrix, clock, () => {});
  emulator.transmit(transport, 1, Uint8Array.of(1), 2);
  emulator.transmit(transport, 1, Uint8Array.of(2), 2);
  emulator.close(transport, 1);
  emulator.transmit(transport, 2, Uint8Array.of(3), 2);
  assert.equal(transport.log.length, 0);
  emulator.flushAll();
  assert.deepEqual(transport.log.map((e) => `${e.pathId}:${e.what}`), ["1:p1", "1:p2", "1:close", "2:p3"]);
  emulator.transmit(transport, 3, Uint8Array.of(4), 2);
  assert.equal(transport.log.length, 5);
});

test("emulator: forget drops a dead path's queue", () => {
  const matrix = parseLatencyMatrix(JSON.stringify({ "1": { "2": 10_000 } }), "m.json");
  const clock = (): number => performance.now();
  const transport = new FakeTransport(clock);
  const emulator = new LatencyEmulator(1, matrix, clock, () => {});
  emulator.transmit(transport, 1, Uint8Array.of(1), 2);
  emulator.forget(1);
  assert.equal(emulator.queuedBytes(1), 0);
  emulator.flushAll();
  assert.equal(transport.log.length, 0);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Address } from "../../src/core/address.js";
import { nullLogger } from "../../src/core/log.js";
import type { NodeEngine } from "../../src/node/engine.js";
import type { EngineOutput, NodeEvent, PathId } from "../../src/node/io.js";
import { DRAIN_BATCH_BYTES, Driver } from "../../src/runtime/driver.js";
import type { Transport, TransportSink } from "../../src/runtime/transport.js";

/** Records every call the driver makes; outputs are queued by the test. */
class FakeEngine {
  calls: string[] = [];
  outputs: EngineOutput[] = [];
  deadline = Infinity;
  nextPath = 1;
  start(now: number): void {
    this.calls.push(`start@${Math.round(now) >= 0}`);
  }
  acceptPath(_now: number, address: Address): PathId | undefined {
    this.calls.push(`accept ${address.port}`);
    return address.port === 666 ? undefined : this.nextPath++;
  }
  pathOpened(_now: number, pathId: PathId): void {
    this.calls.push(`opened ${pathId}`);
  }
  pathClosed(_now: number, pathId: PathId, reason: string): void {
    this.calls.push(`closed ${pathId} ${reason}`);
  }
  receive(_now: number, pathId: PathId, packet: Uint8Array): void {
    this.calls.push(`receive ${pathId} ${packet.byteLength}`);
  }
  tick(now: number): void {
    this.calls.push(`tick ${now >= this.deadline}`);
    this.deadline = Infinity;
  }
  nextDeadline(): number {
    return this.deadline;
  }
  pollOutput(): EngineOutput | undefined {
    return this.outputs.shift();
  }
  backlogBytes(): number {
    return 0;
  }
  shutdown(): void {
    this.calls.push("shutdown");
    this.outputs.push({ kind: "transmit", pathId: 1, packet: Uint8Array.of(9), peer: 5 }, { kind: "close_path", pathId: 1 });
  }
}

class FakeTransport implements Transport {
  readonly localAddress: Address;
  readonly counters = new Map<string, number>();
  sink: TransportSink | undefined;
  log: string[] = [];
  queued = 0;
  constructor(readonly kind: "udp" | "tcp") {
    this.localAddress = { transport: kind, host: "127.0.0.1", port: 1 };
  }
  setSink(sink: TransportSink): void {
    this.sink = sink;
  }
  open(pathId: PathId, address: Address): void {
    this.log.push(`open ${pathId} ${address.port}`);
    if (this.kind === "udp") this.sink!.pathOpened(pathId);
  }
  transmit(pathId: PathId, packet: Uint8Array): void {
    this.log.push(`transmit ${pathId} ${packet[0]}`);
  }
  close(pathId: PathId): void {
    this.log.push(`close ${pathId}`);
  }
  queuedBytes(): number {
    return this.queued;
  }
  flush(): void {
    this.log.push("flush");
  }
  async shutdown(): Promise<void> {}
}

function setup(): { engine: FakeEngine; udp: FakeTransport; tcp: FakeTransport; driver: Driver; events: NodeEvent[] } {
  const engine = new FakeEngine();
  const udp = new FakeTransport("udp");
  const tcp = new FakeTransport("tcp");
  const events: NodeEvent[] = [];
  const driver = new Driver({
    engine: engine as unknown as NodeEngine,
    transports: [udp, tcp],
    logger: nullLogger,
    onEvent: (event) => events.push(event),
  });
  return { engine, udp, tcp, driver, events };
}

test("driver: a drain carries every output, in order, then flushes each transport once", () => {
  const { engine, udp, tcp, driver, events } = setup();
  engine.outputs.push(
    { kind: "open_path", pathId: 1, address: { transport: "udp", host: "127.0.0.1", port: 7 } },
    { kind: "open_path", pathId: 2, address: { transport: "tcp", host: "127.0.0.1", port: 8 } },
    { kind: "transmit", pathId: 1, packet: Uint8Array.of(1), peer: 5 },
    { kind: "transmit", pathId: 2, packet: Uint8Array.of(2), peer: 6 },
    { kind: "transmit", pathId: 2, packet: Uint8Array.of(3), peer: 6 },
    { kind: "event", event: { kind: "link_down", peer: 5, reason: "x" } },
    { kind: "transmit", pathId: 99, packet: Uint8Array.of(4), peer: undefined },
    { kind: "close_path", pathId: 2 },
  );
  driver.start();
  // UDP answers open_path with pathOpened at once, from inside the drain.
  assert.deepEqual(engine.calls, ["start@true", "opened 1"]);
  assert.deepEqual(udp.log, ["open 1 7", "transmit 1 1", "flush"]);
  assert.deepEqual(tcp.log, ["open 2 8", "transmit 2 2", "transmit 2 3", "close 2", "flush"]);
  assert.deepEqual(events, [{ kind: "link_down", peer: 5, reason: "x" }]);
  assert.equal(driver.counters.get("transmit_on_unknown_path"), 1);
  driver.shutdown();
});

test("driver: open_path for a transport the node lacks is answered with pathClosed", () => {
  const engine = new FakeEngine();
  const udp = new FakeTransport("udp");
  const driver = new Driver({ engine: engine as unknown as NodeEngine, transports: [udp], logger: nullLogger, onEvent: () => {} });
  engine.outputs.push({ kind: "open_path", pathId: 3, address: { transport: "tcp", host: "127.0.0.1", port: 9 } });
  driver.start();
  assert.match(engine.calls[1]!, /^closed 3 this node has no tcp transport/);
  driver.shutdown();
});

test("driver: acceptPath does not drain at once (the transport registers the path first); refusals are passed on", async () => {
  const { engine, udp, driver } = setup();
  driver.start();
  engine.outputs.push({ kind: "transmit", pathId: 1, packet: Uint8Array.of(1), peer: undefined });
  assert.equal(driver.acceptPath({ transport: "udp", host: "127.0.0.1", port: 40 }), 1);
  assert.equal(udp.log.filter((l) => l.startsWith("transmit")).length, 0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(udp.log.filter((l) => l.startsWith("transmit")), ["transmit 1 1"]);
  assert.equal(driver.acceptPath({ transport: "udp", host: "127.0.0.1", port: 666 }), undefined);
  driver.receive(1, new Uint8Array(3));
  assert.ok(engine.calls.includes("receive 1 3"));
  driver.pathClosed(1, "gone");
  driver.pathClosed(1, "twice");
  assert.deepEqual(engine.calls.filter((c) => c.startsWith("closed")), ["closed 1 gone"]);
  driver.shutdown();
});

test("driver: API calls are drained in batches", async () => {
  const { engine, udp, driver } = setup();
  engine.outputs.push({ kind: "open_path", pathId: 1, address: { transport: "udp", host: "127.0.0.1", port: 7 } });
  driver.start();
  udp.log = [];
  for (let i = 0; i < 10; i++) {
    engine.outputs.push({ kind: "transmit", pathId: 1, packet: Uint8Array.of(i), peer: 5 });
    driver.noteApiCall(100);
  }
  assert.equal(udp.log.length, 0, "small calls wait for one setImmediate drain");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(udp.log.filter((l) => l.startsWith("transmit")).length, 10);
  assert.equal(udp.log.filter((l) => l === "flush").length, 1);
  udp.log = [];
  engine.outputs.push({ kind: "transmit", pathId: 1, packet: Uint8Array.of(1), peer: 5 });
  driver.noteApiCall(DRAIN_BATCH_BYTES);
  assert.deepEqual(udp.log, ["transmit 1 1", "flush"], "a big batch drains at once");
  driver.shutdown();
});

test("driver: the timer ticks the engine at its deadline, not before, and is re-armed when the deadline moves earlier", async () => {
  const { engine, driver } = setup();
  engine.deadline = performance.now() + 10_000;
  driver.start();
  // An earlier deadline after an input: the timer is re-armed for it.
  engine.deadline = performance.now() + 30;
  driver.receive(1, new Uint8Array(1));
  const started = performance.now();
  while (!engine.calls.some((c) => c.startsWith("tick"))) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(performance.now() - started < 2000, "tick within 2 s");
  }
  assert.ok(performance.now() - started >= 25, `ticked after ${performance.now() - started} ms`);
  assert.deepEqual(engine.calls.filter((c) => c.startsWith("tick")), ["tick true"]);
  driver.shutdown();
});

test("driver: shutdown carries the engine's goodbyes out, then stops taking input", () => {
  const { engine, udp, driver } = setup();
  engine.outputs.push({ kind: "open_path", pathId: 1, address: { transport: "udp", host: "127.0.0.1", port: 7 } });
  driver.start();
  udp.log = [];
  driver.shutdown();
  assert.deepEqual(udp.log, ["transmit 1 9", "close 1", "flush"]);
  assert.equal(driver.acceptPath({ transport: "udp", host: "127.0.0.1", port: 41 }), undefined);
  driver.receive(1, new Uint8Array(1));
  assert.ok(!engine.calls.includes("receive 1 1"));
});

test("driver: an engine exception is logged and counted, never thrown into a socket callback", () => {
  const { engine, driver } = setup();
  engine.receive = () => {
    throw new Error("boom");
  };
  driver.start();
  driver.receive(1, new Uint8Array(1));
  assert.equal(driver.counters.get("engine_error_receive"), 1);
  driver.shutdown();
});

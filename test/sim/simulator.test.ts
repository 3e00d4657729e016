/**
 * The simulator as a driver, checked with a tiny fake engine (ping/pong over the EngineIo
 * contract), so that these tests do not depend on the real engine's protocol.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Address, formatAddress } from "../../src/core/address.js";
import type { NodeId } from "../../src/core/node-id.js";
import type { EngineConfig } from "../../src/node/engine-config.js";
import type { EngineOutput, NeighbourInfo, PathId } from "../../src/node/io.js";
import { type SimEngine, Simulator, simAddress } from "../../src/sim/simulator.js";
import type { Matrix } from "../../src/sim/matrix.js";

const PING = 1;
const PONG = 2;

/** Opens a path to each seed, pings every known path each `probeIntervalMs`, records RTTs. */
class PingEngine implements SimEngine {
  readonly id: NodeId;
  readonly accepted: string[] = [];
  readonly shut: number[] = [];
  private readonly outputs: EngineOutput[] = [];
  private readonly paths = new Map<PathId, { address: Address; opened: boolean; peer: NodeId | undefined; rtt: number | undefined }>();
  private nextPath = 1;
  private nextProbe = Infinity;

  constructor(private readonly config: EngineConfig) {
    this.id = config.nodeId;
  }

  start(now: number): void {
    for (const seed of this.config.seeds) {
      const pathId = this.nextPath++;
      this.paths.set(pathId, { address: seed.address, opened: false, peer: seed.nodeId, rtt: undefined });
      this.outputs.push({ kind: "open_path", pathId, address: seed.address });
    }
    this.nextProbe = now + this.config.probeIntervalMs;
  }
  neighbours(): NeighbourInfo[] {
    return [...this.paths.values()]
      .filter((path) => path.peer !== undefined)
      .map((path) => ({
        id: path.peer!,
        address: formatAddress(path.address),
        transport: "udp",
        inbound: false,
        state: path.rtt === undefined ? "connecting" : "up",
        srttMs: path.rtt,
        rttvarMs: 0,
        loss: 0,
        upSinceMs: undefined,
      }));
  }
  shutdown(): void {
    this.shut.push(1);
    for (const pathId of this.paths.keys()) this.outputs.push({ kind: "close_path", pathId });
    this.paths.clear();
  }
  acceptPath(_now: number, address: Address): PathId | undefined {
    this.accepted.push(formatAddress(address));
    const pathId = this.nextPath++;
    this.paths.set(pathId, { address, opened: true, peer: undefined, rtt: undefined });
    return pathId;
  }
  pathOpened(now: number, pathId: PathId): void {
    const path = this.paths.get(pathId);
    if (path === undefined) return;
    path.opened = true;
    this.ping(now, pathId);
  }
  pathClosed(_now: number, pathId: PathId): void {
    this.paths.delete(pathId);
  }
  receive(now: number, pathId: PathId, packet: Uint8Array): void {
    const path = this.paths.get(pathId);
    if (path === undefined) return;
    const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    const from = view.getUint32(1);
    const sentAt = view.getFloat64(5);
    path.peer = from;
    if (packet[0] === PING) {
      this.outputs.push({ kind: "transmit", pathId, packet: this.packet(PONG, sentAt), peer: from });
    } else {
      path.rtt = now - sentAt;
      this.outputs.push({ kind: "event", event: { kind: "rtt", peer: from, srttMs: path.rtt, rttvarMs: 0, loss: 0 } });
    }
  }
  tick(now: number): void {
    if (now < this.nextProbe) return;
    for (const [pathId, path] of this.paths) if (path.opened) this.ping(now, pathId);
    this.nextProbe = now + this.config.probeIntervalMs;
  }
  nextDeadline(): number {
    return this.nextProbe;
  }
  pollOutput(): EngineOutput | undefined {
    return this.outputs.shift();
  }
  private ping(now: number, pathId: PathId): void {
    this.outputs.push({ kind: "transmit", pathId, packet: this.packet(PING, now), peer: undefined });
  }
  private packet(kind: number, sentAt: number): Uint8Array {
    const bytes = new Uint8Array(13);
    const view = new DataView(bytes.buffer);
    bytes[0] = kind;
    view.setUint32(1, this.id);
    view.setFloat64(5, sentAt);
    return bytes;
  }
}

// Asymmetric a↔b on purpose: a round trip measures the mean of both directions.
const MATRIX: Matrix = {
  a: { b: 90, c: 40 },
  b: { a: 110, c: 60 },
  c: { a: 40, b: 60 },
};

function makeSim(extra: Partial<ConstructorParameters<typeof Simulator<PingEngine>>[0]> = {}): Simulator<PingEngine> {
  return new Simulator<PingEngine>({ matrix: MATRIX, seed: 5, createEngine: (config) => new PingEngine(config), ...extra });
}

function rttOf(sim: Simulator<PingEngine>, id: NodeId, peer: NodeId): number | undefined {
  return sim.neighbours(id).find((n) => n.id === peer)?.srttMs;
}

test("fake addresses: /ip4/10.0.0.i/udp/7000, more octets past 254", () => {
  assert.equal(formatAddress(simAddress(1)), "/ip4/10.0.0.1/udp/7000");
  assert.equal(formatAddress(simAddress(254)), "/ip4/10.0.0.254/udp/7000");
  assert.equal(formatAddress(simAddress(300)), "/ip4/10.0.1.44/udp/7000");
  assert.equal(formatAddress(simAddress(70000)), "/ip4/10.1.17.112/udp/7000");
});

test("the driver opens paths, accepts unknown senders and delivers after RTT/2 each way", () => {
  const sim = makeSim();
  assert.deepEqual([sim.name(1), sim.name(2), sim.name(3)], ["a", "b", "c"]);
  sim.runUntil(5000);
  // Nodes 2 and 3 pinged their seed (node 1); the round trip is the mean of both directions.
  assert.equal(rttOf(sim, 2, 1), 100);
  assert.equal(rttOf(sim, 3, 1), 40);
  // Node 1 accepted one path per sender address, once.
  assert.deepEqual([...sim.engine(1)!.accepted].sort(), ["/ip4/10.0.0.2/udp/7000", "/ip4/10.0.0.3/udp/7000"]);
  assert.equal(sim.now, 5000);
  const stats = sim.stats();
  assert.ok(stats.packetsDelivered > 0 && stats.packetsDelivered <= stats.packetsSent);
  assert.deepEqual(stats.dropped, {});
  assert.ok(stats.engineEvents.rtt! > 0);
  assert.ok(sim.records.every((r, i) => i === 0 || sim.records[i - 1]!.at <= r.at));
});

test("same seed with jitter and loss gives the same run; another seed another", () => {
  const run = (seed: number) => {
    const sim = makeSim({ seed, network: { loss: 0.2, jitter: { kind: "normal", sdMs: 5 } }, startSpreadMs: 300 });
    sim.runUntil(20_000);
    return { records: sim.records, stats: sim.stats() };
  };
  const first = run(9);
  assert.deepEqual(run(9), first);
  assert.notDeepEqual(run(10), first);
  assert.ok((first.stats.dropped.loss ?? 0) > 0);
});

test("jitter never makes a delay negative and fifo keeps order", () => {
  const sim = makeSim({ network: { jitter: { kind: "uniform", maxMs: 500 } } });
  const delays: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const decision = sim.network.decide(1, 3, i);
    assert.equal(decision.kind, "deliver");
    if (decision.kind === "deliver") delays.push(i + decision.delayMs);
  }
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! >= delays[i - 1]!, "fifo violated");
  const unordered = makeSim({ network: { jitter: { kind: "uniform", maxMs: 500 }, fifo: false } });
  for (let i = 0; i < 1000; i++) {
    const decision = unordered.network.decide(1, 3, 0);
    assert.ok(decision.kind === "deliver" && decision.delayMs >= 0);
  }
});

test("partitions drop packets until healed; blocked links too", () => {
  const sim = makeSim();
  sim.runUntil(3000);
  const handle = sim.partition([[1], [2, 3]]);
  assert.equal(sim.network.canTalk(1, 2), false);
  assert.equal(sim.network.canTalk(2, 3), true);
  sim.runUntil(6000);
  assert.ok((sim.stats().dropped.partition ?? 0) > 0);
  sim.heal(handle);
  assert.equal(sim.network.canTalk(1, 2), true);
  sim.linkDown(1, 3);
  const before = sim.stats().dropped.link_down ?? 0;
  sim.runUntil(9000);
  assert.ok((sim.stats().dropped.link_down ?? 0) > before);
  sim.linkUp(1, 3);
  assert.equal(sim.network.canTalk(1, 3), true);
  assert.deepEqual(
    sim.faults.map((f) => f.action),
    ["partition", "heal", "link_down", "link_up"],
  );
});

test("a crashed node drops packets; a restarted one gets a fresh engine and rejoins", () => {
  const sim = makeSim();
  sim.runUntil(3000);
  const old = sim.engine(1)!;
  sim.crash(1);
  assert.equal(sim.engine(1), undefined);
  assert.deepEqual(sim.neighbours(1), []);
  sim.runUntil(6000);
  assert.ok((sim.stats().dropped.node_down ?? 0) > 0);
  sim.restart(1);
  const fresh = sim.engine(1)!;
  assert.notEqual(fresh, old);
  sim.runUntil(9000);
  // The others keep pinging their path to 10.0.0.1: the new engine accepts them as new senders.
  assert.equal(fresh.accepted.length, 2);
  sim.restart(2);
  sim.runUntil(12_000);
  assert.equal(rttOf(sim, 2, 1), 100);
});

test("a graceful stop calls shutdown and carries out its outputs", () => {
  const sim = makeSim();
  sim.runUntil(2000);
  const engine = sim.engine(2)!;
  sim.stop(2);
  assert.deepEqual(engine.shut, [1]);
  assert.equal(sim.isUp(2), false);
  assert.throws(() => sim.call(2, () => 0), /node 2 is down/);
});

test("scheduled actions run at their virtual time; runUntilCondition stops early", () => {
  const sim = makeSim();
  const seen: number[] = [];
  sim.at(1234, () => seen.push(sim.now));
  sim.runUntil(2000);
  assert.deepEqual(seen, [1234]);
  const held = sim.runUntilCondition(() => rttOf(sim, 3, 1) !== undefined, 60_000);
  assert.ok(held);
  const late = makeSim();
  assert.equal(late.runUntilCondition(() => false, 1500), false);
  assert.equal(late.now, 1500);
});

test("bounds: max duration and max events surface as SIM_LIMIT errors", () => {
  const sim = makeSim({ maxDurationMs: 1000 });
  assert.throws(() => sim.runUntil(2000), (error: Error & { code?: string }) => error.code === "SIM_LIMIT");
  const busy = makeSim({ maxEvents: 10 });
  assert.throws(() => busy.runUntil(60_000), (error: Error & { code?: string }) => error.code === "SIM_LIMIT");
});

/** An engine whose deadline never moves: a busy loop the simulator must stop. */
class StuckEngine extends PingEngine {
  stuckAt = Infinity;
  override tick(now: number): void {
    super.tick(now);
    if (this.stuckAt === Infinity) this.stuckAt = now;
  }
  override nextDeadline(): number {
    return Math.min(super.nextDeadline(), this.stuckAt);
  }
}

test("an engine that never moves its deadline past now is stopped with SIM_BUSY_ENGINE", () => {
  const sim = new Simulator<PingEngine>({ matrix: MATRIX, seed: 1, createEngine: (config) => new StuckEngine(config) });
  assert.throws(() => sim.runUntil(10_000), (error: Error & { code?: string }) => error.code === "SIM_BUSY_ENGINE" && /still asked for a tick/.test(error.message));
  assert.ok(sim.stats().stalledTicks > 1000);
});

/** An engine whose deadline is once a hair behind what its tick accepts (the float-rounding bug). */
class OnceStalledEngine extends PingEngine {
  private stalled = false;
  private deadlineOverride: number | undefined;
  override tick(now: number): void {
    if (this.deadlineOverride !== undefined && now <= this.deadlineOverride) return; // "not yet due"
    this.deadlineOverride = undefined;
    super.tick(now);
    if (!this.stalled && now > 2000) {
      this.stalled = true;
      this.deadlineOverride = now;
    }
  }
  override nextDeadline(): number {
    return this.deadlineOverride ?? super.nextDeadline();
  }
}

test("a tick that made no progress is retried 1 µs later and counted", () => {
  const sim = new Simulator<PingEngine>({ matrix: MATRIX, seed: 1, createEngine: (config) => new OnceStalledEngine(config) });
  sim.runUntil(10_000);
  assert.equal(sim.stats().stalledTicks, 3); // once per node
  assert.equal(rttOf(sim, 2, 1), 100);
});

test("seeds and node count are configurable", () => {
  const sim = makeSim({ nodes: 2, seeds: [2] });
  assert.equal(sim.size, 2);
  sim.runUntil(3000);
  assert.equal(rttOf(sim, 1, 2), 100);
  assert.throws(() => makeSim({ nodes: 4 }), RangeError);
  assert.throws(() => makeSim({ seeds: [7] }), RangeError);
});

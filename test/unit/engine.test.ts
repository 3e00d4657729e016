/**
 * The node engine driven directly by a tiny in-test network: every packet takes a fixed one-way
 * delay; TCP paths are modelled as connections, UDP paths as addresses. Assertions are on the exact
 * events and states the engine produces.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Address, formatAddress } from "../../src/core/address.js";
import { RecordingLogger } from "../../src/core/log.js";
import { SeededEntropy } from "../../src/core/entropy.js";
import { SeededRng } from "../../src/core/rng.js";
import { type NodeIdentity, generateIdentity } from "../../src/crypto/identity.js";
import { NodeEngine } from "../../src/node/engine.js";
import type { NodeEvent, PathId } from "../../src/node/io.js";
import { FRAME_HEADER_BYTES, FrameKind, encodeFrame } from "../../src/wire/frame.js";
import { RECORD_OVERHEAD_BYTES, UnitType, forEachUnit } from "../../src/crypto/units.js";
import { STREAM_RECORD_MAX_BYTES } from "../../src/link/constants.js";

interface Host {
  engine: NodeEngine;
  address: Address;
  events: NodeEvent[];
  logger: RecordingLogger;
  /** Remote address (UDP) or connection key (TCP) → local path. */
  pathByRemote: Map<string, PathId>;
  remoteByPath: Map<PathId, string>;
}

class TinyNet {
  now = 0;
  readonly hosts = new Map<string, Host>();
  private queue: { at: number; seq: number; run: () => void }[] = [];
  private seq = 0;
  private connectionSeq = 0;
  blocked = new Set<string>();
  /** Sees every packet a host transmits, as one buffer (pieces joined). */
  onTransmit: ((from: Host, packet: Uint8Array) => void) | undefined;
  /** Keys by NodeId@host: a restarted node keeps its key (as its key file would); an impostor elsewhere has its own. */
  private readonly identities = new Map<string, NodeIdentity>();

  constructor(
    private readonly transport: "udp" | "tcp",
    private readonly oneWayMs = 10,
  ) {}

  addNode(
    nodeId: number,
    seeds: { nodeId: number; address: Address }[] = [],
    options: { maxNeighbours?: number; session?: number; host?: string; insecure?: boolean; networkKey?: Uint8Array } = {},
  ): Host {
    const address: Address = { transport: this.transport, host: options.host ?? "10.0.0." + nodeId, port: 7000 };
    const logger = new RecordingLogger();
    const keyName = `${nodeId}@${address.host}`;
    let identity = this.identities.get(keyName);
    if (identity === undefined) {
      identity = generateIdentity(new SeededEntropy(`engine test key ${keyName}`));
      this.identities.set(keyName, identity);
    }
    const engine = new NodeEngine({
      nodeId,
      listenAddresses: [address],
      seeds,
      maxNeighbours: options.maxNeighbours ?? 32,
      probeIntervalMs: 1000,
      linkTimeoutMs: 5000,
      udpMtu: 1400,
      rng: new SeededRng(options.session ?? nodeId),
      logger,
      identity,
      entropy: new SeededEntropy(`engine test ${keyName} ${options.session ?? nodeId}`),
      insecure: options.insecure,
      networkKey: options.networkKey,
    });
    const host: Host = { engine, address, events: [], logger, pathByRemote: new Map(), remoteByPath: new Map() };
    this.hosts.set(formatAddress(address), host);
    engine.start(this.now);
    this.drain(host);
    return host;
  }

  remove(host: Host): void {
    this.hosts.delete(formatAddress(host.address));
  }

  private schedule(delay: number, run: () => void): void {
    this.queue.push({ at: this.now + delay, seq: this.seq++, run });
    this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  private linkKey(a: Host, b: Host): string {
    return [formatAddress(a.address), formatAddress(b.address)].sort().join("|");
  }

  private deliver(from: Host, toAddress: string, remoteKey: string, packet: Uint8Array): void {
    const to = this.hosts.get(toAddress);
    if (!to || this.hosts.get(formatAddress(from.address)) !== from) return;
    if (this.blocked.has(this.linkKey(from, to))) return;
    let pathId = to.pathByRemote.get(remoteKey);
    if (pathId === undefined) {
      if (this.transport === "tcp") return; // the connection is gone
      pathId = to.engine.acceptPath(this.now, from.address);
      if (pathId === undefined) return;
      to.pathByRemote.set(remoteKey, pathId);
      to.remoteByPath.set(pathId, remoteKey);
    }
    to.engine.receive(this.now, pathId, packet);
    this.drain(to);
  }

  drain(host: Host): void {
    for (let output = host.engine.pollOutput(); output; output = host.engine.pollOutput()) {
      switch (output.kind) {
        case "event":
          host.events.push(output.event);
          break;
        case "open_path": {
          const target = formatAddress(output.address);
          if (this.transport === "udp") {
            host.pathByRemote.set(target, output.pathId);
            host.remoteByPath.set(output.pathId, target);
            host.engine.pathOpened(this.now, output.pathId);
          } else {
            const remote = this.hosts.get(target);
            const key = `conn${this.connectionSeq++}`;
            host.pathByRemote.set(`${key}:${target}`, output.pathId);
            host.remoteByPath.set(output.pathId, `${key}:${target}`);
            if (remote) {
              const accepted = remote.engine.acceptPath(this.now, { ...host.address, port: 50000 + this.connectionSeq });
              assert.ok(accepted !== undefined);
              remote.pathByRemote.set(`${key}:${formatAddress(host.address)}`, accepted);
              remote.remoteByPath.set(accepted, `${key}:${formatAddress(host.address)}`);
              host.engine.pathOpened(this.now, output.pathId);
            } else {
              const pathId = output.pathId;
              this.schedule(1, () => {
                host.engine.pathClosed(this.now, pathId, "ECONNREFUSED");
                this.drain(host);
              });
            }
          }
          break;
        }
        case "close_path": {
          const remoteKey = host.remoteByPath.get(output.pathId);
          host.remoteByPath.delete(output.pathId);
          if (remoteKey !== undefined) host.pathByRemote.delete(remoteKey);
          if (this.transport === "tcp" && remoteKey !== undefined) {
            const [key, target] = remoteKey.split(/:(.*)/s) as [string, string];
            const remote = this.hosts.get(target);
            const peerKey = `${key}:${formatAddress(host.address)}`;
            const remotePath = remote?.pathByRemote.get(peerKey);
            if (remote && remotePath !== undefined) {
              this.schedule(this.oneWayMs, () => {
                if (remote.pathByRemote.get(peerKey) !== remotePath) return;
                remote.pathByRemote.delete(peerKey);
                remote.remoteByPath.delete(remotePath);
                remote.engine.pathClosed(this.now, remotePath, "connection closed by peer");
                this.drain(remote);
              });
            }
          }
          break;
        }
        case "transmit": {
          const remoteKey = host.remoteByPath.get(output.pathId);
          assert.ok(remoteKey !== undefined, "transmit on a path the driver knows");
          const packet = output.rest === undefined ? output.packet : Buffer.concat([output.packet, ...output.rest]);
          this.onTransmit?.(host, packet);
          if (this.transport === "udp") {
            const fromKey = formatAddress(host.address);
            this.schedule(this.oneWayMs, () => this.deliver(host, remoteKey, fromKey, packet));
          } else {
            const [key, target] = remoteKey.split(/:(.*)/s) as [string, string];
            this.schedule(this.oneWayMs, () => this.deliver(host, target, `${key}:${formatAddress(host.address)}`, packet));
          }
          break;
        }
      }
    }
  }

  run(untilMs: number): void {
    while (true) {
      let nextTimer = Infinity;
      let timerHost: Host | undefined;
      for (const host of this.hosts.values()) {
        const deadline = host.engine.nextDeadline();
        if (deadline < nextTimer) {
          nextTimer = deadline;
          timerHost = host;
        }
      }
      const nextPacket = this.queue[0]?.at ?? Infinity;
      const next = Math.min(nextTimer, nextPacket);
      if (next > untilMs) break;
      this.now = Math.max(this.now, next);
      if (nextPacket <= nextTimer) {
        this.queue.shift()!.run();
      } else {
        timerHost!.engine.tick(this.now);
        this.drain(timerHost!);
      }
    }
    this.now = untilMs;
  }
}

function upPeers(host: Host): number[] {
  return host.engine
    .neighbours()
    .filter((neighbour) => neighbour.state === "up")
    .map((neighbour) => neighbour.id);
}

for (const transport of ["udp", "tcp"] as const) {
  test(`${transport}: nodes join through one seed, form a full mesh and measure RTT`, () => {
    const net = new TinyNet(transport, 10);
    const seed = net.addNode(1);
    const others = [2, 3, 4, 5].map((id) => net.addNode(id, [{ nodeId: 1, address: seed.address }]));
    net.run(20_000);
    for (const host of [seed, ...others]) {
      const expected = [1, 2, 3, 4, 5].filter((id) => id !== host.engine.id);
      assert.deepEqual(upPeers(host), expected, `node ${host.engine.id} neighbours`);
      for (const neighbour of host.engine.neighbours()) {
        assert.ok(Math.abs(neighbour.srttMs! - 20) < 0.01, `RTT ${neighbour.srttMs} ≈ 20 ms`);
        assert.equal(neighbour.loss, 0);
      }
      const ups = host.events.filter((event) => event.kind === "link_up").length;
      assert.equal(ups, 4, `node ${host.engine.id}: exactly one link_up per peer`);
      assert.equal(host.events.filter((event) => event.kind === "link_down").length, 0);
    }
  });

  test(`${transport}: data messages are delivered on both classes, from the right source`, () => {
    const net = new TinyNet(transport, 5);
    const a = net.addNode(1);
    const b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
    net.run(2000);
    const big = new Uint8Array(10_000).map((_, index) => index % 251);
    a.engine.send(net.now, 2, new TextEncoder().encode("hello"), { reliable: true });
    a.engine.send(net.now, 2, big, { reliable: true });
    a.engine.send(net.now, 2, new Uint8Array([7]), { reliable: false });
    net.drain(a);
    net.run(3000);
    const messages = b.events.filter((event) => event.kind === "message");
    assert.equal(messages.length, 3);
    // Order holds within the reliable class; a datagram may overtake it.
    const reliable = messages.filter((message) => message.reliable);
    assert.deepEqual(
      reliable.map((message) => [message.from, message.data.byteLength]),
      [
        [1, 5],
        [1, 10_000],
      ],
    );
    assert.deepEqual(Uint8Array.from(reliable[1]!.data), big);
    const datagrams = messages.filter((message) => !message.reliable);
    assert.deepEqual(datagrams.map((message) => [message.from, [...message.data]]), [[1, [7]]]);
    assert.throws(() => a.engine.send(net.now, 9, new Uint8Array(1), { reliable: true }), /no route to node 9/);
  });

  test(`${transport}: a silent peer is declared down after the link timeout, and comes back after restart`, () => {
    const net = new TinyNet(transport, 10);
    const a = net.addNode(1);
    let b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
    net.run(3000);
    assert.deepEqual(upPeers(a), [2]);
    net.remove(b); // kill -9: no goodbye
    const killedAt = net.now;
    net.run(killedAt + 10_000);
    const down = a.events.find((event) => event.kind === "link_down");
    assert.ok(down && down.kind === "link_down");
    assert.match(down.reason, /timeout/);
    assert.deepEqual(upPeers(a), []);
    b = net.addNode(2, [{ nodeId: 1, address: a.address }], { session: 99 });
    net.run(net.now + 5000);
    assert.deepEqual(upPeers(a), [2]);
    assert.deepEqual(upPeers(b), [1]);
  });
}

test("udp: a restarted peer that still has a live link on the other side gets it reset at once", () => {
  const net = new TinyNet("udp", 10);
  const a = net.addNode(1);
  let b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
  net.run(3000);
  net.remove(b);
  b = net.addNode(2, [{ nodeId: 1, address: a.address }], { session: 1234 });
  net.run(net.now + 1000);
  const downs = a.events.filter((event) => event.kind === "link_down");
  assert.equal(downs.length, 1);
  assert.match((downs[0] as { reason: string }).reason, /restarted/);
  assert.deepEqual(upPeers(a), [2]);
  assert.deepEqual(upPeers(b), [1]);
});

test("a graceful shutdown tells neighbours at once", () => {
  const net = new TinyNet("udp", 10);
  const a = net.addNode(1);
  const b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
  net.run(3000);
  b.engine.shutdown(net.now);
  net.drain(b);
  net.run(net.now + 50);
  const down = a.events.find((event) => event.kind === "link_down");
  assert.ok(down && down.kind === "link_down");
  assert.match(down.reason, /peer left/);
});

test("maxNeighbours bounds links, counting inbound and outbound", () => {
  const net = new TinyNet("udp", 5);
  const seed = net.addNode(1, [], { maxNeighbours: 2 });
  const others = [2, 3, 4, 5].map((id) => net.addNode(id, [{ nodeId: 1, address: seed.address }], { maxNeighbours: 2 }));
  net.run(20_000);
  for (const host of [seed, ...others]) assert.ok(upPeers(host).length <= 2, `node ${host.engine.id} has ${upPeers(host).length} links`);
  assert.ok(
    seed.logger.records.length >= 0 && others.some((host) => host.logger.records.some((record) => /refused the link/.test(record.message))),
    "someone was told the seed is full",
  );
});

test("a seed answering with another node id is refused with a clear log line", () => {
  const net = new TinyNet("udp", 5);
  const a = net.addNode(7);
  const b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
  net.run(3000);
  assert.deepEqual(upPeers(b), []);
  assert.ok(b.logger.records.some((record) => /this is node 7, not 1|answered as node 7|expected node 1 at this address, found node 7/.test(record.message)), JSON.stringify(b.logger.records.map((r) => r.message)));
});

test("an unreachable seed is retried with backoff and reported, not fatal", () => {
  const net = new TinyNet("tcp", 5);
  const lonely = net.addNode(2, [{ nodeId: 1, address: { transport: "tcp", host: "10.0.0.1", port: 7000 } }]);
  net.run(40_000);
  const warnings = lonely.logger.records.filter((record) => record.level === "warn" && /seed 1@.* unreachable/.test(record.message));
  assert.ok(warnings.length >= 3 && warnings.length <= 8, `${warnings.length} retries in 40 s with backoff`);
  const delays = warnings.map((record) => record.fields.retryInMs as number);
  for (let index = 1; index < delays.length; index += 1) assert.ok(delays[index]! >= delays[index - 1]!, "backoff grows");
  net.addNode(1);
  net.run(80_000);
  assert.deepEqual(upPeers(lonely), [1], "joins once the seed appears");
});

test("insecure mode: malformed and unexpected frames are counted and dropped, never thrown", () => {
  const net = new TinyNet("udp", 5);
  const a = net.addNode(1, [], { insecure: true });
  const b = net.addNode(2, [{ nodeId: 1, address: a.address }], { insecure: true });
  net.run(2000);
  const pathId = a.pathByRemote.get(formatAddress(b.address))!;
  a.engine.receive(net.now, pathId, new Uint8Array([1, 2, 3]));
  a.engine.receive(net.now, pathId, encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 5, source: 2, destination: 99, module: 2 }, new Uint8Array(3)));
  a.engine.receive(net.now, pathId, encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 5, source: 3, destination: 1, module: 2 }, new Uint8Array(3)));
  a.engine.receive(net.now, pathId, encodeFrame({ kind: FrameKind.Link, flags: 0, ttl: 1, source: 2, destination: 1, module: 1 }, new Uint8Array([250])));
  const dropped = a.engine.stats().dropped;
  assert.equal(dropped.malformed, 2);
  assert.equal(dropped.no_route, 1, "a frame for an unknown node has no route");
  assert.equal(dropped.no_link, undefined);
  // With routing, a frame from another source through neighbour 2 is a relayed frame: delivered.
  net.drain(a);
  assert.ok(a.events.some((event) => event.kind === "message" && event.from === 3), "a relayed frame is delivered with its source");
  assert.deepEqual(upPeers(a), [2], "the link survives garbage");
});

test("inbound paths that never say hello are bounded and expire", () => {
  const engine = new NodeEngine({
    nodeId: 1,
    listenAddresses: [{ transport: "udp", host: "10.0.0.1", port: 7000 }],
    seeds: [],
    maxNeighbours: 32,
    probeIntervalMs: 1000,
    linkTimeoutMs: 5000,
    udpMtu: 1400,
    rng: new SeededRng(1),
    logger: new RecordingLogger(),
  });
  engine.start(0);
  const accepted: number[] = [];
  for (let index = 0; index < 300; index += 1) {
    const pathId = engine.acceptPath(index, { transport: "tcp", host: "10.9.0.1", port: 1000 + index });
    if (pathId !== undefined) accepted.push(pathId);
  }
  assert.equal(accepted.length, 256, "half-open paths are capped");
  assert.equal(engine.stats().dropped.half_open_limit, 44);
  assert.ok(engine.nextDeadline() <= 3000, "the oldest half-open path has a deadline");
  engine.tick(3100);
  const closed: number[] = [];
  for (let output = engine.pollOutput(); output; output = engine.pollOutput()) if (output.kind === "close_path") closed.push(output.pathId);
  assert.deepEqual(closed, accepted.slice(0, 101), "those older than the connect timeout are closed");
  assert.notEqual(engine.acceptPath(3100, { transport: "tcp", host: "10.9.0.2", port: 1 }), undefined, "room again");
});

test("a second key claiming a live neighbour's id is refused, both sides log why; the link stays", () => {
  const net = new TinyNet("udp", 5);
  const a = net.addNode(1);
  const b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
  net.run(3000);
  assert.deepEqual(upPeers(a), [2]);
  // An impostor at another address, with another key, claims node 2.
  const impostor = net.addNode(2, [{ nodeId: 1, address: a.address }], { session: 4242, host: "10.0.9.9" });
  net.run(net.now + 2000);
  assert.equal(a.events.filter((event) => event.kind === "link_down").length, 0, "the real link was not dropped");
  assert.ok(a.logger.records.some((record) => /refused a second key for node 2/.test(record.message)), "the refusing side logs why");
  assert.ok(impostor.logger.records.some((record) => /refused the handshake: it refused us.*node 2 is bound to key/.test(record.message)), "the refused side logs why");
  assert.ok((a.engine.stats().dropped.key_conflict ?? 0) > 0);
  assert.deepEqual(upPeers(impostor), []);
  void b;
});

test("tcp: a burst of large messages shares records of at most STREAM_RECORD_MAX_BYTES and arrives whole, in order", () => {
  const net = new TinyNet("tcp", 5);
  const a = net.addNode(1);
  const b = net.addNode(2, [{ nodeId: 1, address: a.address }]);
  net.run(2000);
  const records: number[] = [];
  net.onTransmit = (from, packet) => {
    if (from !== a) return;
    assert.equal(
      forEachUnit(packet, (unit) => {
        if (unit[0] === UnitType.Record) records.push(unit.byteLength - RECORD_OVERHEAD_BYTES);
      }),
      undefined,
    );
  };
  // Twelve 64 KiB messages, small ones between, and one frame larger than a record's bound.
  const sizes = [...Array<number>(12).fill(65_536), 100, 65_536, 1_500_000, 300, 65_536, 65_536, 7];
  const sent = sizes.map((size, index) => Uint8Array.from({ length: size }, (_, at) => (at * 31 + index) % 251));
  for (const data of sent) a.engine.send(net.now, 2, data, { reliable: true });
  net.drain(a);
  net.run(3000);
  const received = b.events.flatMap((event) => (event.kind === "message" ? [event.data] : []));
  assert.equal(received.length, sent.length);
  received.forEach((data, index) => assert.deepEqual(Uint8Array.from(data), sent[index], `message ${index}`));
  const oversized = FRAME_HEADER_BYTES + 1_500_000;
  for (const size of records) assert.ok(size <= STREAM_RECORD_MAX_BYTES || size === oversized, `record of ${size} plaintext bytes`);
  assert.equal(records.filter((size) => size === oversized).length, 1, "the large frame is a record of its own");
  // One record per message would be 19 records. Shared: large frames fill records up to the
  // bound, and a small frame closes its record (nothing small waits for large frames behind it).
  const frame = (size: number): number => FRAME_HEADER_BYTES + size;
  assert.deepEqual(records.slice(0, 6), [
    7 * frame(65_536), // an eighth would pass STREAM_RECORD_MAX_BYTES
    5 * frame(65_536) + frame(100), // the small frame ends the record
    frame(65_536), // the oversized frame does not fit behind it
    oversized,
    frame(300),
    2 * frame(65_536) + frame(7),
  ]);
  assert.ok(7 * frame(65_536) <= STREAM_RECORD_MAX_BYTES && 8 * frame(65_536) > STREAM_RECORD_MAX_BYTES);
});

/**
 * The engine's data plane, frame by frame: a relay forwards on the header alone (TTL decremented
 * in place, the same bytes otherwise), drops and counts a frame whose TTL runs out, drops and
 * counts a frame for an unknown destination and reports it to the source, and dispatches LINK
 * frames by module. Three engines (1 — 2 — 3, no 1–3 link) wired by hand over a fake UDP.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Address } from "../../src/core/address.js";
import { nullLogger } from "../../src/core/log.js";
import { ModuleId } from "../../src/core/module.js";
import { SeededRng } from "../../src/core/rng.js";
import { NodeEngine } from "../../src/node/engine.js";
import { ENGINE_DEFAULTS } from "../../src/node/engine-config.js";
import type { NodeEvent, PathId } from "../../src/node/io.js";
import { FrameKind, encodeFrame, forEachFrame } from "../../src/wire/frame.js";

interface Host {
  engine: NodeEngine;
  address: Address;
  events: NodeEvent[];
  /** remote node id → path id at this host */
  pathTo: Map<number, PathId>;
  sent: { to: number; kind: number; module: number; ttl: number; source: number; destination: number; payload: Uint8Array }[];
}

/** Hosts 1, 2, 3 on a fake UDP with a fixed 5 ms one-way delay; links only where `allowed`. */
class Line {
  now = 0;
  readonly hosts = new Map<number, Host>();
  private queue: { at: number; run: () => void }[] = [];

  constructor(private readonly allowed: (a: number, b: number) => boolean) {
    for (const id of [1, 2, 3]) {
      const address: Address = { transport: "udp", host: `10.0.0.${id}`, port: 7000 };
      const engine = new NodeEngine({
        ...ENGINE_DEFAULTS,
        nodeId: id,
        listenAddresses: [address],
        seeds: id === 2 ? [] : [{ nodeId: 2, address: { transport: "udp", host: "10.0.0.2", port: 7000 } }],
        rng: new SeededRng(id),
        logger: nullLogger,
        // The data plane on plaintext frames: these tests read and inject frames on the wire.
        // (Secured links are covered by engine.test.ts and the e2e security tests.)
        insecure: true,
      });
      this.hosts.set(id, { engine, address, events: [], pathTo: new Map(), sent: [] });
    }
    for (const host of this.hosts.values()) {
      host.engine.start(0);
      this.drain(host);
    }
  }

  drain(host: Host): void {
    for (let output = host.engine.pollOutput(); output; output = host.engine.pollOutput()) {
      if (output.kind === "event") host.events.push(output.event);
      else if (output.kind === "open_path") {
        const to = Number(output.address.host.split(".")[3]);
        host.pathTo.set(to, output.pathId);
        host.engine.pathOpened(this.now, output.pathId);
      } else if (output.kind === "transmit") {
        const to = [...host.pathTo].find(([, pathId]) => pathId === output.pathId)?.[0];
        if (to === undefined) continue;
        const packet = output.packet.slice();
        forEachFrame(packet, (header, payload) => host.sent.push({ to, kind: header.kind, module: header.module, ttl: header.ttl, source: header.source, destination: header.destination, payload: payload.slice() }));
        const from = host.engine.id;
        if (!this.allowed(from, to)) continue;
        this.queue.push({ at: this.now + 5, run: () => this.deliver(from, to, packet) });
      }
    }
  }

  deliver(from: number, to: number, packet: Uint8Array): void {
    const host = this.hosts.get(to)!;
    let pathId = host.pathTo.get(from);
    if (pathId === undefined) {
      pathId = host.engine.acceptPath(this.now, this.hosts.get(from)!.address);
      if (pathId === undefined) return;
      host.pathTo.set(from, pathId);
    }
    host.engine.receive(this.now, pathId, packet);
    this.drain(host);
  }

  run(until: number): void {
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const deadlines = [...this.hosts.values()].map((host) => host.engine.nextDeadline());
      const next = Math.min(this.queue[0]?.at ?? Infinity, ...deadlines);
      if (next > until) break;
      this.now = Math.max(this.now, next);
      if (this.queue[0] !== undefined && this.queue[0].at <= this.now) {
        this.queue.shift()!.run();
        continue;
      }
      for (const host of this.hosts.values()) {
        if (host.engine.nextDeadline() <= this.now) {
          host.engine.tick(this.now);
          this.drain(host);
        }
      }
    }
    this.now = until;
  }
}

function line(): Line {
  const net = new Line((a, b) => !((a === 1 && b === 3) || (a === 3 && b === 1)));
  net.run(3000);
  assert.equal(net.hosts.get(1)!.engine.nextHop(3), 2, "1 reaches 3 through 2");
  return net;
}

test("a relay forwards on the header alone: the same bytes, TTL minus one", () => {
  const net = line();
  const [one, two] = [net.hosts.get(1)!, net.hosts.get(2)!];
  two.sent.length = 0;
  net.hosts.get(1)!.engine.send(net.now, 3, new Uint8Array([9, 8, 7]), { reliable: false });
  net.drain(one);
  net.run(net.now + 50);
  const relayed = two.sent.filter((frame) => frame.kind === FrameKind.Routed && frame.module === ModuleId.Data);
  assert.deepEqual(
    relayed.map((frame) => [frame.to, frame.source, frame.destination, frame.ttl, [...frame.payload]]),
    [[3, 1, 3, 31, [9, 8, 7]]],
  );
  assert.ok(net.hosts.get(3)!.events.some((event) => event.kind === "message" && event.from === 1 && event.data[0] === 9));
  assert.equal(two.engine.stats().framesForwarded, 1);
});

test("TTL: a frame that would leave a relay with TTL 0 is dropped and counted", () => {
  const net = line();
  const two = net.hosts.get(2)!;
  const frame = encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 1, source: 1, destination: 3, module: ModuleId.Data }, new Uint8Array(4));
  two.engine.receive(net.now, two.pathTo.get(1)!, frame);
  two.engine.receive(net.now, two.pathTo.get(1)!, encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 0, source: 1, destination: 3, module: ModuleId.Data }, new Uint8Array(4)));
  net.drain(two);
  assert.equal(two.engine.stats().dropped.ttl_expired, 2);
  assert.equal(two.engine.stats().framesForwarded, 0);
});

test("an unknown destination is dropped, counted, and reported to the source", () => {
  const net = line();
  const [one, two] = [net.hosts.get(1)!, net.hosts.get(2)!];
  two.sent.length = 0;
  const frame = encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 9, source: 1, destination: 99, module: ModuleId.Data }, new Uint8Array(4));
  two.engine.receive(net.now, two.pathTo.get(1)!, frame);
  two.engine.receive(net.now, two.pathTo.get(1)!, frame.slice());
  net.drain(two);
  assert.equal(two.engine.stats().dropped.no_route, 2);
  const reports = two.sent.filter((sent) => sent.kind === FrameKind.Routed && sent.module === ModuleId.Routing);
  assert.equal(reports.length, 1, "one report: rate limited per (source, destination)");
  assert.deepEqual([reports[0]!.to, reports[0]!.destination], [1, 1]);
  net.run(net.now + 50);
  assert.ok(one.events.some((event) => event.kind === "unreachable" && event.destination === 99 && event.reportedBy === 2));
});

test("LINK frames go to their module; an unknown module is dropped, never taken for a link message", () => {
  const net = line();
  const two = net.hosts.get(2)!;
  const pathId = two.pathTo.get(1)!;
  two.engine.receive(net.now, pathId, encodeFrame({ kind: FrameKind.Link, flags: 0, ttl: 1, source: 1, destination: 2, module: 77 }, new Uint8Array([4, 0, 0, 0, 1])));
  two.engine.receive(net.now, pathId, encodeFrame({ kind: FrameKind.Link, flags: 0, ttl: 1, source: 1, destination: 2, module: ModuleId.Routing }, new Uint8Array([99])));
  const dropped = two.engine.stats().dropped;
  assert.equal(dropped.unknown_module, 1);
  assert.equal(dropped.malformed, 1, "a bad route message is malformed");
  assert.ok(two.engine.neighbours().some((neighbour) => neighbour.id === 1 && neighbour.state === "up"), "the link survives");
});

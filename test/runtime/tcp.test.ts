import { after, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import fc from "fast-check";
import { nullLogger } from "../../src/core/log.js";
import type { Address } from "../../src/core/address.js";
import type { PathId } from "../../src/node/io.js";
import { FRAME_HEADER_BYTES, FrameKind, MAX_FRAME_PAYLOAD_BYTES, encodeFrame, forEachFrame } from "../../src/wire/frame.js";
import { FRAME_FRAMING, FrameReassembler, TcpTransport } from "../../src/runtime/tcp.js";
import type { TransportSink } from "../../src/runtime/transport.js";

function frame(seq: number, size: number): Uint8Array {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (seq * 31 + i) & 0xff;
  return encodeFrame({ kind: FrameKind.Routed, flags: 0, ttl: 8, source: seq + 1, destination: 2, module: 2 }, payload);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Feeds `chunks`, checks that every delivered packet holds whole frames, returns all bytes delivered. */
function feed(chunks: Uint8Array[]): { bytes: Uint8Array; packets: number; error: string | undefined } {
  const reassembler = new FrameReassembler(FRAME_FRAMING);
  const delivered: Uint8Array[] = [];
  let error: string | undefined;
  for (const chunk of chunks) {
    error = reassembler.push(chunk, (packet) => {
      assert.equal(forEachFrame(packet, () => {}), undefined, "a delivered packet holds whole frames only");
      delivered.push(packet.slice());
      return true;
    });
    if (error !== undefined) break;
  }
  return { bytes: concat(delivered), packets: delivered.length, error };
}

test("reassembly: a stream split at every byte boundary gives back the same frames", () => {
  const stream = concat([frame(0, 0), frame(1, 5), frame(2, 100), frame(3, 1)]);
  for (let cut = 0; cut <= stream.byteLength; cut++) {
    const result = feed([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.equal(result.error, undefined);
    assert.deepEqual(result.bytes, stream, `cut at ${cut}`);
  }
});

test("reassembly: one byte at a time", () => {
  const stream = concat([frame(0, 3), frame(1, 40), frame(2, 0)]);
  const chunks = Array.from(stream, (_, i) => stream.subarray(i, i + 1));
  const result = feed(chunks);
  assert.equal(result.error, undefined);
  assert.deepEqual(result.bytes, stream);
  assert.equal(result.packets, 3);
});

test("reassembly: several whole frames in one chunk are delivered as one packet", () => {
  const stream = concat([frame(0, 10), frame(1, 20), frame(2, 30), frame(3, 40)]);
  const result = feed([stream]);
  assert.equal(result.packets, 1);
  assert.deepEqual(result.bytes, stream);
  let count = 0;
  forEachFrame(result.bytes, () => count++);
  assert.equal(count, 4);
});

test("reassembly: random chunkings of random frames (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 30 }),
      (sizes, cuts) => {
        const stream = concat(sizes.map((size, i) => frame(i, size)));
        const chunks: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < stream.byteLength; i++) {
          const size = cuts[i % cuts.length]!;
          chunks.push(stream.subarray(at, at + size));
          at += size;
        }
        const result = feed(chunks);
        assert.equal(result.error, undefined);
        assert.deepEqual(result.bytes, stream);
      },
    ),
    { numRuns: 300 },
  );
});

test("reassembly: a large frame across many chunks is held until whole, then delivered once", () => {
  const big = frame(7, 1_000_000);
  const reassembler = new FrameReassembler(FRAME_FRAMING);
  const packets: Uint8Array[] = [];
  for (let at = 0; at < big.byteLength; at += 65536) {
    reassembler.push(big.subarray(at, at + 65536), (p) => (packets.push(p), true));
    if (at + 65536 < big.byteLength) assert.equal(reassembler.bufferedBytes, Math.min(at + 65536, big.byteLength));
  }
  assert.equal(packets.length, 1);
  assert.deepEqual(packets[0], big);
  assert.equal(reassembler.bufferedBytes, 0);
});

test("reassembly: an invalid header is an error; frames before it are delivered; later pushes keep failing", () => {
  const good = frame(0, 12);
  const bad = frame(1, 12);
  bad[0] = 99; // unknown version
  const result = feed([concat([good, bad, frame(2, 3)])]);
  assert.match(result.error ?? "", /version/);
  assert.deepEqual(result.bytes, good);

  // The same, with the bad header split across chunks.
  const stream = concat([good, bad]);
  for (let cut = good.byteLength; cut < good.byteLength + FRAME_HEADER_BYTES; cut++) {
    const split = feed([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.match(split.error ?? "", /version/, `cut at ${cut}`);
    assert.deepEqual(split.bytes, good);
  }

  const reassembler = new FrameReassembler(FRAME_FRAMING);
  assert.ok(reassembler.push(bad, () => true));
  assert.ok(reassembler.push(good, () => assert.fail("no delivery after an error")));
});

test("reassembly: a payload length over the limit is refused before anything is buffered", () => {
  const header = frame(0, 0);
  new DataView(header.buffer).setUint32(16, MAX_FRAME_PAYLOAD_BYTES + 1);
  const reassembler = new FrameReassembler(FRAME_FRAMING);
  assert.match(reassembler.push(header, () => true) ?? "", /exceeds/);
  assert.equal(reassembler.bufferedBytes, 0);
});

test("reassembly: deliver returning false stops at once", () => {
  const stream = concat([frame(0, 10), frame(1, 10)]);
  const reassembler = new FrameReassembler(FRAME_FRAMING);
  let calls = 0;
  // First push leaves a partial frame; second completes it and holds more: stop after the first delivery.
  reassembler.push(stream.subarray(0, 15), () => (calls++, false));
  reassembler.push(stream.subarray(15), () => (calls++, false));
  assert.equal(calls, 1);
});

// ---- the transport over real sockets ----

class RecordingSink implements TransportSink {
  nextPath = 100;
  accepted: Address[] = [];
  opened: PathId[] = [];
  closed: { pathId: PathId; reason: string }[] = [];
  received: { pathId: PathId; packet: Uint8Array }[] = [];
  waiters: (() => void)[] = [];
  acceptPath(address: Address): PathId | undefined {
    this.accepted.push(address);
    this.notify();
    return this.nextPath++;
  }
  pathOpened(pathId: PathId): void {
    this.opened.push(pathId);
    this.notify();
  }
  pathClosed(pathId: PathId, reason: string): void {
    this.closed.push({ pathId, reason });
    this.notify();
  }
  receive(pathId: PathId, packet: Uint8Array): void {
    this.received.push({ pathId, packet: packet.slice() });
    this.notify();
  }
  writable(): void {}
  private notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
  async until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

const transports: TcpTransport[] = [];
after(async () => {
  await Promise.all(transports.map((t) => t.shutdown(100)));
});

test("tcp transport: frames written in pieces arrive whole; an invalid header closes the connection and reports it", async () => {
  const sink = new RecordingSink();
  const tcp = await TcpTransport.listen({ host: "127.0.0.1", port: 0, logger: nullLogger, framing: FRAME_FRAMING });
  transports.push(tcp);
  tcp.setSink(sink);
  const client = net.connect({ host: "127.0.0.1", port: tcp.localAddress.port });
  await new Promise<void>((resolve) => client.once("connect", resolve));
  const stream = concat([frame(0, 10), frame(1, 2000)]);
  client.write(stream.subarray(0, 7));
  await sink.until(() => sink.accepted.length === 1);
  assert.equal(sink.accepted[0]!.host, "127.0.0.1");
  assert.equal(sink.accepted[0]!.port, client.localPort);
  client.write(stream.subarray(7, 1000));
  client.write(stream.subarray(1000));
  await sink.until(() => concat(sink.received.map((r) => r.packet)).byteLength === stream.byteLength);
  assert.deepEqual(concat(sink.received.map((r) => r.packet)), stream);

  const closedByUs = new Promise<void>((resolve) => client.once("close", () => resolve()));
  client.on("error", () => {});
  const garbage = frame(2, 4);
  garbage[14] = 1; // reserved byte set
  client.write(garbage);
  await sink.until(() => sink.closed.length === 1);
  assert.equal(sink.closed[0]!.pathId, 100);
  assert.match(sink.closed[0]!.reason, /invalid unit on tcp stream: reserved header bytes are not zero/);
  await closedByUs;
  assert.equal(tcp.counters.get("invalid_frame"), 1);
  assert.equal(tcp.connectionCount, 0);
});

test("tcp transport: outbound open reports pathOpened; remote close reports pathClosed; engine close does not", async () => {
  const sink = new RecordingSink();
  const tcp = await TcpTransport.listen({ host: "127.0.0.1", port: 0, logger: nullLogger, framing: FRAME_FRAMING });
  transports.push(tcp);
  tcp.setSink(sink);
  const server = net.createServer();
  const serverSockets: net.Socket[] = [];
  server.on("connection", (socket) => serverSockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    tcp.open(1, { transport: "tcp", host: "127.0.0.1", port });
    tcp.open(2, { transport: "tcp", host: "127.0.0.1", port });
    await sink.until(() => sink.opened.length === 2 && serverSockets.length === 2);
    const received = Buffer.alloc(0);
    let got = received;
    serverSockets[0]!.on("data", (chunk: Buffer) => (got = Buffer.concat([got, chunk])));
    tcp.transmit(1, frame(0, 10));
    tcp.transmit(1, frame(1, 10));
    assert.ok(tcp.queuedBytes(1) >= 0);
    tcp.flush();
    await sink.until(() => got.byteLength === 2 * (FRAME_HEADER_BYTES + 10));
    // The engine closes path 1: no pathClosed for it.
    tcp.close(1);
    // The remote closes path 2: pathClosed.
    serverSockets[1]!.destroy();
    await sink.until(() => sink.closed.length === 1);
    assert.equal(sink.closed[0]!.pathId, 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(sink.closed.length, 1);
  } finally {
    for (const socket of serverSockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("tcp transport: a refused connect reports pathClosed with the reason", async () => {
  const sink = new RecordingSink();
  const tcp = await TcpTransport.listen({ host: "127.0.0.1", port: 0, logger: nullLogger, framing: FRAME_FRAMING });
  transports.push(tcp);
  tcp.setSink(sink);
  // A port that was free a moment ago.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  tcp.open(5, { transport: "tcp", host: "127.0.0.1", port });
  await sink.until(() => sink.closed.length === 1);
  assert.equal(sink.closed[0]!.pathId, 5);
  assert.match(sink.closed[0]!.reason, /ECONNREFUSED/);
  assert.deepEqual(sink.opened, []);
});

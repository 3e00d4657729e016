import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SkeinError } from "../../src/core/errors.js";
import { createNode, type SkeinNode } from "../../src/index.js";
import type { RuntimeNode } from "../../src/runtime/node.js";
import { closeAll, nextEvent, waitFor } from "./helpers.js";

const opened: SkeinNode[] = [];
after(() => closeAll(opened));

async function start(options: Parameters<typeof createNode>[0]): Promise<SkeinNode> {
  const node = await createNode({ logLevel: "silent", ...options });
  opened.push(node);
  return node;
}

async function pair(transport: "udp" | "tcp", extra: Parameters<typeof createNode>[0] = {}): Promise<[SkeinNode, SkeinNode]> {
  const port = transport === "udp" ? { udpPort: 0 } : { tcpPort: 0 };
  const a = await start({ ...port, ...extra });
  const b = await start({ ...port, ...extra, seeds: [`${a.id}@${a.addresses[0]}`] });
  await Promise.all([nextEvent(a, "link_up", (e) => e.peer === b.id), nextEvent(b, "link_up", (e) => e.peer === a.id)]);
  return [a, b];
}

function message(index: number, size: number): Uint8Array {
  const data = new Uint8Array(size);
  new DataView(data.buffer).setUint32(0, index);
  for (let i = 4; i < size; i++) data[i] = (index + i) & 0xff;
  return data;
}

for (const transport of ["udp", "tcp"] as const) {
  describe(`two nodes over ${transport}`, () => {
    test("form a link and exchange reliable messages in order, both ways", async () => {
      const [a, b] = await pair(transport);
      assert.equal(a.addresses[0]!.split("/")[3], transport);
      const aSeesB = a.neighbours().find((n) => n.id === b.id);
      assert.ok(aSeesB);
      assert.equal(aSeesB.transport, transport);
      assert.equal(aSeesB.state, "up");
      assert.equal(aSeesB.inbound, true);
      assert.equal(b.neighbours().find((n) => n.id === a.id)?.inbound, false);

      const count = 2000;
      const sizes = [4, 100, 1024, 5000, 70_000];
      const inboxA = a.messages()[Symbol.asyncIterator]();
      const inboxB = b.messages()[Symbol.asyncIterator]();
      const sending = Promise.all([
        (async () => {
          for (let i = 0; i < count; i++) await b.send(a.id, message(i, sizes[i % sizes.length]!));
        })(),
        (async () => {
          for (let i = 0; i < count; i++) await a.send(b.id, message(i, sizes[i % sizes.length]!));
        })(),
      ]);
      for (const [inbox, from] of [[inboxA, b.id], [inboxB, a.id]] as const) {
        for (let i = 0; i < count; i++) {
          const next = await inbox.next();
          assert.equal(next.done, false);
          const received = next.value!;
          assert.equal(received.from, from);
          assert.equal(received.reliable, true);
          assert.deepEqual(received.data, message(i, sizes[i % sizes.length]!), `message ${i} from ${from}`);
        }
      }
      await sending;
      const stats = a.stats();
      assert.ok(stats.framesIn >= count);
      assert.equal(stats.links.length, 1);
    });

    test("datagram-class messages arrive (loopback: no loss expected at this rate)", async () => {
      const [a, b] = await pair(transport);
      const got: number[] = [];
      a.on("message", (m) => {
        if (!m.reliable) got.push(new DataView(m.data.buffer, m.data.byteOffset).getUint32(0));
      });
      for (let i = 0; i < 50; i++) await b.send(a.id, message(i, 200), { reliable: false });
      await waitFor(() => got.length === 50, "50 datagrams");
      assert.deepEqual(got.slice().sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    });

    test("errors: NO_ROUTE to a stranger, CLOSED after close; close is idempotent and the peer sees the link go down", async () => {
      const [a, b] = await pair(transport);
      await assert.rejects(a.send(4_000_000_000, Uint8Array.of(1)), (e: unknown) => e instanceof SkeinError && e.code === "NO_ROUTE");
      const down = nextEvent(a, "link_down", (e) => e.peer === b.id);
      await Promise.all([b.close(), b.close()]);
      await b.close();
      await assert.rejects(b.send(a.id, Uint8Array.of(1)), (e: unknown) => e instanceof SkeinError && e.code === "CLOSED");
      const event = await down;
      assert.match(event.reason, /peer left|transport closed/);
      // The iterator of a closed node finishes.
      const done = await b.messages()[Symbol.asyncIterator]().next();
      assert.equal(done.done, true);
    });
  });
}

test("a congested link makes send() wait instead of queueing without bound", async () => {
  const [a, b] = await pair("tcp");
  const runtimeB = b as unknown as RuntimeNode;
  // Stop reading on a's side by blocking its event loop is not possible in-process; instead fill
  // b's socket faster than loopback drains it and check the queue stays near the high-water mark.
  const big = new Uint8Array(512 * 1024);
  let maxQueued = 0;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) {
    sends.push(b.send(a.id, big));
    maxQueued = Math.max(maxQueued, runtimeB.queuedBytes(a.id));
  }
  let received = 0;
  a.on("message", () => received++);
  await Promise.all(sends);
  assert.ok(maxQueued <= 8 * 1024 * 1024, `queued ${maxQueued} bytes below the API`);
  await waitFor(() => received === 64, "64 large messages");
});

test("--emulate-latency: the link RTT reflects the matrix", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-lat-"));
  try {
    const file = path.join(dir, "rtt.json");
    writeFileSync(file, JSON.stringify({ "101": { "102": 60 }, "102": { "101": 60 } }));
    const a = await start({ nodeId: 101, udpPort: 0, emulateLatency: file, probeIntervalMs: 100, linkTimeoutMs: 2000 });
    const b = await start({ nodeId: 102, udpPort: 0, emulateLatency: file, probeIntervalMs: 100, linkTimeoutMs: 2000, seeds: [`101@${a.addresses[0]}`] });
    const started = performance.now();
    await nextEvent(b, "link_up");
    // hello then hello_ack: one emulated round trip at least.
    assert.ok(performance.now() - started >= 55, `link came up after ${performance.now() - started} ms`);
    // Smoothed RTT settles near the matrix's 60 ms (never below it: the delay is a floor).
    let lowest = Infinity;
    await waitFor(() => {
      const srtt = b.neighbours()[0]?.srttMs;
      if (srtt !== undefined) lowest = Math.min(lowest, srtt);
      return srtt !== undefined && srtt >= 55 && srtt < 100;
    }, "the smoothed RTT to settle near 60 ms", 8000);
    assert.ok(lowest >= 55, `srtt went down to ${lowest} ms, below the emulated 60 ms`);
    const reply = nextEvent(b, "message");
    await a.send(102, Uint8Array.of(7));
    assert.deepEqual((await reply).data, Uint8Array.of(7));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a process with nodes exits by itself once they are closed", async () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const index = path.resolve(here, "../../src/index.js");
  const script = `
    import { createNode } from ${JSON.stringify(index)};
    const a = await createNode({ udpPort: 0, tcpPort: 0, webAddr: "127.0.0.1:0", logLevel: "silent" });
    const b = await createNode({ tcpPort: 0, logLevel: "silent", seeds: [a.id + "@" + a.addresses[1]] });
    await new Promise((resolve) => b.on("link_up", resolve));
    await fetch(a.webUrl + "/metrics");
    await b.close();
    await a.close();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve(null);
    }, 15_000);
    child.on("exit", (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  assert.equal(code, 0, `child did not exit cleanly (code ${code}); stderr: ${stderr}`);
});

test("close() called from an event listener still says goodbye (UDP peer sees the link down at once)", async () => {
  const [a, b] = await pair("udp");
  const closed = new Promise<void>((resolve) => {
    b.on("message", () => {
      void b.close().then(resolve);
    });
  });
  const down = nextEvent(a, "link_down", (e) => e.peer === b.id, 2000);
  await a.send(b.id, Uint8Array.of(1));
  await closed;
  assert.match((await down).reason, /peer left/);
});

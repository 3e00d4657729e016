import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { SkeinError } from "../../src/core/errors.js";
import { createNode } from "../../src/index.js";
import type { NodeOptions } from "../../src/node/options.js";
import { validateNodeOptions } from "../../src/runtime/node.js";
import { parseWebAddr } from "../../src/runtime/http.js";

function expectBadOption(options: unknown, pattern: RegExp): void {
  assert.throws(
    () => validateNodeOptions(options as NodeOptions),
    (error: unknown) => {
      assert.ok(error instanceof SkeinError, `expected a SkeinError, got ${String(error)}`);
      assert.equal(error.code, "BAD_OPTION");
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("options: defaults, and udpPort 0 when no port is given", () => {
  const resolved = validateNodeOptions({});
  assert.equal(resolved.udpPort, 0);
  assert.equal(resolved.tcpPort, undefined);
  assert.equal(resolved.bind, "127.0.0.1");
  assert.equal(resolved.maxNeighbours, 32);
  assert.equal(resolved.logLevel, "info");
  assert.equal(resolved.probeIntervalMs, 1000);
  assert.equal(resolved.linkTimeoutMs, 5000);
  assert.equal(resolved.udpMtu, 1400);
  assert.deepEqual(resolved.seeds, []);
  assert.equal(validateNodeOptions(undefined).udpPort, 0);

  const only = validateNodeOptions({ tcpPort: 4000, seeds: ["7@/ip4/10.0.0.1/tcp/4001"], webAddr: "localhost:0", logLevel: "silent" });
  assert.equal(only.udpPort, undefined);
  assert.equal(only.tcpPort, 4000);
  assert.deepEqual(only.seeds, [{ nodeId: 7, address: { transport: "tcp", host: "10.0.0.1", port: 4001 } }]);
  assert.deepEqual(only.webAddr, { host: "localhost", port: 0 });
  assert.deepEqual(validateNodeOptions({ udpPort: 1, ["colour" as string]: "red" } as NodeOptions).unknownKeys, ["colour"]);
});

test("options: each bad value is named with what is expected", () => {
  expectBadOption("udp", /bad options "udp": expected an object/);
  expectBadOption({ nodeId: 0 }, /bad nodeId 0: expected an integer in 1\.\.4294967295/);
  expectBadOption({ nodeId: 2 ** 32 }, /bad nodeId 4294967296/);
  expectBadOption({ nodeId: "5" }, /bad nodeId "5"/);
  expectBadOption({ udpPort: 65536 }, /bad udpPort 65536: expected an integer in 0\.\.65535/);
  expectBadOption({ udpPort: -1 }, /bad udpPort -1/);
  expectBadOption({ tcpPort: 1.5 }, /bad tcpPort 1\.5/);
  expectBadOption({ tcpPort: "80" }, /bad tcpPort "80"/);
  expectBadOption({ bind: "localhost" }, /bad bind "localhost": expected an IPv4 address/);
  expectBadOption({ bind: "256.0.0.1" }, /bad bind "256\.0\.0\.1"/);
  expectBadOption({ seeds: "1@/ip4/127.0.0.1/udp/1" }, /bad seeds "1@\/ip4\/127\.0\.0\.1\/udp\/1": expected a list/);
  expectBadOption({ seeds: ["/ip4/127.0.0.1/udp/1"] }, /bad seed "\/ip4\/127\.0\.0\.1\/udp\/1": expected NODEID@ADDRESS/);
  expectBadOption({ seeds: ["1@/ip4/127.0.0.1/sctp/1"] }, /transport "sctp"/);
  expectBadOption({ seeds: [5] }, /bad seed 5/);
  expectBadOption({ maxNeighbours: 0 }, /bad maxNeighbours 0: expected an integer in 1\.\./);
  expectBadOption({ webAddr: "8080" }, /bad webAddr "8080": expected HOST:PORT/);
  expectBadOption({ webAddr: "127.0.0.1:99999" }, /bad webAddr "127\.0\.0\.1:99999"/);
  expectBadOption({ emulateLatency: "" }, /bad emulateLatency "": expected the path/);
  expectBadOption({ logLevel: "verbose" }, /bad logLevel "verbose": expected one of debug, info, warn, error, silent/);
  expectBadOption({ probeIntervalMs: 0 }, /bad probeIntervalMs 0/);
  expectBadOption({ linkTimeoutMs: Number.NaN }, /bad linkTimeoutMs NaN/);
  expectBadOption({ probeIntervalMs: 1000, linkTimeoutMs: 800 }, /linkTimeoutMs 800: expected more than probeIntervalMs \(1000\)/);
  expectBadOption({ udpMtu: 70000 }, /bad udpMtu 70000: expected an integer in 512\.\.65507/);
});

test("webAddr parsing", () => {
  assert.deepEqual(parseWebAddr("127.0.0.1:8080"), { host: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseWebAddr("0.0.0.0:0"), { host: "0.0.0.0", port: 0 });
  assert.throws(() => parseWebAddr("example.com:80"), /BAD_OPTION|bad webAddr/);
});

test("createNode rejects bad options with BAD_OPTION before binding anything", async () => {
  await assert.rejects(createNode({ udpPort: 70000, logLevel: "silent" }), (error: unknown) => {
    assert.ok(error instanceof SkeinError);
    assert.equal(error.code, "BAD_OPTION");
    assert.match(error.message, /udpPort 70000/);
    return true;
  });
});

test("createNode: a latency file that cannot be read is BAD_CONFIG", async () => {
  await assert.rejects(createNode({ emulateLatency: "/nonexistent/skein-rtt.json", logLevel: "silent" }), (error: unknown) => {
    assert.ok(error instanceof SkeinError);
    assert.equal(error.code, "BAD_CONFIG");
    assert.match(error.message, /\/nonexistent\/skein-rtt\.json/);
    return true;
  });
});

test("createNode: a UDP port in use is PORT_IN_USE with what to do", async () => {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  try {
    await assert.rejects(createNode({ udpPort: port, logLevel: "silent" }), (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, "PORT_IN_USE");
      assert.equal(error.message, `UDP port ${port} on 127.0.0.1 is already in use; pick another with --udp-port or use 0 for any free port`);
      return true;
    });
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
});

test("createNode: a TCP port in use is PORT_IN_USE, and the UDP socket bound before it is released", async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  // Find a free UDP port, ask for it with the busy TCP port, then check it was freed again.
  const probe = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => probe.bind(0, "127.0.0.1", resolve));
  const udpPort = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  try {
    await assert.rejects(createNode({ udpPort, tcpPort: port, logLevel: "silent" }), (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, "PORT_IN_USE");
      assert.match(error.message, new RegExp(`TCP port ${port} on 127\\.0\\.0\\.1 is already in use; pick another with --tcp-port`));
      return true;
    });
    const again = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.bind(udpPort, "127.0.0.1", resolve);
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("createNode: an HTTP port in use is PORT_IN_USE and the node's sockets are closed", async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await assert.rejects(createNode({ tcpPort: 0, webAddr: `127.0.0.1:${port}`, logLevel: "silent" }), (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, "PORT_IN_USE");
      assert.match(error.message, new RegExp(`HTTP port ${port} on 127\\.0\\.0\\.1 is already in use; pick another with --web-addr`));
      return true;
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("createNode: bind to an address of another host is BAD_OPTION", async () => {
  await assert.rejects(createNode({ bind: "192.0.2.1", udpPort: 0, logLevel: "silent" }), (error: unknown) => {
    assert.ok(error instanceof SkeinError);
    assert.equal(error.code, "BAD_OPTION");
    assert.match(error.message, /192\.0\.2\.1: it is not an address of this host/);
    return true;
  });
});

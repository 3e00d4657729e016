/**
 * Secure by default, with real `skein node` processes on 127.0.0.1 (port 0, always stopped):
 *
 *  - network key: the same key links; another key, or none, gives no link and a log line on both
 *    sides saying why;
 *  - CA: a valid certificate links; a foreign CA's or an expired one is refused with a log line on
 *    both sides; a certificate for another NodeId keeps the node from starting, saying why;
 *  - a TCP proxy between two nodes records every byte: a distinctive payload never appears in the
 *    capture; a flipped byte or a replayed record is refused and counted, never delivered;
 *  - a relay process between two library nodes forwards their unicast sealed: the destination
 *    gets the payload, the relay counts the frames as forwarded opaque, and the bytes on both its
 *    links never hold the payload.
 *
 * Conditions are waited for with generous deadlines; nothing depends on timing thresholds.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "nats";
import { createNode } from "../../src/index.js";
import type { SkeinNode } from "../../src/node/api.js";
import { decodeCaKeyFile, encodeCertificateFile, signCertificate } from "../../src/crypto/certificate.js";
import { decodePublicKeyFile } from "../../src/crypto/identity.js";
import { CLI_PATH, type Listening, type SkeinProcess, startSkein, stopAll, waitFor } from "./processes.js";
import { TcpProxy, UNIT_RECORD } from "./tcp-proxy.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "skein-security-"));
const proxies: TcpProxy[] = [];
const clients: NatsConnection[] = [];
const libraryNodes: SkeinNode[] = [];
after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
  await Promise.all(libraryNodes.map((node) => node.close().catch(() => {})));
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

type Started = Listening & { nats?: string };

interface ApiNodeSecurity {
  id: number;
  neighbours: { id: number; state: string; binding: string | null; key_fingerprint: string | null }[];
  security: {
    mode: string;
    key_fingerprint: string;
    end_to_end: { forwarded_sealed: number; forwarded_clear: number; opened: number; sealed: number };
  };
}

function file(name: string): string {
  return path.join(tmp, name);
}

function skein(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd: tmp });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

async function skeinOk(args: string[]): Promise<string> {
  const result = await skein(args);
  assert.equal(result.code, 0, `skein ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

function nodeArgs(extra: string[]): string[] {
  return ["node", "--tcp-port", "0", "--web-addr", "127.0.0.1:0", "--probe-interval-ms", "300", "--link-timeout-ms", "3000", "--log-level", "info", ...extra];
}

async function start(extra: string[]): Promise<{ process: SkeinProcess; info: Started }> {
  const started = startSkein(nodeArgs(extra));
  return { process: started, info: (await started.listening) as Started };
}

function seedOf(info: Started, port?: number): string {
  const address = info.addresses.find((candidate) => candidate.includes("/tcp/"))!;
  return `${info.id}@${port === undefined ? address : address.replace(/\/tcp\/\d+$/, `/tcp/${port}`)}`;
}

function tcpPort(info: Started): number {
  return Number(/\/tcp\/(\d+)$/.exec(info.addresses.find((candidate) => candidate.includes("/tcp/"))!)![1]);
}

async function apiNode(info: Started): Promise<ApiNodeSecurity> {
  const response = await fetch(`${info.web}/api/node`);
  return (await response.json()) as ApiNodeSecurity;
}

async function upIds(info: Started): Promise<number[]> {
  return (await apiNode(info)).neighbours.filter((neighbour) => neighbour.state === "up").map((neighbour) => neighbour.id);
}

async function dropped(info: Started, reason: string): Promise<number> {
  const text = await (await fetch(`${info.web}/metrics`)).text();
  const match = new RegExp(`^skein_frames_dropped_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(text);
  return match === null ? 0 : Number(match[1]);
}

function logOf(node: SkeinProcess): string {
  return node.stderrLines.join("\n");
}

async function waitForLog(node: SkeinProcess, what: string, pattern: RegExp): Promise<void> {
  await waitFor(`${what} (${pattern})`, () => pattern.test(logOf(node)), 30_000).catch((error: unknown) => {
    throw new Error(`${String(error)}\n--- its log:\n${logOf(node)}`);
  });
}

test("network key: the same key links; another key or none: no link, and both sides log why", { timeout: 120_000 }, async () => {
  await skeinOk(["keygen", "--network", "--out", "net1.key"]);
  await skeinOk(["keygen", "--network", "--out", "net2.key"]);
  const g = await start(["--network-key", file("net1.key")]);
  const member = await start(["--network-key", file("net1.key"), "--seeds", seedOf(g.info)]);
  await waitFor("the two members to link", async () => (await upIds(g.info)).includes(member.info.id) && (await upIds(member.info)).includes(g.info.id));
  const [gView, memberView] = await Promise.all([apiNode(g.info), apiNode(member.info)]);
  assert.equal(gView.security.mode, "network-key");
  assert.equal(memberView.neighbours.find((neighbour) => neighbour.id === g.info.id)?.key_fingerprint, gView.security.key_fingerprint, "the link authenticated g's key");

  // Another network key. (A fresh responder per case: its refusal log is rate limited per host.)
  const g2 = await start(["--network-key", file("net1.key")]);
  const stranger = await start(["--network-key", file("net2.key"), "--seeds", seedOf(g2.info)]);
  await waitForLog(g2.process, "the member to log the refusal", /refused a secure handshake from \/ip4\/127\.0\.0\.1\/tcp\/\d+: the peer's first message does not authenticate under our network key \(id [0-9a-f]{16}\): it has another network key/);
  await waitForLog(stranger.process, "the stranger to log why", new RegExp(`secure handshake with node ${g2.info.id} at \\S+ failed: the peer refused the handshake: our network key is not its network key`));

  // No network key at all.
  const g3 = await start(["--network-key", file("net1.key")]);
  const keyless = await start(["--seeds", seedOf(g3.info)]);
  await waitForLog(g3.process, "the member to log the refusal", /refused a secure handshake from \S+: the peer has no network key and this network requires one: it is not a member/);
  await waitForLog(keyless.process, "the keyless node to log why", /failed: the peer refused the handshake: its network requires a network key \(--network-key\), and we have none/);
  await waitForLog(keyless.process, "the keyless node to warn it runs an open network", /open network: no --network-key and no --ca/);

  assert.deepEqual(await upIds(stranger.info), []);
  assert.deepEqual(await upIds(keyless.info), []);
  assert.ok(!(await upIds(g2.info)).includes(stranger.info.id));
  assert.ok(!(await upIds(g3.info)).includes(keyless.info.id));
});

test("CA: a valid certificate links; a foreign CA's or an expired one is refused on both sides; a NodeId mismatch keeps the node from starting", { timeout: 120_000 }, async () => {
  await skeinOk(["ca", "init", "--out", "ca1.key"]);
  await skeinOk(["ca", "init", "--out", "ca2.key"]);
  for (const name of ["g", "a", "x", "e", "m"]) await skeinOk(["keygen", "--out", `${name}.key`]);
  await skeinOk(["ca", "sign", "--ca", "ca1.key", "--node-id", "11", "--pubkey", "g.key.pub", "--out", "g.cert"]);
  await skeinOk(["ca", "sign", "--ca", "ca1.key", "--node-id", "12", "--pubkey", "a.key.pub", "--tags", "eu", "--out", "a.cert"]);
  await skeinOk(["ca", "sign", "--ca", "ca2.key", "--node-id", "13", "--pubkey", "x.key.pub", "--out", "x.cert"]);
  await skeinOk(["ca", "sign", "--ca", "ca1.key", "--node-id", "15", "--pubkey", "m.key.pub", "--out", "m.cert"]);
  const ca = (id: 1 | 2): string[] => ["--ca", file(`ca${id}.pub`)];

  const g = await start(["--key", file("g.key"), ...ca(1), "--cert", file("g.cert")]);
  assert.equal(g.info.id, 11, "the NodeId comes from the certificate");
  const a = await start(["--key", file("a.key"), ...ca(1), "--cert", file("a.cert"), "--seeds", seedOf(g.info)]);
  await waitFor("the certified node to link", async () => (await upIds(g.info)).includes(12) && (await upIds(a.info)).includes(11));
  const view = await apiNode(g.info);
  assert.equal(view.security.mode, "ca");
  assert.equal(view.neighbours.find((neighbour) => neighbour.id === 12)?.binding, "certificate");

  // A certificate from another CA: each side refuses the other's, and says so.
  const x = await start(["--key", file("x.key"), ...ca(2), "--cert", file("x.cert"), "--seeds", seedOf(g.info)]);
  await waitForLog(x.process, "the foreign node to refuse g's certificate", /secure handshake with node 11 at \S+ failed: certificate for node 11 was issued by another CA/);
  await waitForLog(g.process, "g to log the refusal", /the peer refused the handshake: our certificate is from another CA/);
  assert.deepEqual(await upIds(x.info), []);

  // An expired certificate: valid when the node starts (or it would not), expired when it dials.
  // Its seed is a proxy that refuses connections until the certificate has expired.
  const caKey = decodeCaKeyFile(readFileSync(file("ca1.key"), "utf8"));
  assert.ok(caKey.ok);
  const publicKey = decodePublicKeyFile(readFileSync(file("e.key.pub"), "utf8"));
  assert.ok(publicKey.ok);
  const notAfter = Date.now() + 3_000;
  writeFileSync(file("e.cert"), encodeCertificateFile(signCertificate(caKey.value, { nodeId: 14, publicKey: publicKey.value.signingKey, tags: [], notBefore: Date.now() - 60_000, notAfter })));
  const g2 = await start(["--key", file("g.key"), ...ca(1), "--cert", file("g.cert")]);
  const gate = await TcpProxy.start(tcpPort(g2.info));
  proxies.push(gate);
  gate.forwarding = false;
  const e = await start(["--key", file("e.key"), ...ca(1), "--cert", file("e.cert"), "--seeds", seedOf(g2.info, gate.port)]);
  await waitFor("the certificate to expire", () => Date.now() > notAfter + 500, 30_000);
  gate.forwarding = true;
  await waitForLog(g2.process, "g to refuse the expired certificate", /refused a secure handshake from \S+: certificate for node 14 expired at/);
  await waitForLog(e.process, "the expired node to log why", /the peer refused the handshake: our certificate has expired/);
  assert.deepEqual(await upIds(e.info), []);

  // A certificate for another NodeId than the node runs as: it does not start, and says why.
  const m = startSkein(nodeArgs(["--key", file("m.key"), ...ca(1), "--cert", file("m.cert"), "--node-id", "16"]));
  assert.notEqual(await m.exited, 0);
  assert.match(logOf(m), /certificate cannot be used \(node_id_mismatch\): certificate is for node 15, but its holder claims node 16/);
});

const SECRET = "SKEIN-TOP-SECRET-PAYLOAD-c0ffee-".repeat(8);

/** Two nodes with NATS ports, the second dialling the first through a proxy; clients subscribed. */
async function proxiedPair(subject: string): Promise<{ b: Started; proxy: TcpProxy; received: string[]; publish: (text: string) => Promise<void> }> {
  const b = await start(["--nats-port", "0"]);
  const proxy = await TcpProxy.start(tcpPort(b.info));
  proxies.push(proxy);
  const a = await start(["--nats-port", "0", "--seeds", seedOf(b.info, proxy.port)]);
  await waitFor("the proxied link", async () => (await upIds(b.info)).includes(a.info.id));
  const atA = await connect({ servers: a.info.nats!, reconnect: false });
  const atB = await connect({ servers: b.info.nats!, reconnect: false });
  clients.push(atA, atB);
  const received: string[] = [];
  const subscription = atB.subscribe(subject);
  void (async () => {
    for await (const message of subscription) received.push(new TextDecoder().decode(message.data));
  })();
  await atB.flush();
  // Interest travels to A's node: publish markers until one arrives.
  await waitFor("B's interest to reach A's node", async () => {
    atA.publish(subject, new TextEncoder().encode("marker"));
    await atA.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    return received.includes("marker");
  });
  const publish = async (text: string): Promise<void> => {
    atA.publish(subject, new TextEncoder().encode(text));
    await atA.flush();
  };
  return { b: b.info, proxy, received, publish };
}

test("a TCP proxy between two nodes: the payload never appears in the capture; a flipped byte is refused and counted, never delivered corrupted", { timeout: 120_000 }, async () => {
  const { b, proxy, received, publish } = await proxiedPair("secret.flip");
  for (let index = 0; index < 20; index += 1) await publish(`${SECRET}${index}`);
  await waitFor("20 payloads delivered", () => received.filter((text) => text.startsWith(SECRET)).length === 20);
  const capture = proxy.capture();
  assert.ok(capture.byteLength > 20 * SECRET.length, "the payloads went through the proxy");
  assert.equal(capture.indexOf(SECRET.slice(0, 24)), -1, "no payload byte sequence in clear on the wire");
  assert.equal(capture.indexOf("secret.flip"), -1, "not even the subject");

  // Flip one byte in the next record large enough to carry a payload.
  let flipped = 0;
  proxy.tamper = (direction, unit) => {
    if (flipped > 0 || direction !== "to_target" || unit[0] !== UNIT_RECORD || unit.byteLength < SECRET.length) return undefined;
    flipped += 1;
    unit[unit.byteLength >> 1]! ^= 0x40;
    return unit;
  };
  const sent = new Set<string>();
  for (let index = 100; flipped === 0 && index < 2_000; index += 1) {
    sent.add(`${SECRET}${index}`);
    await publish(`${SECRET}${index}`);
  }
  assert.equal(flipped, 1);
  await waitFor("the flipped record to be refused and counted", async () => (await dropped(b, "record_auth")) >= 1);
  for (const text of received) assert.ok(text === "marker" || /^SKEIN-TOP-SECRET-PAYLOAD-c0ffee-(?:SKEIN-TOP-SECRET-PAYLOAD-c0ffee-){7}\d+$/.test(text), `delivered intact: ${text.slice(0, 80)}`);
  for (const text of received) if (text.startsWith(SECRET) && Number(text.slice(SECRET.length)) >= 100) assert.ok(sent.has(text));
});

test("a TCP proxy between two nodes: a replayed record is refused and counted, its payload delivered once", { timeout: 120_000 }, async () => {
  const { b, proxy, received, publish } = await proxiedPair("secret.replay");
  let replayed = 0;
  proxy.tamper = (direction, unit) => {
    if (replayed > 0 || direction !== "to_target" || unit[0] !== UNIT_RECORD || unit.byteLength < SECRET.length) return undefined;
    replayed += 1;
    return Buffer.concat([unit, unit]);
  };
  for (let index = 0; replayed === 0 && index < 2_000; index += 1) await publish(`${SECRET}${index}`);
  assert.equal(replayed, 1);
  await waitFor("the replayed record to be refused and counted", async () => (await dropped(b, "record_out_of_order")) >= 1);
  const payloads = received.filter((text) => text.startsWith(SECRET));
  assert.ok(payloads.length > 0);
  assert.equal(new Set(payloads).size, payloads.length, "no payload delivered twice");
});

test("a relay process forwards unicast between two nodes sealed end to end: it counts them opaque, and neither of its links carries the payload in clear", { timeout: 120_000 }, async () => {
  const relay = await start([]);
  const toRelayFromA = await TcpProxy.start(tcpPort(relay.info));
  const toRelayFromC = await TcpProxy.start(tcpPort(relay.info));
  proxies.push(toRelayFromA, toRelayFromC);
  const a = await createNode({ tcpPort: 0, seeds: [seedOf(relay.info, toRelayFromA.port)], maxNeighbours: 1, logLevel: "silent", probeIntervalMs: 300 });
  libraryNodes.push(a);
  const c = await createNode({ tcpPort: 0, seeds: [seedOf(relay.info, toRelayFromC.port)], maxNeighbours: 1, logLevel: "silent", probeIntervalMs: 300 });
  libraryNodes.push(c);
  const nextHop = (from: SkeinNode, to: number): number | undefined => from.routes().find((route) => route.destination === to)?.nextHop;
  await waitFor("A to route to C through the relay", () => nextHop(a, c.id) === relay.info.id && nextHop(c, a.id) === relay.info.id);
  const before = (await apiNode(relay.info)).security.end_to_end;

  const inbox = c.messages()[Symbol.asyncIterator]();
  const count = 20;
  for (let index = 0; index < count; index += 1) await a.send(c.id, new TextEncoder().encode(`${SECRET}${index}`), { reliable: index % 2 === 0 });
  for (let index = 0; index < count; index += 1) {
    const { value } = await inbox.next();
    assert.equal(value!.from, a.id);
    assert.equal(new TextDecoder().decode(value!.data), `${SECRET}${index}`);
  }
  const after = (await apiNode(relay.info)).security.end_to_end;
  assert.ok(after.forwarded_sealed - before.forwarded_sealed >= count, `the relay forwarded them opaque: ${JSON.stringify(after)}`);
  assert.ok(after.forwarded_clear - before.forwarded_clear < count, `…not in clear: ${JSON.stringify(after)}`);
  assert.equal(after.opened, 0, "the relay opened nothing");
  assert.ok(c.stats().endToEnd.opened >= count);
  for (const proxy of [toRelayFromA, toRelayFromC]) assert.equal(proxy.capture().indexOf(SECRET.slice(0, 24)), -1);
});

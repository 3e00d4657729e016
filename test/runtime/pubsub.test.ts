/**
 * The library pub/sub API of a running node, and its NATS port in the same process: library
 * subscribers see NATS publishers and the other way round, request/reply crosses both.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection, StringCodec } from "nats";
import { SkeinError } from "../../src/core/errors.js";
import { createNode } from "../../src/index.js";
import type { SkeinNode } from "../../src/node/api.js";
import { validateNodeOptions } from "../../src/runtime/node.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { OVERLAY_PAUSE_BYTES } from "../../src/runtime/pubsub.js";
import { closeAll, waitFor } from "./helpers.js";

const sc = StringCodec();
const nodes: SkeinNode[] = [];
const clients: NatsConnection[] = [];
after(async () => {
  await Promise.all(clients.map((nc) => nc.close().catch(() => {})));
  await closeAll(nodes);
});

async function node(options: Parameters<typeof createNode>[0] = {}): Promise<SkeinNode> {
  const created = await createNode({ udpPort: 0, logLevel: "silent", ...options });
  nodes.push(created);
  return created;
}

test("library API: subscribe, publish, queue groups, request/reply with headers, no responders, timeout", async () => {
  const n = await node();
  assert.equal(n.natsUrl, undefined);
  const all = n.subscribe("lib.>");
  const group = [n.subscribe("lib.job", { queue: "w" }), n.subscribe("lib.job", { queue: "w" })];
  for (let i = 0; i < 10; i++) n.publish("lib.job", String(i));
  all.unsubscribe();
  const seen: string[] = [];
  for await (const msg of all) seen.push(msg.string());
  assert.equal(seen.length, 10);
  assert.equal(group[0]!.pending + group[1]!.pending, 10);

  const service = n.subscribe("lib.svc");
  void (async () => {
    for await (const msg of service) msg.respond(`${msg.string()}!`, { headers: { "X-From": "svc" } });
  })();
  const answer = await n.request("lib.svc", "hey", { timeoutMs: 1000 });
  assert.equal(answer.string(), "hey!");
  assert.equal(answer.headers?.get("X-From"), "svc");
  await assert.rejects(n.request("lib.nobody", "x"), { code: "NO_RESPONDERS" });
  n.subscribe("lib.silent");
  await assert.rejects(n.request("lib.silent", "x", { timeoutMs: 50 }), { code: "TIMEOUT" });
  assert.throws(() => n.publish("lib.*", "x"), (error: unknown) => error instanceof SkeinError && error.code === "BAD_SUBJECT");
  // drain waits for subscribers to consume what they hold, and says who did not.
  const consumed = (async () => {
    let count = 0;
    for await (const _msg of group[0]!) count++;
    return count;
  })();
  await assert.rejects(n.drain({ timeoutMs: 100 }), (error: SkeinError) => error.code === "TIMEOUT" && /lib\.job \(\d+ messages\)/.test(error.message));
  assert.ok((await consumed) > 0);
  assert.throws(() => n.publish("lib.x", "late"), { code: "CLOSED" });
});

test("the NATS port and the library share one broker", async () => {
  const n = await node({ natsPort: 0 });
  assert.match(n.natsUrl!, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const nc = await connect({ servers: n.natsUrl!, reconnect: false });
  clients.push(nc);

  const fromNats = n.subscribe("mix.in");
  nc.publish("mix.in", sc.encode("hello from nats"));
  await nc.flush();
  const first = await fromNats[Symbol.asyncIterator]().next();
  assert.equal(first.value?.string(), "hello from nats");

  const natsSub = nc.subscribe("mix.out", { max: 1 });
  await nc.flush();
  n.publish("mix.out", "hello from the library");
  for await (const msg of natsSub) assert.equal(sc.decode(msg.data), "hello from the library");

  // A NATS client answers a library request, and the other way round.
  nc.subscribe("mix.natsvc", { callback: (_e, msg) => msg.respond(sc.encode(`nats:${sc.decode(msg.data)}`)) });
  await nc.flush();
  assert.equal((await n.request("mix.natsvc", "q", { timeoutMs: 2000 })).string(), "nats:q");
  const libsvc = n.subscribe("mix.libsvc");
  void (async () => {
    for await (const msg of libsvc) msg.respond(`lib:${msg.string()}`);
  })();
  assert.equal(sc.decode((await nc.request("mix.libsvc", sc.encode("q"), { timeout: 2000 })).data), "lib:q");
});

test("natsPort / natsAddr options are validated", () => {
  assert.deepEqual(validateNodeOptions({ natsPort: 0 }).nats, { host: "127.0.0.1", port: 0 });
  assert.deepEqual(validateNodeOptions({ natsAddr: "0.0.0.0:4333" }).nats, { host: "0.0.0.0", port: 4333 });
  assert.deepEqual(validateNodeOptions({ natsAddr: "0.0.0.0", natsPort: 5 }).nats, { host: "0.0.0.0", port: 5 });
  assert.equal(validateNodeOptions({}).nats, undefined);
  assert.throws(() => validateNodeOptions({ natsPort: 70000 }), /bad natsPort 70000/);
  assert.throws(() => validateNodeOptions({ natsAddr: "nope:1" }), /bad natsAddr "nope:1"/);
});

/** Whether `promise` is still pending after the current turn. */
async function pending(promise: Promise<void>): Promise<boolean> {
  const later = new Promise<"pending">((resolve) => setImmediate(() => resolve("pending")));
  return (await Promise.race([promise.then(() => "settled" as const), later])) === "pending";
}

test("library publish(): a publisher that awaits it is paced by a backlogged overlay link and loses nothing; one that does not loses messages", async () => {
  // A 400 ms round trip between the nodes: what 301 sends toward 302 waits 200 ms in the
  // latency queue, so a burst backlogs the link the way a slow path would.
  const dir = mkdtempSync(path.join(tmpdir(), "skein-pace-"));
  try {
    const file = path.join(dir, "rtt.json");
    writeFileSync(file, JSON.stringify({ "301": { "302": 400 } }));
    const a = await node({ nodeId: 301, udpPort: undefined, tcpPort: 0, emulateLatency: file });
    const b = await node({ nodeId: 302, udpPort: undefined, tcpPort: 0, emulateLatency: file, seeds: [`301@${a.addresses[0]}`] });
    const received = { paced: 0, unpaced: 0 };
    for (const kind of ["paced", "unpaced"] as const) {
      const subscription = b.subscribe(`pace.${kind}`);
      void (async () => {
        for await (const _msg of subscription) received[kind] += 1;
      })();
    }
    // Interest has crossed once a probe published on 301 reaches 302.
    const probe = b.subscribe("pace.probe");
    let probed = false;
    void (async () => {
      for await (const _msg of probe) probed = true;
    })();
    await waitFor(() => (void a.publish("pace.probe", "?"), probed), "interest to reach node 301", 20_000);

    const payload = new Uint8Array(256 * 1024);
    const count = 80; // 20 MiB: over the link's 8 MiB bound if it all went at once
    let waits = 0;
    for (let i = 0; i < count; i++) {
      const paced = a.publish("pace.paced", payload);
      if (await pending(paced)) waits += 1;
      await paced;
    }
    // Every message past the pause mark found the link backlogged at least once per release.
    assert.ok(waits > 0, "the publisher waited at least once");
    assert.ok(waits < count - OVERLAY_PAUSE_BYTES / payload.byteLength + 1, `${waits} waits: no wait below the pause mark`);
    await waitFor(() => received.paced === count, `all ${count} paced messages (got ${received.paced})`, 20_000);

    // The same burst without waiting: the overlay sheds what does not fit the link's bound.
    for (let i = 0; i < count; i++) void a.publish("pace.unpaced", payload);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.ok(received.unpaced < count, `unpaced: ${received.unpaced} of ${count} arrived (expected some shed)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRng } from "../../src/core/rng.js";
import { Broker } from "../../src/features/pubsub/broker.js";
import { PubSubClient } from "../../src/features/pubsub/client.js";
import { MsgHeaders } from "../../src/features/pubsub/headers.js";

function setup(limits: { maxPendingMessages?: number; maxPendingBytes?: number } = {}) {
  const broker = new Broker({ rng: new SeededRng(1) });
  const slow: string[] = [];
  const client = new PubSubClient(broker, { inboxPrefix: "_INBOX.test", onSlowConsumer: (sub) => slow.push(sub.subject), ...limits });
  return { broker, client, slow };
}

test("subscribe yields messages in order; unsubscribe ends the iteration after buffered ones", async () => {
  const { client } = setup();
  const sub = client.subscribe("a.*");
  for (let i = 0; i < 5; i++) client.publish(`a.${i}`, String(i));
  sub.unsubscribe();
  client.publish("a.9", "late");
  const got: string[] = [];
  for await (const msg of sub) got.push(`${msg.subject}=${msg.string()}`);
  assert.deepEqual(got, ["a.0=0", "a.1=1", "a.2=2", "a.3=3", "a.4=4"]);
  await sub.closed;
});

test("max: the subscription ends by itself", async () => {
  const { client, broker } = setup();
  const sub = client.subscribe("m", { max: 2 });
  for (let i = 0; i < 5; i++) client.publish("m", String(i));
  const got: string[] = [];
  for await (const msg of sub) got.push(msg.string());
  assert.deepEqual(got, ["0", "1"]);
  assert.equal(broker.stats().subscriptions, 0);
});

test("a full buffer drops new messages, counts them and reports one slow-consumer episode", async () => {
  const { client, broker, slow } = setup({ maxPendingMessages: 3 });
  const sub = client.subscribe("s");
  const fast = client.subscribe("s");
  for (let i = 0; i < 10; i++) client.publish("s", String(i));
  assert.equal(sub.dropped, 7);
  assert.equal(sub.pending, 3);
  assert.deepEqual(slow, ["s", "s"]);
  assert.equal(broker.stats().slowConsumers, 2);
  const first = await sub.next();
  assert.equal(first.value?.string(), "0");
  fast.unsubscribe();
  sub.unsubscribe();
  const rest: string[] = [];
  for await (const msg of sub) rest.push(msg.string());
  assert.deepEqual(rest, ["1", "2"]);
});

test("request/reply through the multiplexed inbox, with headers", async () => {
  const { client, broker } = setup();
  const service = client.subscribe("svc.echo");
  void (async () => {
    for await (const msg of service) msg.respond(`echo:${msg.string()}`, { headers: { "X-Seen": msg.headers?.get("X-Req") ?? "none" } });
  })();
  const answer = await client.request("svc.echo", "hi", { headers: { "X-Req": "1" } }).promise;
  assert.equal(answer.string(), "echo:hi");
  assert.equal(answer.headers?.get("X-Seen"), "1");
  const second = await client.request("svc.echo", "again").promise;
  assert.equal(second.string(), "echo:again");
  // One inbox subscription serves every request.
  assert.equal(broker.stats().subscriptions, 2);
  service.unsubscribe();
});

test("no responders rejects at once; cancel rejects with the given error", async () => {
  const { client } = setup();
  await assert.rejects(client.request("nobody", "x").promise, { code: "NO_RESPONDERS" });
  client.subscribe("slow");
  const handle = client.request("slow", "x");
  handle.cancel(Object.assign(new Error("too late"), { code: "TIMEOUT" }));
  await assert.rejects(handle.promise, { code: "TIMEOUT" });
});

test("a 503 status answer (a NATS client's no-responders) rejects with NO_RESPONDERS", async () => {
  const { client, broker } = setup();
  const relay = client.subscribe("relay");
  void (async () => {
    for await (const msg of relay) {
      const headers = new MsgHeaders();
      headers.status = 503;
      client.publish(msg.reply, undefined, { headers });
    }
  })();
  await assert.rejects(client.request("relay", "x").promise, { code: "NO_RESPONDERS" });
  relay.unsubscribe();
  assert.ok(broker.stats().inMsgs >= 2);
});

test("drain lets subscribers finish, then the client refuses new work", async () => {
  const { client } = setup();
  const sub = client.subscribe("d");
  for (let i = 0; i < 3; i++) client.publish("d", String(i));
  const got: string[] = [];
  const consumer = (async () => {
    for await (const msg of sub) got.push(msg.string());
  })();
  await client.drain();
  await consumer;
  assert.deepEqual(got, ["0", "1", "2"]);
  assert.throws(() => client.publish("d", "x"), { code: "CLOSED" });
  assert.throws(() => client.subscribe("d"), { code: "CLOSED" });
});

test("bad input is refused with clear errors", () => {
  const { client } = setup();
  assert.throws(() => client.publish("a.*", "x"), { code: "BAD_SUBJECT" });
  assert.throws(() => client.publish("a", "x", { reply: "r.>" }), { code: "BAD_SUBJECT" });
  assert.throws(() => client.subscribe("a..b"), { code: "BAD_SUBJECT" });
  assert.throws(() => client.subscribe("a", { queue: "" }), { code: "BAD_SUBJECT" });
  assert.throws(() => client.subscribe("a", { max: 0 }), { code: "BAD_ARGUMENT" });
  assert.throws(() => client.publish("a", new Uint8Array(2 * 1024 * 1024)), { code: "TOO_LARGE" });
  assert.throws(() => client.publish("a", "x", { headers: { "bad key": "v" } }), { code: "BAD_HEADER" });
  assert.throws(() => client.publish("a", "x", { headers: { k: "line\nbreak" } }), { code: "BAD_HEADER" });
});

test("headers round-trip, including status and repeated keys", () => {
  const headers = MsgHeaders.from({ A: ["1", "2"], B: "x" });
  headers.status = 408;
  headers.description = "Request Timeout";
  const decoded = MsgHeaders.decode(headers.encode());
  assert.ok(decoded.ok);
  assert.equal(decoded.value.status, 408);
  assert.equal(decoded.value.description, "Request Timeout");
  assert.deepEqual(decoded.value.values("A"), ["1", "2"]);
  assert.equal(decoded.value.get("B"), "x");
  assert.equal(MsgHeaders.decode(new TextEncoder().encode("HTTP/1.1 200\r\n\r\n")).ok, false);
});

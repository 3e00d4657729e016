import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRng } from "../../src/core/rng.js";
import {
  Broker,
  type Consumer,
  type InterestSink,
  type Message,
  messageOf,
  payloadView,
  type RemoteDelivery,
  type RemoteTarget,
  type Subscription,
} from "../../src/features/pubsub/broker.js";

const text = new TextEncoder();
const untext = new TextDecoder();

class Recorder implements Consumer {
  readonly got: { sid: string; subject: string; reply: string; data: string; headers: number }[] = [];
  constructor(
    readonly echo = true,
    private readonly refuse: (msg: Message) => boolean = () => false,
  ) {}
  deliver(sub: Subscription, msg: Message): boolean {
    if (this.refuse(msg)) return false;
    this.got.push({ sid: sub.sid, subject: msg.subject, reply: msg.reply, data: untext.decode(payloadView(msg)), headers: msg.headerLength });
    return true;
  }
}

function msg(subject: string, data = "x", reply = ""): Message {
  return messageOf(subject, reply, undefined, text.encode(data));
}

test("plain subscriptions and wildcards each get every matching message once", () => {
  const broker = new Broker({ rng: new SeededRng(1) });
  const a = new Recorder();
  broker.subscribe(a, "orders.eu.new", undefined, "exact");
  broker.subscribe(a, "orders.*.new", undefined, "star");
  broker.subscribe(a, "orders.>", undefined, "rest");
  broker.subscribe(a, "other", undefined, "other");
  assert.equal(broker.publish(undefined, msg("orders.eu.new", "1")), 3);
  assert.equal(broker.publish(undefined, msg("orders.us.new", "2")), 2);
  assert.equal(broker.publish(undefined, msg("orders.eu", "3")), 1);
  assert.equal(broker.publish(undefined, msg("nothing", "4")), 0);
  assert.deepEqual(
    a.got.map((g) => `${g.sid}:${g.data}`).sort(),
    ["exact:1", "rest:1", "rest:2", "rest:3", "star:1", "star:2"],
  );
  assert.equal(broker.stats().noInterest, 1);
});

test("a queue group gets each message exactly once, spread over its members", () => {
  const broker = new Broker({ rng: new SeededRng(7) });
  const members = [new Recorder(), new Recorder(), new Recorder()];
  for (const [index, member] of members.entries()) broker.subscribe(member, "work.*", "workers", `m${index}`);
  const watcher = new Recorder();
  broker.subscribe(watcher, "work.>", undefined, "w");
  for (let i = 0; i < 300; i++) assert.equal(broker.publish(undefined, msg("work.item", String(i))), 2);
  const counts = members.map((member) => member.got.length);
  assert.equal(counts.reduce((a, b) => a + b, 0), 300);
  for (const count of counts) assert.ok(count > 60, `uneven spread ${counts.join(",")}`);
  const seen = new Set(members.flatMap((member) => member.got.map((g) => g.data)));
  assert.equal(seen.size, 300);
  assert.equal(watcher.got.length, 300);
});

test("echo off: a consumer's own publishes skip its subscriptions, and its queue member is passed over", () => {
  const broker = new Broker({ rng: new SeededRng(3) });
  const self = new Recorder(false);
  const other = new Recorder();
  broker.subscribe(self, "t", undefined, "1");
  assert.equal(broker.publish(self, msg("t")), 0, "only its own subscription: nobody took it");
  broker.subscribe(self, "q", "g", "2");
  broker.subscribe(other, "q", "g", "3");
  for (let i = 0; i < 20; i++) assert.equal(broker.publish(self, msg("q")), 1);
  assert.equal(self.got.length, 0);
  assert.equal(other.got.length, 20);
});

test("a refusing consumer (permission filter) does not count, and the queue tries the next member", () => {
  const broker = new Broker({ rng: new SeededRng(5) });
  const picky = new Recorder(true, (m) => m.subject.endsWith("secret"));
  const plain = new Recorder();
  broker.subscribe(picky, "s.*", "g", "p");
  broker.subscribe(plain, "s.*", "g", "o");
  for (let i = 0; i < 10; i++) broker.publish(undefined, msg("s.secret"));
  assert.equal(picky.got.length, 0);
  assert.equal(plain.got.length, 10);
});

test("auto-unsubscribe after max deliveries, and per-publisher order is kept", () => {
  const broker = new Broker({ rng: new SeededRng(1) });
  const a = new Recorder();
  const sub = broker.subscribe(a, "n", undefined, "1");
  broker.autoUnsubscribe(sub, 3);
  for (let i = 0; i < 10; i++) broker.publish(undefined, msg("n", String(i)));
  assert.deepEqual(a.got.map((g) => g.data), ["0", "1", "2"]);
  assert.equal(sub.closed, true);
  assert.equal(broker.stats().subscriptions, 0);
  // max already reached: removed at once
  const again = broker.subscribe(a, "m", undefined, "2");
  broker.publish(undefined, msg("m"));
  broker.autoUnsubscribe(again, 1);
  assert.equal(again.closed, true);
});

test("headers travel as the raw block in front of the payload", () => {
  const broker = new Broker({ rng: new SeededRng(1) });
  const a = new Recorder();
  broker.subscribe(a, "h", undefined, "1");
  broker.publish(undefined, messageOf("h", "r", text.encode("NATS/1.0\r\nA: b\r\n\r\n"), text.encode("body")));
  assert.deepEqual(a.got, [{ sid: "1", subject: "h", reply: "r", data: "body", headers: 18 }]);
});

test("the interest sink hears every change with counts, per subject and queue", () => {
  const changes: string[] = [];
  const sink: InterestSink = { interestChanged: (subject, queue, count) => changes.push(`${subject}|${queue ?? ""}|${count}`) };
  const broker = new Broker({ rng: new SeededRng(1), interestSink: sink });
  const a = new Recorder();
  const s1 = broker.subscribe(a, "x.*", undefined, "1");
  const s2 = broker.subscribe(a, "x.*", undefined, "2");
  const q1 = broker.subscribe(a, "x.*", "g", "3");
  broker.unsubscribe(s1);
  broker.unsubscribe(s1);
  broker.unsubscribe(s2);
  broker.unsubscribe(q1);
  assert.deepEqual(changes, ["x.*||1", "x.*||2", "x.*|g|1", "x.*||1", "x.*||0", "x.*|g|0"]);
  assert.deepEqual(broker.localInterest(), []);
});

test("two brokers joined by a fake overlay: interest mirrored, one copy per node, queue members anywhere", () => {
  // The overlay's job, played by hand: propagate interest, carry messages.
  const brokers = new Map<number, Broker>();
  const sent: { from: number; targets: RemoteTarget[] }[] = [];
  const makeRemote = (self: number): RemoteDelivery => ({
    deliver(targets, message) {
      sent.push({ from: self, targets: targets.map((t) => ({ node: t.node, queues: [...t.queues] })) });
      const copy = messageOf(message.subject, message.reply, undefined, payloadView(message).slice());
      for (const target of targets) brokers.get(target.node)!.deliverFromRemote(copy, target.queues);
    },
  });
  const makeSink = (self: number): InterestSink => ({
    interestChanged(subject, queue, count) {
      for (const [id, broker] of brokers) if (id !== self) broker.applyRemoteInterest(self, subject, queue, count);
    },
  });
  for (const id of [1, 2, 3]) brokers.set(id, new Broker({ rng: new SeededRng(id), interestSink: makeSink(id), remoteDelivery: makeRemote(id) }));
  const b1 = brokers.get(1)!;
  const [r2, r3, q2, q3] = [new Recorder(), new Recorder(), new Recorder(), new Recorder()];
  brokers.get(2)!.subscribe(r2, "s.>", undefined, "a");
  brokers.get(2)!.subscribe(r2, "s.x", undefined, "b");
  brokers.get(3)!.subscribe(r3, "s.x", undefined, "c");
  brokers.get(2)!.subscribe(q2, "s.x", "g", "q");
  brokers.get(3)!.subscribe(q3, "s.x", "g", "q");

  for (let i = 0; i < 100; i++) assert.equal(b1.publish(undefined, msg("s.x", String(i))), 2, "two nodes take it");
  assert.equal(r2.got.length, 200, "both subscriptions on node 2");
  assert.equal(r3.got.length, 100);
  assert.equal(q2.got.length + q3.got.length, 100, "the queue group got each message once overlay-wide");
  assert.ok(q2.got.length > 20 && q3.got.length > 20);
  for (const send of sent) assert.equal(new Set(send.targets.map((t) => t.node)).size, send.targets.length, "one copy per node");

  // A local member is preferred over remote ones.
  const local = new Recorder();
  b1.subscribe(local, "s.x", "g", "l");
  for (let i = 0; i < 50; i++) b1.publish(undefined, msg("s.x"));
  assert.equal(local.got.length, 50);

  // No responders overlay-wide, and a node leaving withdraws everything it had.
  assert.equal(b1.publish(undefined, msg("nobody.here")), 0);
  b1.removeRemoteNode(2);
  b1.removeRemoteNode(3);
  assert.equal(b1.stats().remoteInterest, 0);
  assert.equal(b1.publish(undefined, msg("s.y")), 0);
});

test("remote interest is bounded and validated", () => {
  const broker = new Broker({ rng: new SeededRng(1), maxRemoteInterest: 2 });
  assert.equal(broker.applyRemoteInterest(9, "a", undefined, 1), true);
  assert.equal(broker.applyRemoteInterest(9, "b", undefined, 1), true);
  assert.equal(broker.applyRemoteInterest(9, "c", undefined, 1), false);
  assert.equal(broker.applyRemoteInterest(9, "a..b", undefined, 1), false);
  assert.equal(broker.applyRemoteInterest(9, "a", undefined, 0), true);
  assert.equal(broker.applyRemoteInterest(9, "c", undefined, 1), true);
  assert.equal(broker.stats().dropped, 2);
});

test("subscribe refuses bad subjects and queue names, and honours the subscription limit", () => {
  const broker = new Broker({ rng: new SeededRng(1), maxSubscriptions: 1 });
  const a = new Recorder();
  assert.throws(() => broker.subscribe(a, "a..b", undefined, "1"), { code: "BAD_SUBJECT" });
  assert.throws(() => broker.subscribe(a, "a", "bad queue", "1"), { code: "BAD_SUBJECT" });
  broker.subscribe(a, "a", undefined, "1");
  assert.throws(() => broker.subscribe(a, "b", undefined, "2"), { code: "TOO_MANY_SUBSCRIPTIONS" });
});

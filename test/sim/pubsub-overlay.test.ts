/**
 * Pub/sub across the overlay in the simulator: interest propagation (module 4), multi-destination
 * data split per next hop, queue groups, and the property tests of issue 5: with loss, partitions
 * healing and crashes, interest tables converge to exactly the live subscriptions, and no message
 * is delivered twice to one subscription.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NodeId } from "../../src/core/node-id.js";
import { type Consumer, type Message, type Subscription, messageOf, payloadView } from "../../src/features/pubsub/broker.js";
import { generateInternetMatrix } from "../../src/sim/generate.js";
import { Simulator } from "../../src/sim/simulator.js";
import { SeededRng } from "../../src/core/rng.js";

const text = new TextDecoder();
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

class Recorder implements Consumer {
  readonly echo = true;
  readonly got: { sid: string; subject: string; data: string; reply: string }[] = [];
  deliver(sub: Subscription, msg: Message): boolean {
    this.got.push({ sid: sub.sid, subject: msg.subject, data: text.decode(payloadView(msg)), reply: msg.reply });
    return true;
  }
}

function subscribe(sim: Simulator, node: NodeId, consumer: Consumer, subject: string, queue?: string, sid = `${node}:${subject}:${queue ?? ""}`): Subscription {
  return sim.call(node, (engine, now) => {
    engine.touch(now);
    return engine.pubsub.broker.subscribe(consumer, subject, queue, sid);
  });
}

function publish(sim: Simulator, node: NodeId, subject: string, data: string, reply = ""): number {
  return sim.call(node, (engine, now) => {
    engine.touch(now);
    return engine.pubsub.broker.publish(undefined, messageOf(subject, reply, undefined, bytes(data)));
  });
}

/** A chain 1–2–3: node 1 and 3 never link (the link is blocked), so 3 is reached through 2. */
function chain(seed = 1): Simulator {
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes: 3, seed: 7 }), seed, seeds: [2] });
  sim.linkDown(1, 3);
  sim.runFor(8_000);
  return sim;
}

test("pubsub overlay: a chain 1–2–3 carries interest and data both ways through the relay", () => {
  const sim = chain();
  assert.equal(sim.engine(1)!.nextHop(3), 2, "3 is reached through 2");
  const at3 = new Recorder();
  const at1 = new Recorder();
  subscribe(sim, 3, at3, "orders.>");
  subscribe(sim, 1, at1, "replies.*");
  sim.runFor(500);
  assert.deepEqual(sim.engine(1)!.pubsub.interestOf(3), [{ subject: "orders.>", queue: undefined, count: 1 }]);
  for (let i = 0; i < 20; i++) assert.equal(publish(sim, 1, `orders.eu.${i}`, `m${i}`), 1);
  assert.equal(publish(sim, 3, "replies.x", "back", ""), 1);
  assert.equal(publish(sim, 1, "nobody.here", "x"), 0, "no responders overlay-wide");
  sim.runFor(1_000);
  assert.deepEqual(at3.got.map((m) => m.data), Array.from({ length: 20 }, (_, i) => `m${i}`), "every message once, in order");
  assert.deepEqual(at1.got.map((m) => m.data), ["back"]);
  assert.ok(sim.engine(2)!.pubsub.stats().dataRelayed >= 20);
});

test("pubsub overlay: one copy per link to several subscribers behind it; queue group exactly once, nearest member", () => {
  const sim = chain(2);
  const at2 = new Recorder();
  const at3 = new Recorder();
  subscribe(sim, 2, at2, "t");
  subscribe(sim, 3, at3, "t");
  subscribe(sim, 2, at2, "work", "q");
  subscribe(sim, 3, at3, "work", "q");
  sim.runFor(500);
  const before = sim.engine(1)!.stats().framesOut;
  const framesBefore = sim.engine(2)!.pubsub.stats().dataIn;
  publish(sim, 1, "t", "one");
  sim.runFor(500);
  assert.equal(sim.engine(2)!.pubsub.stats().dataIn - framesBefore, 1, "one DATA frame on link 1–2 for two subscriber nodes");
  assert.ok(sim.engine(1)!.stats().framesOut > before);
  assert.deepEqual(at2.got.map((m) => m.data), ["one"]);
  assert.deepEqual(at3.got.map((m) => m.data), ["one"]);
  for (let i = 0; i < 30; i++) publish(sim, 1, "work", `w${i}`);
  sim.runFor(1_000);
  const work = [...at2.got, ...at3.got].filter((m) => m.subject === "work").map((m) => m.data).sort();
  assert.deepEqual(work, Array.from({ length: 30 }, (_, i) => `w${i}`).sort(), "each queue message exactly once");
  assert.equal(at2.got.filter((m) => m.subject === "work").length, 30, "node 2 (nearer to 1 than 3) takes them all");
});

test("pubsub overlay: a crashed node's interest expires everywhere; a restarted node starts clean", () => {
  const sim = chain(3);
  const at3 = new Recorder();
  subscribe(sim, 3, at3, "x");
  sim.runFor(500);
  assert.equal(publish(sim, 1, "x", "a"), 1);
  sim.crash(3);
  sim.runFor(15_000);
  assert.deepEqual(sim.engine(1)!.pubsub.originIds(), [2]);
  assert.equal(publish(sim, 1, "x", "b"), 0, "no responders once the node is gone");
  sim.restart(3);
  sim.runFor(8_000);
  const again = new Recorder();
  subscribe(sim, 3, again, "y");
  sim.runFor(1_000);
  assert.deepEqual(sim.engine(1)!.pubsub.interestOf(3), [{ subject: "y", queue: undefined, count: 1 }]);
});

interface LiveSub {
  node: NodeId;
  sub: Subscription;
}

/**
 * Property: random subscribe/unsubscribe on random nodes, publishes, loss, partitions that heal,
 * crashes and restarts. At the end (after healing) every live node mirrors exactly every other
 * live node's local interest, and no subscription ever got one message twice.
 */
function runProperty(seed: number): void {
  const nodes = 7;
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes, seed: 100 + seed }), seed, network: { loss: 0.03 }, engine: { maxNeighbours: 4 } });
  const rng = new SeededRng(seed * 7919 + 1);
  const recorders = new Map<NodeId, Recorder>();
  const live: LiveSub[] = [];
  const subjects = ["a", "a.b", "a.*", "a.>", "b.c", "q.work"];
  let msgId = 0;
  const recorder = (node: NodeId): Recorder => {
    let r = recorders.get(node);
    if (r === undefined) recorders.set(node, (r = new Recorder()));
    return r;
  };
  sim.runFor(10_000);
  let partitioned = false;
  for (let step = 0; step < 120; step++) {
    const node = (1 + rng.nextInt(nodes)) as NodeId;
    const roll = rng.nextInt(100);
    if (!sim.isUp(node)) {
      if (roll < 30) {
        sim.restart(node);
        recorders.delete(node);
      }
    } else if (roll < 35) {
      const subject = subjects[rng.nextInt(subjects.length)]!;
      const queue = subject === "q.work" ? "workers" : undefined;
      live.push({ node, sub: subscribe(sim, node, recorder(node), subject, queue, `${node}/${step}`) });
    } else if (roll < 50) {
      const mine = live.filter((entry) => entry.node === node);
      if (mine.length > 0) {
        const entry = mine[rng.nextInt(mine.length)]!;
        sim.call(node, (engine, now) => {
          engine.touch(now);
          engine.pubsub.broker.unsubscribe(entry.sub);
        });
        live.splice(live.indexOf(entry), 1);
      }
    } else if (roll < 85) {
      const subject = ["a", "a.b", "a.x", "b.c", "q.work"][rng.nextInt(5)]!;
      publish(sim, node, subject, `#${msgId++}`);
    } else if (roll < 90 && node !== 1) {
      sim.crash(node);
      for (let i = live.length - 1; i >= 0; i--) if (live[i]!.node === node) live.splice(i, 1);
    } else if (roll < 95) {
      if (partitioned) sim.heal();
      else sim.partition([[1, 2, 3]]);
      partitioned = !partitioned;
    }
    sim.runFor(200 + rng.nextInt(800));
  }
  sim.heal();
  for (const id of sim.nodeIds()) if (!sim.isUp(id)) sim.restart(id);
  sim.runFor(40_000);
  const up = sim.nodeIds().filter((id) => sim.isUp(id));
  let reachablePairs = 0;
  for (const x of up) {
    const overlay = sim.engine(x)!.pubsub;
    for (const y of up) {
      if (y === x) continue;
      // With few links per node the overlay may stay split after a partition (nodes full); interest
      // is then exact within each connected part, and absent across.
      if (sim.engine(x)!.nextHop(y) === undefined) {
        assert.ok(!overlay.originIds().includes(y), `seed ${seed}: node ${x} mirrors unreachable node ${y}`);
        continue;
      }
      reachablePairs++;
      const expected = sim.engine(y)!.pubsub.interestOf(y);
      const mirrored = overlay.interestOf(y);
      assert.deepEqual(mirrored, expected, `seed ${seed}: node ${x}'s copy of node ${y}'s interest`);
    }
    for (const origin of overlay.originIds()) assert.ok(up.includes(origin), `seed ${seed}: node ${x} still mirrors dead node ${origin}`);
  }
  assert.ok(reachablePairs >= up.length, `seed ${seed}: only ${reachablePairs} reachable pairs`);
  // Ground truth: the live subscriptions themselves.
  for (const y of up) {
    const counts = new Map<string, number>();
    for (const entry of live) if (entry.node === y) counts.set(`${entry.sub.subject}|${entry.sub.queue ?? ""}`, (counts.get(`${entry.sub.subject}|${entry.sub.queue ?? ""}`) ?? 0) + 1);
    const interest = sim.engine(y)!.pubsub.interestOf(y);
    assert.equal(interest.length, counts.size, `seed ${seed}: node ${y} local interest`);
    for (const item of interest) assert.equal(counts.get(`${item.subject}|${item.queue ?? ""}`), item.count);
  }
  for (const [node, r] of recorders) {
    const seen = new Set<string>();
    for (const m of r.got) {
      const key = `${m.sid}|${m.data}`;
      assert.ok(!seen.has(key), `seed ${seed}: node ${node} subscription ${m.sid} got ${m.data} twice`);
      seen.add(key);
    }
  }
}

for (const seed of [1, 2, 3, 4]) {
  test(`pubsub overlay property (seed ${seed}): interest converges to the live subscriptions under loss, partitions and crashes; no duplicates`, () => {
    runProperty(seed);
  });
}

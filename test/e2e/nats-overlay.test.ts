/**
 * NATS across the overlay with the real `nats` client against three real `skein node` processes
 * in a chain A(1) – B(2) – C(3): A and C run with --max-neighbours 1, so C is reached only through
 * B (checked with /api/routes). A's client receives C's publishes; request/reply across nodes; no
 * responders overlay-wide; queue groups exactly once across the three nodes; a subscriber moving
 * to another node when its node dies.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection, StringCodec } from "nats";
import { type Listening, type SkeinProcess, getNode, startSkein, stopAll, waitFor } from "./processes.js";

const sc = StringCodec();
const clients: NatsConnection[] = [];

async function client(url: string | string[], options: Parameters<typeof connect>[0] = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: url, reconnect: false, ...options });
  clients.push(nc);
  return nc;
}

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
  await stopAll();
});

type Started = Listening & { nats: string };

function args(id: number, extra: string[] = []): string[] {
  return ["node", "--node-id", String(id), "--tcp-port", "0", "--nats-port", "0", "--web-addr", "127.0.0.1:0", "--probe-interval-ms", "300", "--link-timeout-ms", "2000", "--log-level", "warn", ...extra];
}

async function nextHop(web: string, destination: number): Promise<number | null> {
  const response = await fetch(`${web}/api/routes`);
  const body = (await response.json()) as { routes: { destination: number; next_hop: number | null }[] };
  return body.routes.find((route) => route.destination === destination)?.next_hop ?? null;
}

/** Publishes `subject` from `pub` until `sub` sees one (interest has propagated), then drains the probe. */
async function waitForInterest(pub: NatsConnection, sub: NatsConnection, subject: string): Promise<void> {
  const probe = sub.subscribe(`${subject}.probe`);
  await sub.flush();
  let seen = false;
  void (async () => {
    for await (const _ of probe) {
      seen = true;
      break;
    }
  })();
  await waitFor(`interest in ${subject}.probe to reach the publisher's node`, async () => {
    pub.publish(`${subject}.probe`);
    await pub.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    return seen;
  }, 60_000);
}

describe("NATS across the overlay (chain A–B–C)", () => {
  let b: SkeinProcess;
  let c: SkeinProcess;
  const info: Record<number, Started> = {};

  before(async () => {
    b = startSkein(args(2));
    info[2] = (await b.listening) as Started;
    const seed = `2@${info[2].addresses[0]!}`;
    const a = startSkein(args(1, ["--seeds", seed, "--max-neighbours", "1"]));
    c = startSkein(args(3, ["--seeds", seed, "--max-neighbours", "1"]));
    info[1] = (await a.listening) as Started;
    info[3] = (await c.listening) as Started;
    await waitFor("A to route to C through B", async () => (await nextHop(info[1]!.web!, 3)) === 2 && (await nextHop(info[3]!.web!, 1)) === 2, 60_000);
  });

  test("A's client receives C's publishes, in order, once each (through B)", async () => {
    const atA = await client(info[1]!.nats);
    const atC = await client(info[3]!.nats);
    await waitForInterest(atC, atA, "chain");
    const sub = atA.subscribe("chain.data.>");
    await waitForInterest(atC, atA, "chain.data.x");
    const got: string[] = [];
    const done = (async () => {
      for await (const msg of sub) {
        if (msg.subject.endsWith(".probe")) continue; // the interest probes match chain.data.> too
        got.push(sc.decode(msg.data));
        if (got.length === 200) break;
      }
    })();
    for (let i = 0; i < 200; i++) atC.publish(`chain.data.${i % 7}`, sc.encode(String(i)));
    await atC.flush();
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${got.length} of 200 arrived`)), 60_000))]);
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => String(i)));
    // Through B: A never had a link to C. (Its route to C may be briefly withdrawn on a loaded
    // machine, when B's reports come late; what matters is that there is no A–C link.)
    assert.deepEqual(
      (await getNode(info[1]!.web!)).neighbours.map((neighbour) => neighbour.id),
      [2],
      "A's only neighbour is B",
    );
  });

  test("request/reply across nodes; no responders known overlay-wide", async () => {
    const atA = await client(info[1]!.nats);
    const atC = await client(info[3]!.nats);
    atC.subscribe("svc.upper", { callback: (_err, msg) => msg.respond(sc.encode(sc.decode(msg.data).toUpperCase())) });
    await atC.flush();
    let answer = "";
    await waitFor("the service on C to answer A", async () => {
      try {
        answer = sc.decode((await atA.request("svc.upper", sc.encode("hello"), { timeout: 1000 })).data);
        return true;
      } catch {
        return false;
      }
    }, 60_000);
    assert.equal(answer, "HELLO");
    // No responders, not a timeout: the 503 comes from A at once (a timeout would be code TIMEOUT,
    // after 60 s). No subscriber anywhere is known to A through the mirrored interest.
    await assert.rejects(atA.request("nobody.anywhere", sc.encode("?"), { timeout: 60_000 }), (error: Error & { code?: string }) => error.code === "503");
  });

  test("queue groups: each message exactly once across three nodes, nearest member first", async () => {
    const conns = await Promise.all([1, 2, 3].map((id) => client(info[id]!.nats)));
    const got: { node: number; data: string }[] = [];
    for (const [index, nc] of conns.entries()) {
      nc.subscribe("jobs.all", { queue: "w", callback: (_err, msg) => got.push({ node: index + 1, data: sc.decode(msg.data) }) });
      if (index > 0) nc.subscribe("jobs.far", { queue: "far", callback: (_err, msg) => got.push({ node: index + 1, data: sc.decode(msg.data) }) });
      await nc.flush();
    }
    const publisher = await client(info[1]!.nats);
    // Interest in jobs.far from B and C reached A once a probe gets through.
    await waitFor("queue interest to reach A", async () => {
      try {
        await publisher.request("jobs.far", sc.encode("probe"), { timeout: 300, noMux: true });
      } catch (error) {
        return (error as { code?: string }).code !== "503";
      }
      return true;
    }, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    got.length = 0;
    for (let i = 0; i < 60; i++) {
      conns[i % 3]!.publish("jobs.all", sc.encode(`all${i}`));
      publisher.publish("jobs.far", sc.encode(`far${i}`));
    }
    await Promise.all([...conns, publisher].map((nc) => nc.flush()));
    // Counted by content: a late interest probe ("probe") must not stand in for a job.
    const jobs = (): number => got.filter((m) => m.data.startsWith("all") || m.data.startsWith("far")).length;
    await waitFor("every job", () => jobs() >= 120, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const all = got.filter((m) => m.data.startsWith("all")).map((m) => m.data).sort();
    const far = got.filter((m) => m.data.startsWith("far"));
    assert.deepEqual(all, Array.from({ length: 60 }, (_, i) => `all${i}`).sort(), "jobs.all: exactly once each");
    assert.equal(far.length, 60, "jobs.far: exactly once each");
    assert.deepEqual([...new Set(far.map((m) => m.node))], [2], "jobs.far goes to B, the member nearest to A");
  });

  test("headers, auto-unsubscribe and echo off across the overlay (A ↔ C through B)", async () => {
    const atA = await client(info[1]!.nats);
    const atC = await client(info[3]!.nats, { noEcho: true });
    await waitForInterest(atC, atA, "extras");
    // Headers cross with the message.
    const withHeaders: { data: string; trace: string | undefined }[] = [];
    atA.subscribe("extras.h", { callback: (_err, msg) => withHeaders.push({ data: sc.decode(msg.data), trace: msg.headers?.get("Trace-Id") }) });
    await waitForInterest(atC, atA, "extras.h");
    const { headers } = await import("nats");
    const h = headers();
    h.set("Trace-Id", "t-42");
    atC.publish("extras.h", sc.encode("with headers"), { headers: h });
    await atC.flush();
    await waitFor("the message with headers", () => withHeaders.some((m) => m.data === "with headers"), 60_000);
    assert.equal(withHeaders.find((m) => m.data === "with headers")!.trace, "t-42");

    // Auto-unsubscribe after 3 messages, counted at A; then A's interest is withdrawn overlay-wide.
    const limited: string[] = [];
    const sub = atA.subscribe("extras.max", { max: 3, callback: (_err, msg) => limited.push(sc.decode(msg.data)) });
    await waitForInterest(atC, atA, "extras.max");
    for (let i = 0; i < 10; i++) atC.publish("extras.max", sc.encode(`n${i}`));
    await atC.flush();
    await waitFor("three messages and the end of the subscription", () => limited.length >= 3 && sub.isClosed(), 60_000);
    await waitFor("the withdrawn interest to reach C (no responders there)", async () => {
      try {
        // Until the withdrawal arrives the request goes to A and nobody answers: try again.
        await atC.request("extras.max", sc.encode("?"), { timeout: 2_000, noMux: true });
        return false;
      } catch (error) {
        return (error as { code?: string }).code === "503";
      }
    }, 60_000);
    assert.deepEqual(limited, ["n0", "n1", "n2"]);

    // Echo off: C's own subscription does not get C's publishes; A's does.
    const own: string[] = [];
    const far: string[] = [];
    atC.subscribe("extras.echo", { callback: (_err, msg) => own.push(sc.decode(msg.data)) });
    atA.subscribe("extras.echo", { callback: (_err, msg) => far.push(sc.decode(msg.data)) });
    await Promise.all([atA.flush(), atC.flush()]);
    let i = 0;
    await waitFor("C's publish to reach A", async () => {
      atC.publish("extras.echo", sc.encode(`e${i++}`));
      await atC.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return far.length > 0;
    }, 60_000);
    // A marker from A proves C's subscription is live and caught up: it arrives, C's own do not.
    atA.publish("extras.echo", sc.encode("from A"));
    await atA.flush();
    await waitFor("A's marker at C", () => own.includes("from A"), 60_000);
    assert.deepEqual(own, ["from A"], "C never got its own publishes (echo off)");
  });

  test("a subscriber moves to another node when its node dies", async () => {
    const atA = await client(info[1]!.nats);
    const mover = await client([info[3]!.nats, info[2]!.nats], { reconnect: true, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    const got: string[] = [];
    mover.subscribe("move.x", { callback: (_err, msg) => got.push(sc.decode(msg.data)) });
    await mover.flush();
    let i = 0;
    await waitFor("the subscriber on C to get A's messages", async () => {
      atA.publish("move.x", sc.encode(`m${i++}`));
      await atA.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return got.length > 0;
    }, 60_000);
    await c.kill("SIGKILL");
    const before = got.length;
    await waitFor("the moved subscriber (now on B) to get A's messages", async () => {
      atA.publish("move.x", sc.encode(`m${i++}`));
      await atA.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return got.length > before;
    }, 60_000);
    assert.equal(new Set(got).size, got.length, "no message twice");
  });
});

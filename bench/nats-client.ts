/**
 * One `nats` client workload against one server, in its own process (bench/nats.ts starts it):
 *
 *   node dist/bench/nats-client.js URL WORKLOAD COUNT SIZE
 *
 * WORKLOAD: pub (publish-only: publish COUNT messages, then flush; msgs/s until the server has
 * them all), pubsub (one publisher connection, one subscriber connection; msgs/s at the
 * subscriber from its first to its COUNT-th message), reqrep (one responder connection, one
 * requester making COUNT sequential requests after a warm-up; p50/p99 in µs), twonode (URL is
 * PUB_URL,SUB_URL: the publisher on one server, the subscriber on another; msgs/s at the
 * subscriber as in pubsub, then COUNT/100 one-way latencies: one message at a time, its publish
 * time in the payload, measured when the subscriber's callback runs; p50/p99 in µs).
 * Prints one JSON object on stdout.
 */
import { connect, type NatsConnection } from "nats";

const PUBLISH_FLUSH_EVERY = 50_000;
const REQREP_WARMUP = 1_000;

async function publishOnly(url: string, count: number, payload: Uint8Array): Promise<Record<string, number>> {
  const nc = await connect({ servers: url });
  // Warm-up, not timed.
  for (let i = 0; i < Math.min(count / 10, 50_000); i++) nc.publish("bench.pub", payload);
  await nc.flush();
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    nc.publish("bench.pub", payload);
    if (i % PUBLISH_FLUSH_EVERY === PUBLISH_FLUSH_EVERY - 1) await nc.flush();
  }
  await nc.flush();
  const seconds = (performance.now() - start) / 1000;
  await nc.close();
  return { msgs_per_s: count / seconds, seconds };
}

async function pubSub(url: string, count: number, payload: Uint8Array): Promise<Record<string, number>> {
  const sub = await connect({ servers: url });
  const pub = await connect({ servers: url });
  let received = 0;
  let first = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const warmup = Math.min(count / 10, 50_000);
  const total = warmup + count;
  sub.subscribe("bench.ps", {
    callback: () => {
      received++;
      if (received === warmup + 1) first = performance.now();
      if (received === total) done();
    },
  });
  await sub.flush();
  for (let i = 0; i < total; i++) {
    pub.publish("bench.ps", payload);
    // Let the subscriber side of this process run: the publisher must not starve it.
    if (i % PUBLISH_FLUSH_EVERY === PUBLISH_FLUSH_EVERY - 1) await pub.flush();
  }
  await pub.flush();
  await finished;
  const seconds = (performance.now() - first) / 1000;
  await Promise.all([pub.close(), sub.close()]);
  return { msgs_per_s: (count - 1) / seconds, seconds };
}

async function requestReply(url: string, count: number, payload: Uint8Array): Promise<Record<string, number>> {
  const responder: NatsConnection = await connect({ servers: url });
  responder.subscribe("bench.rr", { callback: (_error, msg) => msg.respond(msg.data) });
  await responder.flush();
  const requester = await connect({ servers: url });
  for (let i = 0; i < REQREP_WARMUP; i++) await requester.request("bench.rr", payload, { timeout: 5000 });
  const samples = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await requester.request("bench.rr", payload, { timeout: 5000 });
    samples[i] = (performance.now() - start) * 1000;
  }
  samples.sort();
  await Promise.all([requester.close(), responder.close()]);
  return { p50_us: samples[Math.floor(count * 0.5)]!, p99_us: samples[Math.floor(count * 0.99)]! };
}

const TWO_NODE_LATENCY_WARMUP = 500;

/**
 * Publisher on `pubUrl`, subscriber on `subUrl` (two servers linked: a skein overlay or a
 * nats-server cluster). Waits until interest has crossed (probes until one arrives), then measures
 * throughput as pubSub does and one-way latency with one message in flight at a time.
 */
async function twoNode(urls: string, count: number, payload: Uint8Array): Promise<Record<string, number>> {
  const [pubUrl, subUrl] = urls.split(",");
  const sub = await connect({ servers: subUrl! });
  const pub = await connect({ servers: pubUrl! });
  let phase: "probe" | "throughput" | "latency" = "probe";
  let probed = false;
  let received = 0;
  let first = 0;
  let last = 0;
  const warmup = Math.min(count / 10, 50_000);
  const total = warmup + count;
  let done!: () => void;
  let finished = new Promise<void>((resolve) => (done = resolve));
  let landed: ((at: number) => void) | undefined;
  sub.subscribe("bench.2n.*", {
    callback: (_error, msg) => {
      if (phase === "probe") {
        if (msg.subject === "bench.2n.probe") probed = true;
        return;
      }
      if (msg.subject !== "bench.2n.data") return;
      if (phase === "latency") {
        landed?.(performance.now());
        return;
      }
      received++;
      last = performance.now();
      if (received === warmup + 1) first = last;
      if (received === total) done();
    },
  });
  await sub.flush();
  const probeDeadline = performance.now() + 30_000;
  while (!probed) {
    if (performance.now() > probeDeadline) throw new Error("interest did not cross from the subscriber's server to the publisher's within 30 s");
    pub.publish("bench.2n.probe");
    await pub.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Let probes still in flight land before counting.
  await new Promise((resolve) => setTimeout(resolve, 200));
  phase = "throughput";
  for (let i = 0; i < total; i++) {
    pub.publish("bench.2n.data", payload);
    if (i % PUBLISH_FLUSH_EVERY === PUBLISH_FLUSH_EVERY - 1) await pub.flush();
  }
  await pub.flush();
  // A cluster may drop (at most once: nats-server cuts a slow route's backlog): wait for all, or
  // until nothing arrived for 2 s, and count what arrived.
  for (;;) {
    const idleSince = last;
    const outcome = await Promise.race([finished.then(() => "done" as const), new Promise<"wait">((resolve) => setTimeout(() => resolve("wait"), 2_000))]);
    if (outcome === "done" || last === idleSince) break;
  }
  if (received <= warmup + 1) throw new Error(`subscriber got ${received} of ${total} messages`);
  const seconds = (last - first) / 1000;
  const msgsPerS = (received - warmup - 1) / seconds;
  const deliveredShare = received / total;

  phase = "latency";
  const samples = Math.max(100, Math.floor(count / 100));
  const latencies = new Float64Array(samples);
  for (let i = 0; i < TWO_NODE_LATENCY_WARMUP + samples; i++) {
    finished = new Promise<void>((resolve) => (done = resolve));
    let at = 0;
    landed = (when) => {
      at = when;
      done();
    };
    const start = performance.now();
    pub.publish("bench.2n.data", payload);
    const guard = setTimeout(() => done(), 5_000);
    await finished;
    clearTimeout(guard);
    if (at === 0) throw new Error("a latency probe got lost (5 s)");
    if (i >= TWO_NODE_LATENCY_WARMUP) latencies[i - TWO_NODE_LATENCY_WARMUP] = (at - start) * 1000;
  }
  latencies.sort();
  await Promise.all([pub.close(), sub.close()]);
  return { msgs_per_s: msgsPerS, seconds, delivered_share: deliveredShare, p50_us: latencies[Math.floor(samples * 0.5)]!, p99_us: latencies[Math.floor(samples * 0.99)]! };
}

async function main(): Promise<void> {
  const [url, workload, countText, sizeText] = process.argv.slice(2);
  const count = Number(countText);
  const payload = new Uint8Array(Number(sizeText)).fill(0x61);
  let result: Record<string, number>;
  if (workload === "pub") result = await publishOnly(url!, count, payload);
  else if (workload === "pubsub") result = await pubSub(url!, count, payload);
  else if (workload === "reqrep") result = await requestReply(url!, count, payload);
  else if (workload === "twonode") result = await twoNode(url!, count, payload);
  else throw new Error(`unknown workload ${workload}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`nats-client: ${error instanceof Error ? error.message : String(error)}\n`);
  // Open connections would keep the process alive.
  process.exit(1);
});

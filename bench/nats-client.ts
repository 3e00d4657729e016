/**
 * One `nats` client workload against one server, in its own process (bench/nats.ts starts it):
 *
 *   node dist/bench/nats-client.js URL WORKLOAD COUNT SIZE
 *
 * WORKLOAD: pub (publish-only: publish COUNT messages, then flush; msgs/s until the server has
 * them all), pubsub (one publisher connection, one subscriber connection; msgs/s at the
 * subscriber from its first to its COUNT-th message), reqrep (one responder connection, one
 * requester making COUNT sequential requests after a warm-up; p50/p99 in µs).
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

async function main(): Promise<void> {
  const [url, workload, countText, sizeText] = process.argv.slice(2);
  const count = Number(countText);
  const payload = new Uint8Array(Number(sizeText)).fill(0x61);
  let result: Record<string, number>;
  if (workload === "pub") result = await publishOnly(url!, count, payload);
  else if (workload === "pubsub") result = await pubSub(url!, count, payload);
  else if (workload === "reqrep") result = await requestReply(url!, count, payload);
  else throw new Error(`unknown workload ${workload}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`nats-client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});

/**
 * `npm run bench -- pubsub [--quick] [--size BYTES] [--rates 10000,50000,...] [--transport tcp|udp]`
 *
 * The library API across the overlay: 5 skein nodes in this process (real sockets on 127.0.0.1),
 * one publisher on node 1, one subscriber on each of nodes 2-5, 256-byte messages. For each offered
 * rate the publisher paces itself for a few seconds; every subscriber timestamps arrivals (the
 * publish time travels in the first 8 bytes), so latency is publish() → the subscriber's iterator.
 * A rate is *sustained* when every subscriber received ≥ 99% of what was published and p99 stays
 * under 100 ms. The last row is the highest sustained rate.
 *
 * Baseline: js-libp2p gossipsub as measured in the issue (saturates near 900 msgs/s; p99 17-31 ms
 * at 100 msgs/s); it is not installed here, so the figures are printed as the reference.
 * Targets (issue 5): 50 k msgs/s sustained; p99 < 10 ms at 10 k msgs/s.
 */
import { createNode } from "../src/runtime/node.js";
import type { SkeinNode } from "../src/node/api.js";

export const PUBSUB_USAGE = [
  "usage: npm run bench -- pubsub [options]",
  "  --quick                      shorter runs (a smoke test; figures are rough)",
  "  --size BYTES                 payload size (default 256)",
  "  --rates LIST                 offered rates in msgs/s (default 10000,25000,50000,75000,100000)",
  "  --transport tcp|udp          link transport (default tcp)",
].join("\n");

const NODES = 5;

interface Options {
  quick: boolean;
  size: number;
  rates: number[];
  transport: "tcp" | "udp";
}

function parse(args: string[]): Options | string {
  const options: Options = { quick: false, size: 256, rates: [10_000, 25_000, 50_000, 75_000, 100_000], transport: "tcp" };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--quick") options.quick = true;
    else if (arg === "--size") options.size = Number(args[++i]);
    else if (arg === "--rates") options.rates = String(args[++i]).split(",").map(Number);
    else if (arg === "--transport") {
      const t = args[++i];
      if (t !== "tcp" && t !== "udp") return `bad --transport ${t}`;
      options.transport = t;
    } else return `unknown option ${arg}`;
  }
  if (!(options.size >= 8 && options.size <= 1_048_576)) return "--size must be 8..1048576";
  if (options.rates.some((rate) => !(rate > 0))) return "--rates must be positive numbers";
  return options;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

export async function runPubsub(args: string[]): Promise<number> {
  const parsed = parse(args);
  if (typeof parsed === "string") {
    process.stderr.write(`${parsed}\n${PUBSUB_USAGE}\n`);
    return 2;
  }
  const options = parsed;
  const durationMs = options.quick ? 1_000 : 3_000;
  const port = options.transport === "tcp" ? { tcpPort: 0 } : { udpPort: 0 };
  const nodes: SkeinNode[] = [];
  try {
    const first = await createNode({ nodeId: 1, ...port, logLevel: "silent" });
    nodes.push(first);
    const seed = `1@${first.addresses[0]!}`;
    for (let id = 2; id <= NODES; id++) nodes.push(await createNode({ nodeId: id, ...port, seeds: [seed], logLevel: "silent" }));
    // Every node linked and routed.
    const deadline = performance.now() + 20_000;
    while (nodes.some((node) => node.neighbours().filter((n) => n.state === "up").length < NODES - 1)) {
      if (performance.now() > deadline) throw new Error("the 5 nodes did not link within 20 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const publisher = nodes[0]!;
    const latencies: number[][] = [];
    const received: number[] = [];
    let collecting = false;
    const subscribers = nodes.slice(1).map((node, index) => {
      latencies.push([]);
      received.push(0);
      const sub = node.subscribe("bench.pubsub");
      void (async () => {
        for await (const msg of sub) {
          if (!collecting) continue;
          const data = msg.data;
          const sentAt = new DataView(data.buffer, data.byteOffset, 8).getFloat64(0);
          latencies[index]!.push(performance.now() - sentAt);
          received[index]!++;
        }
      })();
      return sub;
    });
    // Wait for the interest to reach node 1 (a publish with interest everywhere takes 5 copies).
    const interestDeadline = performance.now() + 10_000;
    while (!(await interestEverywhere(publisher))) {
      if (performance.now() > interestDeadline) throw new Error("interest did not reach node 1 within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const payload = new Uint8Array(options.size);
    const view = new DataView(payload.buffer);
    let best: { rate: number; p50: number; p99: number } | undefined;
    for (const rate of options.rates) {
      for (let i = 0; i < latencies.length; i++) {
        latencies[i]!.length = 0;
        received[i] = 0;
      }
      collecting = true;
      const started = performance.now();
      let sent = 0;
      // Paced in 1 ms slices: publish what is due, yield to the event loop.
      while (performance.now() - started < durationMs) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate);
        while (sent < due) {
          view.setFloat64(0, performance.now());
          publisher.publish("bench.pubsub", payload);
          sent++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      const elapsedS = (performance.now() - started) / 1000;
      // Let in-flight messages land (at most 2 s).
      const settle = performance.now() + 2_000;
      while (received.some((count) => count < sent) && performance.now() < settle) await new Promise((resolve) => setTimeout(resolve, 10));
      collecting = false;
      const all = new Float64Array(latencies.flat()).sort();
      const minReceived = Math.min(...received);
      const p50 = percentile(all, 50);
      const p99 = percentile(all, 99);
      const sustained = minReceived >= 0.99 * sent && p99 < 100;
      if (sustained) best = { rate: sent / elapsedS, p50, p99 };
      process.stdout.write(
        `${JSON.stringify({
          bench: "pubsub",
          workload: "1 publisher → 4 subscribers on 4 other nodes (library API)",
          offered_msgs_per_s: rate,
          published_msgs_per_s: round(sent / elapsedS),
          delivered_min_share: round(minReceived / Math.max(1, sent), 4),
          p50_ms: round(p50, 3),
          p99_ms: round(p99, 3),
          sustained,
          payload_bytes: options.size,
          nodes: NODES,
          transport: options.transport,
          duration_ms: durationMs,
          baseline: "js-libp2p gossipsub (issue's figures: saturates near 900 msgs/s, p99 17-31 ms at 100 msgs/s)",
          target: rate === 10_000 ? "p99 < 10 ms" : rate === 50_000 ? "sustained" : null,
          meets_target: rate === 10_000 ? p99 < 10 : rate === 50_000 ? sustained : null,
          ...(options.quick ? { quick: true } : {}),
        })}\n`,
      );
      if (!sustained) break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    process.stdout.write(
      `${JSON.stringify({
        bench: "pubsub",
        metric: "max_sustained_msgs_per_s",
        value: best === undefined ? null : round(best.rate),
        p50_ms: best === undefined ? null : round(best.p50, 3),
        p99_ms: best === undefined ? null : round(best.p99, 3),
        baseline: "js-libp2p gossipsub",
        baseline_value: 900,
        target: 50_000,
        meets_target: best !== undefined && best.rate >= 49_000,
        payload_bytes: options.size,
        transport: options.transport,
      })}\n`,
    );
    for (const sub of subscribers) sub.unsubscribe();
    return 0;
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
  }
}

async function interestEverywhere(publisher: SkeinNode): Promise<boolean> {
  // A request on the benchmark subject would be answered by nobody: use the match count instead,
  // through a probe subscription-free check: publish a probe and count nothing. The library has no
  // match API, so look at the route table: every node reachable, then give interest 200 ms.
  const routed = publisher.routes().filter((route) => route.nextHop !== undefined).length;
  if (routed < NODES - 1) return false;
  await new Promise((resolve) => setTimeout(resolve, 500));
  return true;
}

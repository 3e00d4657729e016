/**
 * `npm run bench -- pubsub [--quick] [--size BYTES] [--rates 1000,10000,...] [--transport tcp|udp]`
 *
 * The library API across the overlay: 5 skein nodes, each in its own process (bench/pubsub-node.ts;
 * real sockets on 127.0.0.1), one publisher on node 1, one subscriber on each of nodes 2-5,
 * 256-byte messages. Node 1 is every other node's seed, so the publisher's node has a direct link
 * to each subscriber's. For each offered rate the publisher paces itself (a 1 ms timer) for a few
 * seconds; every subscriber timestamps arrivals against the publish time carried in the message
 * (CLOCK_MONOTONIC, shared by the processes), so latency is publish() → the subscriber's iterator.
 *
 * A rate is *sustained* when the publisher kept up (published ≥ 98% of the offered rate), every
 * subscriber received ≥ 99% of what was published and p99 stayed under 100 ms. Rates are measured
 * in order; a rate not sustained is measured a second time (the machine may be shared) and, if it
 * fails again, only the fixed rates (1k and 10k msgs/s) still run. The last row is the highest sustained rate.
 *
 * Why separate processes: with all five nodes and the publisher's pacing loop in one process, the
 * publisher's turn, four subscribers' iterators and five engines shared one event loop; at 10 k
 * msgs/s each message waited behind everyone else's work (p50 ~400 ms in an earlier run of that
 * design). That measured the shared event loop, not the overlay.
 *
 * Baseline: js-libp2p gossipsub as measured in the issue (saturates near 900 msgs/s; p99 17-31 ms
 * at 100 msgs/s); it is not installed here, so the issue's figures are printed as the reference.
 * Targets (issue 5): 50 k msgs/s sustained; p99 < 10 ms at 10 k msgs/s.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const NODE_SCRIPT = fileURLToPath(new URL("./pubsub-node.js", import.meta.url));

export const PUBSUB_USAGE = [
  "usage: npm run bench -- pubsub [options]",
  "  --quick                      shorter runs (a smoke test; figures are rough)",
  "  --size BYTES                 payload size (default 256)",
  "  --rates LIST                 offered rates in msgs/s (default 1000,10000,25000,50000,75000,100000)",
  "  --transport tcp|udp          link transport (default tcp)",
].join("\n");

const NODES = 5;
const FIXED_RATES = new Set([1_000, 10_000]);

interface Options {
  quick: boolean;
  size: number;
  rates: number[];
  transport: "tcp" | "udp";
}

function parse(args: string[]): Options | string {
  const options: Options = { quick: false, size: 256, rates: [1_000, 10_000, 25_000, 50_000, 75_000, 100_000], transport: "tcp" };
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
  if (!(options.size >= 12 && options.size <= 1_048_576)) return "--size must be 12..1048576";
  if (options.rates.some((rate) => !(rate > 0))) return "--rates must be positive numbers";
  return options;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

type Reply = Record<string, unknown> & { kind: string };

class Child {
  private readonly waiting: { kind: string; resolve: (reply: Reply) => void }[] = [];
  private exited = false;
  constructor(readonly process: ChildProcess) {
    process.on("message", (reply: Reply) => {
      const index = this.waiting.findIndex((w) => w.kind === reply.kind);
      if (index >= 0) this.waiting.splice(index, 1)[0]!.resolve(reply);
    });
    process.once("exit", () => (this.exited = true));
  }
  next(kind: string, timeoutMs = 30_000): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${kind} from a bench node within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        kind,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
      });
    });
  }
  ask(message: Record<string, unknown>, kind: string, timeoutMs?: number): Promise<Reply> {
    const reply = this.next(kind, timeoutMs);
    this.process.send(message);
    return reply;
  }
  tell(message: Record<string, unknown>): void {
    if (!this.exited) this.process.send(message);
  }
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.tell({ kind: "stop" });
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

function spawnNode(role: string, id: number, dir: string, options: Options, seed?: string): Child {
  const dataDir = mkdtempSync(path.join(dir, `node${id}-`));
  const args = [role, String(id), dataDir, options.transport, String(options.size), ...(seed === undefined ? [] : [seed])];
  // BENCH_NODE_ARGS: extra node flags for the node processes, e.g. "--cpu-prof --cpu-prof-dir=prof".
  const execArgv = process.env.BENCH_NODE_ARGS?.split(" ").filter((arg) => arg !== "") ?? [];
  return new Child(fork(NODE_SCRIPT, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv }));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runPubsub(args: string[]): Promise<number> {
  const parsed = parse(args);
  if (typeof parsed === "string") {
    process.stderr.write(`${parsed}\n${PUBSUB_USAGE}\n`);
    return 2;
  }
  const options = parsed;
  const durationMs = options.quick ? 1_000 : 3_000;
  const dir = mkdtempSync(path.join(tmpdir(), "bench-pubsub-"));
  const children: Child[] = [];
  try {
    const publisher = spawnNode("publisher", 1, dir, options);
    children.push(publisher);
    const ready = await publisher.next("ready");
    const seed = `1@${String(ready.address)}`;
    const subscribers: Child[] = [];
    for (let id = 2; id <= NODES; id++) {
      const child = spawnNode("subscriber", id, dir, options, seed);
      children.push(child);
      subscribers.push(child);
    }
    await Promise.all(subscribers.map((child) => child.next("ready")));
    // Every subscriber's node linked to the publisher's and routed.
    const linkDeadline = performance.now() + 30_000;
    for (;;) {
      const reply = await publisher.ask({ kind: "neighbours" }, "neighbours");
      if (Number(reply.up) >= NODES - 1 && Number(reply.routed) >= NODES - 1) break;
      if (performance.now() > linkDeadline) throw new Error("the 5 nodes did not link within 30 s");
      await sleep(100);
    }
    // Interest everywhere: probe (run 0) until every subscriber has one.
    const probeDeadline = performance.now() + 30_000;
    for (;;) {
      publisher.tell({ kind: "probe", run: 0 });
      await sleep(100);
      const reports = await Promise.all(subscribers.map((child) => child.ask({ kind: "report", run: 0 }, "report")));
      if (reports.every((report) => Number(report.received) > 0)) break;
      if (performance.now() > probeDeadline) throw new Error("interest did not reach node 1 within 30 s");
    }
    await sleep(300);
    await Promise.all(subscribers.map((child) => child.ask({ kind: "report", run: 0 }, "report")));

    let best: { rate: number; p50: number; p99: number } | undefined;
    let saturated = false;
    let run = 0;
    for (const rate of options.rates) {
      if (saturated && !FIXED_RATES.has(rate)) continue;
      // A rate not sustained is measured once more before it counts: the machine may be shared.
      for (let attempt = 1; attempt <= 2; attempt++) {
        run++;
        const sentReply = await publisher.ask({ kind: "run", run, rate, durationMs }, "sent", durationMs + 30_000);
        const sent = Number(sentReply.sent);
        const elapsedS = Number(sentReply.elapsedMs) / 1000;
        // Let in-flight messages land: poll until every subscriber has all, or stopped receiving.
        const reports = await Promise.all(subscribers.map((child) => collect(child, run, sent)));
        const received = reports.map((report) => Number(report.received));
        const all = new Float64Array(
          reports.flatMap((report) => [...new Float64Array(Uint8Array.from(Buffer.from(String(report.samples), "base64")).buffer)]),
        ).sort();
        const minReceived = Math.min(...received);
        const p50 = percentile(all, 50);
        const p99 = percentile(all, 99);
        const publishedRate = sent / elapsedS;
        const sustained = publishedRate >= 0.98 * rate && minReceived >= 0.99 * sent && p99 < 100;
        if (sustained && !saturated && (best === undefined || rate > best.rate)) best = { rate: publishedRate, p50, p99 };
        process.stdout.write(
          `${JSON.stringify({
            bench: "pubsub",
            workload: "1 publisher → 4 subscribers on 4 other nodes (library API, one process per node)",
            offered_msgs_per_s: rate,
            published_msgs_per_s: round(publishedRate),
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
            attempt,
            ...(options.quick ? { quick: true } : {}),
          })}\n`,
        );
        await sleep(300);
        if (sustained) break;
        if (attempt === 2) saturated = true;
      }
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
    return 0;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A subscriber's report for `run` once it has everything (`sent`) or its count stopped growing for
 * 500 ms (at most 5 s). Reports are destructive, so counts are summed across polls.
 */
async function collect(child: Child, run: number, sent: number): Promise<Reply> {
  let received = 0;
  const samples: Buffer[] = [];
  let lastGrowth = performance.now();
  const deadline = performance.now() + 5_000;
  for (;;) {
    const report = await child.ask({ kind: "report", run }, "report");
    const got = Number(report.received);
    if (got > 0) {
      received += got;
      samples.push(Buffer.from(String(report.samples), "base64"));
      lastGrowth = performance.now();
    }
    if (received >= sent || performance.now() - lastGrowth > 500 || performance.now() > deadline) break;
    await sleep(100);
  }
  return { kind: "report", received, samples: Buffer.concat(samples).toString("base64") };
}


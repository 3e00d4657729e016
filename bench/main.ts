/**
 * `npm run bench -- NAME [ARGS]`: runs one benchmark. Each prints JSON lines on stdout, one per
 * figure, every figure beside its baseline measured in the same run (DESIGN.md, Conventions).
 * Progress and warnings go to stderr.
 */
import { LINK_USAGE, runLink } from "./link.js";
import { NATS_USAGE, runNats } from "./nats.js";
import { CRYPTO_USAGE, runCrypto } from "./crypto.js";
import { PUBSUB_USAGE, runPubsub } from "./pubsub.js";
import { COLLECTOR_USAGE, runCollector } from "./collector.js";

interface Bench {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const BENCHES: Record<string, Bench> = {
  link: {
    summary: "one link between two processes: skein (tcp, udp) against raw node:net / node:dgram",
    usage: LINK_USAGE,
    run: runLink,
  },
  nats: {
    summary: "the nats client through one skein node's NATS port against nats-server (when installed)",
    usage: NATS_USAGE,
    run: runNats,
  },
  pubsub: {
    summary: "the library pub/sub API across 5 nodes: one publisher, four subscribers, paced rates with p50/p99 latency",
    usage: PUBSUB_USAGE,
    run: runPubsub,
  },
  crypto: {
    summary: "the crypto layer in process: records (seal/open) against a copy, handshakes/s, end-to-end, projections to the link targets",
    usage: CRYPTO_USAGE,
    run: runCrypto,
  },
  collector: {
    summary: "the collector at 200 nodes: snapshot bytes per node per second (beside JSON), model and stream costs, the web view in chromium",
    usage: COLLECTOR_USAGE,
    run: runCollector,
  },
};

function listBenches(): string {
  return Object.entries(BENCHES)
    .map(([name, bench]) => `  ${name.padEnd(8)} ${bench.summary}\n${bench.usage.replace(/^/gm, "    ")}`)
    .join("\n");
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (name === undefined || name === "--help" || name === "-h") {
    process.stderr.write(`usage: npm run bench -- NAME [ARGS]\nbenchmarks:\n${listBenches()}\n`);
    process.exitCode = name === undefined ? 2 : 0;
    return;
  }
  const bench = BENCHES[name];
  if (bench === undefined) {
    process.stderr.write(`unknown benchmark "${name}"; known benchmarks:\n${listBenches()}\n`);
    process.exitCode = 2;
    return;
  }
  // A benchmark that waits on something that can never happen would let the event loop run dry
  // and exit 0 with half the figures: say so and fail instead.
  let finished = false;
  process.once("beforeExit", () => {
    if (!finished) {
      process.stderr.write(`bench ${name}: stopped before finishing (it waited on something that never happened)\n`);
      process.exitCode = 1;
    }
  });
  process.exitCode = await bench.run(args);
  finished = true;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});

/**
 * `npm run bench -- nats [--quick] [--size BYTES] [--servers skein,nats-server] [--workload pub,pubsub,reqrep]`
 *
 * The official `nats` client against one skein node's NATS port (`skein node --nats-port 0`), and
 * against nats-server (`nats-server -p -1`) in the same run when it is installed: the issue's
 * one-node rows. Every workload runs in a fresh client process (nats-client.ts) against a server
 * process started for the run; with two CPUs and `taskset`, the server runs on CPU 1 and the client
 * on CPU 0. Each figure is printed beside nats-server's as its baseline.
 *
 * Two-node rows (workload `twonode`): pub on node A → sub on node B. skein: two `skein node`
 * processes linked over TCP (B seeds A); nats-server: two processes in a cluster (`--cluster` and
 * `--routes` to each other). Both servers of a pair run on CPU 1, the client on CPU 0.
 *
 * Rows: publish-only msgs/s, pub→sub msgs/s, request/reply p50 and p99 (µs), two-node msgs/s and
 * one-way p50/p99 (µs).
 * Targets (issue 5): ≥ 0.5× nats-server's throughput, latency ≤ 1.5×.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const CLIENT_PATH = fileURLToPath(new URL("./nats-client.js", import.meta.url));
const CLI_PATH = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

export const NATS_USAGE = [
  "usage: npm run bench -- nats [options]",
  "  --quick                      fewer messages (a smoke test; figures are rough)",
  "  --size BYTES                 payload size (default 128)",
  "  --servers LIST               skein,nats-server (default both; nats-server only when installed)",
  "  --workload LIST              subset of pub,pubsub,reqrep,twonode (default all)",
].join("\n");

type Workload = "pub" | "pubsub" | "reqrep" | "twonode";
const WORKLOADS: readonly Workload[] = ["pub", "pubsub", "reqrep", "twonode"];

interface Options {
  quick: boolean;
  size: number;
  servers: Set<string>;
  workloads: Set<Workload>;
}

const FULL = { pub: 2_000_000, pubsub: 1_000_000, reqrep: 10_000, twonode: 1_000_000 };
const QUICK = { pub: 200_000, pubsub: 100_000, reqrep: 1_000, twonode: 100_000 };
const TARGET = { throughputRatio: 0.5, latencyRatio: 1.5 };
/** The issue's figures for nats-server 2.9.10 on this machine (reference only; the baseline is measured). */
const ISSUE_REFERENCE = { pub: 1_450_000, pubsub: 726_000, reqrep_p50_us: 242, twonode: 594_000, twonode_p50_us: 151 };

function warn(text: string): void {
  process.stderr.write(`nats: ${text}\n`);
}

function parseOptions(args: string[]): Options | string {
  const options: Options = { quick: false, size: 128, servers: new Set(["skein", "nats-server"]), workloads: new Set(WORKLOADS) };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): string | undefined => args[++i];
    if (arg === "--quick") options.quick = true;
    else if (arg === "--size") {
      const size = Number(value());
      if (!Number.isInteger(size) || size < 0 || size > 1024 * 1024) return "--size expects bytes in 0..1048576";
      options.size = size;
    } else if (arg === "--servers") options.servers = new Set((value() ?? "").split(","));
    else if (arg === "--workload") {
      const list = (value() ?? "").split(",");
      if (list.some((w) => !(WORKLOADS as readonly string[]).includes(w))) return `--workload expects a subset of ${WORKLOADS.join(",")}`;
      options.workloads = new Set(list as Workload[]);
    } else return `unknown option ${arg}`;
  }
  return options;
}

function which(name: string): string | undefined {
  const result = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

const TASKSET = availableParallelism() >= 2 ? which("taskset") : undefined;

function pinned(cpu: number, command: string[]): string[] {
  return TASKSET === undefined ? command : [TASKSET, "-c", String(cpu), ...command];
}

interface Server {
  name: string;
  version: string;
  /** One URL, or PUB_URL,SUB_URL for a two-node pair. */
  url: string;
  children: ChildProcess[];
  dir: string | undefined;
}

interface SkeinListening {
  addresses: string[];
  nats: string;
}

async function startSkeinNode(args: string[], dir: string): Promise<{ child: ChildProcess; listening: SkeinListening }> {
  // Its own data directory: its own node key (two nodes sharing one key would be one node).
  const dataDir = mkdtempSync(path.join(dir, "node-"));
  const command = pinned(1, [process.execPath, CLI_PATH, "node", ...args, "--data-dir", dataDir, "--nats-port", "0", "--log-level", "error"]);
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  const listening = await new Promise<SkeinListening>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((candidate) => candidate.startsWith('{"event":"listening"'));
      if (line !== undefined) resolve(JSON.parse(line) as SkeinListening);
    });
    child.once("exit", (code) => reject(new Error(`skein node exited with ${code}`)));
  });
  return { child, listening };
}

/** A free TCP port on 127.0.0.1 (for nats-server's cluster listeners, which must be known up front). */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startNatsServer(binary: string, dir: string, extra: string[]): Promise<{ child: ChildProcess; url: string }> {
  const before = new Set(readdirSync(dir));
  const command = pinned(1, [binary, "-p", "-1", "-a", "127.0.0.1", "--ports_file_dir", dir, ...extra]);
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "ignore"] });
  const started = performance.now();
  for (;;) {
    const file = readdirSync(dir).find((f) => f.endsWith(".ports") && !before.has(f));
    if (file !== undefined) {
      const text = readFileSync(path.join(dir, file), "utf8");
      if (text.length > 0) return { child, url: (JSON.parse(text) as { nats: string[] }).nats[0]! };
    }
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
    if (performance.now() - started > 10_000) throw new Error("nats-server did not write its ports file within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startServer(name: string, pair: boolean): Promise<Server> {
  if (name === "skein") {
    const dir = mkdtempSync(path.join(tmpdir(), "bench-skein-"));
    const a = await startSkeinNode(["--node-id", "1", "--tcp-port", "0"], dir);
    if (!pair) return { name, version: "skein node --nats-port", url: a.listening.nats, children: [a.child], dir };
    const tcp = a.listening.addresses.find((address) => address.includes("/tcp/"))!;
    const b = await startSkeinNode(["--node-id", "2", "--tcp-port", "0", "--seeds", `1@${tcp}`], dir);
    return { name, version: "two skein node --nats-port, linked over TCP", url: `${a.listening.nats},${b.listening.nats}`, children: [a.child, b.child], dir };
  }
  const binary = which("nats-server");
  if (binary === undefined) throw new Error("nats-server is not installed");
  const dir = mkdtempSync(path.join(tmpdir(), "bench-nats-"));
  const version = spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout.trim();
  if (!pair) {
    const one = await startNatsServer(binary, dir, []);
    return { name, version, url: one.url, children: [one.child], dir };
  }
  const [portA, portB] = [await freePort(), await freePort()];
  const cluster = (own: number, other: number): string[] => ["--cluster_name", "bench", "--cluster", `nats://127.0.0.1:${own}`, "--routes", `nats://127.0.0.1:${other}`];
  const a = await startNatsServer(binary, dir, cluster(portA, portB));
  const b = await startNatsServer(binary, dir, cluster(portB, portA));
  return { name, version: `${version} (two-node cluster)`, url: `${a.url},${b.url}`, children: [a.child, b.child], dir };
}

async function stopServer(server: Server): Promise<void> {
  await Promise.all(
    server.children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }),
  );
  if (server.dir !== undefined) rmSync(server.dir, { recursive: true, force: true });
}

function runClient(url: string, workload: Workload, count: number, size: number): Promise<Record<string, number>> {
  const command = pinned(0, [process.execPath, CLIENT_PATH, url, workload, String(count), String(size)]);
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`client ${workload} exited with ${code}`));
      else resolve(JSON.parse(out.trim()) as Record<string, number>);
    });
  });
}

function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export async function runNats(args: string[]): Promise<number> {
  const parsed = parseOptions(args);
  if (typeof parsed === "string") {
    process.stderr.write(`${parsed}\n${NATS_USAGE}\n`);
    return 2;
  }
  const options = parsed;
  const counts = options.quick ? QUICK : FULL;
  const servers = [...options.servers].filter((name) => {
    if (name === "nats-server" && which("nats-server") === undefined) {
      warn("nats-server is not installed (apt-get install nats-server): skein figures only, no baseline");
      return false;
    }
    return name === "skein" || name === "nats-server";
  });
  const results = new Map<string, Map<Workload, Record<string, number>>>();
  const versions = new Map<string, string>();
  for (const workload of WORKLOADS) {
    if (!options.workloads.has(workload)) continue;
    // Baseline first, then skein, each against a fresh server process.
    for (const name of [...servers].sort((a, b) => (a === "nats-server" ? -1 : b === "nats-server" ? 1 : 0))) {
      const server = await startServer(name, workload === "twonode");
      versions.set(`${name}:${workload}`, server.version);
      try {
        warn(`${workload} against ${name} (${counts[workload]} messages of ${options.size} bytes)`);
        const result = await runClient(server.url, workload, counts[workload], options.size);
        if (!results.has(name)) results.set(name, new Map());
        results.get(name)!.set(workload, result);
      } finally {
        await stopServer(server);
      }
    }
  }

  const emit = (workload: Workload, metric: string, unit: string, better: "higher" | "lower", target: number, reference: number | undefined): void => {
    const value = results.get("skein")?.get(workload)?.[metric];
    const baseline = results.get("nats-server")?.get(workload)?.[metric];
    const ratio = value !== undefined && baseline !== undefined && baseline > 0 ? value / baseline : undefined;
    const line: Record<string, unknown> = {
      bench: "nats",
      workload,
      metric,
      unit,
      value: value === undefined ? null : round(value, unit === "us" ? 1 : 0),
      baseline: "nats-server",
      baseline_version: versions.get(`nats-server:${workload}`) ?? null,
      baseline_value: baseline === undefined ? null : round(baseline, unit === "us" ? 1 : 0),
      ratio: ratio === undefined ? null : round(ratio, 3),
      better,
      target_ratio: target,
      meets_target: ratio === undefined ? null : better === "higher" ? ratio >= target : ratio <= target,
      payload_bytes: options.size,
      messages: counts[workload],
      server: workload === "twonode" ? "pub on skein node A, sub on skein node B (two processes linked over TCP)" : "skein node --nats-port (one node)",
      client: "nats 2.29.3 (npm), separate process",
      cpu_pinning: TASKSET === undefined ? "none" : "server cpu1, client cpu0",
    };
    if (workload === "twonode") {
      line.delivered_share = results.get("skein")?.get(workload)?.delivered_share ?? null;
      line.baseline_delivered_share = results.get("nats-server")?.get(workload)?.delivered_share ?? null;
    }
    if (reference !== undefined) line.issue_reference = { name: "nats-server 2.9.10 as measured in the issue", value: reference };
    if (options.quick) line.quick = true;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  if (options.workloads.has("pub")) emit("pub", "msgs_per_s", "msgs/s", "higher", TARGET.throughputRatio, ISSUE_REFERENCE.pub);
  if (options.workloads.has("pubsub")) emit("pubsub", "msgs_per_s", "msgs/s", "higher", TARGET.throughputRatio, ISSUE_REFERENCE.pubsub);
  if (options.workloads.has("reqrep")) {
    emit("reqrep", "p50_us", "us", "lower", TARGET.latencyRatio, ISSUE_REFERENCE.reqrep_p50_us);
    emit("reqrep", "p99_us", "us", "lower", TARGET.latencyRatio, undefined);
  }
  if (options.workloads.has("twonode")) {
    emit("twonode", "msgs_per_s", "msgs/s", "higher", TARGET.throughputRatio, ISSUE_REFERENCE.twonode);
    emit("twonode", "p50_us", "us", "lower", TARGET.latencyRatio, ISSUE_REFERENCE.twonode_p50_us);
    emit("twonode", "p99_us", "us", "lower", TARGET.latencyRatio, undefined);
  }
  return 0;
}

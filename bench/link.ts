/**
 * `npm run bench -- link [--quick] [--transport tcp|udp|all] [...]` (LINK_USAGE lists them all)
 *
 * One link between two processes on 127.0.0.1, skein against raw sockets doing the same work.
 * This process only orchestrates: every configuration runs in two fresh peer processes
 * (link-peer.ts), a server (sink and echo) and a client, so that the memory and JIT state of one
 * configuration never leak into another. Configurations, in order:
 *
 *   raw_net      u32 length + payload on one node:net socket: the baseline of every figure
 *   sealed_net   raw_net with every message sealed by node:crypto ChaCha20-Poly1305, as a skein
 *                record is (with tcp): the ceiling of any encrypted Node link on this machine,
 *                named on every encrypted tcp figure as sealed_net_value
 *   raw_dgram    node:dgram, one payload per datagram, no reliability (with udp; extra baseline)
 *   skein tcp    plaintext links (createBenchmarkNode, insecure: the baseline of encryption)
 *   skein tcp    createNode({ tcpPort: 0 }), the other seeded with 1@/ip4/127.0.0.1/tcp/PORT
 *                (encrypted: Noise handshake, sealed records — what every real node runs)
 *   skein udp    plaintext, then encrypted, createNode({ udpPort: 0, udpMtu: 65000 })
 *   skein udp    createNode({ udpPort: 0 }) at the default udpMtu of 1400 (encrypted)
 *
 * Workloads, each measured at the receiver after a warm-up: bulk (64 KiB messages, MB/s with
 * MB = 10^6 payload bytes), 1 KiB messages per second, 1 KiB echo round trips (one outstanding,
 * p50/p99 in µs), connect-to-first-echo (skein: from createNode of the second node, startup
 * included; raw: from net.connect / socket creation), RSS of each process with one link after an
 * idle period, and each process's peak RSS (process.resourceUsage().maxRSS). RSS in MiB. With
 * TCP (raw_net and encrypted skein): accepts per second a node sustains (16 connections at a
 * time, each a full handshake until the server's first record, then closed) and the latency of
 * one such connect on a running node (handshake_connect_ms).
 *
 * On a machine with two CPUs or more and `taskset`, the server runs on CPU 1 and the client on
 * CPU 0 (`--pin split`, the default): unpinned, the scheduler puts both on one CPU in some runs
 * and on two in others, and round trips differ by 2-3× between the two cases.
 *
 * Output: one JSON line per figure on stdout, with the raw_net figure of the same run as its
 * baseline; progress and warnings go to stderr.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type {
  AcceptFloodResult,
  EchoResult,
  MeasureResult,
  MemoryResult,
  PeerCommand,
  PeerMode,
  PeerSpec,
  ReadyMessage,
  ReceivedResult,
  ReplyMessage,
  StreamResult,
} from "./link-protocol.js";

const PEER_PATH = fileURLToPath(new URL("./link-peer.js", import.meta.url));

export const LINK_USAGE = [
  "usage: npm run bench -- link [options]",
  "  --quick                       short durations (a smoke test; figures are rough)",
  "  --transport tcp|udp|all       skein configurations to run (default all; raw_net always runs)",
  "                                also udp65000 or udp1400 for one UDP MTU only",
  "  --workload LIST               comma-separated subset of echo,msgs,bulk,idle,accept (default all)",
  "  --pin split|same|none         CPU pinning of the two processes (default split when possible)",
  "  --cpu-prof DIR                write a V8 CPU profile of every skein process into DIR",
  "  --naive-send                  senders never yield unless their stack pushes back",
  "  --verbose                     phase timings and per-node counters on stderr",
].join("\n");

const BULK_MESSAGE_BYTES = 64 * 1024;
const SMALL_MESSAGE_BYTES = 1024;
const UDP_LOOPBACK_MTU = 65_000;
const UDP_DEFAULT_MTU = 1400;

interface Durations {
  idleMs: number;
  warmupMs: number;
  measureMs: number;
  echoCount: number;
  echoWarmupMs: number;
}

const FULL: Durations = { idleMs: 2_000, warmupMs: 500, measureMs: 2_500, echoCount: 5_000, echoWarmupMs: 1_500 };
const QUICK: Durations = { idleMs: 300, warmupMs: 150, measureMs: 400, echoCount: 300, echoWarmupMs: 100 };

/** Issue 3 (secure by default): absolute targets for the encrypted link. */
const SECURE_TARGET = { bulkMbPerS: 1000, msgsPerS: 146_800, connectMs: 3 };
/** Accept workload: connections at a time, duration, and sequential connects for the latency. */
const ACCEPT_CONCURRENCY = 16;
const ACCEPT_LATENCY_COUNT = 200;

/** Issue targets (skein ÷ raw_net, or absolute), and js-libp2p 3.3 measured on this machine. */
const TARGET = { throughputRatio: 0.8, echoP50Ratio: 1.3, idleRssMib: 60 };
const LIBP2P = "js-libp2p 3.3 tcp+noise+yamux, same machine";
const REFERENCE = {
  bulk_mb_per_s: 501,
  msgs_per_s: 36_700,
  echo_p50_us: 182,
  connect_to_first_echo_ms: 17.5,
  idle_rss_mb: 90,
} as const;

type Workload = "echo" | "msgs" | "bulk" | "idle" | "accept";
const WORKLOADS: readonly Workload[] = ["echo", "msgs", "bulk", "idle", "accept"];
type Pinning = "split" | "same" | "none";

interface Options {
  quick: boolean;
  durations: Durations;
  transport: string;
  workloads: Set<Workload>;
  pin: Pinning;
  cpuProfDir: string | undefined;
  naiveSend: boolean;
  verbose: boolean;
}

interface Config {
  /** Label in the output's `transport` field. */
  transport: string;
  mode: PeerMode;
  udpMtu?: number;
  /** Extra fields on every line of this configuration. */
  fields: Record<string, unknown>;
  bulk: boolean;
  /** skein: plaintext links (the baseline of the encrypted configuration after it). */
  insecure?: boolean;
  /** Runs the accept workload (TCP: raw_net and encrypted skein). */
  accept?: boolean;
}

interface Throughput {
  /** Payload bytes per second, MB = 10^6. */
  mbPerS: number;
  msgsPerS: number;
  sent: number;
  received: number;
}

interface Results {
  connectMs?: number;
  idleRss?: [number, number];
  peakRss?: [number, number];
  bulk?: Throughput;
  small?: Throughput;
  echo?: EchoResult;
  accept?: { rate: AcceptFloodResult; latency: AcceptFloodResult; serverCpuMs: number };
  errors: Record<string, string>;
  diagnostics?: unknown;
}

function label(config: Config): string {
  return `${config.transport}${config.udpMtu === undefined ? "" : ` mtu ${config.udpMtu}`}${config.insecure === true ? " plaintext" : ""}`;
}

function warn(text: string): void {
  process.stderr.write(`link: ${text}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ─── peer processes ───────────────────────────────────────────────────────────────────────────

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

class PeerProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<ReadyMessage>;
  readonly exited: Promise<void>;
  private readonly calls = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; what: string }>();
  private nextId = 1;
  private stderrTail = "";

  constructor(
    readonly spec: PeerSpec,
    options: Options,
  ) {
    const nodeArgs = [...(process.env.LINK_PEER_NODE_ARGS?.split(" ").filter(Boolean) ?? []), ...(options.cpuProfDir !== undefined && (spec.mode.startsWith("skein") || spec.mode === "sealed_net") ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`] : [])];
    const args = [...nodeArgs, PEER_PATH, JSON.stringify(spec)];
    const stdio: ("ignore" | "pipe" | "ipc")[] = ["ignore", "pipe", "pipe", "ipc"];
    // taskset execs node in the same process, so the IPC channel (an inherited fd) survives.
    this.child =
      options.pin === "none"
        ? spawn(process.execPath, args, { stdio })
        : spawn("taskset", ["-c", options.pin === "same" || spec.role === "client" ? "0" : "1", process.execPath, ...args], { stdio });
    children.add(this.child);
    // Peer output is diagnostics: to our stderr, never into the JSON lines.
    this.child.stdout!.on("data", (chunk: Buffer) => process.stderr.write(chunk));
    this.child.stderr!.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-2000);
    });
    this.child.on("error", (error) => warn(`${this.name}: ${error.message}`));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        children.delete(this.child);
        const error = new Error(`${this.name} exited (${signal ?? code})${this.stderrTail ? `: ${this.stderrTail.trim()}` : ""}`);
        for (const call of this.calls.values()) call.reject(error);
        this.calls.clear();
        resolve();
      }),
    );
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} not ready within 15 s`)), 15_000);
      this.child.on("message", (message: ReadyMessage | ReplyMessage) => {
        if (message.type === "ready") {
          clearTimeout(timer);
          resolve(message);
          return;
        }
        const call = this.calls.get(message.id);
        if (call === undefined) return;
        this.calls.delete(message.id);
        if (message.ok) call.resolve(message.result);
        else call.reject(new Error(`${this.name} ${call.what}: ${message.error}`));
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before it was ready${this.stderrTail ? `: ${this.stderrTail.trim()}` : ""}`));
      });
    });
    this.ready.catch(() => {});
  }

  get name(): string {
    return `${this.spec.mode}${this.spec.udpMtu === undefined ? "" : `/mtu${this.spec.udpMtu}`} ${this.spec.role}`;
  }

  call<T>(command: PeerCommand, timeoutMs = 60_000): Promise<T> {
    if (!this.child.connected) return Promise.reject(new Error(`${this.name} is gone`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${this.name} ${command.cmd}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
        what: command.cmd,
      });
      this.child.send({ id, command });
    });
  }

  /** Closes the stack, lets go of the process and waits for it to exit by itself (else kills it). */
  async stop(): Promise<void> {
    if (this.child.connected) {
      await this.call({ cmd: "close" }, 10_000).catch((error: unknown) => warn(`${this.name}: close failed: ${errorText(error)}`));
      if (this.child.connected) this.child.disconnect();
    }
    const timer = setTimeout(() => {
      warn(`${this.name} did not exit by itself within 8 s; killing it`);
      this.child.kill("SIGKILL");
    }, 8_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// ─── one configuration ────────────────────────────────────────────────────────────────────────

type Usage = NodeJS.ResourceUsage;

/** What a process spent between two resourceUsage() readings, per MB (10^6 payload bytes) moved. */
function usagePerMb(before: Usage, after: Usage, mb: number): string {
  const per = (value: number): string => (value / Math.max(mb, 1e-9)).toFixed(1);
  return (
    `user ${per(after.userCPUTime - before.userCPUTime)} µs/MB, sys ${per(after.systemCPUTime - before.systemCPUTime)} µs/MB, ` +
    `minor faults ${per(after.minorPageFault - before.minorPageFault)}/MB, ` +
    `voluntary switches ${per(after.voluntaryContextSwitches - before.voluntaryContextSwitches)}/MB`
  );
}

async function throughput(
  server: PeerProcess,
  client: PeerProcess,
  size: number,
  d: Durations,
  reliable: boolean,
  report: ((text: string) => void) | undefined,
): Promise<Throughput> {
  await server.call({ cmd: "reset" });
  const usage = (): Promise<[Usage, Usage]> => Promise.all([server.call<Usage>({ cmd: "usage" }), client.call<Usage>({ cmd: "usage" })]);
  const before = report === undefined ? undefined : await usage();
  const measured = server.call<MeasureResult>({ cmd: "measure", warmupMs: d.warmupMs, durationMs: d.measureMs });
  // The sender goes on past the window; it is stopped as soon as the receiver has its figure.
  const streamed = client.call<StreamResult>({ cmd: "stream", size, durationMs: d.warmupMs + d.measureMs + 10_000 });
  // Whichever fails first is the error; the other one must not go unhandled.
  streamed.catch(() => {});
  measured.catch(() => {});
  let window: MeasureResult;
  try {
    window = await Promise.race([measured, streamed.then(() => measured)]);
  } finally {
    await client.call({ cmd: "stop" }).catch(() => {});
  }
  const sent = await streamed;
  // Reliable stacks must deliver everything sent; raw_dgram loses some, so only wait for quiet.
  const received = await server.call<ReceivedResult>(
    { cmd: "wait_received", messages: sent.messages, settleMs: reliable ? 5_000 : 300, timeoutMs: 30_000 },
    40_000,
  );
  if (report !== undefined && before !== undefined) {
    const after = await usage();
    const mb = (sent.messages * size) / 1e6;
    report(`receiver: ${usagePerMb(before[0], after[0], mb)}; sender: ${usagePerMb(before[1], after[1], mb)}`);
  }
  return {
    mbPerS: window.bytes / window.seconds / 1e6,
    msgsPerS: window.messages / window.seconds,
    sent: sent.messages,
    received: received.messages,
  };
}

async function runConfig(config: Config, options: Options): Promise<Results> {
  const d = options.durations;
  const results: Results = { errors: {} };
  const spec = { mode: config.mode, udpMtu: config.udpMtu, naiveSend: options.naiveSend, insecure: config.insecure };
  const server = new PeerProcess({ ...spec, role: "server" }, options);
  const client = new PeerProcess({ ...spec, role: "client" }, options);
  const reliable = config.mode !== "raw_dgram";
  const attempt = async (what: string, work: () => Promise<void>): Promise<boolean> => {
    const at = performance.now();
    try {
      await work();
      if (options.verbose) warn(`${label(config)} ${what}: ${((performance.now() - at) / 1000).toFixed(2)} s`);
      return true;
    } catch (error) {
      results.errors[what] = errorText(error);
      warn(`${label(config)} ${what} failed: ${errorText(error)}`);
      return false;
    }
  };
  const report = (what: string): ((text: string) => void) | undefined =>
    options.verbose ? (text) => warn(`${label(config)} ${what} cost: ${text}`) : undefined;
  const memory = (): Promise<[MemoryResult, MemoryResult]> =>
    Promise.all([server.call<MemoryResult>({ cmd: "memory" }), client.call<MemoryResult>({ cmd: "memory" })]);
  try {
    const [{ address }] = await Promise.all([server.ready, client.ready]);
    const connected = await attempt("connect", async () => {
      results.connectMs = (await client.call<{ ms: number }>({ cmd: "connect", address }, 30_000)).ms;
    });
    if (!connected) return results;
    if (options.workloads.has("idle") && config.mode !== "sealed_net") {
      await attempt("idle_rss", async () => {
        await sleep(d.idleMs);
        const [a, b] = await memory();
        results.idleRss = [a.rss, b.rss];
      });
    }
    if (options.workloads.has("echo")) {
      await attempt("echo", async () => {
        results.echo = await client.call<EchoResult>({ cmd: "echo", size: SMALL_MESSAGE_BYTES, count: d.echoCount, warmupMs: d.echoWarmupMs }, 120_000);
      });
    }
    if (options.workloads.has("msgs")) {
      await attempt("msgs", async () => {
        results.small = await throughput(server, client, SMALL_MESSAGE_BYTES, d, reliable, report("msgs"));
      });
    }
    if (config.bulk && options.workloads.has("bulk")) {
      await attempt("bulk", async () => {
        results.bulk = await throughput(server, client, BULK_MESSAGE_BYTES, d, reliable, report("bulk"));
      });
    }
    if (config.accept === true && options.workloads.has("accept")) {
      await attempt("accept", async () => {
        const cpu = async (): Promise<number> => {
          const usage = await server.call<Usage>({ cmd: "usage" });
          return (usage.userCPUTime + usage.systemCPUTime) / 1000;
        };
        const latency = await client.call<AcceptFloodResult>({ cmd: "accept_flood", address, concurrency: 1, durationMs: 60_000, count: options.quick ? 40 : ACCEPT_LATENCY_COUNT }, 90_000);
        const cpuBefore = await cpu();
        const rate = await client.call<AcceptFloodResult>({ cmd: "accept_flood", address, concurrency: ACCEPT_CONCURRENCY, durationMs: d.measureMs }, 90_000);
        results.accept = { rate, latency, serverCpuMs: (await cpu()) - cpuBefore };
      });
    }
    await attempt("peak_rss", async () => {
      const [a, b] = await memory();
      results.peakRss = [a.maxRss, b.maxRss];
    });
    if (config.mode.startsWith("skein")) {
      const [a, b] = await Promise.all([server.call({ cmd: "diagnostics" }), client.call({ cmd: "diagnostics" })]).catch(() => [undefined, undefined]);
      results.diagnostics = { server: a, client: b };
    }
  } catch (error) {
    results.errors.setup = errorText(error);
    warn(`${label(config)} setup failed: ${errorText(error)}`);
  } finally {
    const at = performance.now();
    await Promise.all([server.stop(), client.stop()]);
    if (options.verbose) warn(`${label(config)} stop: ${((performance.now() - at) / 1000).toFixed(2)} s`);
  }
  return results;
}

// ─── output ───────────────────────────────────────────────────────────────────────────────────

const MIB = 1024 * 1024;

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

interface Figure {
  metric: string;
  unit: string;
  better: "higher" | "lower";
  value: number | undefined;
  baseline: number | undefined;
  digits: number;
  target?: { ratio?: number; max?: number };
  reference?: number;
  /** Issue 3's absolute target for the encrypted link (min or max). */
  secureTarget?: { min?: number; max?: number } | undefined;
  extra?: Record<string, unknown>;
  error?: string | undefined;
}

function emit(config: Config, options: Options, figure: Figure): void {
  const line: Record<string, unknown> = { bench: "link", transport: config.transport, ...config.fields, metric: figure.metric, unit: figure.unit };
  line.value = figure.value === undefined ? null : round(figure.value, figure.digits);
  line.baseline = "raw_net";
  line.baseline_value = figure.baseline === undefined ? null : round(figure.baseline, figure.digits);
  const ratio = figure.value !== undefined && figure.baseline !== undefined && figure.baseline > 0 ? figure.value / figure.baseline : undefined;
  line.ratio = ratio === undefined ? null : round(ratio, 3);
  line.better = figure.better;
  const target = figure.target;
  if (target !== undefined) {
    let meets: boolean | null = null;
    if (target.ratio !== undefined) {
      line.target_ratio = target.ratio;
      if (ratio !== undefined) meets = figure.better === "higher" ? ratio >= target.ratio : ratio <= target.ratio;
    }
    if (target.max !== undefined) {
      line.target_max = target.max;
      if (figure.value !== undefined) meets = figure.value < target.max;
    }
    line.meets_target = meets;
  }
  const secure = figure.secureTarget;
  if (secure !== undefined && config.mode.startsWith("skein") && config.insecure !== true) {
    line.issue3_target = secure;
    line.meets_issue3_target = figure.value === undefined ? null : secure.min !== undefined ? figure.value >= secure.min : figure.value < secure.max!;
  }
  if (figure.reference !== undefined) line.reference = { name: LIBP2P, value: figure.reference };
  Object.assign(line, figure.extra);
  line.cpu_pinning = options.pin;
  if (options.quick) line.quick = true;
  // The first line says what went wrong; the stack went to stderr already.
  if (figure.error !== undefined) line.error = figure.error.split("\n")[0];
  process.stdout.write(JSON.stringify(line) + "\n");
}

function emitConfig(config: Config, r: Results, raw: Results, dgram: Results | undefined, plain: Results | undefined, sealed: Results | undefined, options: Options): void {
  const d = options.durations;
  const has = (workload: Workload): boolean => options.workloads.has(workload);
  const err = (key: string): string | undefined => r.errors[key] ?? r.errors.connect ?? r.errors.setup;
  const larger = (pair: [number, number] | undefined): number | undefined => (pair === undefined ? undefined : Math.max(pair[0], pair[1]) / MIB);
  const each = (pair: [number, number] | undefined): Record<string, unknown> =>
    pair === undefined ? {} : { server_mb: round(pair[0] / MIB, 1), client_mb: round(pair[1] / MIB, 1) };
  const delivery = (t: Throughput | undefined): Record<string, unknown> =>
    t === undefined ? {} : { sent: t.sent, received: t.received, lost: Math.max(0, t.sent - t.received) };
  const alsoDgram = (value: number | undefined, digits: number, more: Record<string, unknown> = {}): Record<string, unknown> =>
    dgram === undefined ? {} : { raw_dgram_value: value === undefined ? null : round(value, digits), ...more };
  const sender = options.naiveSend
    ? "loop of await node.send() (raw_net: write(), await 'drain' when it returns false), nothing else"
    : "loop of await node.send() (raw_net: write(), await 'drain' when it returns false), plus one setImmediate per 256 KiB";
  const small = { message_bytes: SMALL_MESSAGE_BYTES };
  // The encrypted configuration's figures also name the plaintext one's (same transport, same run).
  const alsoPlain = (value: number | undefined, digits: number): Record<string, unknown> =>
    plain === undefined ? {} : { plaintext_value: value === undefined ? null : round(value, digits) };
  // …and the sealed_net baseline's: node:crypto records without skein, the most it could reach.
  const alsoSealed = (value: number | undefined, baseline: number | undefined, digits: number): Record<string, unknown> =>
    sealed === undefined
      ? {}
      : {
          sealed_net_value: baseline === undefined ? null : round(baseline, digits),
          ratio_to_sealed_net: value === undefined || baseline === undefined || baseline <= 0 ? null : round(value / baseline, 3),
        };

  if (config.bulk && has("bulk")) {
    emit(config, options, {
      metric: "bulk_mb_per_s",
      unit: "MB/s",
      better: "higher",
      value: r.bulk?.mbPerS,
      baseline: raw.bulk?.mbPerS,
      digits: 1,
      target: { ratio: TARGET.throughputRatio },
      reference: REFERENCE.bulk_mb_per_s,
      secureTarget: { min: SECURE_TARGET.bulkMbPerS },
      extra: { message_bytes: BULK_MESSAGE_BYTES, ...delivery(r.bulk), sender, ...alsoPlain(plain?.bulk?.mbPerS, 1), ...alsoSealed(r.bulk?.mbPerS, sealed?.bulk?.mbPerS, 1) },
      error: r.bulk === undefined ? err("bulk") : undefined,
    });
  }
  if (has("msgs")) {
    const dgramLoss = dgram?.small === undefined ? {} : { raw_dgram_loss: round(1 - dgram.small.received / Math.max(1, dgram.small.sent), 4) };
    emit(config, options, {
      metric: "msgs_per_s",
      unit: "msg/s",
      better: "higher",
      value: r.small?.msgsPerS,
      baseline: raw.small?.msgsPerS,
      digits: 0,
      target: { ratio: TARGET.throughputRatio },
      reference: REFERENCE.msgs_per_s,
      secureTarget: { min: SECURE_TARGET.msgsPerS },
      extra: {
        ...alsoPlain(plain?.small?.msgsPerS, 0),
        ...alsoSealed(r.small?.msgsPerS, sealed?.small?.msgsPerS, 0),
        ...small,
        ...delivery(r.small),
        sender,
        baseline_note: "raw_net writes every message with its own socket.write() (a write syscall each while the kernel keeps up, as a plain application would); skein coalesces queued frames into 64 KiB writes",
        ...alsoDgram(dgram?.small?.msgsPerS, 0, dgramLoss),
      },
      error: r.small === undefined ? err("msgs") : undefined,
    });
  }
  if (has("echo")) {
    const echo = { ...small, round_trips: r.echo?.count ?? null, warmup_s: d.echoWarmupMs / 1000 };
    emit(config, options, {
      metric: "echo_p50_us",
      unit: "µs",
      better: "lower",
      value: r.echo?.p50,
      baseline: raw.echo?.p50,
      digits: 1,
      target: { ratio: TARGET.echoP50Ratio },
      reference: REFERENCE.echo_p50_us,
      extra: { ...echo, ...alsoPlain(plain?.echo?.p50, 1), ...alsoSealed(r.echo?.p50, sealed?.echo?.p50, 1), ...alsoDgram(dgram?.echo?.p50, 1) },
      error: r.echo === undefined ? err("echo") : undefined,
    });
    emit(config, options, {
      metric: "echo_p99_us",
      unit: "µs",
      better: "lower",
      value: r.echo?.p99,
      baseline: raw.echo?.p99,
      digits: 1,
      extra: { ...echo, ...alsoDgram(dgram?.echo?.p99, 1) },
      error: r.echo === undefined ? err("echo") : undefined,
    });
  }
  // A baseline of the data path only: no handshake to time, no node to weigh.
  if (config.mode === "sealed_net") return;
  emit(config, options, {
    metric: "connect_to_first_echo_ms",
    unit: "ms",
    better: "lower",
    value: r.connectMs,
    baseline: raw.connectMs,
    digits: 2,
    reference: REFERENCE.connect_to_first_echo_ms,
    secureTarget: { max: SECURE_TARGET.connectMs },
    extra: {
      ...alsoPlain(plain?.connectMs, 2),
      note: "skein: createNode() of the second node (node startup included) until its first 1 KiB echo returns; raw_net: net.connect() until the first echo; module loading excluded from both; one cold sample",
      ...alsoDgram(dgram?.connectMs, 2),
    },
    error: r.connectMs === undefined ? err("connect") : undefined,
  });
  if (config.accept === true && has("accept")) {
    const accept = r.accept;
    const rate = accept === undefined ? undefined : accept.rate.completed / accept.rate.seconds;
    const rawRate = raw.accept === undefined ? undefined : raw.accept.rate.completed / raw.accept.rate.seconds;
    emit(config, options, {
      metric: "accepts_per_s",
      unit: "conn/s",
      better: "higher",
      value: rate,
      baseline: rawRate,
      digits: 0,
      extra: {
        note: "connections a node accepts per second, 16 at a time from 250 loopback source addresses (its per-address handshake rate limit stays out of it): skein, a Noise XX handshake until the server's first record (hello_ack: link up), then closed (link down); raw_net, a 1-byte echo",
        concurrency: ACCEPT_CONCURRENCY,
        completed: accept?.rate.completed ?? null,
        failed: accept?.rate.failed ?? null,
        ...(accept?.rate.firstError === undefined ? {} : { first_error: accept.rate.firstError }),
        server_cpu_ms_per_accept: accept === undefined ? null : round(accept.serverCpuMs / Math.max(1, accept.rate.completed), 3),
        accepts_per_server_cpu_s: accept === undefined ? null : round((accept.rate.completed / Math.max(1e-9, accept.serverCpuMs)) * 1000, 0),
      },
      error: accept === undefined ? err("accept") : undefined,
    });
    emit(config, options, {
      metric: "handshake_connect_ms",
      unit: "ms",
      better: "lower",
      value: accept?.latency.p50Ms,
      baseline: raw.accept?.latency.p50Ms,
      digits: 3,
      secureTarget: { max: SECURE_TARGET.connectMs },
      extra: {
        note: "p50 of sequential connects to a running node: TCP connect + Noise XX handshake + the node's first record (hello_ack); raw_net: connect + a 1-byte echo",
        connects: accept?.latency.completed ?? null,
        p99_ms: accept === undefined ? null : round(accept.latency.p99Ms, 3),
        raw_p99_ms: raw.accept === undefined ? null : round(raw.accept.latency.p99Ms, 3),
      },
      error: accept === undefined ? err("accept") : undefined,
    });
  }
  if (has("idle")) {
    emit(config, options, {
      metric: "idle_rss_mb",
      unit: "MiB",
      better: "lower",
      value: larger(r.idleRss),
      baseline: larger(raw.idleRss),
      digits: 1,
      target: { max: TARGET.idleRssMib },
      reference: REFERENCE.idle_rss_mb,
      extra: { note: "process RSS, larger of the two, each with one link, after connect, first echo and the idle period", idle_s: d.idleMs / 1000, ...each(r.idleRss) },
      error: r.idleRss === undefined ? err("idle_rss") : undefined,
    });
  }
  emit(config, options, {
    metric: "peak_rss_mb",
    unit: "MiB",
    better: "lower",
    value: larger(r.peakRss),
    baseline: larger(raw.peakRss),
    digits: 1,
    extra: { note: "process.resourceUsage().maxRSS after all workloads, larger of the two processes", ...each(r.peakRss) },
    error: r.peakRss === undefined ? err("peak_rss") : undefined,
  });
}

// ─── entry ────────────────────────────────────────────────────────────────────────────────────

function canPin(): boolean {
  return availableParallelism() >= 2 && spawnSync("taskset", ["-c", "1", "true"], { stdio: "ignore" }).status === 0;
}

/** Returns the options, or an error text. */
function parseOptions(args: string[]): Options | string {
  let quick = false;
  let transport = "all";
  let workloads = new Set<Workload>(WORKLOADS);
  let pin: Pinning | undefined;
  let cpuProfDir: string | undefined;
  let naiveSend = false;
  let verbose = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => (eq > 0 && arg.startsWith("--") ? arg.slice(eq + 1) : (args[++i] ?? ""));
    switch (flag) {
      case "--quick":
        quick = true;
        break;
      case "--naive-send":
        naiveSend = true;
        break;
      case "--verbose":
        verbose = true;
        break;
      case "--transport":
        transport = value();
        if (!["tcp", "udp", "udp65000", "udp1400", "all"].includes(transport)) return `bad --transport "${transport}": expected tcp, udp, udp65000, udp1400 or all`;
        break;
      case "--workload": {
        const list = value().split(",").map((item) => item.trim());
        const bad = list.find((item) => !(WORKLOADS as readonly string[]).includes(item));
        if (bad !== undefined || list.length === 0) return `bad --workload "${bad ?? ""}": expected a comma-separated subset of ${WORKLOADS.join(",")}`;
        workloads = new Set(list as Workload[]);
        break;
      }
      case "--pin": {
        const choice = value();
        if (choice !== "split" && choice !== "same" && choice !== "none") return `bad --pin "${choice}": expected split, same or none`;
        pin = choice;
        break;
      }
      case "--cpu-prof":
        cpuProfDir = resolvePath(value() || "bench-profiles");
        break;
      default:
        return `unknown argument "${arg}"`;
    }
  }
  if (pin === undefined) pin = canPin() ? "split" : "none";
  else if (pin !== "none" && !canPin()) return `--pin ${pin} needs taskset and two CPUs; use --pin none`;
  return { quick, durations: quick ? QUICK : FULL, transport, workloads, pin, cpuProfDir, naiveSend, verbose };
}

export async function runLink(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "string") {
    process.stderr.write(`${options}\n${LINK_USAGE}\n`);
    return 2;
  }
  if (options.cpuProfDir !== undefined) mkdirSync(options.cpuProfDir, { recursive: true });
  const t = options.transport;
  const configs: Config[] = [];
  const plaintext = { security: "plaintext" };
  const encrypted = { security: "encrypted" };
  if (t === "tcp" || t === "all") {
    configs.push({ transport: "tcp", mode: "skein_tcp", fields: plaintext, bulk: true, insecure: true });
    configs.push({ transport: "tcp", mode: "skein_tcp", fields: encrypted, bulk: true, accept: true });
  }
  if (t === "udp" || t === "udp65000" || t === "all") {
    const fields = { udp_mtu: UDP_LOOPBACK_MTU, mtu_label: "loopback" };
    configs.push({ transport: "udp", mode: "skein_udp", udpMtu: UDP_LOOPBACK_MTU, fields: { ...fields, ...plaintext }, bulk: true, insecure: true });
    configs.push({ transport: "udp", mode: "skein_udp", udpMtu: UDP_LOOPBACK_MTU, fields: { ...fields, ...encrypted }, bulk: true });
  }
  if (t === "udp" || t === "udp1400" || t === "all") {
    configs.push({ transport: "udp", mode: "skein_udp", udpMtu: UDP_DEFAULT_MTU, fields: { udp_mtu: UDP_DEFAULT_MTU, mtu_label: "default", ...encrypted }, bulk: true });
  }
  const withUdp = configs.some((config) => config.mode === "skein_udp");

  const onSignal = (): void => {
    killAll();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", killAll);

  const started = performance.now();
  const step = async (config: Config): Promise<Results> => {
    const at = performance.now();
    const results = await runConfig(config, options);
    warn(`${label(config)}: done in ${((performance.now() - at) / 1000).toFixed(1)} s`);
    if (options.verbose && results.diagnostics !== undefined) warn(`${label(config)} counters: ${JSON.stringify(results.diagnostics)}`);
    return results;
  };
  warn(`node ${process.version}, ${options.quick ? "quick" : "full"} run, transport ${t}, cpu pinning ${options.pin}`);
  const raw = await step({ transport: "raw_net", mode: "raw_net", fields: {}, bulk: true, accept: configs.some((config) => config.accept === true) });
  const dgram = withUdp ? await step({ transport: "raw_dgram", mode: "raw_dgram", fields: {}, bulk: false }) : undefined;
  const sealedConfig: Config = { transport: "sealed_net", mode: "sealed_net", fields: { security: "node:crypto records, no handshake" }, bulk: true };
  const sealed = configs.some((config) => config.mode === "skein_tcp" && config.insecure !== true) ? await step(sealedConfig) : undefined;
  if (sealed !== undefined) emitConfig(sealedConfig, sealed, raw, undefined, undefined, undefined, options);
  let failed = [raw, dgram, sealed].some((results) => results !== undefined && Object.keys(results.errors).length > 0);
  // The plaintext run of a transport comes right before its encrypted run, which names its figures.
  let plain: Results | undefined;
  for (const config of configs) {
    const results = await step(config);
    const encryptedTcp = config.mode === "skein_tcp" && config.insecure !== true;
    emitConfig(config, results, raw, config.mode === "skein_udp" ? dgram : undefined, config.insecure === true ? undefined : plain, encryptedTcp ? sealed : undefined, options);
    plain = config.insecure === true ? results : undefined;
    if (Object.keys(results.errors).length > 0) failed = true;
  }
  warn(`total ${((performance.now() - started) / 1000).toFixed(1)} s${options.cpuProfDir ? `; CPU profiles in ${options.cpuProfDir}` : ""}`);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.off("exit", killAll);
  return failed ? 1 : 0;
}

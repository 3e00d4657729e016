/**
 * `skein demo`: N real `skein node` processes on 127.0.0.1 that behave as if they sat on an
 * Internet-like map (a generated RTT matrix, `--emulate-latency`, or `--matrix FILE`), with a live
 * table of every node's neighbours and measured RTTs next to the emulated ones. Node 1 is a
 * collector (`--collector`) serving the live web view at `--web-addr` (default 127.0.0.1:0, any
 * free port); the demo prints its URL. Nodes of the generated map carry a region tag.
 *
 * Children never outlive the demo: on SIGINT/SIGTERM/SIGHUP (or `--duration-s`) each gets SIGTERM, then
 * SIGKILL if it has not exited within CHILD_STOP_TIMEOUT_MS; their stdin is a pipe and they run
 * with `--exit-on-stdin-close`, so even if the demo itself is killed outright they stop.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generateInternetMatrix, generateInternetTopology } from "../sim/generate.js";
import { type Matrix, formatMatrix, matrixNames, symmetricRtt } from "../sim/matrix.js";
import { loadMatrix } from "./matrix-file.js";
import { parseWebAddr } from "../runtime/web-addr.js";
import { CliFailure, UsageError, errorMessage } from "./errors.js";
import { rekeyByNodeIds } from "./sim-command.js";
import { type NodeStatus, fetchNodeStatus } from "./status.js";
import { formatDuration, formatNumber, formatPercent, renderTable } from "./table.js";
import { parseIntegerFlag, parseNumberFlag } from "./values.js";

export const DEMO_DEFAULT_NODES = 8;
/** The collector's web view: any free port unless --web-addr says otherwise. */
export const DEMO_DEFAULT_WEB_ADDR = "127.0.0.1:0";
export const DEMO_MAX_NODES = 64;
export const DEMO_REFRESH_MS = 1000;
export const DEMO_SNAPSHOT_DEFAULT_S = 5;
export const CHILD_START_TIMEOUT_MS = 15_000;
export const CHILD_STOP_TIMEOUT_MS = 5000;
const STDERR_TAIL_LINES = 5;

// ---------------------------------------------------------------- rendering (pure)

export interface DemoNodeView {
  id: number;
  pid: number | undefined;
  address: string | undefined;
  phase: "starting" | "running" | "exited";
  /** Why the node has no fresh status: how it exited, or why polling failed. */
  note?: string;
  status?: NodeStatus;
}

export interface DemoView {
  elapsedMs: number;
  nodes: DemoNodeView[];
  /** The emulated RTT of a pair, shown next to the measured one. */
  emulatedRttMs?: (a: number | string, b: number | string) => number | undefined;
  /** Last line, e.g. "Ctrl-C to stop". */
  hint?: string;
  /** The collector's web view, shown under the header line. */
  webUrl?: string;
}

const DEMO_COLUMNS = [
  { header: "NODE", align: "right" },
  { header: "PID", align: "right" },
  { header: "ADDRESS" },
  { header: "PEER", align: "right" },
  { header: "STATE" },
  { header: "RTT(ms)", align: "right" },
  { header: "EMULATED(ms)", align: "right" },
  { header: "RTTVAR(ms)", align: "right" },
  { header: "LOSS(%)", align: "right" },
] as const;

/** One frame of the demo screen: a header line, the table, a links summary and notes. */
export function renderDemo(view: DemoView): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  const upPairs = new Set<string>();
  let running = 0;
  for (const node of view.nodes) {
    if (node.phase === "running") running++;
    const first = [String(node.id), node.pid === undefined ? "-" : String(node.pid), node.address ?? "-"];
    const blank = ["", "", ""];
    const neighbours = node.phase === "running" ? (node.status?.neighbours ?? []) : [];
    if (node.note !== undefined) notes.push(`node ${node.id}: ${node.note}`);
    if (neighbours.length === 0) {
      const state = node.phase === "running" ? (node.status === undefined ? "no status" : "no links") : node.phase;
      rows.push([...first, "-", state, "", "", "", ""]);
      continue;
    }
    neighbours.forEach((neighbour, index) => {
      if (neighbour.state === "up") {
        const a = String(node.id);
        const b = String(neighbour.id);
        upPairs.add(a < b ? `${a}-${b}` : `${b}-${a}`);
      }
      rows.push([
        ...(index === 0 ? first : blank),
        String(neighbour.id),
        neighbour.state,
        formatNumber(neighbour.srttMs),
        formatNumber(view.emulatedRttMs?.(node.id, neighbour.id)),
        formatNumber(neighbour.rttvarMs),
        formatPercent(neighbour.loss),
      ]);
    });
  }
  return demoScreen(view, renderTable(DEMO_COLUMNS, rows), running, upPairs.size, notes);
}

const COMPACT_COLUMNS = [
  { header: "NODE", align: "right" },
  { header: "PID", align: "right" },
  { header: "ADDRESS" },
  { header: "LINKS", align: "right" },
  { header: "RTT MIN(ms)", align: "right" },
  { header: "MEDIAN", align: "right" },
  { header: "MAX", align: "right" },
  { header: "LOSS MAX(%)", align: "right" },
] as const;

/**
 * The same screen, one row per node (up links; the spread of their RTTs; the worst loss): what a
 * terminal shows when the full table would not fit (8 nodes make 56 neighbour rows).
 */
export function renderDemoCompact(view: DemoView): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  const upPairs = new Set<string>();
  let running = 0;
  for (const node of view.nodes) {
    if (node.phase === "running") running++;
    if (node.note !== undefined) notes.push(`node ${node.id}: ${node.note}`);
    const first = [String(node.id), node.pid === undefined ? "-" : String(node.pid), node.address ?? "-"];
    const up = node.phase === "running" ? (node.status?.neighbours ?? []).filter((neighbour) => neighbour.state === "up") : [];
    if (up.length === 0) {
      rows.push([...first, node.phase === "running" ? (node.status === undefined ? "no status" : "0") : node.phase, "", "", "", ""]);
      continue;
    }
    for (const neighbour of up) {
      const a = String(node.id);
      const b = String(neighbour.id);
      upPairs.add(a < b ? `${a}-${b}` : `${b}-${a}`);
    }
    const rtts = up.map((neighbour) => neighbour.srttMs).filter((rtt): rtt is number => rtt !== undefined).sort((x, y) => x - y);
    const median = rtts.length === 0 ? undefined : rtts.length % 2 === 1 ? rtts[(rtts.length - 1) / 2] : (rtts[rtts.length / 2 - 1]! + rtts[rtts.length / 2]!) / 2;
    rows.push([...first, String(up.length), formatNumber(rtts[0]), formatNumber(median), formatNumber(rtts.at(-1)), formatPercent(Math.max(...up.map((neighbour) => neighbour.loss ?? 0)))]);
  }
  return demoScreen(view, renderTable(COMPACT_COLUMNS, rows), running, upPairs.size, notes);
}

/** The frame around either table: the header line, the web view's URL, the links summary, notes. */
function demoScreen(view: DemoView, table: string[], running: number, upLinks: number, notes: string[]): string {
  const n = view.nodes.length;
  const lines = [
    `skein demo: ${running}/${n} node${n === 1 ? "" : "s"} running on 127.0.0.1 with emulated Internet latency, ${formatDuration(view.elapsedMs)}`,
    ...(view.webUrl === undefined ? [] : [`web view: ${view.webUrl}`]),
    ...table,
    `links up: ${upLinks} of ${(n * (n - 1)) / 2} pairs`,
    ...notes,
  ];
  if (view.hint !== undefined) lines.push(view.hint);
  return `${lines.join("\n")}\n`;
}

/** The full table when it fits in `rows` terminal lines, else the compact one. */
export function renderDemoFitting(view: DemoView, rows: number | undefined): string {
  const full = renderDemo(view);
  if (rows === undefined || full.split("\n").length - 1 <= rows - 1) return full;
  return renderDemoCompact(view);
}

/**
 * Redraws the terminal in place without flicker: cursor home, each line followed by "erase to end
 * of line", then "erase below".
 */
export function repaint(text: string): string {
  const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
  return `\x1b[H${lines.map((line) => `${line}\x1b[K`).join("\n")}\n\x1b[J`;
}

/** The message of a pino JSON log line (what a child said last), or the line itself. */
export function summarizeLogLine(line: string): string {
  try {
    const record = JSON.parse(line) as { msg?: unknown; err?: { message?: unknown } };
    const message = typeof record.msg === "string" ? record.msg : line;
    const cause = typeof record.err?.message === "string" && record.err.message !== message ? `: ${record.err.message}` : "";
    return `${message}${cause}`;
  } catch {
    return line.replace(/^skein: /, "");
  }
}

/** What `skein node` prints once it listens. */
export interface ListeningLine {
  event: "listening";
  id: number;
  addresses: string[];
  web: string | null;
}

export function parseListeningLine(line: string): ListeningLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const json = JSON.parse(line) as Partial<ListeningLine>;
    if (json.event !== "listening" || !Array.isArray(json.addresses)) return undefined;
    return {
      event: "listening",
      id: Number(json.id),
      addresses: json.addresses.filter((a): a is string => typeof a === "string"),
      web: typeof json.web === "string" ? json.web : null,
    };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- child processes

class DemoChild {
  readonly process: ChildProcess;
  listening: ListeningLine | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly stderrTail: string[] = [];
  status: NodeStatus | undefined;
  pollError: string | undefined;
  readonly exited: Promise<void>;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly id: number,
    cliPath: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    // Own process group: Ctrl-C in the terminal reaches only the demo, which stops each child
    // once (SIGTERM) and waits for it.
    this.process = spawn(process.execPath, [cliPath, "node", ...args], { stdio: ["pipe", "pipe", "pipe"], env, detached: true });
    this.exited = new Promise((resolve) => {
      this.process.once("exit", (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve();
      });
      this.process.once("error", (error) => {
        this.stderrTail.push(`cannot start: ${error.message}`);
        this.exit ??= { code: null, signal: null };
        this.notify();
        resolve();
      });
    });
    this.process.stdin?.on("error", () => {});
    createInterface({ input: this.process.stdout! }).on("line", (line) => {
      const parsed = parseListeningLine(line.trim());
      if (parsed !== undefined && this.listening === undefined) {
        this.listening = parsed;
        this.notify();
      }
    });
    createInterface({ input: this.process.stderr! }).on("line", (line) => {
      if (line.trim() === "") return;
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get udpAddress(): string | undefined {
    const addresses = this.listening?.addresses ?? [];
    return addresses.find((address) => address.includes("/udp/")) ?? addresses[0];
  }

  describeExit(): string {
    const how = this.exit?.signal ? `signal ${this.exit.signal}` : `code ${String(this.exit?.code)}`;
    const last = this.stderrTail.at(-1);
    return `exited (${how})${last === undefined ? "" : `: ${summarizeLogLine(last)}`}`;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves once the listening line arrived; rejects on exit or after `timeoutMs`. */
  waitListening(timeoutMs: number): Promise<ListeningLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new CliFailure(`demo node ${this.id} did not start within ${timeoutMs} ms${this.lastWords()}`, "DEMO_START_FAILED"));
      }, timeoutMs);
      const check = (): void => {
        if (this.listening !== undefined) {
          done();
          resolve(this.listening);
        } else if (this.exit !== undefined) {
          done();
          reject(new CliFailure(`demo node ${this.id} failed to start: ${this.describeExit()}`, "DEMO_START_FAILED"));
        }
      };
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  private lastWords(): string {
    const last = this.stderrTail.at(-1);
    return last === undefined ? "" : ` (last said: ${summarizeLogLine(last)})`;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process has exited. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exit !== undefined) return;
    this.process.stdin?.end();
    this.process.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut && this.exit === undefined) {
      this.process.kill("SIGKILL");
      await this.exited;
    }
  }

  view(): DemoNodeView {
    const view: DemoNodeView = {
      id: this.id,
      pid: this.process.pid,
      address: this.udpAddress,
      phase: this.exit !== undefined ? "exited" : this.listening === undefined ? "starting" : "running",
    };
    if (this.exit !== undefined) view.note = this.describeExit();
    else if (this.pollError !== undefined) view.note = this.pollError;
    if (this.status !== undefined) view.status = this.status;
    return view;
  }
}

// ---------------------------------------------------------------- the command

export interface DemoFlags {
  nodes?: string;
  matrix?: string;
  webAddr?: string;
  seed?: string;
  durationS?: string;
  snapshotS?: string;
}

/** The demo's children must not inherit `SKEIN_*` settings meant for the user's own nodes. */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) if (!key.startsWith("SKEIN_")) out[key] = value;
  return out;
}

export function demoMatrix(nodes: number, seed: number): Matrix {
  return rekeyByNodeIds(generateInternetMatrix({ nodes, seed }));
}

/** A rough region name for a point on the globe (the demo's node tags). */
export function regionOf(latDeg: number, lonDeg: number): string {
  if (lonDeg < -30) return latDeg >= 12 ? "north-america" : "south-america";
  if (lonDeg < 60) return latDeg >= 35 ? "europe" : latDeg >= 12 ? "middle-east" : "africa";
  return latDeg >= -10 ? "asia" : "oceania";
}

/** The generated map: the matrix keyed by NodeIds 1..N and each node's region tag. */
export function demoWorld(nodes: number, seed: number): { matrix: Matrix; tags: Map<number, string[]> } {
  const world = generateInternetTopology({ nodes, seed });
  const tags = new Map(world.sites.map((site, index) => [index + 1, [regionOf(site.latDeg, site.lonDeg)]]));
  return { matrix: rekeyByNodeIds(world.matrix), tags };
}

/** A user's matrix (--matrix): kept as is when keyed by NodeIds 1..N, else its names in sorted order become 1..N. */
export function demoMatrixFromFile(file: string, nodes: number): Matrix {
  let matrix: Matrix;
  try {
    matrix = loadMatrix(file);
  } catch (error) {
    throw new UsageError(errorMessage(error), "BAD_MATRIX");
  }
  const names = matrixNames(matrix);
  if (names.length < nodes) throw new UsageError(`--matrix ${file} has ${names.length} nodes; --nodes ${nodes} needs at least that many`, "BAD_MATRIX");
  const byIds = names.every((name) => /^[1-9][0-9]*$/.test(name) && Number(name) <= names.length);
  return byIds ? matrix : rekeyByNodeIds(matrix);
}

export async function runDemoCommand(flags: DemoFlags): Promise<number> {
  const nodes = parseIntegerFlag("--nodes", flags.nodes, 1, DEMO_MAX_NODES) ?? DEMO_DEFAULT_NODES;
  const seed = parseIntegerFlag("--seed", flags.seed, 0, 0xffff_ffff) ?? 1;
  const durationS = parseNumberFlag("--duration-s", flags.durationS, 0, 86_400 * 365, "expected a number of seconds >= 0");
  const snapshotS =
    parseNumberFlag("--snapshot-s", flags.snapshotS, 0.1, 3600, "expected a number of seconds in 0.1..3600") ?? DEMO_SNAPSHOT_DEFAULT_S;
  const cliPath = fileURLToPath(new URL("./main.js", import.meta.url));
  const tty = process.stdout.isTTY === true;
  const out = (text: string): void => {
    process.stdout.write(text);
  };

  let webAddr = DEMO_DEFAULT_WEB_ADDR;
  if (flags.webAddr !== undefined) {
    try {
      parseWebAddr(flags.webAddr);
    } catch (error) {
      throw new UsageError(`bad --web-addr value ${JSON.stringify(flags.webAddr)}: ${errorMessage(error).replace(/^bad webAddr "[^"]*": /, "")}`);
    }
    webAddr = flags.webAddr;
  }
  const world = flags.matrix === undefined ? demoWorld(nodes, seed) : { matrix: demoMatrixFromFile(flags.matrix, nodes), tags: new Map<number, string[]>() };
  const matrix = world.matrix;
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), "skein-demo-"));
  const matrixFile = path.join(tmpDir, "latency.json");
  writeFileSync(matrixFile, formatMatrix(matrix));

  const children: DemoChild[] = [];
  const env = childEnv(process.env);
  let cleaned = false;
  // Last resort if the demo dies in an unexpected way: no child and no temp file left behind.
  const emergency = (): void => {
    if (cleaned) return;
    for (const child of children) if (child.running) child.process.kill("SIGKILL");
    rmSync(tmpDir, { recursive: true, force: true });
  };
  process.on("exit", emergency);

  let stopReason: string | undefined;
  let wake: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (reason: string): void => {
    stopReason ??= reason;
    wake?.();
  };
  const onSignal = (signal: NodeJS.Signals): void => stop(signal);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  let durationTimer: NodeJS.Timeout | undefined;
  let refreshTimer: NodeJS.Timeout | undefined;
  const startedAt = Date.now();
  const emulatedRttMs = (a: number | string, b: number | string): number | undefined => {
    try {
      return symmetricRtt(matrix, String(a), String(b));
    } catch {
      return undefined;
    }
  };
  let webUrl: string | undefined;
  const frame = (hint?: string, rows?: number): string =>
    renderDemoFitting({
      elapsedMs: Date.now() - startedAt,
      nodes: children.map((child) => child.view()),
      emulatedRttMs,
      ...(hint === undefined ? {} : { hint }),
      ...(webUrl === undefined ? {} : { webUrl }),
    }, rows);

  try {
    const baseArgs = (id: number): string[] => [
      "--node-id", String(id),
      "--bind", "127.0.0.1",
      "--udp-port", "0",
      // Node 1 is the collector with the web view; the others serve their API on any free port
      // (the terminal table reads it).
      ...(id === 1 ? ["--collector", "--web-addr", webAddr] : ["--web-addr", "127.0.0.1:0"]),
      ...((world.tags.get(id) ?? []).length > 0 ? ["--local-tags", world.tags.get(id)!.join(",")] : []),
      "--emulate-latency", matrixFile,
      // Each node's key is created in the demo's temp directory (removed at exit).
      "--data-dir", path.join(tmpDir, `node-${id}`),
      "--log-level", "warn",
      "--exit-on-stdin-close",
    ];
    if (!tty) out(`skein demo: starting ${nodes} node${nodes === 1 ? "" : "s"} (matrix ${flags.matrix ?? matrixFile}, seed ${seed})\n`);
    const first = new DemoChild(1, cliPath, baseArgs(1), env);
    children.push(first);
    const startOrStop = async (promise: Promise<unknown>): Promise<boolean> => {
      const result = await Promise.race([promise.then(() => "started" as const), stopped.then(() => "stopped" as const)]);
      return result === "started";
    };
    if (!(await startOrStop(first.waitListening(CHILD_START_TIMEOUT_MS)))) return 0;
    const web = first.listening?.web;
    if (web !== null && web !== undefined) {
      webUrl = `${web.replace(/\/+$/, "")}/`;
      // One plain line, first, in every mode: what a newcomer (or a script) needs.
      out(`skein demo: web view at ${webUrl} (collector: node 1)\n`);
    }
    const seedAddress = first.udpAddress;
    if (seedAddress === undefined) throw new CliFailure("demo node 1 listens on no address; cannot seed the others", "DEMO_START_FAILED");
    for (let id = 2; id <= nodes; id++) {
      children.push(new DemoChild(id, cliPath, [...baseArgs(id), "--seeds", `1@${seedAddress}`], env));
    }
    if (!(await startOrStop(Promise.all(children.map((child) => child.waitListening(CHILD_START_TIMEOUT_MS)))))) return 0;

    if (durationS !== undefined) durationTimer = setTimeout(() => stop(`${durationS} s elapsed`), durationS * 1000);
    if (tty) out("\x1b[?25l\x1b[2J");
    let polling = false;
    let lastSnapshot = Date.now();
    const refresh = async (): Promise<void> => {
      if (polling) return;
      polling = true;
      try {
        await Promise.all(
          children.map(async (child) => {
            const web = child.listening?.web;
            if (!child.running || web === null || web === undefined) return;
            try {
              child.status = await fetchNodeStatus(web.replace(/\/+$/, ""), DEMO_REFRESH_MS - 100);
              child.pollError = undefined;
            } catch (error) {
              if (child.running) child.pollError = errorMessage(error);
            }
          }),
        );
      } finally {
        polling = false;
      }
      if (stopReason !== undefined) return;
      if (tty) {
        out(repaint(frame("Ctrl-C to stop", process.stdout.rows)));
      } else if (Date.now() - lastSnapshot >= snapshotS * 1000) {
        lastSnapshot = Date.now();
        out(`${frame()}\n`);
      }
    };
    void refresh();
    refreshTimer = setInterval(() => void refresh(), DEMO_REFRESH_MS);
    await stopped;
    if (!tty) out(`${frame()}\n`);
    return 0;
  } finally {
    clearTimeout(durationTimer);
    clearInterval(refreshTimer);
    // Wait for each child to be gone.
    await Promise.all(children.map((child) => child.stop(CHILD_STOP_TIMEOUT_MS)));
    rmSync(tmpDir, { recursive: true, force: true });
    cleaned = true;
    process.off("exit", emergency);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    if (tty) out("\x1b[?25h");
    if (stopReason !== undefined) process.stderr.write(
      `skein demo: stopped ${children.length} node${children.length === 1 ? "" : "s"}${stopReason === undefined ? "" : ` (${stopReason})`}, removed ${tmpDir}\n`,
    );
  }
}

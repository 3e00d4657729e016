/**
 * The `skein` command as a real process: `node dist/src/cli/main.js …`. Every process started here
 * is stopped in a `finally` (and, as a last resort, in `after`).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const PACKAGE_VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL("../../../package.json", import.meta.url)), "utf8")) as { version: string }).version;

/** The environment without SKEIN_* variables, so that the caller's settings never leak in. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("SKEIN_")) env[key] = value;
  return { ...env, ...extra };
}

const live = new Set<ChildProcess>();

function start(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output until it exits (or kills it after `timeoutMs` and fails). */
function outcome(child: ChildProcess, timeoutMs = 20_000): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill(child);
      reject(new Error(`skein did not exit within ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function runCli(args: string[], env?: NodeJS.ProcessEnv): Promise<Outcome> {
  const child = start(args, env);
  try {
    return await outcome(child);
  } finally {
    kill(child);
  }
}

/** Asserts exactly one line on stderr, `skein: …`, and returns it. */
function oneStderrLine(result: Outcome): string {
  const lines = result.stderr.split("\n").filter((line) => line.length > 0);
  assert.equal(lines.length, 1, `expected one line on stderr, got: ${result.stderr}`);
  assert.match(lines[0]!, /^skein: /);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  return lines[0]!;
}

interface RunningNode {
  child: ChildProcess;
  listening: { event: string; id: number; addresses: string[]; web: string | null };
  output: () => { stdout: string; stderr: string };
  exited: Promise<Outcome>;
}

/** Starts `skein node …` and waits for its listening line. */
async function startNode(args: string[], env?: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<RunningNode> {
  // Each node keeps its own key: two nodes sharing ./.skein would be one identity.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "skein-cli-node-"));
  const child = start(["node", "--data-dir", dataDir, ...args], env);
  child.once("close", () => rmSync(dataDir, { recursive: true, force: true }));
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<Outcome>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  const listening = await new Promise<RunningNode["listening"]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    child.stdout!.on("data", (chunk: string) => {
      stdout += chunk;
      const line = stdout.split("\n").find((candidate) => candidate.includes('"event":"listening"'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as RunningNode["listening"]);
      }
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`skein node exited with ${String(code)} before listening; stderr: ${stderr}`));
    });
  });
  return { child, listening, output: () => ({ stdout, stderr }), exited };
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "skein-cli-test-"));
});
after(() => {
  for (const child of live) kill(child);
  rmSync(tmp, { recursive: true, force: true });
});

describe("skein: help, version and usage errors", () => {
  it("--help and --version exit 0", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: skein /);
    for (const command of ["node", "status", "sim", "demo"]) assert.match(help.stdout, new RegExp(`^  ${command}\\b`, "m"));
    assert.equal(help.stderr, "");

    const version = await runCli(["--version"]);
    assert.equal(version.code, 0);
    assert.equal(version.stdout, `${PACKAGE_VERSION}\n`);

    const nodeHelp = await runCli(["node", "--help"]);
    assert.equal(nodeHelp.code, 0);
    for (const flag of ["--node-id", "--udp-port", "--tcp-port", "--bind", "--seeds", "--max-neighbours", "--web-addr", "--emulate-latency", "--log-level", "--probe-interval-ms", "--link-timeout-ms", "--udp-mtu", "--config"]) {
      assert.ok(nodeHelp.stdout.includes(flag), `node --help mentions ${flag}`);
    }
  });

  it("an unknown flag exits 2 with one line", async () => {
    const result = await runCli(["node", "--udp-prot", "1"]);
    assert.equal(result.code, 2);
    assert.equal(oneStderrLine(result), `skein: unknown option '--udp-prot' (Did you mean --udp-port?); see "skein node --help"`);
    assert.equal(result.stdout, "");
  });

  it("an extra argument exits 2 with one line", async () => {
    const result = await runCli(["node", "extra"]);
    assert.equal(result.code, 2);
    assert.equal(oneStderrLine(result), `skein: too many arguments for 'node'. Expected 0 arguments but got 1; see "skein node --help"`);
  });

  it("an unknown command exits 2 with one line", async () => {
    const result = await runCli(["nodes"]);
    assert.equal(result.code, 2);
    assert.match(oneStderrLine(result), /^skein: unknown command 'nodes' \(Did you mean node\?\); see "skein --help"$/);
  });

  it("a malformed seed exits 2 naming the value", async () => {
    const result = await runCli(["node", "--seeds", "1@/ip4/999.1.1.1/udp/x"]);
    assert.equal(result.code, 2);
    assert.equal(
      oneStderrLine(result),
      'skein: bad --seeds value "1@/ip4/999.1.1.1/udp/x": "999.1.1.1" is not an IPv4 address; expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001',
    );
  });

  it("a bad number, from a flag or the environment, exits 2 naming it", async () => {
    const flag = await runCli(["node", "--udp-port", "65536"]);
    assert.equal(flag.code, 2);
    assert.equal(oneStderrLine(flag), 'skein: bad --udp-port value "65536": expected an integer in 0..65535 (0 = any free port)');
    const env = await runCli(["node"], cleanEnv({ SKEIN_MAX_NEIGHBOURS: "many" }));
    assert.equal(env.code, 2);
    assert.equal(oneStderrLine(env), 'skein: bad SKEIN_MAX_NEIGHBOURS value "many": expected an integer in 1..65535');
    const missing = await runCli(["node", "--udp-port"]);
    assert.equal(missing.code, 2);
    assert.equal(oneStderrLine(missing), `skein: option '--udp-port <PORT>' argument missing; see "skein node --help"`);
  });

  it("an unreadable config file exits 2 with one clear line", async () => {
    const missing = path.join(tmp, "missing.yaml");
    const result = await runCli(["node", "--config", missing]);
    assert.equal(result.code, 2);
    assert.equal(oneStderrLine(result), `skein: cannot read config file "${missing}": no such file; expected a readable JSON or YAML file`);
    const directory = await runCli(["node"], cleanEnv({ SKEIN_CONFIG: tmp }));
    assert.equal(directory.code, 2);
    assert.equal(oneStderrLine(directory), `skein: cannot read config file "${tmp}": it is a directory; expected a readable JSON or YAML file`);
  });

  it("a malformed config file or an unknown key exits 2 with one clear line", async () => {
    const broken = path.join(tmp, "broken.json");
    writeFileSync(broken, '{ "udpPort": 1, }');
    const bad = await runCli(["node", "--config", broken]);
    assert.equal(bad.code, 2);
    assert.match(oneStderrLine(bad), new RegExp(`^skein: bad config file "${escape(broken)}": not valid JSON \\(.+\\); expected an object such as \\{"udpPort": 10001\\}$`));

    const unknown = path.join(tmp, "unknown.yaml");
    writeFileSync(unknown, "udp-port: 0\nseed: 1@/ip4/127.0.0.1/udp/1\n");
    const result = await runCli(["node", "--config", unknown]);
    assert.equal(result.code, 2);
    assert.match(oneStderrLine(result), new RegExp(`^skein: unknown key "seed" in config file "${escape(unknown)}" \\(did you mean "seeds"\\?\\); expected one of nodeId, `));
  });

  it("a UDP port in use exits 1 with one clear line", async () => {
    const socket = dgram.createSocket("udp4");
    try {
      await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
      const port = socket.address().port;
      const result = await runCli(["node", "--udp-port", String(port), "--bind", "127.0.0.1"]);
      assert.equal(result.code, 1);
      const line = oneStderrLine(result);
      assert.match(line, new RegExp(`port ${port}\\b.*in use`));
      assert.match(line, /--udp-port/);
      assert.equal(result.stdout, "");
    } finally {
      socket.close();
    }
  });

  it("an unreadable --emulate-latency file exits 2 with one line", async () => {
    const missing = path.join(tmp, "no-matrix.json");
    const result = await runCli(["node", "--emulate-latency", missing]);
    assert.equal(result.code, 2);
    assert.match(oneStderrLine(result), new RegExp(`^skein: cannot read latency matrix ${escape(missing)} \\(ENOENT\\)`));
  });

  it("status against an unreachable API exits 1 with one line", async () => {
    const port = await closedTcpPort();
    const result = await runCli(["status", "--api", `http://127.0.0.1:${port}`, "--timeout-ms", "2000"]);
    assert.equal(result.code, 1);
    assert.match(oneStderrLine(result), new RegExp(`^skein: cannot reach the node API at http://127\\.0\\.0\\.1:${port}/api/node: .*ECONNREFUSED`));
  });

  it("sim: bad flags exit 2, generate and links print JSON", async () => {
    const generated = await runCli(["sim", "generate", "--nodes", "4", "--seed", "5"]);
    assert.equal(generated.code, 0);
    const matrix = JSON.parse(generated.stdout) as Record<string, Record<string, number>>;
    assert.deepEqual(Object.keys(matrix), ["n1", "n2", "n3", "n4"]);

    const file = path.join(tmp, "m4.json");
    assert.equal((await runCli(["sim", "generate", "--nodes", "4", "--seed", "5", "--out", file])).code, 0);
    assert.equal(readFileSync(file, "utf8"), generated.stdout);

    const links = await runCli(["sim", "links", "--matrix", file, "--nodes", "3", "--seed", "2", "--loss", "0", "--duration-s", "5"]);
    assert.equal(links.code, 0, links.stderr);
    assert.equal(links.stdout.split("\n").length, 2, "one line");
    const report = JSON.parse(links.stdout) as { nodes: number; seed: number; duration_s: number };
    assert.equal(report.nodes, 3);
    assert.equal(report.seed, 2);
    assert.equal(report.duration_s, 5);

    const tooMany = await runCli(["sim", "links", "--matrix", file, "--nodes", "5"]);
    assert.equal(tooMany.code, 2);
    assert.equal(oneStderrLine(tooMany), 'skein: bad --nodes value "5": expected an integer in 1..4 (the matrix has 4 nodes)');
    const badLoss = await runCli(["sim", "links", "--matrix", file, "--loss", "2"]);
    assert.equal(badLoss.code, 2);
    assert.equal(oneStderrLine(badLoss), 'skein: bad --loss value "2": expected a packet loss probability in 0..1, e.g. 0.01');
  });
});

describe("skein node: running", () => {
  it("starts from a config file and env, prints the listening line, serves status, stops on SIGINT/SIGTERM", { timeout: 60_000 }, async () => {
    const config = path.join(tmp, "node1.yaml");
    writeFileSync(config, "node-id: 1\nudpPort: 0\nwebAddr: 127.0.0.1:0\nlogLevel: warn\n");
    let first: RunningNode | undefined;
    let second: RunningNode | undefined;
    try {
      first = await startNode(["--config", config]);
      assert.equal(first.listening.id, 1);
      assert.match(first.listening.addresses[0]!, /^\/ip4\/127\.0\.0\.1\/udp\/\d+$/);
      assert.match(first.listening.web!, /^http:\/\/127\.0\.0\.1:\d+$/);

      // The second node takes its seed from the environment and the rest from flags (over env).
      second = await startNode(
        ["--node-id", "2", "--web-addr", "127.0.0.1:0", "--udp-port", "0"],
        cleanEnv({ SKEIN_SEEDS: `1@${first.listening.addresses[0]!}`, SKEIN_NODE_ID: "99", SKEIN_LOG_LEVEL: "warn" }),
      );
      assert.equal(second.listening.id, 2);

      const web = first.listening.web!;
      const table = await waitFor("node 2 up in node 1's status", async () => {
        const result = await runCli(["status", "--api", web]);
        assert.equal(result.code, 0, result.stderr);
        return /^ *2 +\/ip4\/127\.0\.0\.1\/udp\/\d+ +udp +up +\d/m.test(result.stdout) ? result.stdout : undefined;
      });
      assert.match(table, /^node 1  up \d+s  1 neighbour \(1 up\)/);
      assert.match(table, /^ID +ADDRESS +TRANSPORT +STATE +RTT\(ms\) +RTTVAR\(ms\) +LOSS\(%\)$/m);

      const json = await runCli(["status", "--api", web.replace("http://", ""), "--json"]);
      assert.equal(json.code, 0);
      const body = JSON.parse(json.stdout) as { id: number; neighbours: { id: number }[] };
      assert.equal(body.id, 1);
      assert.deepEqual(body.neighbours.map((n) => n.id), [2]);

      second.child.kill("SIGTERM");
      const secondExit = await second.exited;
      assert.equal(secondExit.code, 0, secondExit.stderr);
      first.child.kill("SIGINT");
      const firstExit = await first.exited;
      assert.equal(firstExit.code, 0, firstExit.stderr);
      assert.equal(firstExit.stdout.trim().split("\n").length, 1, "only the listening line on stdout");
    } finally {
      if (first) kill(first.child);
      if (second) kill(second.child);
    }
  });
});

describe("skein node: stdin", () => {
  it("with --exit-on-stdin-close (what the demo uses) stops when stdin closes; no web address gives web null", { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [CLI, "node", "--exit-on-stdin-close", "--log-level", "silent"], { env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
    live.add(child);
    try {
      const result = outcome(child);
      let stdout = "";
      child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
      await waitFor("the listening line", async () => (stdout.includes("\n") ? true : undefined));
      const listening = JSON.parse(stdout.split("\n")[0]!) as { event: string; id: number; web: unknown };
      assert.equal(listening.event, "listening");
      assert.ok(Number.isInteger(listening.id) && listening.id >= 1);
      assert.equal(listening.web, null);
      child.stdin!.end();
      assert.equal((await result).code, 0);
    } finally {
      kill(child);
    }
  });
});

describe("skein demo", () => {
  it("runs N nodes, prints snapshots when not a terminal, and stops every child on SIGINT", { timeout: 90_000 }, async () => {
    const demo = start(["demo", "--nodes", "3", "--snapshot-s", "0.5"]);
    const pids = new Set<number>();
    try {
      let stdout = "";
      let stderr = "";
      demo.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      demo.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const closed = new Promise<number | null>((resolve) => demo.once("close", (code) => resolve(code)));
      await waitFor("all 3 links up in a demo snapshot", async () => (/^links up: 3 of 3 pairs$/m.test(stdout) ? true : undefined), 45_000);
      for (const match of stdout.matchAll(/^ +\d+ +(\d+) +\/ip4\//gm)) pids.add(Number(match[1]));
      assert.equal(pids.size, 3, stdout);
      assert.match(stdout, /^NODE +PID +ADDRESS +PEER +STATE +RTT\(ms\) +EMULATED\(ms\) +RTTVAR\(ms\) +LOSS\(%\)$/m);
      assert.doesNotMatch(stdout, /\x1b\[/, "no terminal escapes when stdout is not a TTY");

      demo.kill("SIGINT");
      assert.equal(await closed, 0, stderr);
      for (const pid of pids) assert.equal(alive(pid), false, `child ${pid} is gone`);
      const removed = /removed (\S+)$/m.exec(stderr);
      assert.ok(removed !== null, stderr);
      assert.equal(existsSync(removed[1]!), false, "temp files removed");
    } finally {
      kill(demo);
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });

  it("stops by itself after --duration-s", { timeout: 60_000 }, async () => {
    const result = await runCli(["demo", "--nodes", "1", "--duration-s", "0.5"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^skein demo: 1\/1 node running/m);
    assert.match(result.stderr, /^skein demo: stopped 1 node \(0\.5 s elapsed\), removed /m);
  });

  it("refuses a bad --nodes", async () => {
    const result = await runCli(["demo", "--nodes", "0"]);
    assert.equal(result.code, 2);
    assert.equal(oneStderrLine(result), 'skein: bad --nodes value "0": expected an integer in 1..64');
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function closedTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Real `skein` processes for end-to-end tests: started on 127.0.0.1 with port 0, their listening
 * line parsed, their stderr kept for assertions, and always stopped (`stopAll` in `after`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const CLI_PATH = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface Listening {
  event: "listening";
  id: number;
  addresses: string[];
  web: string | null;
}

export interface SkeinProcess {
  child: ChildProcess;
  listening: Promise<Listening>;
  /** stderr so far, line by line. */
  stderrLines: string[];
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<SkeinProcess>();

export function startSkein(args: string[], env: NodeJS.ProcessEnv = {}): SkeinProcess {
  // Every node process gets its own key, in a temp data directory (unless the test chose one).
  if (args[0] === "node" && !args.includes("--key") && !args.includes("--data-dir")) {
    args = [...args, "--data-dir", mkdtempSync(path.join(tmpdir(), "skein-e2e-"))];
  }
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const stderrLines: string[] = [];
  let stderrRest = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    const lines = (stderrRest + chunk).split("\n");
    stderrRest = lines.pop()!;
    stderrLines.push(...lines);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const listening = new Promise<Listening>((resolve, reject) => {
    let stdout = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      stdout += chunk;
      const line = stdout.split("\n").find((candidate) => candidate.startsWith('{"event":"listening"'));
      if (line) resolve(JSON.parse(line) as Listening);
    });
    void exited.then((code) => reject(new Error(`skein ${args.join(" ")} exited with ${code} before listening:\n${stderrLines.join("\n")}${stderrRest}`)));
  });
  listening.catch(() => {});
  const handle: SkeinProcess = {
    child,
    listening,
    stderrLines,
    exited,
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        await once(child, "exit").catch(() => {});
      }
      running.delete(handle);
    },
  };
  running.add(handle);
  return handle;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((handle) => handle.kill("SIGKILL")));
}

export interface ApiNode {
  id: number;
  addresses: string[];
  uptime_s: number;
  neighbours: { id: number; address: string; transport: string; state: string; srtt_ms: number | null; rttvar_ms: number | null; loss: number }[];
}

export async function getNode(web: string): Promise<ApiNode> {
  const response = await fetch(`${web}/api/node`);
  if (!response.ok) throw new Error(`${web}/api/node answered ${response.status}`);
  return (await response.json()) as ApiNode;
}

/** Polls `check` every 100 ms until it returns true; fails with `what` after `limitMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}

export function upNeighbourIds(node: ApiNode): number[] {
  return node.neighbours
    .filter((neighbour) => neighbour.state === "up")
    .map((neighbour) => neighbour.id)
    .sort((a, b) => a - b);
}

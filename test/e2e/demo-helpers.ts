/**
 * `skein demo` as a real process for end-to-end tests: its stdout parsed (the web view's URL, the
 * node → pid table), stopped with SIGINT (or killed) and every child checked gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { CLI_PATH, waitFor } from "./processes.js";

export interface DemoProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The collector's web view, e.g. http://127.0.0.1:41597 (no trailing slash). */
  url(): Promise<string>;
  /** Node id → pid, from the snapshot tables printed so far. */
  pids(): Map<number, number>;
  exited: Promise<number | null>;
  /** SIGKILL the demo and every child it reported, whatever state they are in. */
  kill(): void;
}

export function startDemo(args: string[]): DemoProcess {
  const child = spawn(process.execPath, [CLI_PATH, "demo", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const pids = (): Map<number, number> => {
    const found = new Map<number, number>();
    for (const match of stdout.matchAll(/^ *(\d+) +(\d+) +\/ip4\//gm)) found.set(Number(match[1]), Number(match[2]));
    return found;
  };
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async url() {
      let url: string | undefined;
      await waitFor("the demo's web view URL", () => {
        url = /^skein demo: web view at (http:\/\/\S+?)\/? /m.exec(stdout)?.[1];
        return url !== undefined;
      }, 45_000);
      return url!;
    },
    pids,
    exited,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      for (const pid of pids().values()) if (alive(pid)) process.kill(pid, "SIGKILL");
    },
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ApiTopology {
  collector: number;
  version: number;
  nodes: { id: number; state: "live" | "stale"; tags: string[]; version: string; uptime_s: number; neighbours: { id: number; srtt_ms: number | null }[]; routes: { destination: number; next_hop: number | null; hops: number }[] }[];
  links: { a: number; b: number; srtt_ms: number | null; state: "live" | "stale" }[];
}

export async function getTopology(url: string): Promise<ApiTopology> {
  const response = await fetch(`${url}/api/topology`);
  if (!response.ok) throw new Error(`${url}/api/topology answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as ApiTopology;
}

/** Waits until the collector knows `count` live nodes, every one with all its links (a full mesh of `count`). */
export async function waitForFullTopology(url: string, count: number): Promise<ApiTopology> {
  let topology: ApiTopology | undefined;
  await waitFor(`${count} live nodes, fully linked and measured, in ${url}/api/topology`, async () => {
    topology = await getTopology(url);
    return (
      topology.nodes.length === count &&
      topology.nodes.every((node) => node.state === "live" && node.routes.filter((route) => route.next_hop !== null).length === count - 1) &&
      topology.links.length === (count * (count - 1)) / 2 &&
      topology.links.every((link) => link.srtt_ms !== null)
    );
  }, 60_000);
  return topology!;
}

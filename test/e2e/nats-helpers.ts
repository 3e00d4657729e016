/**
 * Helpers for NATS end-to-end tests: `skein nats-server` processes found through their ports
 * file (as harnesses find nats-server), and raw sockets that send bytes and collect the answer.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { CLI_PATH, waitFor } from "./processes.js";

export interface NatsProcess {
  child: ChildProcess;
  dir: string;
  portsFile: string;
  clientUrl: string;
  port: number;
  monitorUrl: string | undefined;
  stderr: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<NatsProcess>();

/** Starts a server command (`skein nats-server …` or `nats-server …`) and waits for its ports file. */
export async function startNatsProcess(command: string[], args: string[]): Promise<NatsProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-nats-"));
  const child = spawn(command[0]!, [...command.slice(1), ...args, "--ports_file_dir", dir], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let portsFile = "";
  await waitFor(
    `${command.join(" ")} to write its ports file`,
    () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${stderr}`);
      const name = readdirSync(dir).find((file) => file.endsWith(".ports"));
      if (name === undefined) return false;
      portsFile = path.join(dir, name);
      return true;
    },
    // Generous: a loaded machine starts node processes slowly.
    60_000,
  );
  const ports = JSON.parse(readFileSync(portsFile, "utf8")) as { nats: string[]; monitoring?: string[] };
  const clientUrl = ports.nats[0]!;
  const handle: NatsProcess = {
    child,
    dir,
    portsFile,
    clientUrl,
    port: Number(clientUrl.split(":").pop()),
    monitorUrl: ports.monitoring?.[0],
    stderr: () => stderr,
    exited,
    async stop(signal: NodeJS.Signals = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        await once(child, "exit").catch(() => {});
      }
      running.delete(handle);
      rmSync(dir, { recursive: true, force: true });
      return child.exitCode;
    },
  };
  running.add(handle);
  return handle;
}

export function startSkeinNatsServer(args: string[]): Promise<NatsProcess> {
  return startNatsProcess([process.execPath, CLI_PATH, "nats-server"], args);
}

export async function stopAllNats(): Promise<void> {
  await Promise.all([...running].map((handle) => handle.stop("SIGKILL")));
}

export function natsServerInstalled(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "nats-server");
    if (dir !== "" && existsSync(candidate)) return candidate;
  }
  return undefined;
}

export interface RawResult {
  /** Everything received after the INFO line. */
  text: string;
  info: Record<string, unknown>;
  closed: boolean;
}

/**
 * Connects, sends `parts` (in order, as separate writes), and collects what comes back until the
 * server closes the connection, `doneWhen` says the answer is complete, or `waitMs` passes with
 * the connection still open.
 */
export function raw(port: number, parts: (string | Buffer)[], waitMs = 300, doneWhen?: (received: string) => boolean): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const newline = received.indexOf("\r\n");
      const infoLine = newline < 0 ? received : received.slice(0, newline);
      let info: Record<string, unknown> = {};
      try {
        info = JSON.parse(infoLine.replace(/^INFO /, "")) as Record<string, unknown>;
      } catch {
        // not an INFO line: leave empty
      }
      resolve({ text: newline < 0 ? "" : received.slice(newline + 2), info, closed });
    };
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      // Settle once the answer is known to be complete; a closing server still gets its close seen.
      if (doneWhen !== undefined && doneWhen(received)) setTimeout(() => finish(socket.destroyed), 20);
    });
    socket.on("connect", () => {
      for (const part of parts) socket.write(part);
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    const timer = setTimeout(() => finish(false), waitMs);
  });
}

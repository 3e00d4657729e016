/**
 * `skein node`: resolves options (flags > env > config file > defaults), starts a node, prints one
 * JSON "listening" line on stdout, and runs until SIGINT/SIGTERM (then closes the node, exit 0).
 */
import { CLI_DATA_DIR_DEFAULT } from "../node/options.js";
import { readFileSync } from "node:fs";
import { SkeinError } from "../core/errors.js";
import type { SkeinNode } from "../node/api.js";
import type { NodeOptions } from "../node/options.js";
import { CliFailure, EXIT_FAILURE, EXIT_OK, UsageError, errorMessage } from "./errors.js";
import { type Env, type NodeFlags, configPathFrom, resolveNodeOptions } from "./options.js";

/** How long `close()` may take after a signal before the process gives up and exits 1. */
export const CLOSE_TIMEOUT_MS = 10_000;

export interface NodeCommandFlags extends NodeFlags {
  /** Hidden: stop when stdin closes (the demo uses it so that children never outlive it). */
  exitOnStdinClose?: boolean;
}

/** Reads the config file (if any) and resolves the options; throws UsageError. */
export function loadNodeOptions(flags: NodeFlags, env: Env): NodeOptions {
  const configPath = configPathFrom(flags, env);
  let configText: string | undefined;
  if (configPath !== undefined) {
    try {
      configText = readFileSync(configPath, "utf8");
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const reason =
        code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : errorMessage(error);
      throw new UsageError(`cannot read config file "${configPath}": ${reason}; expected a readable JSON or YAML file`, "BAD_CONFIG");
    }
  }
  return resolveNodeOptions({ flags, env, configText, configPath });
}

export function listeningLine(node: SkeinNode): string {
  const line: Record<string, unknown> = { event: "listening", id: node.id, addresses: node.addresses, web: node.webUrl ?? null };
  // pub/sub (issue 5): the NATS client port, only when one was asked for.
  if (node.natsUrl !== undefined) line.nats = node.natsUrl;
  return JSON.stringify(line);
}

const USAGE_CODES: ReadonlySet<string> = new Set(["BAD_CONFIG", "BAD_OPTION", "BAD_OPTIONS", "BAD_MATRIX"]);

type CreateNode = (options: NodeOptions) => Promise<SkeinNode>;

async function loadCreateNode(): Promise<CreateNode> {
  // Loaded lazily so that `skein --help`, `status` and `sim` never load the runtime.
  const runtime = await import("../runtime/node.js");
  return runtime.createNode;
}

/** Runs the node until a signal; resolves with the exit code. Throws UsageError/CliFailure. */
export async function runNodeCommand(flags: NodeCommandFlags, env: Env): Promise<number> {
  const options = loadNodeOptions(flags, env);
  // `skein node` keeps its identity: without --key, the key lives in (and is created in) ./.skein.
  if (options.key === undefined && options.dataDir === undefined) options.dataDir = CLI_DATA_DIR_DEFAULT;
  // Listen for stop requests before starting, so that a signal during startup is not lost.
  let stopReason: string | undefined;
  const stopRequested = new Promise<string>((resolve) => {
    const stop = (reason: string): void => {
      stopReason ??= reason;
      resolve(reason);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    if (flags.exitOnStdinClose === true) {
      process.stdin.once("end", () => stop("stdin closed"));
      process.stdin.once("close", () => stop("stdin closed"));
      process.stdin.on("error", () => stop("stdin closed"));
      process.stdin.resume();
    }
  });
  const createNode = await loadCreateNode();
  let node: SkeinNode;
  try {
    node = await createNode(options);
  } catch (error) {
    // Options the runtime refuses (an unreadable --emulate-latency file, …) are usage errors.
    if (error instanceof SkeinError && USAGE_CODES.has(error.code)) throw new UsageError(error.message, error.code);
    if (error instanceof SkeinError) throw new CliFailure(error.message, error.code, { cause: error });
    throw error;
  }
  if (stopReason === undefined) process.stdout.write(`${listeningLine(node)}\n`);

  const reason = await stopRequested;
  // A second signal while closing exits at once.
  const force = (): void => process.exit(EXIT_FAILURE);
  process.once("SIGINT", force);
  process.once("SIGTERM", force);

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), CLOSE_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([node.close().then(() => "closed" as const), timeout]);
    if (outcome === "timeout") {
      process.stderr.write(`skein: node ${node.id} did not close within ${CLOSE_TIMEOUT_MS} ms after ${reason}; exiting anyway\n`);
      return EXIT_FAILURE;
    }
  } catch (error) {
    process.stderr.write(`skein: closing node ${node.id} failed: ${errorMessage(error)}\n`);
    return EXIT_FAILURE;
  } finally {
    clearTimeout(timer);
  }
  return EXIT_OK;
}

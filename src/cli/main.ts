#!/usr/bin/env node
/**
 * The `skein` command:
 *
 *   skein node [flags]                 run a node (flags > SKEIN_* env > --config file > defaults)
 *   skein status --api URL [--json]    a node's neighbours, from its HTTP API
 *   skein route --api URL DEST         the path to DEST hop by hop, from a node's HTTP API
 *   skein sim links --matrix FILE …    the links scenario in the simulator, one JSON report line
 *   skein sim routing --matrix FILE …  routes vs the optimum, from frames actually forwarded
 *   skein sim failover --matrix FILE … reroute times when relay links and nodes fail
 *   skein sim generate --nodes N …     an Internet-like RTT matrix as JSON
 *   skein demo [--nodes N] [--matrix FILE] [--web-addr HOST:PORT]
 *                                      N local nodes with emulated latency, a collector with the
 *                                      live web view, and a live table
 *   skein nats-server [flags]          a drop-in nats-server (nats-server's flags and config format)
 *
 * Expected errors print one line on stderr, `skein: …`, and exit 2 (usage) or 1 (runtime).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { SkeinError } from "../core/errors.js";
import { runDemoCommand, DEMO_DEFAULT_NODES, DEMO_DEFAULT_WEB_ADDR, DEMO_MAX_NODES, DEMO_SNAPSHOT_DEFAULT_S } from "./demo.js";
import { CliFailure, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, oneLine } from "./errors.js";
import { registerKeyCommands } from "./keys-command.js";
import { type NodeCommandFlags, runNodeCommand } from "./node-command.js";
import { runNatsServerCommand } from "./nats-server-command.js";
import { nodeFlagHelp } from "./options.js";
import { ROUTE_API_TIMEOUT_MS, renderRoute, routeReport } from "./route.js";
import { type FailoverFlags, type RoutingFlags, runFailoverCommand, runGenerateCommand, runLinksCommand, runRoutingCommand } from "./sim-command.js";
import { DEFAULT_API_TIMEOUT_MS, fetchNodeJson, normalizeApiUrl, parseNodeStatus, renderStatus } from "./status.js";
import { parseIntegerFlag } from "./values.js";
import { packageVersion } from "./version.js";

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** The outcome of one run: the exit code, and whether to end the process at once (long-running commands). */
export interface RunResult {
  code: number;
  forceExit: boolean;
}

export function buildProgram(io: CliIo, result: RunResult): Command {
  const program = new Command("skein")
    .description("A decentralized, path-aware overlay network: measured links, fastest-path routing.")
    .version(packageVersion(), "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
      // Errors are printed once, as one line, by `run`.
      outputError: () => {},
    });

  // ------------------------------------------------------------ skein node
  const node = program
    .command("node")
    .description("run a node until SIGINT/SIGTERM; prints one JSON line {\"event\":\"listening\",…} on stdout once it listens")
    .addHelpText(
      "after",
      "\nPrecedence: flags > SKEIN_* environment variables > --config file (JSON or YAML, keys as above in\n" +
        "camelCase or kebab-case, e.g. udpPort: 10001) > defaults.\n\n" +
        "Example:\n  skein node --node-id 2 --udp-port 10002 --seeds 1@/ip4/127.0.0.1/udp/10001 --web-addr 127.0.0.1:8002",
    );
  for (const help of nodeFlagHelp()) {
    const option = new Option(help.flags, help.description);
    if (help.key === "seeds" || help.key === "localTags" || help.key === "connectTags") option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    node.addOption(option);
  }
  node.addOption(new Option("--config <FILE>", "read options from a JSON or YAML file [env SKEIN_CONFIG]"));
  node.addOption(new Option("--exit-on-stdin-close", "stop when stdin closes").hideHelp());
  node.action(async (flags: NodeCommandFlags) => {
    result.forceExit = true;
    result.code = await runNodeCommand(flags, io.env);
  });

  // ------------------------------------------------------------ skein status
  program
    .command("status")
    .description("show a node's neighbours, read from its HTTP API (skein node --web-addr)")
    .option("--api <URL>", "the node's HTTP API, e.g. http://127.0.0.1:8080 [env SKEIN_API]")
    .option("--json", "print the raw /api/node JSON")
    .option("--timeout-ms <MS>", `how long to wait for an answer (default ${DEFAULT_API_TIMEOUT_MS})`)
    .action(async (flags: { api?: string; json?: boolean; timeoutMs?: string }) => {
      const api = flags.api ?? io.env.SKEIN_API;
      if (api === undefined || api.trim() === "") throw new UsageError("missing --api: expected the node's HTTP API URL, e.g. --api http://127.0.0.1:8080");
      const base = normalizeApiUrl(api);
      const timeoutMs = parseIntegerFlag("--timeout-ms", flags.timeoutMs, 1, 600_000) ?? DEFAULT_API_TIMEOUT_MS;
      const json = await fetchNodeJson(base, timeoutMs);
      if (flags.json === true) {
        io.stdout(`${JSON.stringify(json)}\n`);
        return;
      }
      const status = parseNodeStatus(json);
      if (status === undefined) throw new CliFailure(`the node API at ${base}/api/node returned JSON without a node "id"; is this a skein node?`, "API_ERROR");
      io.stdout(renderStatus(status));
    });

  // ------------------------------------------------------------ skein route
  program
    .command("route")
    .description("the path a node's frames to DEST take now, hop by hop with each link's RTT, and why it beats the direct link")
    .argument("<DEST>", "the destination NodeId")
    .option("--api <URL>", "the node's HTTP API, e.g. http://127.0.0.1:8080 [env SKEIN_API]")
    .option("--json", "print the raw JSON (trace, route, direct RTT)")
    .option("--timeout-ms <MS>", `how long to wait for the node (default ${ROUTE_API_TIMEOUT_MS})`)
    .action(async (destination: string, flags: { api?: string; json?: boolean; timeoutMs?: string }) => {
      const api = flags.api ?? io.env.SKEIN_API;
      if (api === undefined || api.trim() === "") throw new UsageError("missing --api: expected the node's HTTP API URL, e.g. --api http://127.0.0.1:8080");
      const base = normalizeApiUrl(api);
      const timeoutMs = parseIntegerFlag("--timeout-ms", flags.timeoutMs, 1, 600_000) ?? ROUTE_API_TIMEOUT_MS;
      const { inputs, json } = await routeReport(base, destination, timeoutMs);
      io.stdout(flags.json === true ? `${JSON.stringify(json)}\n` : renderRoute(inputs));
    });

  // ------------------------------------------------------------ skein sim
  const sim = program.command("sim").description("run the deterministic simulator, or generate RTT matrices");
  sim
    .command("links")
    .description("simulate links over an RTT matrix and print the report as one JSON line")
    .option("--matrix <FILE>", "RTT matrix JSON file { \"a\": { \"b\": rttMs } } (required)")
    .option("--nodes <N>", "use the first N nodes of the matrix (default all)")
    .option("--seed <S>", "random seed (same seed, same run)")
    .option("--loss <P>", "packet loss probability, 0..1")
    .option("--jitter <RATIO>", "delay jitter: standard deviation as a share of each pair's one-way delay, 0..1 (default 0)")
    .option("--duration-s <T>", "simulated seconds")
    .action(async (flags: { matrix?: string; nodes?: string; seed?: string; loss?: string; durationS?: string }) => {
      result.code = await runLinksCommand(flags);
    });
  sim
    .command("routing")
    .description("simulate route exchange over an RTT matrix; measure the paths frames actually take against the optimum (one JSON line)")
    .option("--matrix <FILE>", "RTT matrix JSON file { \"a\": { \"b\": rttMs } } (required)")
    .option("--nodes <N>", "use the first N nodes of the matrix (default all)")
    .option("--seed <S>", "random seed (same seed, same run)")
    .option("--max-neighbours <K>", "links per node at most (default 32; beyond it the neighbour policy chooses)")
    .option("--duration-s <T>", "simulated seconds before the measurement (default 60)")
    .option("--loss <P>", "packet loss probability, 0..1")
    .option("--jitter <RATIO>", "delay jitter: standard deviation as a share of each pair's one-way delay, 0..1")
    .option("--paths <FILE>", "also write one JSON line per routed pair to FILE: {\"src\",\"dst\",\"hops\":[…]} (matrix names)")
    .option("--sample-pairs <N>", "measure N random ordered pairs instead of all (large networks)")
    .option("--measure-s <S>", "simulated seconds the traced frames get to arrive (default 10; ends earlier once all arrived)")
    .option("--seed-nodes <K>", "every node joins through nodes 1..K (default 1)")
    .option("--start-spread-s <S>", "nodes other than the seeds start at random times within S simulated seconds (default 0.5)")
    .option("--progress", "print the simulated time, routed nodes and wall time to stderr every simulated second")
    .option("--insecure", "plaintext links: the same routing, faster to simulate")
    .action(async (flags: RoutingFlags) => {
      result.code = await runRoutingCommand(flags, io.stdout);
    });
  sim
    .command("failover")
    .description("with traffic between many pairs, fail relay links and relay nodes; report reroute times (one JSON line)")
    .option("--matrix <FILE>", "RTT matrix JSON file (required)")
    .option("--nodes <N>", "use the first N nodes of the matrix (default all)")
    .option("--seed <S>", "random seed (same seed, same run)")
    .option("--failures <F>", "how many relay links / relay nodes fail, alternately (default 10)")
    .option("--max-neighbours <K>", "links per node at most (default 32)")
    .option("--flows <N>", "traffic flows at most (default 100)")
    .option("--insecure", "plaintext links: the same routing, faster to simulate")
    .action(async (flags: FailoverFlags) => {
      result.code = await runFailoverCommand(flags, io.stdout);
    });
  sim
    .command("generate")
    .description("generate an Internet-like RTT matrix (cities on a globe, fibre delay, detours) as JSON")
    .option("--nodes <N>", "number of nodes (required)")
    .option("--seed <S>", "random seed (default 1)")
    .option("--out <FILE>", "write to FILE instead of stdout")
    .option("--node-ids", "key rows by NodeIds 1..N (for skein node --emulate-latency) instead of names")
    .action((flags: { nodes?: string; seed?: string; out?: string; nodeIds?: boolean }) => {
      result.code = runGenerateCommand(flags);
    });

  // ------------------------------------------------------------ skein demo
  program
    .command("demo")
    .description("start N local nodes with emulated Internet latency, one a collector with the live web view (prints its URL); Ctrl-C stops all")
    .option("--nodes <N>", `number of nodes, 1..${DEMO_MAX_NODES} (default ${DEMO_DEFAULT_NODES})`)
    .option("--matrix <FILE>", "RTT matrix JSON file to emulate (default: a generated Internet-like world)")
    .option("--web-addr <HOST:PORT>", `where the collector serves the web view (default ${DEMO_DEFAULT_WEB_ADDR}: any free port)`)
    .option("--seed <S>", "seed of the generated latency matrix (default 1)")
    .option("--duration-s <T>", "stop after T seconds (default: run until Ctrl-C)")
    .option("--snapshot-s <S>", `when stdout is not a terminal, print a snapshot every S seconds (default ${DEMO_SNAPSHOT_DEFAULT_S})`)
    .action(async (flags: { nodes?: string; matrix?: string; webAddr?: string; seed?: string; durationS?: string; snapshotS?: string }) => {
      result.forceExit = true;
      result.code = await runDemoCommand(flags);
    });

  // ------------------------------------------------------------ skein nats-server
  // Its Go-style flags (-p -1, -DV, -V for trace) are parsed by nats-server-command.ts: `run`
  // hands `skein nats-server …` over before commander sees it; this entry is for --help.
  program
    .command("nats-server")
    .description("a drop-in nats-server: NATS clients, nats-server's flags and config file (skein nats-server --help)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_options: unknown, command: Command) => {
      result.forceExit = true;
      result.code = await runNatsServerCommand(command.args, io.env);
    });

  // ------------------------------------------------------------ skein keygen, skein ca
  registerKeyCommands(program, { stdout: io.stdout, now: () => Date.now() });

  return program;
}

/** Which command the arguments name, for the hint after a usage error. */
function commandPath(program: Command, argv: readonly string[]): string {
  const names: string[] = ["skein"];
  let command = program;
  for (const arg of argv) {
    if (arg.startsWith("-")) continue;
    const sub = command.commands.find((candidate) => candidate.name() === arg);
    if (sub === undefined) break;
    names.push(arg);
    command = sub;
  }
  return names.join(" ");
}

/** Parses and runs; never throws. Prints expected errors as one `skein: …` line on stderr. */
export async function run(argv: readonly string[], io: CliIo): Promise<RunResult> {
  const result: RunResult = { code: EXIT_OK, forceExit: false };
  const program = buildProgram(io, result);
  try {
    if (argv[0] === "nats-server") {
      // nats-server's own flags (-V is trace there): not commander's.
      result.forceExit = true;
      result.code = await runNatsServerCommand(argv.slice(1), io.env);
      return result;
    }
    await program.parseAsync([...argv], { from: "user" });
    return result;
  } catch (error) {
    result.code = reportError(error, io, () => commandPath(program, argv));
    return result;
  }
}

function reportError(error: unknown, io: CliIo, where: () => string): number {
  if (error instanceof CommanderError) {
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return EXIT_OK;
    // `skein` or `skein sim` alone: commander printed the help on stderr.
    if (error.code === "commander.help") return EXIT_USAGE;
    const message = oneLine(error.message.replace(/^error: /, "")).replace(/\.$/, "");
    io.stderr(`skein: ${message}; see "${where()} --help"\n`);
    return EXIT_USAGE;
  }
  if (error instanceof UsageError || error instanceof CliFailure) {
    io.stderr(`skein: ${oneLine(error.message)}\n`);
    return error.exitCode;
  }
  if (error instanceof SkeinError) {
    io.stderr(`skein: ${oneLine(error.message)}\n`);
    return EXIT_FAILURE;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(`skein: internal error: ${oneLine(message)}\n`);
  if (error instanceof Error && error.stack !== undefined) io.stderr(`${error.stack}\n`);
  return EXIT_FAILURE;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const io: CliIo = {
    env: process.env,
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  };
  const { code, forceExit } = await run(process.argv.slice(2), io);
  process.exitCode = code;
  // A node or the demo may leave handles (stdin, sockets being torn down): end now.
  if (forceExit) process.exit(code);
}

/**
 * The runtime's logger: pino writing one JSON line per record to stderr (fd 2) through a
 * synchronous destination, so that the last lines before an exit are not lost. It is adapted to
 * the engine's Logger interface (src/core/log.ts); both take (fields, message) in pino's order.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";
import type { LogFields, Logger, LogLevel } from "../core/log.js";

export type RuntimeLogLevel = LogLevel | "silent";

export const LOG_LEVELS: readonly RuntimeLogLevel[] = ["debug", "info", "warn", "error", "silent"];

export function isLogLevel(value: unknown): value is RuntimeLogLevel {
  return typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Children are made from the root with the merged bindings, so that a child's `module` replaces
 * its parent's instead of appearing twice in the JSON line (pino appends bindings).
 */
class PinoAdapter implements Logger {
  private readonly target: PinoLogger;
  constructor(
    private readonly root: PinoLogger,
    private readonly bindings: LogFields,
  ) {
    this.target = Object.keys(bindings).length === 0 ? root : root.child(bindings);
  }
  debug(fields: LogFields, message: string): void {
    this.target.debug(fields, message);
  }
  info(fields: LogFields, message: string): void {
    this.target.info(fields, message);
  }
  warn(fields: LogFields, message: string): void {
    this.target.warn(fields, message);
  }
  error(fields: LogFields, message: string): void {
    this.target.error(fields, message);
  }
  child(bindings: LogFields): Logger {
    return new PinoAdapter(this.root, { ...this.bindings, ...bindings });
  }
}

/** One shared stderr destination per process: every node's logger writes through it. */
let stderrDestination: DestinationStream | undefined;

export interface CreateLoggerOptions {
  level: RuntimeLogLevel;
  /** Bindings on every line, e.g. `{ node: 7 }`. */
  bindings?: LogFields;
  /** Where lines go; defaults to a synchronous stderr (fd 2). Tests pass a stream. */
  destination?: DestinationStream;
}

export function createLogger(options: CreateLoggerOptions): Logger {
  let destination: DestinationStream | undefined = options.destination;
  if (destination === undefined) {
    stderrDestination ??= pino.destination({ fd: 2, sync: true });
    destination = stderrDestination;
  }
  const root = pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  return new PinoAdapter(root, { ...options.bindings });
}

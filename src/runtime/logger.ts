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

class PinoAdapter implements Logger {
  constructor(private readonly target: PinoLogger) {}
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
    return new PinoAdapter(this.target.child(bindings));
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
  const base = pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  return new PinoAdapter(base);
}

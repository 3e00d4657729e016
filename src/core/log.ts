/**
 * The engine logs through this interface so that it stays pure: the runtime backs it with pino
 * (one child per module), the simulator with a recorder or nothing.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
  child(bindings: LogFields): Logger;
}

export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nullLogger;
  },
};

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface RecordedLog {
  level: LogLevel;
  bindings: LogFields;
  fields: LogFields;
  message: string;
}

/** Keeps log lines in memory (bounded): tests assert on them, the simulator can print them. */
export class RecordingLogger implements Logger {
  constructor(
    readonly records: RecordedLog[] = [],
    private readonly bindings: LogFields = {},
    private readonly limit = 10_000,
  ) {}

  private record(level: LogLevel, fields: LogFields, message: string): void {
    if (this.records.length >= this.limit) this.records.shift();
    this.records.push({ level, bindings: this.bindings, fields, message });
  }

  debug(fields: LogFields, message: string): void {
    this.record("debug", fields, message);
  }
  info(fields: LogFields, message: string): void {
    this.record("info", fields, message);
  }
  warn(fields: LogFields, message: string): void {
    this.record("warn", fields, message);
  }
  error(fields: LogFields, message: string): void {
    this.record("error", fields, message);
  }
  child(bindings: LogFields): Logger {
    return new RecordingLogger(this.records, { ...this.bindings, ...bindings }, this.limit);
  }
}

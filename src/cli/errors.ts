/**
 * Errors the `skein` command reports as one line on stderr, without a stack trace.
 *
 * Exit codes: 2 for usage errors (a bad flag, value, config file or environment variable), 1 for
 * runtime failures (a port in use, an unreachable API, a child process that died).
 */
import { SkeinError } from "../core/errors.js";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A bad command line, environment variable or config file: exit code 2. */
export class UsageError extends SkeinError {
  readonly exitCode = EXIT_USAGE;
  constructor(message: string, code = "BAD_OPTION") {
    super(code, message);
    this.name = "UsageError";
  }
}

/** An expected failure at run time (unreachable API, port in use, …): exit code 1. */
export class CliFailure extends SkeinError {
  readonly exitCode = EXIT_FAILURE;
  constructor(message: string, code = "CLI_FAILURE", options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "CliFailure";
  }
}

/** Squeezes a message into one line (commander and parsers sometimes use several). */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join(" ");
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Reading and writing RTT matrix files, for the CLI. It lives here, not in src/sim, so that the
 * simulator never touches node:fs.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { SkeinError } from "../core/errors.js";
import { type Matrix, formatMatrix, parseMatrix } from "../sim/matrix.js";
import { type GenerateOptions, generateInternetMatrix } from "../sim/generate.js";

/** Reads and checks a matrix file; throws SkeinError BAD_MATRIX (unreadable, not JSON, invalid). */
export function loadMatrix(path: string): Matrix {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new SkeinError("BAD_MATRIX", `cannot read RTT matrix file "${path}": ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SkeinError("BAD_MATRIX", `RTT matrix file "${path}" is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = parseMatrix(json);
  if (!parsed.ok) throw new SkeinError("BAD_MATRIX", `RTT matrix file "${path}": ${parsed.error}`);
  return parsed.value;
}

/** Writes a matrix as stable JSON (sorted rows and columns). */
export function writeMatrix(path: string, matrix: Matrix): void {
  writeFileSync(path, formatMatrix(matrix));
}

/** Generates an Internet-like matrix (generate.ts) and writes it to `path`; returns it too. */
export function writeGeneratedMatrix(path: string, options: GenerateOptions): Matrix {
  const matrix = generateInternetMatrix(options);
  writeMatrix(path, matrix);
  return matrix;
}

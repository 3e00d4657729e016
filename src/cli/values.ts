/** Validation of the plain numeric flags of `skein sim` and `skein demo`. Throw UsageError. */
import { UsageError } from "./errors.js";

export function parseIntegerFlag(flag: string, raw: string | undefined, min: number, max: number, note = ""): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const value = /^-?[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`bad ${flag} value ${JSON.stringify(raw)}: expected an integer in ${min}..${max}${note}`);
  }
  return value;
}

export function parseNumberFlag(flag: string, raw: string | undefined, min: number, max: number, expected: string): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const value = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value) || value < min || value > max) throw new UsageError(`bad ${flag} value ${JSON.stringify(raw)}: ${expected}`);
  return value;
}

/**
 * Every error skein raises has a stable `code` (for programs) and a message that says what to do
 * (for people).
 */
export class SkeinError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "SkeinError";
  }
}

/** Decoders are total: they return this instead of throwing. */
export interface DecodeError {
  readonly ok: false;
  readonly error: string;
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | DecodeError;

export function decodeError(error: string): DecodeError {
  return { ok: false, error };
}

export function decoded<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

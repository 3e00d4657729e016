/**
 * Results of the crypto layer. Like `Decoded<T>` (core/errors.ts) every failure carries a text for
 * people, and in addition a stable `code` for programs (metrics labels, tests, log fields).
 * Nothing in src/crypto throws on bad input: a decoder, a verifier or a decryption returns one of
 * these. (Programming errors, such as sealing more than the record limit, do throw.)
 */
export interface Failure<C extends string> {
  readonly ok: false;
  readonly code: C;
  readonly error: string;
}

export interface Success<T> {
  readonly ok: true;
  readonly value: T;
}

export type Result<T, C extends string> = Success<T> | Failure<C>;

export function ok<T>(value: T): Success<T> {
  return { ok: true, value };
}

export function fail<C extends string>(code: C, error: string): Failure<C> {
  return { ok: false, code, error };
}

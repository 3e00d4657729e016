/**
 * Key and certificate commands:
 *
 *   skein keygen --out FILE                 a node key (FILE, mode 0600) and its public half (FILE.pub)
 *   skein keygen --network --out FILE       a network key: 32 random bytes as 64 hex characters (0600)
 *   skein ca init --out DIR-or-FILE         a network CA: DIR/ca.key (0600) and DIR/ca.pub, or FILE and FILE.pub
 *   skein ca sign --ca FILE --node-id N --pubkey FILE [--tags a,b] [--days D] --out FILE
 *                                           a certificate binding NodeId N to that node's key
 *
 * Each prints one JSON line on stdout saying what it wrote. Private keys are never printed and
 * never overwritten (losing one is losing an identity): an existing --out is refused.
 */
import { type Stats, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { systemEntropy } from "../core/entropy.js";
import { parseNodeId } from "../core/node-id.js";
import {
  CERTIFICATE_MAX_TAGS,
  DAY_MS,
  checkCertificateFields,
  decodeCaKeyFile,
  encodeCaKeyFile,
  encodeCaPublicFile,
  encodeCertificateFile,
  fingerprint,
  generateCertificateAuthority,
  isoTime,
  signCertificate,
} from "../crypto/certificate.js";
import { decodePublicKeyFile, encodeKeyFile, encodePublicKeyFile, formatNetworkKey, generateIdentity, generateNetworkKey, networkKeyId } from "../crypto/identity.js";
import { toHex } from "../crypto/primitives.js";
import { CliFailure, UsageError, errorMessage } from "./errors.js";
import { parseIntegerFlag } from "./values.js";

/** Certificates start this long before they are signed, so a peer whose clock is a little behind accepts them. */
export const CERT_BACKDATE_MS = 5 * 60_000;
export const CERT_DEFAULT_DAYS = 365;
export const CERT_MAX_DAYS = 36_500;
const PRIVATE_MODE = 0o600;
const PUBLIC_MODE = 0o644;

export interface KeygenFlags {
  out?: string;
  network?: boolean;
}

export interface CaInitFlags {
  out?: string;
}

export interface CaSignFlags {
  ca?: string;
  nodeId?: string;
  pubkey?: string;
  tags?: string;
  days?: string;
  out?: string;
}

export interface KeysIo {
  stdout: (text: string) => void;
  /** Wall-clock ms since the Unix epoch (certificate validity). */
  now: () => number;
}

function requireOut(out: string | undefined, what: string): string {
  if (out === undefined || out.trim() === "") throw new UsageError(`missing --out: expected the file to write ${what} to`);
  return out;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Writes a new file; refuses to replace one (keys are not something to overwrite by accident). */
function writeNew(path: string, contents: string, mode: number, flag: string): void {
  try {
    writeFileSync(path, contents, { mode, flag: "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new CliFailure(`refusing to overwrite "${path}" (${flag}): it already exists; move it away or choose another path`, "FILE_EXISTS");
    const reason = code === "ENOENT" ? "its directory does not exist" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : errorMessage(error);
    throw new CliFailure(`cannot write "${path}" (${flag}): ${reason}`, "WRITE_FAILED");
  }
}

function readText(path: string, flag: string, expected: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : errorMessage(error);
    throw new UsageError(`cannot read ${flag} file "${path}": ${reason}; expected ${expected}`, "BAD_FILE");
  }
}

/** Neither FILE nor FILE.pub may exist: check both before writing either. */
function refuseExisting(paths: string[], flag: string): void {
  for (const path of paths) {
    if (statOrUndefined(path) !== undefined) throw new CliFailure(`refusing to overwrite "${path}" (${flag}): it already exists; move it away or choose another path`, "FILE_EXISTS");
  }
}

export function runKeygen(flags: KeygenFlags, io: KeysIo): number {
  if (flags.network === true) {
    const out = requireOut(flags.out, "the network key");
    refuseExisting([out], "--out");
    const key = generateNetworkKey(systemEntropy);
    writeNew(out, formatNetworkKey(key), PRIVATE_MODE, "--out");
    io.stdout(`${JSON.stringify({ event: "network_key_written", file: out, network_key_id: networkKeyId(key) })}\n`);
    return 0;
  }
  const out = requireOut(flags.out, "the node key");
  const publicFile = `${out}.pub`;
  refuseExisting([out, publicFile], "--out");
  const identity = generateIdentity(systemEntropy);
  writeNew(out, encodeKeyFile(identity), PRIVATE_MODE, "--out");
  writeNew(publicFile, encodePublicKeyFile(identity), PUBLIC_MODE, "--out");
  io.stdout(
    `${JSON.stringify({
      event: "node_key_written",
      file: out,
      public_file: publicFile,
      derived_node_id: identity.derivedNodeId,
      ed25519_public: toHex(identity.signing.publicKey),
    })}\n`,
  );
  return 0;
}

export function runCaInit(flags: CaInitFlags, io: KeysIo): number {
  const out = requireOut(flags.out, "the CA key");
  const existing = statOrUndefined(out);
  let keyFile = out;
  if (existing?.isDirectory() === true || out.endsWith("/")) {
    if (existing === undefined) {
      try {
        mkdirSync(out, { recursive: true, mode: 0o700 });
      } catch (error) {
        throw new CliFailure(`cannot create directory "${out}" (--out): ${errorMessage(error)}`, "WRITE_FAILED");
      }
    }
    keyFile = join(out, "ca.key");
  }
  const publicFile = keyFile.endsWith(".key") ? `${keyFile.slice(0, -4)}.pub` : `${keyFile}.pub`;
  refuseExisting([keyFile, publicFile], "--out");
  const ca = generateCertificateAuthority(systemEntropy);
  writeNew(keyFile, encodeCaKeyFile(ca), PRIVATE_MODE, "--out");
  writeNew(publicFile, encodeCaPublicFile(ca), PUBLIC_MODE, "--out");
  io.stdout(`${JSON.stringify({ event: "ca_written", file: keyFile, public_file: publicFile, ca_public_key: toHex(ca.publicKey) })}\n`);
  return 0;
}

export function parseTags(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const tags = raw
    .split(",")
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
  if (tags.length > CERTIFICATE_MAX_TAGS) throw new UsageError(`bad --tags value ${JSON.stringify(raw)}: ${tags.length} tags, at most ${CERTIFICATE_MAX_TAGS}`);
  for (const tag of tags) {
    if (!/^[A-Za-z0-9._:/-]{1,32}$/.test(tag)) {
      throw new UsageError(`bad --tags value ${JSON.stringify(raw)}: tag ${JSON.stringify(tag)} must be 1-32 characters from A-Z a-z 0-9 . _ : / -`);
    }
  }
  return tags;
}

export function runCaSign(flags: CaSignFlags, io: KeysIo): number {
  if (flags.ca === undefined) throw new UsageError("missing --ca: expected the CA key file (ca.key, from skein ca init)");
  if (flags.nodeId === undefined) throw new UsageError("missing --node-id: expected the NodeId to certify, an integer in 1..4294967295");
  if (flags.pubkey === undefined) throw new UsageError("missing --pubkey: expected the node's public key file (FILE.pub, from skein keygen)");
  const out = requireOut(flags.out, "the certificate");
  const nodeId = parseNodeId(flags.nodeId.trim());
  if (nodeId === undefined) throw new UsageError(`bad --node-id value ${JSON.stringify(flags.nodeId)}: expected an integer in 1..4294967295`);
  const tags = parseTags(flags.tags);
  const days = parseIntegerFlag("--days", flags.days, 1, CERT_MAX_DAYS) ?? CERT_DEFAULT_DAYS;

  const caText = readText(flags.ca, "--ca", "a CA key file (ca.key, from skein ca init)");
  const ca = decodeCaKeyFile(caText);
  if (!ca.ok) {
    const hint = /"skein-ca-public-key"/.test(ca.error) ? " (signing needs the CA's private key file, ca.key, not ca.pub)" : "";
    throw new UsageError(`bad --ca file "${flags.ca}": ${ca.error}${hint}`, "BAD_FILE");
  }
  const publicText = readText(flags.pubkey, "--pubkey", "a node public key file (FILE.pub, from skein keygen)");
  const node = decodePublicKeyFile(publicText);
  if (!node.ok) throw new UsageError(`bad --pubkey file "${flags.pubkey}": ${node.error}`, "BAD_FILE");

  const now = io.now();
  const fields = { nodeId, publicKey: node.value.signingKey, tags, notBefore: Math.max(0, now - CERT_BACKDATE_MS), notAfter: now + days * DAY_MS };
  const problem = checkCertificateFields(fields);
  if (problem !== undefined) throw new UsageError(`cannot certify: ${problem}`);
  const certificate = signCertificate(ca.value, fields);
  try {
    writeFileSync(out, encodeCertificateFile(certificate), { mode: PUBLIC_MODE });
  } catch (error) {
    throw new CliFailure(`cannot write "${out}" (--out): ${errorMessage(error)}`, "WRITE_FAILED");
  }
  io.stdout(
    `${JSON.stringify({
      event: "certificate_written",
      file: out,
      node_id: nodeId,
      node_key: fingerprint(node.value.signingKey),
      tags,
      not_before: isoTime(fields.notBefore),
      not_after: isoTime(fields.notAfter),
      ca: fingerprint(ca.value.publicKey),
    })}\n`,
  );
  return 0;
}

/** The commander wiring of `skein keygen` and `skein ca`, registered by main.ts. */
export function registerKeyCommands(program: Command, io: KeysIo): void {
  program
    .command("keygen")
    .description("write a new node key (FILE, mode 0600, and FILE.pub), or with --network a network key")
    .option("--out <FILE>", "the file to write (required); never overwritten")
    .option("--network", "write a network key (32 random bytes as 64 hex characters) for skein node --network-key")
    .action((flags: KeygenFlags) => {
      runKeygen(flags, io);
    });
  const ca = program.command("ca").description("a network certificate authority: create one, sign node certificates");
  ca.command("init")
    .description("write a new CA key: DIR/ca.key (mode 0600) and DIR/ca.pub, or FILE and FILE.pub")
    .option("--out <DIR-or-FILE>", "an existing directory (or a path ending in /), or the key file to write (required)")
    .action((flags: CaInitFlags) => {
      runCaInit(flags, io);
    });
  ca.command("sign")
    .description("issue a certificate binding a NodeId to a node's public key")
    .option("--ca <FILE>", "the CA key file (ca.key) (required)")
    .option("--node-id <N>", "the NodeId to certify, 1..4294967295 (required)")
    .option("--pubkey <FILE>", "the node's public key file (FILE.pub from skein keygen) (required)")
    .option("--tags <a,b>", `comma-separated tags, at most ${CERTIFICATE_MAX_TAGS}; the node's discovery tags (--local-tags) are those of them made of a-z 0-9 . _ -`)
    .option("--days <D>", `validity in days, 1..${CERT_MAX_DAYS} (default ${CERT_DEFAULT_DAYS})`)
    .option("--out <FILE>", "the certificate file to write (required)")
    .action((flags: CaSignFlags) => {
      runCaSign(flags, io);
    });
}

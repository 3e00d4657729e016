/**
 * `skein keygen` and `skein ca` as real processes (node dist/src/cli/main.js …): files, modes,
 * one JSON line on stdout, and one `skein: …` line on stderr for every mistake.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeCaPublicFile, decodeCertificateFile, verifyCertificate } from "../../src/crypto/certificate.js";
import { decodeKeyFile, decodePublicKeyFile, parseNetworkKey } from "../../src/crypto/identity.js";
import { toHex } from "../../src/crypto/primitives.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("SKEIN_")) env[key] = value;
  return env;
}

function skein(args: string[], cwd: string): Promise<Outcome> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`skein ${args.join(" ")} did not exit; stderr: ${stderr}`));
    }, 20_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function oneLine(outcome: Outcome): string {
  const lines = outcome.stderr.split("\n").filter((line) => line.length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got: ${outcome.stderr}`);
  assert.match(lines[0]!, /^skein: /);
  return lines[0]!;
}

const mode = (file: string): number => statSync(file).mode & 0o777;

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "skein-keys-test-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("skein keygen and skein ca", () => {
  it("keygen writes a 0600 key file and its public file, and never overwrites", async () => {
    const result = await skein(["keygen", "--out", "node.key"], dir);
    assert.equal(result.code, 0, result.stderr);
    const line = JSON.parse(result.stdout) as { event: string; file: string; public_file: string; derived_node_id: number; ed25519_public: string };
    assert.equal(line.event, "node_key_written");
    assert.equal(mode(path.join(dir, "node.key")), 0o600);
    const identity = decodeKeyFile(readFileSync(path.join(dir, "node.key"), "utf8"));
    assert.ok(identity.ok);
    assert.equal(identity.value.derivedNodeId, line.derived_node_id);
    assert.equal(toHex(identity.value.signing.publicKey), line.ed25519_public);
    const publicKey = decodePublicKeyFile(readFileSync(path.join(dir, "node.key.pub"), "utf8"));
    assert.ok(publicKey.ok);
    assert.doesNotMatch(readFileSync(path.join(dir, "node.key.pub"), "utf8"), /private/);
    assert.ok(!result.stdout.includes(toHex(identity.value.signing.privateKey)), "no private key on stdout");

    const again = await skein(["keygen", "--out", "node.key"], dir);
    assert.equal(again.code, 1);
    assert.equal(oneLine(again), 'skein: refusing to overwrite "node.key" (--out): it already exists; move it away or choose another path');
    assert.equal(toHex((decodeKeyFile(readFileSync(path.join(dir, "node.key"), "utf8")) as { value: { signing: { privateKey: Uint8Array } } }).value.signing.privateKey), toHex(identity.value.signing.privateKey));
  });

  it("keygen --network writes 64 hex characters, mode 0600", async () => {
    const result = await skein(["keygen", "--network", "--out", "network.key"], dir);
    assert.equal(result.code, 0, result.stderr);
    const text = readFileSync(path.join(dir, "network.key"), "utf8");
    assert.match(text, /^[0-9a-f]{64}\n$/);
    assert.ok(parseNetworkKey(text).ok);
    assert.equal(mode(path.join(dir, "network.key")), 0o600);
    assert.match(result.stdout, /"network_key_id":"[0-9a-f]{16}"/);
    assert.ok(!result.stdout.includes(text.trim()), "the key itself is not printed");
  });

  it("ca init into a directory, ca sign, and the certificate verifies against ca.pub", async () => {
    assert.equal((await skein(["keygen", "--out", "n7.key"], dir)).code, 0);
    const init = await skein(["ca", "init", "--out", "ca/"], dir);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(mode(path.join(dir, "ca", "ca.key")), 0o600);
    const sign = await skein(["ca", "sign", "--ca", "ca/ca.key", "--node-id", "7", "--pubkey", "n7.key.pub", "--tags", "eu,relay", "--days", "10", "--out", "n7.cert"], dir);
    assert.equal(sign.code, 0, sign.stderr);
    const line = JSON.parse(sign.stdout) as { node_id: number; tags: string[]; not_after: string };
    assert.equal(line.node_id, 7);
    assert.deepEqual(line.tags, ["eu", "relay"]);
    const caPublic = decodeCaPublicFile(readFileSync(path.join(dir, "ca", "ca.pub"), "utf8"));
    assert.ok(caPublic.ok);
    const cert = decodeCertificateFile(readFileSync(path.join(dir, "n7.cert"), "utf8"));
    assert.ok(cert.ok);
    const nodeKey = decodePublicKeyFile(readFileSync(path.join(dir, "n7.key.pub"), "utf8"));
    assert.ok(nodeKey.ok);
    const now = Date.now();
    assert.ok(verifyCertificate(cert.value, caPublic.value, now, { nodeId: 7, publicKey: nodeKey.value.signingKey }).ok);
    const expired = verifyCertificate(cert.value, caPublic.value, now + 11 * 86_400_000);
    assert.equal(!expired.ok && expired.code, "expired");
    assert.equal(new Date(line.not_after).getTime(), cert.value.notAfter);
  });

  it("ca init to a file name writes FILE and its .pub beside it", async () => {
    const result = await skein(["ca", "init", "--out", "net-ca.key"], dir);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(decodeCaPublicFile(readFileSync(path.join(dir, "net-ca.pub"), "utf8")).ok);
  });

  it("mistakes give one clear line and exit 2", async () => {
    writeFileSync(path.join(dir, "garbage.pub"), "not a key\n");
    const cases: [string[], RegExp][] = [
      [["keygen"], /^skein: missing --out: expected the file to write the node key to$/],
      [["ca", "sign", "--node-id", "7", "--pubkey", "n7.key.pub", "--out", "x.cert"], /^skein: missing --ca: expected the CA key file/],
      [["ca", "sign", "--ca", "ca/ca.pub", "--node-id", "7", "--pubkey", "n7.key.pub", "--out", "x.cert"], /^skein: bad --ca file "ca\/ca\.pub": a "skein-ca-public-key" file; expected a CA key file .*not ca\.pub\)$/],
      [["ca", "sign", "--ca", "ca/ca.key", "--node-id", "0", "--pubkey", "n7.key.pub", "--out", "x.cert"], /^skein: bad --node-id value "0": expected an integer in 1\.\.4294967295$/],
      [["ca", "sign", "--ca", "ca/ca.key", "--node-id", "7", "--pubkey", "nope.pub", "--out", "x.cert"], /^skein: cannot read --pubkey file "nope\.pub": no such file; expected a node public key file/],
      [["ca", "sign", "--ca", "ca/ca.key", "--node-id", "7", "--pubkey", "garbage.pub", "--out", "x.cert"], /^skein: bad --pubkey file "garbage\.pub": not JSON; expected a node public key file/],
      [["ca", "sign", "--ca", "ca/ca.key", "--node-id", "7", "--pubkey", "n7.key.pub", "--tags", "ok,not ok", "--out", "x.cert"], /^skein: bad --tags value "ok,not ok": tag "not ok" must be/],
      [["ca", "sign", "--ca", "ca/ca.key", "--node-id", "7", "--pubkey", "n7.key.pub", "--days", "0", "--out", "x.cert"], /^skein: bad --days value "0": expected an integer in 1\.\.36500$/],
      [["keygen", "--ot", "x"], /^skein: unknown option '--ot' .*; see "skein keygen --help"$/],
    ];
    for (const [args, expected] of cases) {
      const result = await skein(args, dir);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(oneLine(result), expected);
      assert.equal(result.stdout, "");
    }
  });
});

/**
 * The runtime's side of security: loads the node key (or creates and keeps one in the data
 * directory), the network key, the CA public key and the node's certificate, and checks the
 * node's own credentials before it starts (a node with an expired certificate refuses to start,
 * saying why). Errors are SkeinError BAD_OPTION naming the file and what to do.
 */
import { mkdir, readFile, writeFile, chmod } from "node:fs/promises";
import path from "node:path";
import { systemEntropy } from "../core/entropy.js";
import { SkeinError } from "../core/errors.js";
import type { NodeId } from "../core/node-id.js";
import { type Certificate, decodeCaPublicFile, decodeCertificateFile, fingerprint, verifyCertificate } from "../crypto/certificate.js";
import { type NodeIdentity, type TrustPolicy, decodeKeyFile, encodeKeyFile, encodePublicKeyFile, generateIdentity, networkKeyId, parseNetworkKey } from "../crypto/identity.js";

export const NODE_KEY_FILE = "node.key";

export interface LoadedSecurity {
  identity: NodeIdentity;
  /** The NodeId when none is given: the certificate's in CA mode, else the one derived from the key. */
  defaultNodeId: NodeId;
  networkKey: Uint8Array | undefined;
  certificate: Uint8Array | undefined;
  parsedCertificate: Certificate | undefined;
  trust: TrustPolicy;
  /** Lines for the start-up log (key created, network key id, CA). */
  notices: string[];
}

function bad(message: string): SkeinError {
  return new SkeinError("BAD_OPTION", message);
}

async function readText(file: string, what: string, hint: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw bad(`cannot read ${what} ${file} (${code}); ${hint}`);
  }
}

export async function loadSecurity(options: {
  key: string | undefined;
  dataDir: string | undefined;
  networkKey: string | undefined;
  ca: string | undefined;
  cert: string | undefined;
}): Promise<LoadedSecurity> {
  const notices: string[] = [];
  let identity: NodeIdentity;
  if (options.key !== undefined) {
    const decoded = decodeKeyFile(await readText(options.key, "key file", "create one with skein keygen --out FILE"));
    if (!decoded.ok) throw bad(`bad key file ${options.key}: ${decoded.error}`);
    identity = decoded.value;
  } else if (options.dataDir !== undefined) {
    const file = path.join(options.dataDir, NODE_KEY_FILE);
    let text: string | undefined;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw bad(`cannot read key file ${file} (${(error as NodeJS.ErrnoException).code}); fix its permissions or pass --key FILE`);
    }
    if (text !== undefined) {
      const decoded = decodeKeyFile(text);
      if (!decoded.ok) throw bad(`bad key file ${file}: ${decoded.error}; move it away to create a new identity, or pass --key FILE`);
      identity = decoded.value;
    } else {
      identity = generateIdentity(systemEntropy);
      try {
        await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
        await writeFile(file, encodeKeyFile(identity), { mode: 0o600, flag: "wx" });
        await chmod(file, 0o600);
        await writeFile(`${file}.pub`, encodePublicKeyFile(identity), { mode: 0o644 });
      } catch (error) {
        throw bad(`cannot create key file ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); pass --data-dir DIR or --key FILE`);
      }
      notices.push(`created node key ${file} (NodeId ${identity.derivedNodeId}, key ${fingerprint(identity.signing.publicKey)})`);
    }
  } else {
    identity = generateIdentity(systemEntropy);
  }

  let networkKey: Uint8Array | undefined;
  if (options.networkKey !== undefined) {
    const parsed = parseNetworkKey(await readText(options.networkKey, "network key file", "create one with skein keygen --network --out FILE"));
    if (!parsed.ok) throw bad(`bad network key file ${options.networkKey}: ${parsed.error}`);
    networkKey = parsed.value;
    notices.push(`network key ${networkKeyId(networkKey)} (from ${options.networkKey})`);
  }

  const trust: TrustPolicy = {};
  let certificate: Uint8Array | undefined;
  let parsedCertificate: Certificate | undefined;
  if (options.ca !== undefined && options.cert !== undefined) {
    const ca = decodeCaPublicFile(await readText(options.ca, "CA public key file", "skein ca init writes one (FILE.pub)"));
    if (!ca.ok) throw bad(`bad CA public key file ${options.ca}: ${ca.error}`);
    const cert = decodeCertificateFile(await readText(options.cert, "certificate file", "skein ca sign issues one"));
    if (!cert.ok) throw bad(`bad certificate file ${options.cert}: ${cert.error}`);
    trust.caPublicKey = ca.value;
    certificate = cert.value.bytes;
    parsedCertificate = cert.value;
    notices.push(`network CA ${fingerprint(ca.value)}; certificate for node ${cert.value.nodeId} valid until ${new Date(cert.value.notAfter).toISOString()}`);
  }
  return {
    identity,
    defaultNodeId: parsedCertificate?.nodeId ?? identity.derivedNodeId,
    networkKey,
    certificate,
    parsedCertificate,
    trust,
    notices,
  };
}

/** Checks the node's own certificate (CA mode) for `nodeId` and its key now: the reason it is unusable, or undefined. */
export function checkOwnCredentials(security: LoadedSecurity, nodeId: NodeId): string | undefined {
  const ca = security.trust.caPublicKey;
  if (ca === undefined || security.certificate === undefined) return undefined;
  const verified = verifyCertificate(security.certificate, ca, Date.now(), { nodeId, publicKey: security.identity.signing.publicKey });
  if (!verified.ok) return `this node's certificate cannot be used (${verified.code}): ${verified.error}; have a new one signed with skein ca sign`;
  return undefined;
}

/**
 * Path security for the node engine: everything engine.ts needs to put a SecureChannel
 * (crypto/channel.ts) on each path, kept out of the engine so that it stays readable.
 *
 *  - `PathSecurity.channel()` builds the channel of one path (initiator or responder, stream or
 *    datagram), with the hello data (session, listen addresses) as the handshake extension and
 *    the engine's veto (`acceptPeer`) wired in;
 *  - the NodeId → key table: a second key claiming a NodeId already bound to another key is
 *    refused (HS_REJECT "refused" with the reason, and a warning here);
 *  - abuse limits per remote address: handshake rate (token bucket) and back-off of addresses
 *    whose handshakes keep failing;
 *  - the summary for GET /api/node (`securityInfo`).
 *
 * Pure like the engine: no clock, no I/O; `now` comes in with every call.
 */
import type { Address } from "../core/address.js";
import { SeededEntropy, type Entropy } from "../core/entropy.js";
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import { type Certificate, decodeCertificate, fingerprint } from "../crypto/certificate.js";
import { SecureChannel } from "../crypto/channel.js";
import type { HandshakePeer } from "../crypto/handshake.js";
import { type NodeIdentity, type TrustPolicy, generateIdentity, networkKeyId } from "../crypto/identity.js";
import { bytesEqual } from "../crypto/primitives.js";
import { decodeLinkMessage, encodeLinkMessage } from "../link/messages.js";

/** NodeId → key bindings remembered at most (least recently seen go first). */
export const MAX_KEY_BINDINGS = 4096;
/** A NodeId stays bound to its key this long after the node was last linked or heard of. */
export const KEY_BINDING_HOLD_MS = 10 * 60_000;
/** Handshakes a remote address may start: a burst of this many… */
export const HANDSHAKE_BURST_PER_ADDRESS = 64;
/** …refilled at this rate. */
export const HANDSHAKES_PER_SECOND_PER_ADDRESS = 32;
/** Consecutive failed handshakes from one address before it is backed off. */
export const FAILURES_BEFORE_BACKOFF = 5;
export const FAILURE_BACKOFF_MIN_MS = 1_000;
export const FAILURE_BACKOFF_MAX_MS = 60_000;
/** Remote addresses tracked for limits at most. */
export const MAX_TRACKED_ADDRESSES = 4096;
/** A refused or failed handshake from one address is logged at most this often. */
export const FAILURE_LOG_INTERVAL_MS = 10_000;

/** The security options of an engine (EngineConfig). */
export interface EngineSecurityOptions {
  /** The node's long-term keys. Default: generated from `entropy` (tests and simulations). */
  identity?: NodeIdentity | undefined;
  /**
   * Randomness for handshakes and end-to-end sessions. The runtime passes `systemEntropy`; the
   * default (a SeededEntropy named after the NodeId) is predictable, for tests and the simulator.
   */
  entropy?: Entropy | undefined;
  /** Network admission by pre-shared key (32 bytes). */
  networkKey?: Uint8Array | undefined;
  /** This node's certificate (CA mode; trust.caPublicKey set). */
  certificate?: Uint8Array | undefined;
  trust?: TrustPolicy | undefined;
  /** Wall clock = now + wallClockOffsetMs (certificate validity, end-to-end sessions). */
  wallClockOffsetMs?: number | undefined;
  /**
   * Plaintext frames on every path, no handshake: for benchmarks and a few unit tests only. The
   * CLI and createNode never set it.
   */
  insecure?: boolean | undefined;
}

export type SecurityMode = "open" | "network_key" | "ca" | "insecure";

export interface SecurityInfo {
  mode: SecurityMode;
  nodeIdBinding: "derived" | "certificate" | "claimed";
  signingKey: string;
  staticKey: string;
  networkKeyId: string | undefined;
  caFingerprint: string | undefined;
  certificate: { notBefore: string; notAfter: string; tags: string[] } | undefined;
}

interface AddressLimits {
  tokens: number;
  refilledAt: number;
  failures: number;
  blockedUntil: number;
  lastLoggedAt: number;
}

export interface HelloData {
  session: number;
  addresses: Address[];
}

export class PathSecurity {
  readonly identity: NodeIdentity;
  readonly entropy: Entropy;
  readonly wallClockOffsetMs: number;
  readonly networkKey: Uint8Array | undefined;
  readonly certificate: Uint8Array | undefined;
  readonly trust: TrustPolicy;
  private readonly parsedCertificate: Certificate | undefined;
  private readonly keys = new Map<NodeId, { signingKey: Uint8Array; seenAt: number }>();
  private readonly limits = new Map<string, AddressLimits>();

  constructor(
    private readonly nodeId: NodeId,
    options: EngineSecurityOptions,
    private readonly log: Logger,
  ) {
    this.entropy = options.entropy ?? new SeededEntropy(`skein test node ${nodeId}`);
    this.identity = options.identity ?? generateIdentity(this.entropy);
    this.wallClockOffsetMs = options.wallClockOffsetMs ?? 0;
    this.networkKey = options.networkKey;
    this.certificate = options.certificate;
    this.trust = options.trust ?? {};
    const decoded = options.certificate === undefined ? undefined : decodeCertificate(options.certificate);
    this.parsedCertificate = decoded?.ok ? decoded.value : undefined;
  }

  wallClock(now: number): number {
    return Math.floor(now + this.wallClockOffsetMs);
  }

  /** The channel of one path. `acceptPeer` is the engine's veto (it calls `checkKey` first). */
  channel(
    now: number,
    role: "initiator" | "responder",
    transport: "udp" | "tcp" | "ws",
    hello: HelloData,
    expectedPeer: NodeId | undefined,
    acceptPeer: (peer: HandshakePeer) => string | undefined,
    admitInit?: () => { reason: "full"; detail: string } | undefined,
  ): SecureChannel {
    return new SecureChannel(
      {
        role,
        identity: this.identity,
        nodeId: this.nodeId,
        certificate: this.certificate,
        networkKey: this.networkKey,
        trust: this.trust,
        entropy: this.entropy,
        wallClockOffsetMs: this.wallClockOffsetMs,
        expectedPeer,
        extension: encodeHello(hello),
        acceptPeer,
        admitInit,
        transport: transport === "udp" ? "datagram" : "stream",
      },
      now,
    );
  }

  // ─── NodeId ↔ key ───────────────────────────────────────────────────────────────────────────

  /** A reason to refuse `peer` when its NodeId is bound to another key, else undefined. */
  checkKey(now: number, peer: HandshakePeer): string | undefined {
    if (peer.nodeId === this.nodeId) return `node id ${peer.nodeId} is this node's own id`;
    const bound = this.keys.get(peer.nodeId);
    if (bound === undefined || bytesEqual(bound.signingKey, peer.signingKey)) return undefined;
    if (now - bound.seenAt > KEY_BINDING_HOLD_MS) return undefined;
    const why = `node ${peer.nodeId} is bound to key ${fingerprint(bound.signingKey)}, not ${fingerprint(peer.signingKey)}`;
    this.log.warn({ peer: peer.nodeId, boundKey: fingerprint(bound.signingKey), offeredKey: fingerprint(peer.signingKey) }, `refused a second key for node ${peer.nodeId}: ${why}`);
    return why;
  }

  /** Binds (or refreshes) a NodeId to the key it authenticated with. */
  bindKey(now: number, nodeId: NodeId, signingKey: Uint8Array): void {
    const existing = this.keys.get(nodeId);
    if (existing !== undefined) this.keys.delete(nodeId);
    while (this.keys.size >= MAX_KEY_BINDINGS) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(nodeId, { signingKey: existing !== undefined && bytesEqual(existing.signingKey, signingKey) ? existing.signingKey : Uint8Array.from(signingKey), seenAt: now });
  }

  /** Keeps a binding alive (the node is linked). */
  touchKey(now: number, nodeId: NodeId): void {
    const bound = this.keys.get(nodeId);
    if (bound !== undefined) bound.seenAt = now;
  }

  // ─── Limits per remote address ──────────────────────────────────────────────────────────────

  /**
   * May `address` start a handshake now? Returns a metrics reason ("handshake_rate",
   * "handshake_backoff") to refuse it, else undefined (and takes a token).
   */
  admit(now: number, address: Address): string | undefined {
    const limits = this.limitsOf(now, address);
    if (now < limits.blockedUntil) return "handshake_backoff";
    limits.tokens = Math.min(HANDSHAKE_BURST_PER_ADDRESS, limits.tokens + ((now - limits.refilledAt) * HANDSHAKES_PER_SECOND_PER_ADDRESS) / 1000);
    limits.refilledAt = now;
    if (limits.tokens < 1) return "handshake_rate";
    limits.tokens -= 1;
    return undefined;
  }

  /**
   * A handshake with `address` failed (`inbound`: one it started, which counts toward its
   * back-off). Returns true when it should be logged (at most once per FAILURE_LOG_INTERVAL_MS).
   */
  failed(now: number, address: Address, inbound: boolean): boolean {
    const limits = this.limitsOf(now, address);
    if (inbound) limits.failures += 1;
    if (inbound && limits.failures >= FAILURES_BEFORE_BACKOFF) {
      const backoff = Math.min(FAILURE_BACKOFF_MAX_MS, FAILURE_BACKOFF_MIN_MS * 2 ** Math.min(limits.failures - FAILURES_BEFORE_BACKOFF, 16));
      limits.blockedUntil = now + backoff;
    }
    if (now - limits.lastLoggedAt < FAILURE_LOG_INTERVAL_MS) return false;
    limits.lastLoggedAt = now;
    return true;
  }

  succeeded(address: Address): void {
    const limits = this.limits.get(limitKey(address));
    if (limits !== undefined) {
      limits.failures = 0;
      limits.blockedUntil = 0;
    }
  }

  private limitsOf(now: number, address: Address): AddressLimits {
    const key = limitKey(address);
    let limits = this.limits.get(key);
    if (limits === undefined) {
      while (this.limits.size >= MAX_TRACKED_ADDRESSES) this.limits.delete(this.limits.keys().next().value!);
      limits = { tokens: HANDSHAKE_BURST_PER_ADDRESS, refilledAt: now, failures: 0, blockedUntil: 0, lastLoggedAt: -Infinity };
      this.limits.set(key, limits);
    }
    return limits;
  }

  // ─── Views ──────────────────────────────────────────────────────────────────────────────────

  info(insecure: boolean): SecurityInfo {
    const certificate = this.parsedCertificate;
    return {
      mode: insecure ? "insecure" : this.trust.caPublicKey !== undefined ? "ca" : this.networkKey !== undefined ? "network_key" : "open",
      nodeIdBinding: certificate !== undefined && this.trust.caPublicKey !== undefined ? "certificate" : this.identity.derivedNodeId === this.nodeId ? "derived" : "claimed",
      signingKey: fingerprint(this.identity.signing.publicKey),
      staticKey: fingerprint(this.identity.dh.publicKey),
      networkKeyId: this.networkKey === undefined ? undefined : networkKeyId(this.networkKey),
      caFingerprint: this.trust.caPublicKey === undefined ? undefined : fingerprint(this.trust.caPublicKey),
      certificate:
        certificate === undefined
          ? undefined
          : { notBefore: new Date(certificate.notBefore).toISOString(), notAfter: new Date(certificate.notAfter).toISOString(), tags: [...certificate.tags] },
    };
  }
}

/**
 * UDP paths are one remote address each; TCP connections come from ephemeral ports, so their
 * limits go by host.
 */
function limitKey(address: Address): string {
  return address.transport === "udp" ? `udp/${address.host}/${address.port}` : `${address.transport}/${address.host}`;
}

/** The hello data, as the link layer's own hello message (link/messages.ts), in the handshake extension. */
export function encodeHello(hello: HelloData): Uint8Array {
  return encodeLinkMessage({ type: "hello", session: hello.session, addresses: hello.addresses });
}

export function decodeHello(extension: Uint8Array): HelloData | undefined {
  const decoded = decodeLinkMessage(extension);
  if (!decoded.ok || decoded.value.type !== "hello") return undefined;
  return { session: decoded.value.session, addresses: decoded.value.addresses };
}

/**
 * End-to-end protection of routed unicast frames for the node engine: crypto/e2e.ts applied at the
 * engine's send and deliver points, kept out of engine.ts like secure-paths.ts.
 *
 * The rule (docs/protocol.md, "End-to-end protection"):
 *
 *  - A ROUTED frame that leaves its source through a relay (next hop ≠ destination) carries a
 *    sealed payload and the SEALED header flag: only the destination can open it, and the tag
 *    covers the header (TTL excepted), so a relay can neither read, alter, nor forge its source.
 *  - A ROUTED frame sent straight to its destination over their link is not sealed again: the link
 *    record already authenticates exactly that pair of nodes and no relay ever holds it. The
 *    destination accepts an unsealed frame only when its source is the authenticated neighbour it
 *    arrived from; one that claims another source was relayed unsealed, and is dropped.
 *  - Routing reports and probes (module 3) and the key exchange below (module 1) stay unsealed:
 *    relays must read trace probes, and the key exchange is what makes sealing possible.
 *
 * Keys. Neighbours' static keys come from the link handshake. For any other node the sender asks:
 * a KEY_REQUEST (a ROUTED frame of module 1, unsealed) carries the sender's signed identity record
 * (crypto/identity.ts), so the destination learns the sender's key from it, and the destination
 * answers with a KEY_REPLY carrying its own record. Frames for a node whose key is not known yet
 * wait in a bounded queue (in order) and leave sealed when the reply arrives; the request is
 * repeated every E2E_KEY_RETRY_MS, E2E_KEY_ATTEMPTS times, then the queue is dropped and counted.
 * Records are self-signed and checked against the NodeId binding (derived, or a CA certificate),
 * so a relay cannot substitute a key for such a node. A NodeId merely claimed (--node-id without a
 * CA) is first come, first served: see docs/security.md.
 *
 * Pure like the engine: no clock, no I/O; `now` comes in with every call.
 */
import type { Logger } from "../core/log.js";
import type { NodeId } from "../core/node-id.js";
import { E2E_OVERHEAD_BYTES, type E2eErrorCode, EndToEnd } from "../crypto/e2e.js";
import type { HandshakePeer } from "../crypto/handshake.js";
import { type NodeIdentity, type TrustPolicy, encodeIdentityRecord, verifyIdentityRecord } from "../crypto/identity.js";
import { fingerprint } from "../crypto/certificate.js";
import { bytesEqual } from "../crypto/primitives.js";
import type { Entropy } from "../core/entropy.js";
import type { FrameHeader } from "../wire/frame.js";

/** A key request unanswered this long is sent again… */
export const E2E_KEY_RETRY_MS = 1_000;
/** …at most this many times in all; then the frames waiting for the key are dropped. */
export const E2E_KEY_ATTEMPTS = 4;
/** Frames (and bytes) waiting for one destination's key at most; beyond, sends fail with BACKPRESSURE. */
export const E2E_PENDING_MAX_FRAMES = 1024;
export const E2E_PENDING_MAX_BYTES = 4 * 1024 * 1024;
/** Destinations with a key request in flight at most. */
export const E2E_PENDING_MAX_DESTINATIONS = 256;
/** A node's key requests are answered at most this often (each answer costs a signature check). */
export const E2E_ANSWER_INTERVAL_MS = 250;
/** Nodes whose answer times are remembered at most. */
const MAX_ANSWER_TIMES = 4096;

/** Key exchange message types (module 1 in ROUTED frames): u8 type || identity record. */
export const KeyMessageType = {
  Request: 1,
  Reply: 2,
} as const;

export interface EndToEndStats {
  /** ROUTED frames this node sealed for a destination behind a relay. */
  sealed: number;
  /** Sealed frames for this node that authenticated. */
  opened: number;
  /** Frames relayed for others with a sealed payload (opaque here) and without one (key exchange, routing). */
  forwardedSealed: number;
  forwardedClear: number;
  keyRequestsSent: number;
  keyRepliesSent: number;
  /** Static keys learnt from identity records (key exchange), and from link handshakes. */
  keysFromRecords: number;
  keysFromHandshakes: number;
  /** Frames waiting for a destination's key now. */
  pendingFrames: number;
}

export interface PendingFrame {
  module: number;
  payload: Uint8Array;
  reliable: boolean;
  ttl: number;
}

export type EndToEndOutput =
  /** Send a key exchange message (unsealed ROUTED frame, module 1) to `destination`. */
  | { kind: "send_key"; destination: NodeId; payload: Uint8Array }
  /** The key of `destination` arrived: send these frames, in order. */
  | { kind: "release"; destination: NodeId; frames: PendingFrame[] }
  /** Frames given up on (no key in time), for the drop counters. */
  | { kind: "dropped"; reason: string; count: number };

interface KeyEntry {
  signingKey: Uint8Array;
  /** Where the key came from: a link handshake, or a record with a derived/certificate or a claimed binding. */
  origin: "handshake" | "bound" | "claimed";
  issuedAt: number;
  /** The record bytes last verified for this node: the same bytes again are not re-verified. */
  record: Uint8Array | undefined;
}

interface PendingDestination {
  frames: PendingFrame[];
  bytes: number;
  attempts: number;
  nextRequestAt: number;
}

export interface EndToEndPathsOptions {
  nodeId: NodeId;
  identity: NodeIdentity;
  entropy: Entropy;
  certificate: Uint8Array | undefined;
  trust: TrustPolicy;
  /** Wall-clock ms since the Unix epoch at engine time `now`. */
  wallClock: (now: number) => number;
  log: Logger;
}

export class EndToEndPaths {
  private endToEnd: EndToEnd | undefined;
  private ownRecord: Uint8Array | undefined;
  private readonly keys = new Map<NodeId, KeyEntry>();
  private readonly pending = new Map<NodeId, PendingDestination>();
  private readonly answeredAt = new Map<NodeId, number>();
  private readonly outputs: EndToEndOutput[] = [];
  readonly stats: EndToEndStats = {
    sealed: 0,
    opened: 0,
    forwardedSealed: 0,
    forwardedClear: 0,
    keyRequestsSent: 0,
    keyRepliesSent: 0,
    keysFromRecords: 0,
    keysFromHandshakes: 0,
    pendingFrames: 0,
  };

  constructor(private readonly options: EndToEndPathsOptions) {}

  /**
   * The sealing state, made at first use: its session is the wall-clock time then (a restarted
   * node starts a newer session, so receivers can tell its messages from replays of the old one).
   */
  private state(now: number): EndToEnd {
    if (this.endToEnd === undefined) {
      const startedAtMs = Math.max(0, this.options.wallClock(now));
      this.endToEnd = new EndToEnd({ identity: this.options.identity, nodeId: this.options.nodeId, entropy: this.options.entropy, startedAtMs });
      this.ownRecord = encodeIdentityRecord(this.options.identity, this.options.nodeId, startedAtMs, this.options.certificate);
    }
    return this.endToEnd;
  }

  /** A neighbour authenticated in a link handshake: its static key is known for certain. */
  learnFromHandshake(now: number, peer: HandshakePeer): void {
    const existing = this.keys.get(peer.nodeId);
    if (existing !== undefined && existing.origin === "handshake" && bytesEqual(existing.signingKey, peer.signingKey)) {
      this.state(now).setPeerKey(peer.nodeId, peer.staticKey);
      return;
    }
    if (!this.state(now).setPeerKey(peer.nodeId, peer.staticKey)) return;
    this.remember(peer.nodeId, { signingKey: Uint8Array.from(peer.signingKey), origin: "handshake", issuedAt: 0, record: undefined });
    this.stats.keysFromHandshakes += 1;
    this.release(peer.nodeId);
  }

  hasKey(nodeId: NodeId): boolean {
    return this.endToEnd?.hasPeerKey(nodeId) === true;
  }

  /**
   * Seals a frame's payload for `header.destination` (whose key must be known: `hasKey`). The
   * header's flags must already include SEALED: the tag covers them.
   */
  seal(now: number, header: { kind: FrameHeader["kind"]; flags: number; source: NodeId; destination: NodeId; module: number }, payload: Uint8Array): Uint8Array | undefined {
    const sealed = this.state(now).seal(header, payload);
    if (!sealed.ok) return undefined;
    this.stats.sealed += 1;
    return sealed.value;
  }

  /**
   * Holds a frame until `destination`'s key arrives, asking for it. Returns false when the queue is
   * full (the caller reports BACKPRESSURE).
   */
  hold(now: number, destination: NodeId, frame: PendingFrame): boolean {
    let waiting = this.pending.get(destination);
    if (waiting === undefined) {
      if (this.pending.size >= E2E_PENDING_MAX_DESTINATIONS) return false;
      waiting = { frames: [], bytes: 0, attempts: 0, nextRequestAt: now };
      this.pending.set(destination, waiting);
    }
    if (waiting.frames.length >= E2E_PENDING_MAX_FRAMES || waiting.bytes + frame.payload.byteLength > E2E_PENDING_MAX_BYTES) return false;
    // The caller may reuse its buffer once send returns: a held frame keeps its own copy.
    waiting.frames.push({ ...frame, payload: Uint8Array.from(frame.payload) });
    waiting.bytes += frame.payload.byteLength;
    this.stats.pendingFrames += 1;
    if (waiting.attempts === 0) this.request(now, destination, waiting);
    return true;
  }

  /** Opens a sealed payload addressed to this node; a failure names the drop reason. */
  open(now: number, header: FrameHeader, payload: Uint8Array): { ok: true; payload: Uint8Array } | { ok: false; code: E2eErrorCode; error: string } {
    const opened = this.state(now).open(header, payload);
    if (!opened.ok) {
      // We may have lost the source's key (restart, or forgotten), or it may hold an old key of
      // ours: a key request (with our current record) sets both sides straight.
      if (opened.code === "unknown_key" || opened.code === "auth") this.requestUnprompted(now, header.source);
      return { ok: false, code: opened.code, error: opened.error };
    }
    this.stats.opened += 1;
    const value = opened.value;
    return { ok: true, payload: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
  }

  /**
   * A key exchange message (ROUTED, module 1) from `source`. Returns an error text when it is
   * malformed or its record does not verify (the caller counts and logs it).
   */
  onKeyMessage(now: number, source: NodeId, payload: Uint8Array): string | undefined {
    const type = payload[0];
    if (payload.byteLength < 2 || (type !== KeyMessageType.Request && type !== KeyMessageType.Reply)) return "malformed key exchange message";
    const record = payload.subarray(1);
    const error = this.learnFromRecord(now, source, record);
    if (error !== undefined) return error;
    if (type === KeyMessageType.Request) {
      const last = this.answeredAt.get(source);
      if (last === undefined || now - last >= E2E_ANSWER_INTERVAL_MS) {
        this.answeredAt.delete(source);
        while (this.answeredAt.size >= MAX_ANSWER_TIMES) this.answeredAt.delete(this.answeredAt.keys().next().value!);
        this.answeredAt.set(source, now);
        this.stats.keyRepliesSent += 1;
        this.outputs.push({ kind: "send_key", destination: source, payload: this.keyMessage(now, KeyMessageType.Reply) });
      }
    }
    return undefined;
  }

  tick(now: number): void {
    for (const [destination, waiting] of this.pending) {
      if (now < waiting.nextRequestAt) continue;
      if (waiting.attempts >= E2E_KEY_ATTEMPTS) {
        this.pending.delete(destination);
        this.stats.pendingFrames -= waiting.frames.length;
        if (waiting.frames.length > 0) {
          this.outputs.push({ kind: "dropped", reason: "e2e_key_timeout", count: waiting.frames.length });
          this.options.log.warn(
            { destination, frames: waiting.frames.length },
            `no end-to-end key from node ${destination} after ${E2E_KEY_ATTEMPTS} requests: ${waiting.frames.length} frame(s) for it dropped`,
          );
        }
        continue;
      }
      this.request(now, destination, waiting);
    }
  }

  nextDeadline(): number {
    let deadline = Infinity;
    for (const waiting of this.pending.values()) deadline = Math.min(deadline, waiting.nextRequestAt);
    return deadline;
  }

  poll(): EndToEndOutput | undefined {
    return this.outputs.shift();
  }

  /** A ROUTED frame relayed for others: opaque (sealed) or in clear. */
  countForwarded(sealed: boolean): void {
    if (sealed) this.stats.forwardedSealed += 1;
    else this.stats.forwardedClear += 1;
  }

  /** Static keys known (diagnostics). */
  knownKeys(): number {
    return this.endToEnd?.peerCount ?? 0;
  }

  // ─── Internals ──────────────────────────────────────────────────────────────────────────────

  private request(now: number, destination: NodeId, waiting: PendingDestination): void {
    waiting.attempts += 1;
    waiting.nextRequestAt = now + E2E_KEY_RETRY_MS;
    this.stats.keyRequestsSent += 1;
    this.outputs.push({ kind: "send_key", destination, payload: this.keyMessage(now, KeyMessageType.Request) });
  }

  /** A key request nobody is waiting on (after a failed open): at most once per retry interval. */
  private requestUnprompted(now: number, source: NodeId): void {
    if (this.pending.has(source) || this.pending.size >= E2E_PENDING_MAX_DESTINATIONS) return;
    // An empty entry: its timer repeats the request like any other, and it expires with nothing to drop.
    this.pending.set(source, { frames: [], bytes: 0, attempts: E2E_KEY_ATTEMPTS - 1, nextRequestAt: now });
    this.request(now, source, this.pending.get(source)!);
  }

  private keyMessage(now: number, type: number): Uint8Array {
    this.state(now);
    const record = this.ownRecord!;
    const message = new Uint8Array(1 + record.byteLength);
    message[0] = type;
    message.set(record, 1);
    return message;
  }

  private learnFromRecord(now: number, source: NodeId, record: Uint8Array): string | undefined {
    const known = this.keys.get(source);
    if (known?.record !== undefined && bytesEqual(known.record, record)) {
      this.release(source);
      return undefined;
    }
    const verified = verifyIdentityRecord(record, this.options.trust, this.options.wallClock(now));
    if (!verified.ok) return `identity record from node ${source}: ${verified.error}`;
    const identity = verified.value;
    if (identity.nodeId !== source) return `identity record for node ${identity.nodeId} sent by node ${source}`;
    const origin = identity.binding === "claimed" ? "claimed" : "bound";
    if (known !== undefined && !bytesEqual(known.signingKey, identity.signingKey)) {
      // A claimed NodeId is first come, first served (as at link handshakes): no record replaces
      // another key for it. A NodeId bound to its key (derived, or by the CA) takes the newer record.
      if (origin === "claimed" || known.origin === "handshake" || identity.issuedAt <= known.issuedAt) {
        return `identity record for node ${source} names key ${fingerprint(identity.signingKey)}, but that node is known with key ${fingerprint(known.signingKey)}`;
      }
    }
    if (!this.state(now).setPeerKey(source, identity.staticKey)) return `identity record for node ${source} has an unusable X25519 key`;
    this.remember(source, { signingKey: Uint8Array.from(identity.signingKey), origin: known?.origin === "handshake" ? "handshake" : origin, issuedAt: identity.issuedAt, record: Uint8Array.from(record) });
    this.stats.keysFromRecords += 1;
    this.release(source);
    return undefined;
  }

  private remember(nodeId: NodeId, entry: KeyEntry): void {
    this.keys.delete(nodeId);
    // Bounded like the sealing state (crypto/e2e.ts E2E_MAX_PEERS), least recently learnt first.
    while (this.keys.size >= 4096) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(nodeId, entry);
  }

  private release(destination: NodeId): void {
    const waiting = this.pending.get(destination);
    if (waiting === undefined) return;
    this.pending.delete(destination);
    this.stats.pendingFrames -= waiting.frames.length;
    if (waiting.frames.length > 0) this.outputs.push({ kind: "release", destination, frames: waiting.frames });
  }
}

/** Sealing adds this many bytes to a payload. */
export const SEALED_OVERHEAD_BYTES = E2E_OVERHEAD_BYTES;


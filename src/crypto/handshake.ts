/**
 * The skein link handshake: Noise XX (open network) or XXpsk3 (network key) carrying identity
 * proofs, as an explicit state machine that never touches a socket or a clock.
 *
 *   initiator                                        responder
 *   ─────────                                        ─────────
 *   start() ── HS_INIT (e, padding) ───────────────▶ checks version, mode and (keyed) the
 *   awaiting_response                                network tag; no DH for a stranger
 *                                                    awaiting_finish
 *            ◀── HS_RESPONSE (e, ee, s, es, identity) ┘
 *   verifies identity, sends
 *   HS_FINISH (s, se, [psk], identity) ─────────────▶ verifies identity
 *   complete                                          complete
 *
 * Any failure ends in `failed` with a stable code, and, where the peer should know why, an
 * HS_REJECT for it (reason code + short detail). Wire formats: units.ts and
 * docs/protocol-security-draft.md; reasoning: README.md in this folder.
 *
 * Network key: the key is mixed into the Noise keys (psk3) and, through a derived tag, into the
 * prologue, so message 1 of a keyed initiator authenticates under the network key: a responder
 * refuses strangers at message 1, before any DH and before revealing anything about itself.
 */
import type { Entropy } from "../core/entropy.js";
import type { NodeId } from "../core/node-id.js";
import { isNodeId } from "../core/node-id.js";
import { CERTIFICATE_MAX_BYTES, fingerprint } from "./certificate.js";
import { type BindingErrorCode, type NodeIdentity, type TrustPolicy, type VerifiedIdentity, bindNodeId, networkKeyId } from "./identity.js";
import { NoiseHandshake, type NoisePattern } from "./noise.js";
import {
  KEY_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  TAG_BYTES,
  bytesEqual,
  concatBytes,
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  utf8,
} from "./primitives.js";
import { UNIT_HEADER_BYTES, UnitType, encodeUnit, readUnit } from "./units.js";

export const HANDSHAKE_VERSION = 1;
/** Every HS_INIT unit is padded to this size, so that a spoofed one cannot make a responder send much more than it received (UDP amplification). */
export const HS_INIT_BYTES = 512;
/** Datagram transports: an unanswered message is sent again this often. */
export const HANDSHAKE_RETRY_MS = 500;
/** A handshake not complete this long after it began has failed. */
export const HANDSHAKE_TIMEOUT_MS = 3000;
/** Bound on the opaque extension (the link layer's hello data) in an identity payload. */
export const HANDSHAKE_EXTENSION_MAX_BYTES = 512;
/** Bound on the detail text of an HS_REJECT. */
export const REJECT_DETAIL_MAX_BYTES = 96;
/** A `full` refusal's detail names other nodes to try (referrals), so it may be longer. */
export const REJECT_FULL_DETAIL_MAX_BYTES = 240;

const PROLOGUE_LABEL = utf8.encode("skein handshake v1\0");
const NETWORK_TAG_INFO = utf8.encode("skein handshake prologue v1");
const IDENTITY_CONTEXT = utf8.encode("skein handshake identity v1\0");
const PAYLOAD_VERSION = 1;
const INIT_PREFIX_BYTES = 3;

export type HandshakeRole = "initiator" | "responder";
export type NetworkMode = "open" | "keyed";

export type HandshakeErrorCode =
  | "malformed"
  | "unexpected"
  | "version"
  | "network_key_required"
  | "open_network"
  | "network_key"
  | "decrypt"
  | "bad_key"
  | "identity_invalid"
  | BindingErrorCode
  | "unexpected_node_id"
  | "self"
  | "refused"
  | "busy"
  /** The responder has its maximum number of neighbours (refused at HS_INIT, before any DH). */
  | "full"
  | "rejected"
  | "timeout";

/** HS_REJECT reason codes (wire values). */
export const RejectReason = {
  malformed: 1,
  version: 2,
  network_key_required: 3,
  open_network: 4,
  network_key: 5,
  decrypt: 6,
  bad_key: 7,
  identity_invalid: 8,
  certificate_missing: 9,
  certificate_malformed: 10,
  certificate_foreign_ca: 11,
  certificate_bad_signature: 12,
  certificate_node_id_mismatch: 13,
  certificate_key_mismatch: 14,
  certificate_not_yet_valid: 15,
  certificate_expired: 16,
  node_id_not_derived: 17,
  unexpected_node_id: 18,
  self: 19,
  refused: 20,
  busy: 21,
  full: 22,
} as const satisfies Partial<Record<HandshakeErrorCode, number>>;
export type RejectReasonName = keyof typeof RejectReason;

/** What the receiver of an HS_REJECT reads in its log. */
const REJECT_TEXT: Record<RejectReasonName, string> = {
  malformed: "our handshake message was malformed",
  version: "it does not speak our handshake version",
  network_key_required: "its network requires a network key (--network-key), and we have none",
  open_network: "it runs an open network (no --network-key), and we use a network key",
  network_key: "our network key is not its network key",
  decrypt: "our handshake message did not decrypt (tampered on the way, or keys differ)",
  bad_key: "our ephemeral or static key was invalid",
  identity_invalid: "our identity proof did not verify",
  certificate_missing: "its network requires a certificate (--cert) and we sent none",
  certificate_malformed: "our certificate is malformed",
  certificate_foreign_ca: "our certificate is from another CA",
  certificate_bad_signature: "our certificate's signature is invalid",
  certificate_node_id_mismatch: "our certificate is for another NodeId",
  certificate_key_mismatch: "our certificate is for another key",
  certificate_not_yet_valid: "our certificate is not valid yet (check clocks)",
  certificate_expired: "our certificate has expired",
  node_id_not_derived: "it accepts only NodeIds derived from keys",
  unexpected_node_id: "we are not the node it meant to reach",
  self: "we are itself (a node connected to its own address)",
  refused: "it refused us",
  busy: "it is busy (too many handshakes in progress)",
  full: "it has its maximum number of neighbours (--max-neighbours)",
};

export interface HandshakeFailure {
  code: HandshakeErrorCode;
  /** One line for the log, saying what happened and what to do. */
  message: string;
  /** For `rejected`: the peer's reason. */
  peerReason?: RejectReasonName | undefined;
  /** For `rejected`: the detail the peer sent (for `full`, its referrals). */
  peerDetail?: string | undefined;
}

export interface HandshakePeer extends VerifiedIdentity {
  /** The peer's opaque extension bytes (the link layer's hello data). */
  extension: Uint8Array;
}

export interface HandshakeResult {
  role: HandshakeRole;
  pattern: NoisePattern;
  /** The final Noise handshake hash: a unique, secret-dependent name of this session. */
  handshakeHash: Uint8Array;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  peer: HandshakePeer;
}

export interface HandshakeConfig {
  role: HandshakeRole;
  identity: NodeIdentity;
  /** The NodeId this node claims. */
  nodeId: NodeId;
  /** This node's certificate (CA mode). */
  certificate?: Uint8Array | undefined;
  /** The network key (32 bytes): XXpsk3 instead of XX. */
  networkKey?: Uint8Array | undefined;
  trust: TrustPolicy;
  entropy: Entropy;
  /** Wall-clock ms since the Unix epoch = now + wallClockOffsetMs (certificate validity). */
  wallClockOffsetMs: number;
  /** The NodeId this side means to reach (from a seed or a peer list); undefined = anyone. */
  expectedPeer?: NodeId | undefined;
  /** Opaque bytes for the peer (≤ HANDSHAKE_EXTENSION_MAX_BYTES), delivered in its result. */
  extension?: Uint8Array | undefined;
  /**
   * Last word on a verified peer (NodeId already bound to another key, this path taken by another node):
   * a reason to refuse it, or undefined to accept. Pure, called synchronously.
   */
  acceptPeer?: ((peer: HandshakePeer) => string | undefined) | undefined;
  /**
   * Responder: may a new handshake go on? Asked once message 1 checked out (in a keyed network,
   * that it authenticates under the network key) and before any DH, so that a refusal costs
   * nothing: a `full` refusal (its detail goes to the initiator, e.g. referrals), or undefined.
   */
  admitInit?: (() => { reason: "full"; detail: string } | undefined) | undefined;
  /** Datagram transports retransmit unanswered messages; stream transports never need to. */
  transport: "stream" | "datagram";
  retryMs?: number | undefined;
  timeoutMs?: number | undefined;
}

export type HandshakeState =
  | { kind: "initial" }
  | { kind: "awaiting_response"; since: number; lastSentAt: number }
  | { kind: "awaiting_finish"; since: number; lastSentAt: number }
  | { kind: "complete"; result: HandshakeResult }
  | { kind: "failed"; failure: HandshakeFailure };

/** What one input produced. */
export interface HandshakeStep {
  /** Units to send, in order. */
  send: Uint8Array[];
  /** Set when the handshake just completed. */
  result?: HandshakeResult | undefined;
  /** Set when the handshake just failed. */
  failure?: HandshakeFailure | undefined;
  /** Set when the input was ignored (a duplicate, a late reject…): why, for debug logs. */
  ignored?: string | undefined;
}

/** The secret tag a network key contributes to the prologue (never logged, never sent). */
export function networkTag(networkKey: Uint8Array): Uint8Array {
  return hkdfSha256(networkKey, new Uint8Array(0), NETWORK_TAG_INFO, KEY_BYTES);
}

function prologue(mode: NetworkMode, networkKey: Uint8Array | undefined): Uint8Array {
  const parts: Uint8Array[] = [PROLOGUE_LABEL, new Uint8Array([HANDSHAKE_VERSION, mode === "keyed" ? 1 : 0])];
  if (networkKey !== undefined) parts.push(networkTag(networkKey));
  return concatBytes(...parts);
}

export class LinkHandshake {
  readonly role: HandshakeRole;
  readonly mode: NetworkMode;
  private readonly config: HandshakeConfig;
  private readonly retryMs: number;
  private readonly timeoutMs: number;
  private noise: NoiseHandshake | undefined;
  private stateValue: HandshakeState = { kind: "initial" };
  /** The last unit we sent, for retransmission and duplicate answers. */
  private lastSent: Uint8Array | undefined;
  /** The last unit we accepted from the peer: an identical copy is answered with `lastSent`. */
  private lastReceived: Uint8Array | undefined;
  /** Wall-clock ms of the input being handled (certificate validity). */
  private wallNow = 0;

  constructor(config: HandshakeConfig) {
    if (config.networkKey !== undefined && config.networkKey.byteLength !== KEY_BYTES) throw new RangeError(`a network key is ${KEY_BYTES} bytes`);
    if (!isNodeId(config.nodeId)) throw new RangeError(`NodeId ${config.nodeId} is not in 1..4294967295`);
    if ((config.extension?.byteLength ?? 0) > HANDSHAKE_EXTENSION_MAX_BYTES) throw new RangeError(`handshake extension over ${HANDSHAKE_EXTENSION_MAX_BYTES} bytes`);
    if ((config.certificate?.byteLength ?? 0) > CERTIFICATE_MAX_BYTES) throw new RangeError("certificate too large");
    this.config = config;
    this.role = config.role;
    this.mode = config.networkKey === undefined ? "open" : "keyed";
    this.retryMs = config.retryMs ?? HANDSHAKE_RETRY_MS;
    this.timeoutMs = config.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  }

  get state(): HandshakeState {
    return this.stateValue;
  }

  get pattern(): NoisePattern {
    return this.mode === "keyed" ? "XXpsk3" : "XX";
  }

  /** The unit type this side waits for next, or undefined (its turn, or finished). */
  get expecting(): UnitType | undefined {
    switch (this.stateValue.kind) {
      case "initial":
        return this.role === "responder" ? UnitType.HandshakeInit : undefined;
      case "awaiting_response":
        return UnitType.HandshakeResponse;
      case "awaiting_finish":
        return UnitType.HandshakeFinish;
      default:
        return undefined;
    }
  }

  /** Our ephemeral public key once message 1 or 2 is written (simultaneous-open tie-break). */
  get ephemeralPublicKey(): Uint8Array | undefined {
    return this.noise?.localEphemeral;
  }

  /** Initiator: message 1. */
  start(now: number): HandshakeStep {
    if (this.role !== "initiator" || this.stateValue.kind !== "initial") throw new Error("start() is for an initiator that has not started");
    this.noise = this.newNoise();
    const paddingBytes = HS_INIT_BYTES - UNIT_HEADER_BYTES - INIT_PREFIX_BYTES - PUBLIC_KEY_BYTES - (this.mode === "keyed" ? TAG_BYTES : 0);
    const message = this.noise.writeMessage(new Uint8Array(paddingBytes));
    if (!message.ok) return this.fail({ code: "bad_key", message: message.error });
    const body = concatBytes(new Uint8Array([HANDSHAKE_VERSION, this.mode === "keyed" ? 1 : 0, 0]), message.value);
    this.stateValue = { kind: "awaiting_response", since: now, lastSentAt: now };
    return { send: [this.remember(encodeUnit(UnitType.HandshakeInit, body))] };
  }

  /** One handshake unit from the peer (HS_INIT, HS_RESPONSE, HS_FINISH or HS_REJECT). */
  receive(now: number, bytes: Uint8Array): HandshakeStep {
    this.wallNow = now + this.config.wallClockOffsetMs;
    const state = this.stateValue;
    if (state.kind === "failed") return { send: [], ignored: "the handshake already failed" };
    const unit = readUnit(bytes);
    if (!unit.ok) return this.refuse("malformed", `malformed handshake unit: ${unit.error}`);
    const { type, body } = unit.value;
    if (type === UnitType.HandshakeReject) return this.onReject(body);
    if (this.lastReceived !== undefined && bytesEqual(bytes, this.lastReceived)) {
      // The peer did not get our answer (datagram loss): answer again. An HS_INIT is at least as
      // large as our answer to it, so this amplifies nothing.
      if (this.lastSent === undefined) return { send: [], ignored: "duplicate" };
      return { send: [this.lastSent], ignored: "duplicate: answered again" };
    }
    if (type !== this.expecting) {
      return { send: [], ignored: `unexpected ${unitName(type)} while ${state.kind}` };
    }
    switch (type) {
      case UnitType.HandshakeInit:
        return this.onInit(now, bytes, body);
      case UnitType.HandshakeResponse:
        return this.onResponse(bytes, body);
      case UnitType.HandshakeFinish:
        return this.onFinish(bytes, body);
      default:
        return { send: [], ignored: "not a handshake unit" };
    }
  }

  /** Timers: retransmission (datagram transports) and the overall timeout. */
  tick(now: number): HandshakeStep {
    const state = this.stateValue;
    if (state.kind !== "awaiting_response" && state.kind !== "awaiting_finish") return { send: [] };
    if (now >= state.since + this.timeoutMs) {
      const waitingFor = state.kind === "awaiting_response" ? "an answer to our handshake" : "the last handshake message";
      return this.fail({ code: "timeout", message: `no ${waitingFor} within ${this.timeoutMs} ms` });
    }
    if (this.config.transport === "datagram" && now >= state.lastSentAt + this.retryMs && this.lastSent !== undefined) {
      state.lastSentAt = now;
      return { send: [this.lastSent] };
    }
    return { send: [] };
  }

  nextDeadline(): number {
    const state = this.stateValue;
    if (state.kind !== "awaiting_response" && state.kind !== "awaiting_finish") return Infinity;
    const timeout = state.since + this.timeoutMs;
    return this.config.transport === "datagram" ? Math.min(timeout, state.lastSentAt + this.retryMs) : timeout;
  }

  /** Gives up (e.g. the engine's own limits); returns the HS_REJECT to send. */
  abort(reason: RejectReasonName, detail: string): Uint8Array {
    const unit = encodeReject(reason, detail);
    if (this.stateValue.kind !== "failed") this.stateValue = { kind: "failed", failure: { code: reason, message: detail } };
    return unit;
  }

  // ─── Messages ────────────────────────────────────────────────────────────────────────────────

  private onInit(now: number, bytes: Uint8Array, body: Uint8Array): HandshakeStep {
    if (body.byteLength < INIT_PREFIX_BYTES) return this.refuse("malformed", "HS_INIT too short");
    const version = body[0]!;
    if (version !== HANDSHAKE_VERSION) return this.refuse("version", `the peer speaks handshake version ${version}, this node ${HANDSHAKE_VERSION}`);
    const theirMode: NetworkMode | undefined = body[1] === 0 ? "open" : body[1] === 1 ? "keyed" : undefined;
    if (theirMode === undefined || body[2] !== 0) return this.refuse("malformed", "HS_INIT has an unknown mode or flags");
    if (theirMode !== this.mode) {
      return this.mode === "keyed"
        ? this.refuse("network_key_required", "the peer has no network key and this network requires one: it is not a member")
        : this.refuse("open_network", "the peer uses a network key and this node runs an open network (no --network-key)");
    }
    if (bytes.byteLength < HS_INIT_BYTES) return this.refuse("malformed", `HS_INIT of ${bytes.byteLength} bytes is shorter than the ${HS_INIT_BYTES} required`);
    this.noise = this.newNoise();
    const read = this.noise.readMessage(body.subarray(INIT_PREFIX_BYTES));
    if (!read.ok) {
      if (this.mode === "keyed" && read.code === "decrypt") {
        return this.refuse(
          "network_key",
          `the peer's first message does not authenticate under our network key (id ${networkKeyId(this.config.networkKey!)}): it has another network key`,
        );
      }
      return this.refuse("malformed", `HS_INIT: ${read.error}`);
    }
    const refusal = this.config.admitInit?.();
    if (refusal !== undefined) return this.refuse(refusal.reason, refusal.detail);
    const written = this.noise.writeMessage((hash) => this.identityPayload(hash));
    if (!written.ok) return this.refuse("bad_key", `HS_INIT: ${written.error}`);
    this.lastReceived = Uint8Array.from(bytes);
    this.stateValue = { kind: "awaiting_finish", since: now, lastSentAt: now };
    return { send: [this.remember(encodeUnit(UnitType.HandshakeResponse, written.value))] };
  }

  private onResponse(bytes: Uint8Array, body: Uint8Array): HandshakeStep {
    const noise = this.noise!;
    const read = noise.readMessage(body);
    if (!read.ok) {
      if (read.code === "decrypt" && this.mode === "keyed") {
        return this.refuse("network_key", "the peer's answer does not decrypt under our network key: it has another network key (or the message was altered)");
      }
      if (read.code === "bad_key") return this.refuse("bad_key", `HS_RESPONSE: ${read.error}`);
      return this.refuse(read.code === "decrypt" ? "decrypt" : "malformed", `HS_RESPONSE: ${read.error} (altered on the way?)`);
    }
    const peer = this.verifyPeer("responder", read.value.payload, read.value.hashBeforePayload, noise.remoteStatic!);
    if ("code" in peer) return this.refuse(peer.code as RejectReasonName, peer.message);
    const written = noise.writeMessage((hash) => this.identityPayload(hash));
    if (!written.ok) return this.refuse("bad_key", `HS_FINISH: ${written.error}`);
    this.lastReceived = Uint8Array.from(bytes);
    const finish = this.remember(encodeUnit(UnitType.HandshakeFinish, written.value));
    return { send: [finish], result: this.complete(peer) };
  }

  private onFinish(bytes: Uint8Array, body: Uint8Array): HandshakeStep {
    const noise = this.noise!;
    const read = noise.readMessage(body);
    if (!read.ok) {
      if (read.code === "bad_key") return this.refuse("bad_key", `HS_FINISH: ${read.error}`);
      return this.refuse(read.code === "decrypt" ? "decrypt" : "malformed", `HS_FINISH: ${read.error} (altered on the way, or another network key)`);
    }
    const peer = this.verifyPeer("initiator", read.value.payload, read.value.hashBeforePayload, noise.remoteStatic!);
    if ("code" in peer) return this.refuse(peer.code as RejectReasonName, peer.message);
    this.lastReceived = Uint8Array.from(bytes);
    this.lastSent = undefined;
    return { send: [], result: this.complete(peer) };
  }

  private onReject(body: Uint8Array): HandshakeStep {
    const state = this.stateValue;
    if (state.kind === "complete" || state.kind === "initial") return { send: [], ignored: `HS_REJECT while ${state.kind}` };
    return this.fail(rejectFailure(body));
  }

  // ─── Identity payloads ───────────────────────────────────────────────────────────────────────

  /**
   * Identity payload (the Noise payload of HS_RESPONSE and HS_FINISH):
   *   u8 version=1 | u32 NodeId | 32 Ed25519 public key | 64 signature | u16 C | C certificate | u16 X | X extension
   * signature = Ed25519 over "skein handshake identity v1" 0x00 | u8 role (1 initiator, 2 responder)
   *             | h (32, the handshake hash just before this payload) | X25519 static public key | u32 NodeId
   */
  private identityPayload(hash: Uint8Array): Uint8Array {
    const { identity, nodeId } = this.config;
    const certificate = this.config.certificate ?? new Uint8Array(0);
    const extension = this.config.extension ?? new Uint8Array(0);
    const signature = ed25519Sign(identity.signing, signedIdentity(this.role, hash, identity.dh.publicKey, nodeId));
    const payload = new Uint8Array(1 + 4 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES + 2 + certificate.byteLength + 2 + extension.byteLength);
    const view = new DataView(payload.buffer);
    let offset = 0;
    payload[offset++] = PAYLOAD_VERSION;
    view.setUint32(offset, nodeId);
    offset += 4;
    payload.set(identity.signing.publicKey, offset);
    offset += PUBLIC_KEY_BYTES;
    payload.set(signature, offset);
    offset += SIGNATURE_BYTES;
    view.setUint16(offset, certificate.byteLength);
    payload.set(certificate, offset + 2);
    offset += 2 + certificate.byteLength;
    view.setUint16(offset, extension.byteLength);
    payload.set(extension, offset + 2);
    return payload;
  }

  private verifyPeer(peerRole: HandshakeRole, payload: Uint8Array, hash: Uint8Array, staticKey: Uint8Array): HandshakePeer | HandshakeFailure {
    const parsed = parseIdentityPayload(payload);
    if (parsed === undefined) return { code: "malformed", message: "the peer's identity payload is malformed" };
    if (!ed25519Verify(parsed.signingKey, signedIdentity(peerRole, hash, staticKey, parsed.nodeId), parsed.signature)) {
      return { code: "identity_invalid", message: `the peer's identity proof (node ${parsed.nodeId}, key ${fingerprint(parsed.signingKey)}) does not verify: its signature does not bind that key to this handshake` };
    }
    const bound = bindNodeId(parsed.nodeId, parsed.signingKey, parsed.certificate, this.config.trust, this.wallNow);
    if (!bound.ok) return { code: bound.code, message: bound.error };
    const peer: HandshakePeer = {
      nodeId: parsed.nodeId,
      signingKey: parsed.signingKey,
      staticKey: Uint8Array.from(staticKey),
      binding: bound.value.binding,
      certificate: bound.value.certificate,
      extension: parsed.extension,
    };
    if (bytesEqual(staticKey, this.config.identity.dh.publicKey) || parsed.nodeId === this.config.nodeId) {
      return { code: "self", message: `the peer is this node itself (node ${parsed.nodeId}): a node connected to one of its own addresses` };
    }
    const expected = this.config.expectedPeer;
    if (expected !== undefined && expected !== 0 && expected !== parsed.nodeId) {
      return { code: "unexpected_node_id", message: `expected node ${expected} at this address, found node ${parsed.nodeId}` };
    }
    const refusal = this.config.acceptPeer?.(peer);
    if (refusal !== undefined) return { code: "refused", message: refusal };
    return peer;
  }

  // ─── Endings ─────────────────────────────────────────────────────────────────────────────────

  private complete(peer: HandshakePeer): HandshakeResult {
    const keys = this.noise!.split();
    const initiator = this.role === "initiator";
    const result: HandshakeResult = {
      role: this.role,
      pattern: this.pattern,
      handshakeHash: keys.handshakeHash,
      sendKey: initiator ? keys.initiatorToResponder : keys.responderToInitiator,
      receiveKey: initiator ? keys.responderToInitiator : keys.initiatorToResponder,
      peer,
    };
    this.stateValue = { kind: "complete", result };
    this.noise = undefined;
    return result;
  }

  /** Fails and tells the peer why. */
  private refuse(code: RejectReasonName, message: string): HandshakeStep {
    const step = this.fail({ code, message });
    step.send.push(encodeReject(code, code === "refused" || code === "full" ? message : ""));
    return step;
  }

  private fail(failure: HandshakeFailure): HandshakeStep {
    this.stateValue = { kind: "failed", failure };
    this.noise = undefined;
    this.lastSent = undefined;
    return { send: [], failure };
  }

  private remember(unit: Uint8Array): Uint8Array {
    this.lastSent = unit;
    return unit;
  }

  private newNoise(): NoiseHandshake {
    return new NoiseHandshake({
      pattern: this.pattern,
      initiator: this.role === "initiator",
      prologue: prologue(this.mode, this.config.networkKey),
      staticKey: this.config.identity.dh,
      psk: this.config.networkKey,
      entropy: this.config.entropy,
    });
  }

}

function signedIdentity(role: HandshakeRole, hash: Uint8Array, staticKey: Uint8Array, nodeId: NodeId): Uint8Array {
  const tail = new Uint8Array(1 + hash.byteLength + staticKey.byteLength + 4);
  tail[0] = role === "initiator" ? 1 : 2;
  tail.set(hash, 1);
  tail.set(staticKey, 1 + hash.byteLength);
  new DataView(tail.buffer).setUint32(1 + hash.byteLength + staticKey.byteLength, nodeId);
  return concatBytes(IDENTITY_CONTEXT, tail);
}

interface ParsedIdentity {
  nodeId: NodeId;
  signingKey: Uint8Array;
  signature: Uint8Array;
  certificate: Uint8Array | undefined;
  extension: Uint8Array;
}

/** Total parser of an identity payload; undefined when malformed. */
export function parseIdentityPayload(payload: Uint8Array): ParsedIdentity | undefined {
  const fixed = 1 + 4 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
  if (payload.byteLength < fixed + 4 || payload[0] !== PAYLOAD_VERSION) return undefined;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const nodeId = view.getUint32(1);
  if (!isNodeId(nodeId)) return undefined;
  const certLength = view.getUint16(fixed);
  if (certLength > CERTIFICATE_MAX_BYTES || fixed + 2 + certLength + 2 > payload.byteLength) return undefined;
  const extensionAt = fixed + 2 + certLength;
  const extensionLength = view.getUint16(extensionAt);
  if (extensionLength > HANDSHAKE_EXTENSION_MAX_BYTES || extensionAt + 2 + extensionLength !== payload.byteLength) return undefined;
  const copy = Uint8Array.from(payload);
  return {
    nodeId,
    signingKey: copy.subarray(5, 5 + PUBLIC_KEY_BYTES),
    signature: copy.subarray(5 + PUBLIC_KEY_BYTES, fixed),
    certificate: certLength === 0 ? undefined : copy.subarray(fixed + 2, fixed + 2 + certLength),
    extension: copy.subarray(extensionAt + 2, extensionAt + 2 + extensionLength),
  };
}

/** HS_REJECT body: u8 reason | u8 detail length (≤ 96) | detail (printable ASCII). */
export function encodeReject(reason: RejectReasonName, detail: string): Uint8Array {
  const text = utf8.encode(detail.replace(/[^\x20-\x7e]/g, "?").slice(0, reason === "full" ? REJECT_FULL_DETAIL_MAX_BYTES : REJECT_DETAIL_MAX_BYTES));
  return encodeUnit(UnitType.HandshakeReject, concatBytes(new Uint8Array([RejectReason[reason], text.byteLength]), text));
}

export function decodeReject(body: Uint8Array): { reason: RejectReasonName; detail: string } | undefined {
  if (body.byteLength < 2 || body.byteLength !== 2 + body[1]!) return undefined;
  const reason = (Object.keys(RejectReason) as RejectReasonName[]).find((name) => RejectReason[name] === body[0]);
  if (reason === undefined || body[1]! > (reason === "full" ? REJECT_FULL_DETAIL_MAX_BYTES : REJECT_DETAIL_MAX_BYTES)) return undefined;
  const detail = String.fromCharCode(...body.subarray(2)).replace(/[^\x20-\x7e]/g, "?");
  return { reason, detail };
}

/** What an HS_REJECT body means to its receiver. */
export function rejectFailure(body: Uint8Array): HandshakeFailure {
  const decoded = decodeReject(body);
  if (decoded === undefined) return { code: "rejected", message: "the peer refused the handshake (unreadable reason)" };
  const detail = decoded.detail.length > 0 ? ` (${decoded.detail})` : "";
  return { code: "rejected", message: `the peer refused the handshake: ${REJECT_TEXT[decoded.reason]}${detail}`, peerReason: decoded.reason, peerDetail: decoded.detail };
}

/** The initiator's ephemeral key in an HS_INIT unit (for the simultaneous-open tie-break). */
export function initEphemeral(unit: Uint8Array): Uint8Array | undefined {
  const start = UNIT_HEADER_BYTES + INIT_PREFIX_BYTES;
  if (unit[0] !== UnitType.HandshakeInit || unit.byteLength < start + PUBLIC_KEY_BYTES) return undefined;
  return unit.subarray(start, start + PUBLIC_KEY_BYTES);
}

export function unitName(type: number): string {
  switch (type) {
    case UnitType.HandshakeInit:
      return "HS_INIT";
    case UnitType.HandshakeResponse:
      return "HS_RESPONSE";
    case UnitType.HandshakeFinish:
      return "HS_FINISH";
    case UnitType.HandshakeReject:
      return "HS_REJECT";
    case UnitType.Record:
      return "RECORD";
    default:
      return `unit 0x${type.toString(16)}`;
  }
}

/**
 * A secure channel: everything one path needs between "the transport is open" and "frames flow",
 * as one pure state machine — the handshake (handshake.ts), then the record session (session.ts).
 * This is what the engine's link state `handshaking` drives, one channel per path.
 *
 *   handshaking ──(handshake complete)──▶ established ──(another handshake completes)──▶ established (renewed)
 *        │                                     │
 *        └──(failure, timeout, HS_REJECT)──▶ failed ◀──(stream transport: any bad record)
 *
 * Inputs: `start` (the side that opened the path), `receive` (one whole unit), `tick`. Outputs,
 * drained with `poll`: units to transmit (handshake messages) and events (`established`,
 * `failed`). Records are sealed synchronously by `seal`/`sealParts` and opened by `receive`,
 * which hands back the plaintext packet.
 *
 * Datagram transports (one path = one remote UDP address) add three cases a stream never has:
 *  - lost handshake messages: the handshake retransmits, and answers duplicates;
 *  - both sides opening at once: both send HS_INIT on the same path. The side whose ephemeral key
 *    is larger (bytewise) becomes the responder to the other's HS_INIT; the other ignores the
 *    HS_INIT it received. Both compute the same answer, so exactly one handshake proceeds;
 *  - a peer that restarted (or lost our session) sends HS_INIT on an established path: a second
 *    handshake runs beside the session, which keeps working, and replaces it on completion
 *    (event `established` with `renewed: true`). An unauthenticated packet can start such a
 *    handshake, never end a session.
 */
import type { Entropy } from "../core/entropy.js";
import type { NodeId } from "../core/node-id.js";
import {
  type HandshakeConfig,
  type HandshakeFailure,
  type HandshakePeer,
  type HandshakeResult,
  type HandshakeStep,
  LinkHandshake,
  initEphemeral,
  rejectFailure,
  unitName,
} from "./handshake.js";
import { generateIdentity } from "./identity.js";
import { compareBytes } from "./primitives.js";
import { type RecordErrorCode, type RekeyLimits, RecordSession } from "./session.js";
import { UnitType, isHandshakeType, readUnit } from "./units.js";

export interface ChannelConfig extends HandshakeConfig {
  /** Rekey bounds of the record session (defaults in session.ts). */
  rekey?: Partial<RekeyLimits> | undefined;
}

export type ChannelState =
  | { kind: "handshaking"; since: number; handshake: LinkHandshake }
  | {
      kind: "established";
      since: number;
      role: "initiator" | "responder";
      session: RecordSession;
      peer: HandshakePeer;
      handshakeHash: Uint8Array;
      /**
       * Initiator: the completed handshake, until the peer's first record proves it accepted our
       * HS_FINISH. Meanwhile (datagram) it answers a repeated HS_RESPONSE, and an HS_REJECT
       * (the peer refused our identity) fails the channel.
       */
      finished: LinkHandshake | undefined;
      /** Datagram: a second handshake started by the peer (restart), running beside the session. */
      renewal: LinkHandshake | undefined;
    }
  | { kind: "failed"; since: number; failure: HandshakeFailure };

export type ChannelOutput =
  | { kind: "transmit"; unit: Uint8Array }
  | { kind: "established"; peer: HandshakePeer; handshakeHash: Uint8Array; renewed: boolean }
  | { kind: "failed"; failure: HandshakeFailure };

/** Why a received unit gave no packet (metrics reasons). */
export type ChannelDropCode = RecordErrorCode | "no_session" | "handshake_unit" | "failed";

export type ChannelReceive =
  | { kind: "packet"; packet: Uint8Array }
  /** A handshake unit, consumed (look at `poll`). */
  | { kind: "handshake" }
  | { kind: "dropped"; code: ChannelDropCode; error: string; fatal: boolean };

export class SecureChannel {
  private readonly config: ChannelConfig;
  private stateValue: ChannelState;
  private readonly outputs: ChannelOutput[] = [];
  private outputHead = 0;

  constructor(config: ChannelConfig, now: number) {
    this.config = config;
    this.stateValue = { kind: "handshaking", since: now, handshake: new LinkHandshake(config) };
  }

  get state(): ChannelState {
    return this.stateValue;
  }

  /** The role this side ended up with (a datagram initiator may become the responder of a simultaneous open). */
  get role(): "initiator" | "responder" {
    const state = this.stateValue;
    if (state.kind === "handshaking") return state.handshake.role;
    if (state.kind === "established") return state.role;
    return this.config.role;
  }

  get established(): boolean {
    return this.stateValue.kind === "established";
  }

  get peer(): HandshakePeer | undefined {
    return this.stateValue.kind === "established" ? this.stateValue.peer : undefined;
  }

  get peerNodeId(): NodeId | undefined {
    return this.peer?.nodeId;
  }

  /** The side that opened the path sends HS_INIT. */
  start(now: number): void {
    const state = this.stateValue;
    if (state.kind !== "handshaking" || state.handshake.role !== "initiator") throw new Error("start() is for an initiator channel before its handshake");
    this.apply(now, state.handshake.start(now), state.handshake);
  }

  /** One whole unit from the path. */
  receive(now: number, bytes: Uint8Array): ChannelReceive {
    const state = this.stateValue;
    const stream = this.config.transport === "stream";
    if (state.kind === "failed") return { kind: "dropped", code: "failed", error: "the channel has failed", fatal: true };
    const type = bytes[0] ?? -1;
    if (type === UnitType.Record) {
      if (state.kind !== "established") {
        return { kind: "dropped", code: "no_session", error: "record before the handshake completed", fatal: stream };
      }
      const opened = state.session.open(now, bytes);
      if (!opened.ok) return { kind: "dropped", code: opened.code, error: opened.error, fatal: stream };
      state.finished = undefined; // the peer has its keys: it got our HS_FINISH
      return { kind: "packet", packet: opened.value };
    }
    if (!isHandshakeType(type)) {
      const unit = readUnit(bytes);
      return { kind: "dropped", code: "malformed", error: unit.ok ? "not a unit" : unit.error, fatal: stream };
    }
    if (state.kind === "handshaking") {
      this.receiveHandshaking(now, state, bytes);
      return { kind: "handshake" };
    }
    // Established.
    if (type === UnitType.HandshakeReject && state.finished !== undefined) {
      // The initiator completes before the responder has checked its HS_FINISH: a refusal of it
      // (our certificate, our NodeId…) arrives now, and ends the channel.
      const unit = readUnit(bytes);
      const failure = rejectFailure(unit.ok ? unit.value.body : new Uint8Array(0));
      this.stateValue = { kind: "failed", since: now, failure };
      this.outputs.push({ kind: "failed", failure });
      return { kind: "handshake" };
    }
    if (stream) {
      if (type === UnitType.HandshakeReject) return { kind: "dropped", code: "handshake_unit", error: "HS_REJECT after the handshake (ignored)", fatal: false };
      return { kind: "dropped", code: "handshake_unit", error: `${unitName(type)} after the handshake`, fatal: true };
    }
    if (state.finished !== undefined && type === UnitType.HandshakeResponse && !stream) {
      this.apply(now, state.finished.receive(now, bytes), state.finished);
      return { kind: "handshake" };
    }
    if (type === UnitType.HandshakeInit) {
      const renewal = state.renewal;
      if (renewal !== undefined && renewal.state.kind === "awaiting_finish") {
        // A copy of the HS_INIT it answered: it answers again. Another one: the peer started over.
        const step = renewal.receive(now, bytes);
        if (step.ignored === undefined || step.send.length > 0) {
          this.apply(now, step, renewal);
          return { kind: "handshake" };
        }
      }
      const fresh = new LinkHandshake({ ...this.config, role: "responder" });
      state.renewal = fresh;
      this.apply(now, fresh.receive(now, bytes), fresh);
      return { kind: "handshake" };
    }
    if (state.renewal !== undefined && type !== UnitType.HandshakeReject) {
      this.apply(now, state.renewal.receive(now, bytes), state.renewal);
      return { kind: "handshake" };
    }
    return { kind: "dropped", code: "handshake_unit", error: `${unitName(type)} after the handshake (ignored)`, fatal: false };
  }

  /** Seals one packet into one record unit. Only once established. */
  seal(now: number, packet: Uint8Array): Uint8Array {
    return this.session().seal(now, packet);
  }

  /** Seals the concatenation of `parts` into one record, as pieces for a writev. */
  sealParts(now: number, parts: readonly Uint8Array[]): Uint8Array[] {
    return this.session().sealParts(now, parts);
  }

  tick(now: number): void {
    const state = this.stateValue;
    if (state.kind === "handshaking") this.apply(now, state.handshake.tick(now), state.handshake);
    else if (state.kind === "established" && state.renewal !== undefined) this.apply(now, state.renewal.tick(now), state.renewal);
  }

  nextDeadline(): number {
    const state = this.stateValue;
    if (state.kind === "handshaking") return state.handshake.nextDeadline();
    if (state.kind === "established" && state.renewal !== undefined) return state.renewal.nextDeadline();
    return Infinity;
  }

  poll(): ChannelOutput | undefined {
    if (this.outputHead >= this.outputs.length) {
      this.outputs.length = 0;
      this.outputHead = 0;
      return undefined;
    }
    const output = this.outputs[this.outputHead]!;
    this.outputHead += 1;
    return output;
  }

  // ─── Internals ──────────────────────────────────────────────────────────────────────────────

  private session(): RecordSession {
    const state = this.stateValue;
    if (state.kind !== "established") throw new Error("seal() before the channel is established");
    return state.session;
  }

  private receiveHandshaking(now: number, state: Extract<ChannelState, { kind: "handshaking" }>, bytes: Uint8Array): void {
    const handshake = state.handshake;
    if (this.config.transport === "datagram" && bytes[0] === UnitType.HandshakeInit && handshake.role === "initiator" && handshake.state.kind === "awaiting_response") {
      // Simultaneous open on one UDP path: the larger ephemeral key answers, the smaller waits.
      // (Equal keys mean a broken random source: both wait, and time out.)
      const theirs = initEphemeral(bytes);
      const ours = handshake.ephemeralPublicKey;
      if (theirs === undefined || ours === undefined || compareBytes(ours, theirs) <= 0) return;
      state.handshake = new LinkHandshake({ ...this.config, role: "responder" });
      this.apply(now, state.handshake.receive(now, bytes), state.handshake);
      return;
    }
    this.apply(now, handshake.receive(now, bytes), handshake);
  }

  private apply(now: number, step: HandshakeStep, handshake: LinkHandshake): void {
    for (const unit of step.send) this.outputs.push({ kind: "transmit", unit });
    const state = this.stateValue;
    if (step.result !== undefined) {
      this.establish(now, step.result, handshake, state.kind === "established");
      return;
    }
    if (step.failure !== undefined) {
      if (state.kind === "established") {
        // A failed renewal or a late HS_REJECT: the session goes on.
        if (state.renewal === handshake) state.renewal = undefined;
        return;
      }
      this.stateValue = { kind: "failed", since: now, failure: step.failure };
      this.outputs.push({ kind: "failed", failure: step.failure });
    }
  }

  private establish(now: number, result: HandshakeResult, handshake: LinkHandshake, renewed: boolean): void {
    const session = new RecordSession(result, { transport: this.config.transport, now, limits: this.config.rekey });
    const keepForDuplicates = result.role === "initiator" ? handshake : undefined;
    this.stateValue = {
      kind: "established",
      since: now,
      role: result.role,
      session,
      peer: result.peer,
      handshakeHash: result.handshakeHash,
      finished: keepForDuplicates,
      renewal: undefined,
    };
    this.outputs.push({ kind: "established", peer: result.peer, handshakeHash: result.handshakeHash, renewed });
  }
}

/**
 * Runs one complete handshake and a record each way between two throwaway identities, in memory.
 * The first handshake of a process costs ~5 ms (JIT, OpenSSL's first use of each algorithm); the
 * next ones ~1.7 ms for both sides together. A runtime calls this once at start, so that its first
 * real connection does not pay that. Returns the ms it took (for a debug log). Pure: no I/O, and
 * the entropy given only feeds the throwaway keys.
 */
export function warmUpCrypto(entropy: Entropy, clock: () => number = () => 0): number {
  const start = clock();
  const [a, b] = [generateIdentity(entropy), generateIdentity(entropy)];
  const base = { trust: {}, entropy, wallClockOffsetMs: 0, transport: "stream" as const, networkKey: entropy.randomBytes(32) };
  const initiator = new SecureChannel({ ...base, role: "initiator", identity: a!, nodeId: a!.derivedNodeId }, 0);
  const responder = new SecureChannel({ ...base, role: "responder", identity: b!, nodeId: b!.derivedNodeId }, 0);
  initiator.start(0);
  for (let moved = true, rounds = 0; moved && rounds < 10; rounds += 1) {
    moved = false;
    for (const [from, to] of [
      [initiator, responder],
      [responder, initiator],
    ] as const) {
      for (let output = from.poll(); output !== undefined; output = from.poll()) {
        moved = true;
        if (output.kind === "transmit") to.receive(0, output.unit);
      }
    }
  }
  if (initiator.established && responder.established) {
    responder.receive(0, initiator.seal(0, new Uint8Array(1024)));
    initiator.receive(0, responder.seal(0, new Uint8Array(1024)));
  }
  return clock() - start;
}

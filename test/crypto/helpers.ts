/** Shared fixtures for the crypto tests: seeded identities, channels and a tiny in-memory link. */
import { SeededEntropy } from "../../src/core/entropy.js";
import { SecureChannel, type ChannelConfig, type ChannelOutput } from "../../src/crypto/channel.js";
import { type HandshakeConfig, type HandshakeStep, LinkHandshake } from "../../src/crypto/handshake.js";
import { type NodeIdentity, generateIdentity } from "../../src/crypto/identity.js";

/** 2030-01-01T00:00:00Z: the wall clock of every test (driver time 0 = this instant). */
export const WALL_2030 = Date.UTC(2030, 0, 1);
export const DAY = 86_400_000;

export function identities(seed: number, count: number): NodeIdentity[] {
  const entropy = new SeededEntropy(seed);
  return Array.from({ length: count }, () => generateIdentity(entropy));
}

export type Overrides = Partial<HandshakeConfig>;

export function handshakeConfig(role: "initiator" | "responder", identity: NodeIdentity, overrides: Overrides = {}, seed = 7): HandshakeConfig {
  return {
    role,
    identity,
    nodeId: identity.derivedNodeId,
    trust: {},
    entropy: new SeededEntropy(`${seed}:${role}`),
    wallClockOffsetMs: WALL_2030,
    transport: "stream",
    ...overrides,
  };
}

export interface Exchange {
  initiator: LinkHandshake;
  responder: LinkHandshake;
  /** Every unit in the order it was sent, with its sender. */
  transcript: { from: "initiator" | "responder"; unit: Uint8Array }[];
  initiatorSteps: HandshakeStep[];
  responderSteps: HandshakeStep[];
}

/**
 * Runs a handshake between two LinkHandshakes, delivering every unit at once; `tamper` may
 * replace a unit on its way (return it unchanged to pass it).
 */
export function exchange(initiatorConfig: HandshakeConfig, responderConfig: HandshakeConfig, tamper?: (unit: Uint8Array, index: number) => Uint8Array | undefined): Exchange {
  const initiator = new LinkHandshake(initiatorConfig);
  const responder = new LinkHandshake(responderConfig);
  const result: Exchange = { initiator, responder, transcript: [], initiatorSteps: [], responderSteps: [] };
  const queue: { to: LinkHandshake; unit: Uint8Array }[] = [];
  const push = (from: "initiator" | "responder", step: HandshakeStep): void => {
    (from === "initiator" ? result.initiatorSteps : result.responderSteps).push(step);
    for (const unit of step.send) {
      const index = result.transcript.length;
      result.transcript.push({ from, unit });
      const delivered = tamper ? tamper(unit, index) : unit;
      if (delivered !== undefined) queue.push({ to: from === "initiator" ? responder : initiator, unit: delivered });
    }
  };
  push("initiator", initiator.start(0));
  for (let guard = 0; queue.length > 0 && guard < 20; guard += 1) {
    const { to, unit } = queue.shift()!;
    push(to === initiator ? "initiator" : "responder", to.receive(1, unit));
  }
  return result;
}

export function channelConfig(role: "initiator" | "responder", identity: NodeIdentity, overrides: Partial<ChannelConfig> = {}, seed = 7): ChannelConfig {
  return { ...handshakeConfig(role, identity, {}, seed), ...overrides };
}

/** Drains a channel's outputs. */
export function drain(channel: SecureChannel): ChannelOutput[] {
  const outputs: ChannelOutput[] = [];
  for (let output = channel.poll(); output !== undefined; output = channel.poll()) outputs.push(output);
  return outputs;
}

/**
 * Two channels joined by a lossless in-memory link; `deliver` decides per unit (drop by returning
 * undefined). Runs until nothing moves.
 */
export function pump(a: SecureChannel, b: SecureChannel, now: number, deliver: (unit: Uint8Array, from: SecureChannel) => Uint8Array | undefined = (unit) => unit): ChannelOutput[] {
  const events: ChannelOutput[] = [];
  for (let moved = true, guard = 0; moved && guard < 100; guard += 1) {
    moved = false;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const output of drain(from)) {
        moved = true;
        if (output.kind === "transmit") {
          const unit = deliver(output.unit, from);
          if (unit !== undefined) to.receive(now, unit);
        } else {
          events.push(output);
        }
      }
    }
  }
  return events;
}

export function flipByte(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index]! ^= mask;
  return copy;
}

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);

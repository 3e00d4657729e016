/**
 * Link-local messages (frame kind Link, module Link). Every payload starts with a u8 type.
 * Byte layouts are in docs/protocol.md ("Link messages").
 */
import { type Address, formatAddress, parseAddress } from "../core/address.js";
import { type Decoded, decodeError, decoded } from "../core/errors.js";
import type { NodeId } from "../core/node-id.js";
import { ByteReader, ByteWriter } from "../wire/bytes.js";
import { MAX_ADDRESSES_PER_PEER } from "./constants.js";

export const LinkMessageType = {
  Hello: 1,
  HelloAck: 2,
  HelloReject: 3,
  Probe: 4,
  ProbeAck: 5,
  Peers: 6,
  Goodbye: 7,
  Reset: 8,
} as const;

export const RejectReason = {
  Full: 1,
  IdConflict: 2,
  WrongId: 3,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

export interface PeerEntry {
  nodeId: NodeId;
  addresses: Address[];
}

export type LinkMessage =
  /** `session` is random per engine start: a new value from a known peer means it restarted. */
  | { type: "hello"; session: number; addresses: Address[] }
  | { type: "hello_ack"; session: number; addresses: Address[] }
  /**
   * `referrals` (only with reason Full, optional): peers of the full node to try instead, so that a
   * node whose seed is full still finds its way in (a large network with --max-neighbours).
   */
  | { type: "hello_reject"; reason: RejectReason; detail: string; referrals?: PeerEntry[] }
  | { type: "probe"; seq: number }
  | { type: "probe_ack"; seq: number }
  | { type: "peers"; peers: PeerEntry[] }
  | { type: "goodbye"; detail: string }
  /** "I have no link with you": the receiver says hello again. */
  | { type: "reset" };

/** Peer entries per `peers` message at most: keeps one message inside one small datagram. */
export const MAX_PEERS_PER_MESSAGE = 24;
/** Referrals in a hello_reject at most. */
export const MAX_REFERRALS = 8;

function writeAddresses(writer: ByteWriter, addresses: Address[]): void {
  const kept = addresses.slice(0, MAX_ADDRESSES_PER_PEER);
  writer.u8(kept.length);
  for (const address of kept) writer.shortString(formatAddress(address));
}

function readAddresses(reader: ByteReader): Address[] | string {
  const count = reader.u8();
  if (count > MAX_ADDRESSES_PER_PEER) return `too many addresses (${count} > ${MAX_ADDRESSES_PER_PEER})`;
  const addresses: Address[] = [];
  for (let index = 0; index < count; index += 1) {
    const text = reader.shortString();
    if (reader.failed) return "truncated address";
    const address = parseAddress(text);
    if (!address.ok) return address.error;
    addresses.push(address.value);
  }
  return addresses;
}

export function encodeLinkMessage(message: LinkMessage): Uint8Array {
  const writer = new ByteWriter(64);
  switch (message.type) {
    case "hello":
    case "hello_ack":
      writer.u8(message.type === "hello" ? LinkMessageType.Hello : LinkMessageType.HelloAck).u32(message.session);
      writeAddresses(writer, message.addresses);
      break;
    case "hello_reject":
      writer.u8(LinkMessageType.HelloReject).u8(message.reason).shortString(message.detail.slice(0, 200));
      if (message.referrals !== undefined && message.referrals.length > 0) {
        const referrals = message.referrals.slice(0, MAX_REFERRALS);
        writer.u8(referrals.length);
        for (const peer of referrals) {
          writer.u32(peer.nodeId);
          writeAddresses(writer, peer.addresses);
        }
      }
      break;
    case "probe":
      writer.u8(LinkMessageType.Probe).u32(message.seq);
      break;
    case "probe_ack":
      writer.u8(LinkMessageType.ProbeAck).u32(message.seq);
      break;
    case "peers":
      writer.u8(LinkMessageType.Peers).u8(Math.min(message.peers.length, MAX_PEERS_PER_MESSAGE));
      for (const peer of message.peers.slice(0, MAX_PEERS_PER_MESSAGE)) {
        writer.u32(peer.nodeId);
        writeAddresses(writer, peer.addresses);
      }
      break;
    case "goodbye":
      writer.u8(LinkMessageType.Goodbye).shortString(message.detail.slice(0, 200));
      break;
    case "reset":
      writer.u8(LinkMessageType.Reset);
      break;
  }
  return writer.finish();
}

/** Total: any byte string gives a message or an error. */
export function decodeLinkMessage(payload: Uint8Array): Decoded<LinkMessage> {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  let message: LinkMessage;
  switch (type) {
    case LinkMessageType.Hello:
    case LinkMessageType.HelloAck: {
      const session = reader.u32();
      const addresses = readAddresses(reader);
      if (typeof addresses === "string") return decodeError(`bad hello: ${addresses}`);
      message = { type: type === LinkMessageType.Hello ? "hello" : "hello_ack", session, addresses };
      break;
    }
    case LinkMessageType.HelloReject: {
      const reason = reader.u8();
      if (reason < RejectReason.Full || reason > RejectReason.WrongId) return decodeError(`unknown reject reason ${reason}`);
      const detail = reader.shortString();
      if (reader.failed || reader.remaining === 0) {
        message = { type: "hello_reject", reason: reason as RejectReason, detail };
        break;
      }
      const count = reader.u8();
      if (count === 0 || count > MAX_REFERRALS) return decodeError(`bad referral count ${count} (1..${MAX_REFERRALS})`);
      const referrals: PeerEntry[] = [];
      for (let index = 0; index < count; index += 1) {
        const nodeId = reader.u32();
        const addresses = readAddresses(reader);
        if (typeof addresses === "string") return decodeError(`bad referral: ${addresses}`);
        referrals.push({ nodeId, addresses });
      }
      message = { type: "hello_reject", reason: reason as RejectReason, detail, referrals };
      break;
    }
    case LinkMessageType.Probe:
      message = { type: "probe", seq: reader.u32() };
      break;
    case LinkMessageType.ProbeAck:
      message = { type: "probe_ack", seq: reader.u32() };
      break;
    case LinkMessageType.Peers: {
      const count = reader.u8();
      if (count > MAX_PEERS_PER_MESSAGE) return decodeError(`too many peers in one message (${count} > ${MAX_PEERS_PER_MESSAGE})`);
      const peers: PeerEntry[] = [];
      for (let index = 0; index < count; index += 1) {
        const nodeId = reader.u32();
        const addresses = readAddresses(reader);
        if (typeof addresses === "string") return decodeError(`bad peer entry: ${addresses}`);
        peers.push({ nodeId, addresses });
      }
      message = { type: "peers", peers };
      break;
    }
    case LinkMessageType.Goodbye:
      message = { type: "goodbye", detail: reader.shortString() };
      break;
    case LinkMessageType.Reset:
      message = { type: "reset" };
      break;
    default:
      return decodeError(`unknown link message type ${type}`);
  }
  if (reader.failed) return decodeError(`truncated ${message.type} message`);
  if (reader.remaining !== 0) return decodeError(`${reader.remaining} trailing bytes after ${message.type} message`);
  return decoded(message);
}

/**
 * Link-local messages (frame kind Link, module Link). Every payload starts with a u8 type.
 * Byte layouts are in docs/protocol.md ("Link messages").
 */
import { type Address, formatAddress, parseAddress } from "../core/address.js";
import { type Decoded, decodeError, decoded } from "../core/errors.js";
import type { NodeId } from "../core/node-id.js";
import { ByteReader, ByteWriter } from "../wire/bytes.js";
import { MAX_ADDRESSES_PER_PEER } from "./constants.js";
import { MAX_TAGS, TAG_PATTERN } from "./tags.js";

export const LinkMessageType = {
  Hello: 1,
  HelloAck: 2,
  HelloReject: 3,
  Probe: 4,
  ProbeAck: 5,
  Peers: 6,
  Goodbye: 7,
  Reset: 8,
  /** `peers`, version 2: with the sender's own tags and tags, flags and age per entry (discovery by tags). */
  PeersV2: 9,
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
  /** Version 2 (`peers` with `self`): the peer's discovery tags (link/tags.ts), sorted. */
  tags?: string[];
  /** Version 2: the peer links only by tags (it has --connect-tags): do not mesh with it. */
  selective?: boolean;
  /**
   * Version 2: seconds since a neighbour of the peer vouched for this entry (0: the sender is
   * linked to the peer now). Relayed entries age; past TAG_ENTRY_MAX_AGE_MS they are not relayed.
   */
  ageS?: number;
}

/** What a `peers` message (version 2) says of its sender. */
export interface PeerSelf {
  tags: string[];
  selective: boolean;
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
  /**
   * Without `self`: version 1 (type 6), entries are node ids and addresses only. With `self`:
   * version 2 (type 9), the sender's own tags and flags, and tags, flags and age in every entry.
   */
  | { type: "peers"; peers: PeerEntry[]; self?: PeerSelf }
  | { type: "goodbye"; detail: string }
  /** "I have no link with you": the receiver says hello again. */
  | { type: "reset" };

/** Peer entries per `peers` message at most: keeps one message inside one small datagram. */
export const MAX_PEERS_PER_MESSAGE = 24;
/** Entry flag bit 0 (version 2): the node is selective (it has --connect-tags). Other bits are 0. */
export const PEER_FLAG_SELECTIVE = 1;
/** Largest age a version-2 entry carries (u16 seconds). */
export const MAX_PEER_AGE_S = 0xffff;
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

function writeTags(writer: ByteWriter, tags: readonly string[] | undefined): void {
  const kept = (tags ?? []).filter((tag) => TAG_PATTERN.test(tag)).slice(0, MAX_TAGS);
  writer.u8(kept.length);
  for (const tag of kept) writer.shortString(tag);
}

function readTags(reader: ByteReader): string[] | string {
  const count = reader.u8();
  if (count > MAX_TAGS) return `too many tags (${count} > ${MAX_TAGS})`;
  const tags: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const tag = reader.shortString();
    if (reader.failed) return "truncated tag";
    if (!TAG_PATTERN.test(tag)) return `bad tag ${JSON.stringify(tag.slice(0, 40))}`;
    tags.push(tag);
  }
  return tags;
}

function readFlags(reader: ByteReader): boolean | string {
  const flags = reader.u8();
  if ((flags & ~PEER_FLAG_SELECTIVE) !== 0) return `unknown peer flags 0x${flags.toString(16)}`;
  return (flags & PEER_FLAG_SELECTIVE) !== 0;
}

/** Encoded size of one version-2 peer entry (the engine packs `peers` messages by size). */
export function peerEntryBytes(peer: PeerEntry): number {
  let size = 4 + 1 + 1 + 1 + 2;
  for (const address of peer.addresses.slice(0, MAX_ADDRESSES_PER_PEER)) size += 1 + formatAddress(address).length;
  for (const tag of (peer.tags ?? []).slice(0, MAX_TAGS)) size += 1 + tag.length;
  return size;
}

/** Encoded size of a version-2 `peers` message with no entries. */
export function peersHeaderBytes(self: PeerSelf): number {
  let size = 1 + 1 + 1 + 1;
  for (const tag of self.tags.slice(0, MAX_TAGS)) size += 1 + tag.length;
  return size;
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
      if (message.self !== undefined) {
        writer.u8(LinkMessageType.PeersV2).u8(message.self.selective ? PEER_FLAG_SELECTIVE : 0);
        writeTags(writer, message.self.tags);
        writer.u8(Math.min(message.peers.length, MAX_PEERS_PER_MESSAGE));
        for (const peer of message.peers.slice(0, MAX_PEERS_PER_MESSAGE)) {
          writer.u32(peer.nodeId);
          writeAddresses(writer, peer.addresses);
          writer.u8(peer.selective === true ? PEER_FLAG_SELECTIVE : 0);
          writeTags(writer, peer.tags);
          writer.u16(Math.max(0, Math.min(MAX_PEER_AGE_S, Math.floor(peer.ageS ?? 0))));
        }
        break;
      }
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
    case LinkMessageType.PeersV2: {
      const selective = readFlags(reader);
      if (typeof selective === "string") return decodeError(`bad peers message: ${selective}`);
      const tags = readTags(reader);
      if (typeof tags === "string") return decodeError(`bad peers message: ${tags}`);
      const count = reader.u8();
      if (count > MAX_PEERS_PER_MESSAGE) return decodeError(`too many peers in one message (${count} > ${MAX_PEERS_PER_MESSAGE})`);
      const peers: PeerEntry[] = [];
      for (let index = 0; index < count; index += 1) {
        const nodeId = reader.u32();
        const addresses = readAddresses(reader);
        if (typeof addresses === "string") return decodeError(`bad peer entry: ${addresses}`);
        const entrySelective = readFlags(reader);
        if (typeof entrySelective === "string") return decodeError(`bad peer entry: ${entrySelective}`);
        const entryTags = readTags(reader);
        if (typeof entryTags === "string") return decodeError(`bad peer entry: ${entryTags}`);
        const ageS = reader.u16();
        if (reader.failed) return decodeError("truncated peers message");
        peers.push({ nodeId, addresses, tags: entryTags, selective: entrySelective, ageS });
      }
      message = { type: "peers", peers, self: { tags, selective } };
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

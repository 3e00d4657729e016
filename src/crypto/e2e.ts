/**
 * End-to-end protection of unicast ROUTED frames: a relay forwards them on the 20-byte header
 * alone and can neither read the payload, nor alter it, nor forge its source.
 *
 * Keys (no extra round trip, so the first message to a node is already protected):
 *
 *   pair secret  ss = X25519(own static, peer static)                      (once per peer key)
 *   session key  K(S→D, session) = HKDF-SHA256(ikm = ss, salt = "skein e2e v1",
 *                    info = u32 S || u32 D || static(S) || static(D) || u64 session, 32 bytes)
 *
 * `session` is chosen by the sender when it starts: 48 bits of wall-clock ms and 16 random bits.
 * A restarted sender therefore has a new key (its counters restart at 0 without ever reusing a
 * nonce under a key), and receivers can order a source's sessions: a newer one replaces the old
 * one, an older one is refused as stale (a replay of a previous life).
 *
 * Sealed payload (the ROUTED frame's payload; the frame header's length covers all of it):
 *
 *   0   u48   session: sender start time, ms since the Unix epoch
 *   6   u16   session: random
 *   8   u64   counter (per destination and session, from 0)   (nonce = 4 zero bytes || counter)
 *   16  n     ciphertext (ChaCha20-Poly1305)
 *   …   16    tag
 *
 *   associated data = the 20-byte frame header with its TTL byte (offset 3) set to 0 — relays
 *                     decrement it — followed by bytes 0..16 above.
 *
 * Replay: a window of 2048 counters per source (the latest session only), for at most
 * E2E_MAX_PEERS sources (least recently used forgotten first). What is not covered — replays
 * after the receiver restarted or forgot a source, forward secrecy — is in docs/security.md.
 */
import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey } from "node:crypto";
import type { Entropy } from "../core/entropy.js";
import type { NodeId } from "../core/node-id.js";
import { FRAME_HEADER_BYTES, FRAME_VERSION, type FrameHeader, type FrameKind, writeFrameHeader } from "../wire/frame.js";
import type { NodeIdentity } from "./identity.js";
import { AEAD_ALGORITHM, KEY_BYTES, PUBLIC_KEY_BYTES, TAG_BYTES, bytesEqual, hkdfSha256, utf8, x25519 } from "./primitives.js";
import { type Result, fail, ok } from "./result.js";
import { ReplayWindow } from "./session.js";

export const E2E_HEADER_BYTES = 16;
export const E2E_OVERHEAD_BYTES = E2E_HEADER_BYTES + TAG_BYTES;
/** Peers (keys, sender and replay state) kept at most; the least recently used go first. */
export const E2E_MAX_PEERS = 4096;
const SALT = utf8.encode("skein e2e v1");
const MAX_SESSION_MS = 2 ** 48 - 1;

export type E2eErrorCode =
  /** Too short, or a counter beyond 2^53. */
  | "malformed"
  /** No static key known for the other end (learn it from a handshake or an identity record). */
  | "unknown_key"
  /** The peer's static key gives no DH (invalid key). */
  | "bad_key"
  /** The tag does not verify: altered payload or header, forged source, or another key. */
  | "auth"
  | "replay"
  | "too_old"
  /** An older session of that source than one already seen: a replay from a previous life. */
  | "stale_session";

/** The header fields of a ROUTED frame that the seal covers (TTL excluded). */
export interface E2eFrameHeader {
  kind: FrameKind;
  flags: number;
  source: NodeId;
  destination: NodeId;
  module: number;
}

interface Session {
  ms: number;
  random: number;
}

interface PeerState {
  staticKey: Uint8Array;
  pairSecret: Uint8Array;
  /** Sending to this peer. */
  sendKey: KeyObject | undefined;
  sendCounter: number;
  /** Receiving from this peer: its latest session. */
  receiveSession: Session | undefined;
  receiveKey: KeyObject | undefined;
  window: ReplayWindow | undefined;
}

export interface EndToEndOptions {
  identity: NodeIdentity;
  nodeId: NodeId;
  entropy: Entropy;
  /** Wall-clock ms since the Unix epoch when this node started: the session's time part. */
  startedAtMs: number;
  maxPeers?: number | undefined;
}

export class EndToEnd {
  readonly nodeId: NodeId;
  private readonly identity: NodeIdentity;
  private readonly session: Session;
  private readonly peers = new Map<NodeId, PeerState>();
  private readonly maxPeers: number;

  constructor(options: EndToEndOptions) {
    if (!Number.isSafeInteger(options.startedAtMs) || options.startedAtMs < 0 || options.startedAtMs > MAX_SESSION_MS) throw new RangeError("startedAtMs is not ms since 1970");
    this.identity = options.identity;
    this.nodeId = options.nodeId;
    const random = options.entropy.randomBytes(2);
    this.session = { ms: options.startedAtMs, random: (random[0]! << 8) | random[1]! };
    this.maxPeers = options.maxPeers ?? E2E_MAX_PEERS;
  }

  /**
   * Learns (or changes) a node's static X25519 key — from a completed handshake, or a verified
   * identity record. Returns false when the key is unusable. A changed key resets that peer.
   */
  setPeerKey(nodeId: NodeId, staticKey: Uint8Array): boolean {
    const existing = this.peers.get(nodeId);
    if (existing !== undefined && bytesEqual(existing.staticKey, staticKey)) {
      this.touch(nodeId, existing);
      return true;
    }
    if (staticKey.byteLength !== PUBLIC_KEY_BYTES) return false;
    const pairSecret = x25519(this.identity.dh, staticKey);
    if (pairSecret === undefined) return false;
    this.peers.delete(nodeId);
    while (this.peers.size >= this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
    this.peers.set(nodeId, {
      staticKey: Uint8Array.from(staticKey),
      pairSecret,
      sendKey: undefined,
      sendCounter: 0,
      receiveSession: undefined,
      receiveKey: undefined,
      window: undefined,
    });
    return true;
  }

  hasPeerKey(nodeId: NodeId): boolean {
    return this.peers.has(nodeId);
  }

  forgetPeer(nodeId: NodeId): void {
    this.peers.delete(nodeId);
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** Seals `plaintext` for `header.destination`: the payload to put in the frame. */
  seal(header: E2eFrameHeader, plaintext: Uint8Array): Result<Uint8Array, "unknown_key"> {
    const peer = this.peers.get(header.destination);
    if (peer === undefined) return fail("unknown_key", `no key known for node ${header.destination}: it must be learnt from a handshake or an identity record first`);
    this.touch(header.destination, peer);
    peer.sendKey ??= createSecretKey(this.deriveKey(this.nodeId, header.destination, this.identity.dh.publicKey, peer.staticKey, peer.pairSecret, this.session));
    const length = plaintext.byteLength;
    const sealed = new Uint8Array(E2E_OVERHEAD_BYTES + length);
    const view = new DataView(sealed.buffer);
    writeSession(view, this.session);
    view.setUint32(8, Math.floor(peer.sendCounter / 0x1_0000_0000));
    view.setUint32(12, peer.sendCounter >>> 0);
    peer.sendCounter += 1;
    const aad = associatedData(header, sealed);
    const cipher = createCipheriv(AEAD_ALGORITHM, peer.sendKey, nonceOf(sealed), { authTagLength: TAG_BYTES });
    cipher.setAAD(aad, { plaintextLength: length });
    if (length > 0) sealed.set(cipher.update(plaintext), E2E_HEADER_BYTES);
    cipher.final();
    sealed.set(cipher.getAuthTag(), E2E_HEADER_BYTES + length);
    return ok(sealed);
  }

  /** A whole ROUTED frame (header with `ttl`, sealed payload). */
  sealFrame(header: E2eFrameHeader, ttl: number, plaintext: Uint8Array): Result<Uint8Array, "unknown_key"> {
    const sealed = this.seal(header, plaintext);
    if (!sealed.ok) return sealed;
    const frame = new Uint8Array(FRAME_HEADER_BYTES + sealed.value.byteLength);
    writeFrameHeader(frame, 0, header, ttl, sealed.value.byteLength);
    frame.set(sealed.value, FRAME_HEADER_BYTES);
    return ok(frame);
  }

  /**
   * Opens the payload of a ROUTED frame addressed to this node, given its header (as read by
   * the frame codec). Total: any bytes give a failure, never an exception.
   */
  open(header: FrameHeader, sealed: Uint8Array): Result<Uint8Array, E2eErrorCode> {
    if (sealed.byteLength < E2E_OVERHEAD_BYTES) return fail("malformed", `sealed payload of ${sealed.byteLength} bytes is shorter than ${E2E_OVERHEAD_BYTES}`);
    if (header.length !== sealed.byteLength) return fail("malformed", `the frame header says ${header.length} payload bytes, ${sealed.byteLength} given`);
    const peer = this.peers.get(header.source);
    if (peer === undefined) return fail("unknown_key", `no key known for node ${header.source}, the claimed source`);
    const view = new DataView(sealed.buffer, sealed.byteOffset, E2E_HEADER_BYTES);
    const session = readSession(view);
    const high = view.getUint32(8);
    if (high > 0x1f_ffff) return fail("malformed", "counter beyond 2^53");
    const counter = high * 0x1_0000_0000 + view.getUint32(12);

    let key: KeyObject;
    let window: ReplayWindow;
    let fresh = false;
    const current = peer.receiveSession;
    const order = current === undefined ? 1 : compareSessions(session, current);
    if (order < 0) return fail("stale_session", `message from node ${header.source} of an older session than one already received (replayed from before it restarted?)`);
    if (order === 0) {
      key = peer.receiveKey!;
      window = peer.window!;
      const verdict = window.check(counter);
      if (verdict !== "ok") return fail(verdict, `message ${counter} from node ${header.source} ${verdict === "replay" ? "was already received" : "is older than the replay window"}`);
    } else {
      key = createSecretKey(this.deriveKey(header.source, this.nodeId, peer.staticKey, this.identity.dh.publicKey, peer.pairSecret, session));
      window = new ReplayWindow();
      fresh = true;
    }
    const length = sealed.byteLength - E2E_OVERHEAD_BYTES;
    let plaintext: Uint8Array;
    try {
      const decipher = createDecipheriv(AEAD_ALGORITHM, key, nonceOf(sealed), { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(header, sealed), { plaintextLength: length });
      decipher.setAuthTag(sealed.subarray(E2E_HEADER_BYTES + length));
      plaintext = length > 0 ? decipher.update(sealed.subarray(E2E_HEADER_BYTES, E2E_HEADER_BYTES + length)) : new Uint8Array(0);
      decipher.final();
    } catch {
      return fail("auth", `message claiming to come from node ${header.source} does not authenticate: altered by a relay, or a forged source`);
    }
    // Only an authenticated message may change state.
    if (fresh) {
      peer.receiveSession = session;
      peer.receiveKey = key;
      peer.window = window;
    }
    window.accept(counter);
    this.touch(header.source, peer);
    return ok(plaintext);
  }

  private deriveKey(source: NodeId, destination: NodeId, sourceStatic: Uint8Array, destinationStatic: Uint8Array, pairSecret: Uint8Array, session: Session): Uint8Array {
    const info = new Uint8Array(4 + 4 + PUBLIC_KEY_BYTES * 2 + 8);
    const view = new DataView(info.buffer);
    view.setUint32(0, source);
    view.setUint32(4, destination);
    info.set(sourceStatic, 8);
    info.set(destinationStatic, 8 + PUBLIC_KEY_BYTES);
    writeSession(new DataView(info.buffer, 8 + PUBLIC_KEY_BYTES * 2), session);
    return hkdfSha256(pairSecret, SALT, info, KEY_BYTES);
  }

  private touch(nodeId: NodeId, peer: PeerState): void {
    // Map order is insertion order: re-inserting makes it the most recently used.
    this.peers.delete(nodeId);
    this.peers.set(nodeId, peer);
  }
}

function writeSession(view: DataView, session: Session): void {
  view.setUint16(0, Math.floor(session.ms / 0x1_0000_0000));
  view.setUint32(2, session.ms >>> 0);
  view.setUint16(6, session.random);
}

function readSession(view: DataView): Session {
  return { ms: view.getUint16(0) * 0x1_0000_0000 + view.getUint32(2), random: view.getUint16(6) };
}

function compareSessions(a: Session, b: Session): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.random - b.random;
}

function nonceOf(sealed: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce.set(sealed.subarray(8, 16), 4);
  return nonce;
}

/** The frame header as it will be sent, TTL zeroed, then the e2e header (session and counter). */
function associatedData(header: E2eFrameHeader, sealed: Uint8Array): Uint8Array {
  const aad = new Uint8Array(FRAME_HEADER_BYTES + E2E_HEADER_BYTES);
  writeFrameHeader(aad, 0, header, 0, sealed.byteLength);
  aad[0] = FRAME_VERSION;
  aad.set(sealed.subarray(0, E2E_HEADER_BYTES), FRAME_HEADER_BYTES);
  return aad;
}

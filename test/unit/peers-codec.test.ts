/**
 * The `peers` link message, version 2 (type 9): the sender's own tags and flags, and tags, flags
 * and age in every entry (docs/protocol.md, "Link messages"). Round trips, exact bytes, limits,
 * and total decoding of garbage and of every truncation and byte flip of valid messages.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Address } from "../../src/core/address.js";
import { SeededRng } from "../../src/core/rng.js";
import { LinkMessageType, MAX_PEERS_PER_MESSAGE, type LinkMessage, type PeerEntry, decodeLinkMessage, encodeLinkMessage, peerEntryBytes, peersHeaderBytes } from "../../src/link/messages.js";

const UDP: Address = { transport: "udp", host: "127.0.0.1", port: 7001 };
const TCP: Address = { transport: "tcp", host: "10.0.0.2", port: 7002 };

function entry(nodeId: number, tags: string[], selective = false, ageS = 0, addresses: Address[] = [UDP]): PeerEntry {
  return { nodeId, addresses, tags, selective, ageS };
}

function roundTrip(message: LinkMessage): LinkMessage {
  const decoded = decodeLinkMessage(encodeLinkMessage(message));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return decoded.value;
}

test("peers v2: round trip with own tags, per-entry tags, flags and age", () => {
  const message: LinkMessage = {
    type: "peers",
    self: { tags: ["edge", "eu-west"], selective: true },
    peers: [entry(7, ["gpu", "x.y_z-0"], false, 0, [UDP, TCP]), entry(4_000_000_000, [], true, 65_535), entry(2, ["a".repeat(32)], false, 59)],
  };
  assert.deepEqual(roundTrip(message), message);
  const empty: LinkMessage = { type: "peers", self: { tags: [], selective: false }, peers: [] };
  assert.deepEqual(roundTrip(empty), empty);
  assert.deepEqual([...encodeLinkMessage(empty)], [LinkMessageType.PeersV2, 0, 0, 0]);
});

test("peers v2: exact bytes of one entry", () => {
  const bytes = encodeLinkMessage({ type: "peers", self: { tags: ["ab"], selective: true }, peers: [entry(0x01020304, ["c"], true, 300, [])] });
  assert.deepEqual(
    [...bytes],
    [9, 1, 1, 2, 0x61, 0x62, 1, 1, 2, 3, 4, 0, 1, 1, 1, 0x63, 0x01, 0x2c],
  );
  assert.equal(bytes.byteLength, peersHeaderBytes({ tags: ["ab"], selective: true }) + peerEntryBytes(entry(0x01020304, ["c"], true, 300, [])));
});

test("peers v1 (type 6) still decodes, without tags", () => {
  const v1: LinkMessage = { type: "peers", peers: [{ nodeId: 3, addresses: [UDP] }] };
  const bytes = encodeLinkMessage(v1);
  assert.equal(bytes[0], LinkMessageType.Peers);
  assert.deepEqual(roundTrip(v1), v1);
});

test("peers v2: the encoder keeps the limits (entries, tags, age) and drops invalid tags", () => {
  const many = Array.from({ length: MAX_PEERS_PER_MESSAGE + 5 }, (_, index) => entry(index + 1, ["t"]));
  const decoded = roundTrip({ type: "peers", self: { tags: [], selective: false }, peers: many });
  assert.equal(decoded.type === "peers" ? decoded.peers.length : -1, MAX_PEERS_PER_MESSAGE);
  const odd = roundTrip({
    type: "peers",
    self: { tags: ["ok", "Not OK", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"], selective: false },
    peers: [entry(1, ["fine", "bad tag"], false, 1e9), entry(2, [], false, -5)],
  });
  assert.ok(odd.type === "peers" && odd.self !== undefined);
  assert.deepEqual(odd.self.tags, ["ok", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]);
  assert.deepEqual(odd.peers.map((peer) => [peer.tags, peer.ageS]), [
    [["fine"], 65_535],
    [[], 0],
  ]);
});

test("peers v2: bad input is refused with a reason", () => {
  const cases: [number[], RegExp][] = [
    [[9, 2, 0, 0], /unknown peer flags 0x2/],
    [[9, 0, 9, 0], /too many tags \(9 > 8\)/],
    [[9, 0, 1, 2, 0x41, 0x42, 0], /bad tag "AB"/],
    [[9, 0, 1, 0, 0], /bad tag ""/],
    [[9, 0, 0, 25], /too many peers in one message \(25 > 24\)/],
    [[9, 0, 0, 1, 0, 0, 0, 1, 0, 0x80, 0, 0, 0], /unknown peer flags 0x80/],
    [[9, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 3, 0x61, 0x20, 0x62, 0, 0], /bad tag "a b"/],
    [[9, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], /truncated/],
    [[9, 0, 0, 0, 7], /1 trailing bytes after peers message/],
  ];
  for (const [bytes, pattern] of cases) {
    const decoded = decodeLinkMessage(Uint8Array.from(bytes));
    assert.equal(decoded.ok, false, JSON.stringify(bytes));
    assert.match(decoded.ok ? "" : decoded.error, pattern, JSON.stringify(bytes));
  }
});

test("peers v2: every truncation fails, every byte flip decodes or fails, never throws", () => {
  const bytes = encodeLinkMessage({
    type: "peers",
    self: { tags: ["edge"], selective: true },
    peers: [entry(7, ["gpu", "eu"], false, 3, [UDP, TCP]), entry(9, [], true, 0)],
  });
  for (let length = 0; length < bytes.byteLength; length += 1) {
    assert.equal(decodeLinkMessage(bytes.subarray(0, length)).ok, false, `prefix of ${length} bytes`);
  }
  const rng = new SeededRng(6);
  for (let round = 0; round < 5000; round += 1) {
    const mutated = Uint8Array.from(bytes);
    const flips = 1 + rng.nextInt(3);
    for (let flip = 0; flip < flips; flip += 1) mutated[rng.nextInt(mutated.byteLength)] = rng.nextInt(256);
    const decoded = decodeLinkMessage(mutated);
    if (decoded.ok && decoded.value.type === "peers" && decoded.value.self !== undefined) {
      // Whatever decodes survives a re-encoding unchanged (addresses are normalized, so compare values).
      assert.deepEqual(decodeLinkMessage(encodeLinkMessage(decoded.value)), decoded);
    }
  }
  for (let round = 0; round < 5000; round += 1) {
    const garbage = new Uint8Array(1 + rng.nextInt(300));
    for (let index = 0; index < garbage.byteLength; index += 1) garbage[index] = rng.nextInt(256);
    garbage[0] = 9;
    const decoded = decodeLinkMessage(garbage);
    if (decoded.ok) assert.equal(decoded.value.type, "peers");
  }
});

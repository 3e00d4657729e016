/** Collector messages (module 5): exact bytes, round trips, total decoders; the model's life cycle. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type Snapshot,
  SnapshotFlag,
  decodeCollectorMessage,
  encodeAdvert,
  encodeSnapshot,
} from "../../src/features/collector/messages.js";
import { CollectorModel, serialNewer } from "../../src/features/collector/model.js";
import { MAX_MODEL_NODES, MAX_TAG_BYTES } from "../../src/features/collector/constants.js";

function snapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    seq: 7,
    flags: 0,
    intervalMs: 1000,
    uptimeS: 42,
    version: "0.1.0",
    tags: ["eu", "gpu"],
    counters: { framesIn: 10, framesOut: 20, bytesIn: 3000, bytesOut: 4000, framesForwarded: 5, framesDropped: 1 },
    neighbours: [
      { id: 2, srttMs: 12.345, rttvarMs: 1.5, loss: 0.25 },
      { id: 3, srttMs: undefined, rttvarMs: undefined, loss: 0 },
    ],
    routes: [
      { destination: 2, nextHop: 2, metricMs: 6.2, hops: 1 },
      { destination: 9, nextHop: undefined, metricMs: undefined, hops: 0 },
    ],
    ...overrides,
  };
}

describe("collector messages", () => {
  it("ADVERT is type 1, u32 collector, u32 seq", () => {
    assert.deepEqual([...encodeAdvert(0x01020304, 0xfffffffe)], [1, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe]);
    assert.deepEqual(decodeCollectorMessage(encodeAdvert(5, 9)), { type: "advert", collector: 5, seq: 9 });
  });

  it("SNAPSHOT round-trips (RTTs in µs, loss in 1/65535) and has the documented size", () => {
    const bytes = encodeSnapshot(snapshot());
    // type, format, flags, seq, interval, uptime; STR8 version; tags; 6 f64 counters; neighbours; routes.
    assert.equal(bytes.byteLength, 3 + 12 + (1 + 5) + 1 + (1 + 2) + (1 + 3) + 48 + 2 + 2 * 14 + 2 + 2 * 13);
    assert.deepEqual([...bytes.subarray(0, 15)], [2, 1, 0, 0, 0, 0, 7, 0, 0, 0x03, 0xe8, 0, 0, 0, 42]);
    const decoded = decodeCollectorMessage(bytes);
    assert.ok(!(decoded instanceof Error) && decoded.type === "snapshot");
    const s = decoded.snapshot;
    assert.equal(s.neighbours[0]!.srttMs, 12.345);
    assert.equal(s.neighbours[0]!.rttvarMs, 1.5);
    assert.ok(Math.abs(s.neighbours[0]!.loss - 0.25) < 1e-4);
    assert.equal(s.neighbours[1]!.srttMs, undefined);
    assert.deepEqual(s.routes, snapshot().routes);
    assert.deepEqual({ ...s, neighbours: [], routes: [] }, { ...snapshot(), neighbours: [], routes: [] });
  });

  it("cuts long tags at a character boundary (valid UTF-8 on the wire)", () => {
    const long = "é".repeat(40);
    const decoded = decodeCollectorMessage(encodeSnapshot(snapshot({ tags: [long], version: "v".repeat(100) })));
    assert.ok(!(decoded instanceof Error) && decoded.type === "snapshot");
    assert.equal(decoded.snapshot.tags[0], "é".repeat(MAX_TAG_BYTES / 2));
    assert.equal(decoded.snapshot.version.length, 32);
  });

  it("decoders are total: every truncation, trailing bytes, unknown types and bad values are errors", () => {
    const bytes = encodeSnapshot(snapshot());
    for (let length = 0; length < bytes.byteLength; length++) {
      assert.ok(decodeCollectorMessage(bytes.subarray(0, length)) instanceof Error, `truncated at ${length}`);
    }
    assert.ok(decodeCollectorMessage(new Uint8Array([...bytes, 0])) instanceof Error, "trailing byte");
    assert.ok(decodeCollectorMessage(new Uint8Array([3])) instanceof Error, "unknown type");
    assert.ok(decodeCollectorMessage(encodeAdvert(0, 1)) instanceof Error, "advert from node 0");
    const badFormat = new Uint8Array(bytes);
    badFormat[1] = 2;
    assert.match(String(decodeCollectorMessage(badFormat)), /format 2 unknown/);
    const zeroInterval = encodeSnapshot(snapshot({ intervalMs: 0 }));
    assert.ok(decodeCollectorMessage(zeroInterval) instanceof Error);
    const badUtf8 = new Uint8Array(encodeSnapshot(snapshot({ version: "ab" })));
    badUtf8[16] = 0xff;
    assert.match(String(decodeCollectorMessage(badUtf8)), /UTF-8/);
    // Random bytes never throw.
    let seed = 1;
    for (let i = 0; i < 2000; i++) {
      const random = new Uint8Array(1 + (i % 200));
      for (let j = 0; j < random.length; j++) random[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      random[0] = 1 + (i % 2);
      decodeCollectorMessage(random);
    }
  });
});

describe("collector model", () => {
  it("keeps the newest snapshot (serial arithmetic), accepts a restart, refuses past its bound", () => {
    assert.equal(serialNewer(1, 0xffffffff), true);
    assert.equal(serialNewer(0xffffffff, 1), false);
    assert.equal(serialNewer(5, 5), false);
    const model = new CollectorModel(1);
    assert.equal(model.ingest(0, 2, snapshot({ seq: 5, uptimeS: 10 })), "accepted");
    assert.equal(model.ingest(10, 2, snapshot({ seq: 4, uptimeS: 11 })), "old");
    assert.equal(model.ingest(10, 2, snapshot({ seq: 5, uptimeS: 10 })), "old");
    assert.equal(model.ingest(20, 2, snapshot({ seq: 1, uptimeS: 0 })), "accepted", "restarted node");
    for (let id = 3; model.size < MAX_MODEL_NODES; id++) model.ingest(30, id, snapshot());
    assert.equal(model.ingest(30, 0xfffffff0, snapshot()), "refused");
    assert.equal(model.stats().snapshotsRefused, 1);
  });

  it("live → stale at 3 intervals → forgotten at 10, by each node's own interval; links need both ends", () => {
    const model = new CollectorModel(1);
    model.ingest(0, 1, snapshot({ intervalMs: 1000, neighbours: [{ id: 2, srttMs: 10, rttvarMs: 1, loss: 0 }] }));
    model.ingest(0, 2, snapshot({ intervalMs: 200, neighbours: [{ id: 1, srttMs: 14, rttvarMs: 3, loss: 0.5 }, { id: 3, srttMs: 5, rttvarMs: 1, loss: 0 }] }));
    assert.equal(model.nextDeadline(), 600);
    const view = model.topology(0);
    assert.deepEqual(view.links, [{ a: 1, b: 2, srtt_ms: 12, srtt_a_ms: 10, srtt_b_ms: 14, rttvar_ms: 3, loss: 0.5, state: "live" }]);
    model.tick(599);
    assert.equal(model.state(2), "live");
    const before = model.version;
    model.tick(600);
    assert.equal(model.state(2), "stale");
    assert.ok(model.version > before);
    assert.equal(model.topology(600).links[0]!.state, "live", "node 1 (live) still reports the link");
    model.tick(1999);
    assert.equal(model.state(2), "stale");
    model.tick(2000);
    assert.equal(model.state(2), undefined);
    assert.deepEqual(model.topology(2000).links, []);
    model.tick(3000);
    assert.equal(model.state(1), "stale");
    model.tick(10_000);
    assert.equal(model.size, 0);
    assert.equal(model.nextDeadline(), Infinity);
  });

  it("marks collectors and truncated snapshots", () => {
    const model = new CollectorModel(1);
    model.ingest(0, 1, snapshot({ flags: SnapshotFlag.Collector | SnapshotFlag.Truncated }));
    const node = model.topology(5).nodes[0]!;
    assert.equal(node.collector, true);
    assert.equal(node.truncated, true);
    assert.equal(node.age_ms, 5);
  });
});

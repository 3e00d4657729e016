import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ACK_EVERY_SEGMENTS,
  ARQ_MAX_MESSAGE_BYTES,
  DELAYED_ACK_MS,
  ArqChannel,
  type ArqConfig,
  DEFAULT_ARQ_CONFIG,
} from "../../src/link/arq.js";
import { SeededRng } from "../../src/core/rng.js";

// ---------------------------------------------------------------- helpers

function config(overrides: Partial<ArqConfig> = {}): ArqConfig {
  return { ...DEFAULT_ARQ_CONFIG, maxSegmentBytes: 100, ...overrides };
}

function u32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at);
}

function segmentBytes(seq: number, flags: number, data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  new DataView(out.buffer).setUint32(0, seq >>> 0);
  out[4] = flags;
  out.set(data, 5);
  return out;
}

function ackBytes(cumulative: number, window: number, blocks: [number, number][]): Uint8Array {
  const out = new Uint8Array(7 + 8 * blocks.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, cumulative >>> 0);
  view.setUint16(4, window);
  out[6] = blocks.length;
  blocks.forEach(([start, end], i) => {
    view.setUint32(7 + 8 * i, start >>> 0);
    view.setUint32(11 + 8 * i, end >>> 0);
  });
  return out;
}

interface ParsedAck {
  cumulative: number;
  window: number;
  blocks: [number, number][];
}

/** An independent decoder of the documented ack format, so tests check the bytes, not the code. */
function parseAck(bytes: Uint8Array): ParsedAck {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes[6]!;
  assert.equal(bytes.byteLength, 7 + 8 * count, "ack length matches its block count");
  const blocks: [number, number][] = [];
  for (let i = 0; i < count; i++) blocks.push([view.getUint32(7 + 8 * i), view.getUint32(11 + 8 * i)]);
  return { cumulative: view.getUint32(0), window: view.getUint16(4), blocks };
}

function serialLt(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x8000_0000;
}

function drainSegments(channel: ArqChannel, now: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let s = channel.pollSegment(now); s !== undefined; s = channel.pollSegment(now)) out.push(s.slice());
  return out;
}

function makeMessages(rng: SeededRng, count: number, maxBytes: number): Uint8Array[] {
  const messages: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const length = rng.nextInt(10) === 0 ? 0 : rng.nextInt(maxBytes + 1);
    const message = new Uint8Array(length);
    for (let j = 0; j < length; j++) message[j] = rng.nextU32() & 0xff;
    messages.push(message);
  }
  return messages;
}

function fnv(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16);
}

// ---------------------------------------------------------------- virtual network

interface NetOptions {
  delayMs: number;
  jitterMs: number;
  loss: number;
  duplicate: number;
  /** Probability that a packet takes an extra random delay of up to reorderExtraMs. */
  reorder: number;
  reorderExtraMs: number;
}

const CLEAN_NET: NetOptions = { delayMs: 20, jitterMs: 4, loss: 0, duplicate: 0, reorder: 0, reorderExtraMs: 0 };

type Kind = "segment" | "ack";

interface Packet {
  at: number;
  id: number;
  to: 0 | 1;
  kind: Kind;
  bytes: Uint8Array;
}

/** A binary heap of packets ordered by (delivery time, send order): deterministic. */
class VirtualNet {
  private heap: Packet[] = [];
  private nextId = 0;
  private readonly lastAt = [0, 0];
  constructor(
    private readonly rng: SeededRng,
    private readonly options: NetOptions,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  transmit(now: number, from: 0 | 1, kind: Kind, bytes: Uint8Array): void {
    const o = this.options;
    if (this.rng.nextFloat() < o.loss) return;
    const copies = this.rng.nextFloat() < o.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let at = now + o.delayMs + this.rng.nextFloat() * o.jitterMs;
      if (this.rng.nextFloat() < o.reorder) {
        at += this.rng.nextFloat() * o.reorderExtraMs;
      } else {
        // A path is a queue: jitter delays packets but does not overtake; only `reorder` does.
        at = Math.max(at, this.lastAt[from]!);
        this.lastAt[from] = at;
      }
      // Each copy gets its own buffer, as a real socket would; the receiver scribbles on it later.
      this.push({ at, id: this.nextId++, to: from === 0 ? 1 : 0, kind, bytes: bytes.slice() });
    }
  }

  nextAt(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0]!.at;
  }

  popDue(now: number): Packet | undefined {
    if (this.heap.length === 0 || this.heap[0]!.at > now) return undefined;
    const top = this.heap[0]!;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private less(a: Packet, b: Packet): boolean {
    return a.at < b.at || (a.at === b.at && a.id < b.id);
  }

  private push(p: Packet): void {
    const h = this.heap;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

interface Scenario {
  seed: number;
  net: NetOptions;
  config: ArqConfig;
  /** Messages node 0 sends to node 1 and node 1 sends to node 0. */
  outbox: [Uint8Array[], Uint8Array[]];
  /** When set, a node's application drains its delivered messages only every drainEveryMs. */
  drainEveryMs?: number;
  maxVirtualMs?: number;
  /** Called for every packet put on the wire (before loss) and every packet handed to a node. */
  onWire?: (event: "transmit" | "deliver", now: number, from: 0 | 1, kind: Kind, bytes: Uint8Array) => void;
  /** Called with the number of messages an application drained in one wakeup. */
  onDrain?: (node: 0 | 1, count: number) => void;
}

interface Outcome {
  delivered: [Uint8Array[], Uint8Array[]];
  channels: [ArqChannel, ArqChannel];
  trace: string[];
  refusals: number;
  endMs: number;
}

/**
 * Runs two channels over the virtual network until every message is delivered and acknowledged,
 * then lets the network empty (late duplicates included) and checks nothing more is delivered.
 */
function run(s: Scenario): Outcome {
  const rng = new SeededRng(s.seed);
  const net = new VirtualNet(rng, s.net);
  const nodes: [ArqChannel, ArqChannel] = [new ArqChannel(s.config), new ArqChannel(s.config)];
  const delivered: [Uint8Array[], Uint8Array[]] = [[], []];
  const offered = [0, 0];
  const trace: string[] = [];
  let refusals = 0;
  let now = 0;
  let nextDrainAt = 0;
  const maxMs = s.maxVirtualMs ?? 3_600_000;

  const transmit = (from: 0 | 1, kind: Kind, bytes: Uint8Array): void => {
    trace.push(`${now.toFixed(3)} ${from} ${kind} ${bytes.byteLength} ${fnv(bytes)}`);
    s.onWire?.("transmit", now, from, kind, bytes);
    net.transmit(now, from, kind, bytes);
  };

  const complete = (): boolean =>
    ([0, 1] as const).every(
      (i) => offered[i] === s.outbox[i].length && delivered[i === 0 ? 1 : 0].length === s.outbox[i].length && nodes[i].queuedBytes === 0,
    );

  const step = (): void => {
    for (const i of [0, 1] as const) {
      while (offered[i]! < s.outbox[i].length) {
        if (!nodes[i].send(now, s.outbox[i][offered[i]!]!)) {
          refusals++;
          break;
        }
        offered[i]!++;
      }
      for (let seg = nodes[i].pollSegment(now); seg !== undefined; seg = nodes[i].pollSegment(now)) transmit(i, "segment", seg);
    }
    const drainNow = s.drainEveryMs === undefined || now >= nextDrainAt;
    if (drainNow) {
      if (s.drainEveryMs !== undefined) nextDrainAt = (Math.floor(now / s.drainEveryMs) + 1) * s.drainEveryMs;
      for (const i of [0, 1] as const) {
        let count = 0;
        for (let m = nodes[i].pollDelivered(); m !== undefined; m = nodes[i].pollDelivered()) {
          delivered[i].push(m);
          trace.push(`${now.toFixed(3)} ${i} delivered ${m.byteLength} ${fnv(m)}`);
          count++;
        }
        if (s.drainEveryMs !== undefined) s.onDrain?.(i, count);
        // A window update may be owed after draining.
        const ack = nodes[i].pollAck();
        if (ack !== undefined) transmit(i, "ack", ack);
      }
    }
  };

  const deliverDue = (): void => {
    for (let p = net.popDue(now); p !== undefined; p = net.popDue(now)) {
      const node = nodes[p.to];
      s.onWire?.("deliver", now, p.to === 0 ? 1 : 0, p.kind, p.bytes);
      const error = p.kind === "segment" ? node.onSegment(now, p.bytes) : node.onAck(now, p.bytes);
      assert.equal(error, undefined, `well-formed ${p.kind} rejected`);
      // The channel must have copied what it keeps: the packet buffer is reused by the socket.
      p.bytes.fill(0xee);
      const ack = node.pollAck();
      if (ack !== undefined) transmit(p.to, "ack", ack);
    }
  };

  for (;;) {
    step();
    if (complete()) break;
    let next = Math.min(net.nextAt(), nodes[0].nextDeadline(), nodes[1].nextDeadline());
    if (s.drainEveryMs !== undefined) next = Math.min(next, nextDrainAt);
    assert.ok(next !== Infinity, `stalled at ${now} ms with nothing scheduled`);
    assert.ok(next <= maxMs, `not finished after ${maxMs} virtual ms`);
    now = Math.max(now, next);
    deliverDue();
    nodes[0].tick(now);
    nodes[1].tick(now);
  }
  const endMs = now;
  // Let stragglers (late duplicates, retransmissions already on the wire) arrive.
  while (net.size > 0) {
    now = Math.max(now, net.nextAt());
    deliverDue();
    step();
  }
  for (const i of [0, 1] as const) {
    assert.equal(nodes[i].pollDelivered(), undefined, "nothing delivered twice");
    assert.equal(nodes[i].nextDeadline(), Infinity, "no timer left once everything is acknowledged");
  }
  return { delivered, channels: nodes, trace, refusals, endMs };
}

function assertSameMessages(actual: Uint8Array[], expected: Uint8Array[]): void {
  assert.equal(actual.length, expected.length, "message count");
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(actual[i], expected[i], `message ${i} differs`);
  }
}

function oneWay(seed: number, net: NetOptions, count: number, maxBytes: number, overrides: Partial<ArqConfig> = {}): Outcome {
  const messages = makeMessages(new SeededRng(seed ^ 0x5eed), count, maxBytes);
  const outcome = run({ seed, net, config: config(overrides), outbox: [messages, []] });
  assertSameMessages(outcome.delivered[1], messages);
  assert.equal(outcome.delivered[0].length, 0);
  return outcome;
}

// ---------------------------------------------------------------- exact outputs

describe("arq: exact wire output", () => {
  test("fragments a message into segments and acks with SACK blocks", () => {
    const a = new ArqChannel(config({ maxSegmentBytes: 4, receiveWindowSegments: 8 }));
    const b = new ArqChannel(config({ maxSegmentBytes: 4, receiveWindowSegments: 8 }));
    assert.equal(a.send(0, new TextEncoder().encode("abcdef")), true);
    assert.equal(a.queuedBytes, 6 + 2 * 5);
    const [s0, s1, ...rest] = drainSegments(a, 0);
    assert.equal(rest.length, 0);
    assert.deepEqual(s0, Uint8Array.of(0, 0, 0, 0, 0, 97, 98, 99, 100));
    assert.deepEqual(s1, Uint8Array.of(0, 0, 0, 1, 1, 101, 102));

    assert.equal(b.pollAck(), undefined, "no ack before any segment");
    assert.equal(b.onSegment(10, s1!), undefined);
    assert.equal(b.pollDelivered(), undefined, "second fragment alone is not a message");
    assert.deepEqual(b.pollAck(), Uint8Array.of(0, 0, 0, 0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 2));
    assert.equal(b.pollAck(), undefined, "one ack per arrival");
    assert.equal(b.onSegment(11, s0!), undefined);
    // The undelivered message still occupies two slots of the window.
    assert.deepEqual(b.pollAck(), Uint8Array.of(0, 0, 0, 2, 0, 6, 0));
    assert.deepEqual(b.pollDelivered(), new TextEncoder().encode("abcdef"));
    assert.equal(b.pollDelivered(), undefined);
    assert.equal(b.stats.outOfOrderReceived, 1);
    assert.equal(b.stats.delivered, 1);

    assert.equal(a.onAck(40, Uint8Array.of(0, 0, 0, 2, 0, 6, 0)), undefined);
    assert.equal(a.queuedBytes, 0);
    assert.equal(a.srttMs, 40);
    assert.equal(a.nextDeadline(), Infinity);
  });

  test("zero-length message is one segment with only the last-fragment flag", () => {
    const a = new ArqChannel(config());
    const b = new ArqChannel(config());
    assert.equal(a.send(0, new Uint8Array(0)), true);
    assert.equal(a.queuedBytes, 5);
    const segments = drainSegments(a, 0);
    assert.deepEqual(segments, [Uint8Array.of(0, 0, 0, 0, 1)]);
    assert.equal(b.onSegment(1, segments[0]!), undefined);
    assert.deepEqual(b.pollDelivered(), new Uint8Array(0));
    assert.equal(b.pollDelivered(), undefined);
  });

  test("RTO: RFC 6298 initial value, estimate, backoff and Karn's rule", () => {
    const a = new ArqChannel(config());
    a.send(0, Uint8Array.of(1));
    assert.deepEqual(drainSegments(a, 0), [Uint8Array.of(0, 0, 0, 0, 1, 1)]);
    assert.equal(a.nextDeadline(), 1000, "initial RTO is 1 s");
    assert.equal(a.onAck(100, ackBytes(1, 1024, [])), undefined);
    assert.equal(a.srttMs, 100);
    assert.equal(a.rtoMs, 100 + 4 * 50);

    a.send(200, Uint8Array.of(2));
    const [second] = drainSegments(a, 200);
    assert.equal(u32(second!, 0), 1);
    assert.equal(a.nextDeadline(), 500);
    assert.equal(a.pollSegment(499), undefined, "not due yet");
    a.tick(500);
    assert.equal(a.rtoMs, 600, "backed off");
    assert.equal(a.consecutiveTimeouts, 1);
    assert.deepEqual(a.pollSegment(500), second);
    assert.equal(a.pollSegment(500), undefined);
    assert.equal(a.stats.retransmits, 1);
    assert.equal(a.stats.segmentsSent, 3);
    assert.equal(a.nextDeadline(), 1100);
    a.tick(1100);
    assert.equal(a.rtoMs, 1200);
    assert.deepEqual(a.pollSegment(1100), second);

    assert.equal(a.onAck(1150, ackBytes(2, 1024, [])), undefined);
    assert.equal(a.srttMs, 100, "no sample from a retransmitted segment");
    assert.equal(a.rtoMs, 1200, "backoff kept until a valid sample");
    assert.equal(a.consecutiveTimeouts, 0);

    a.send(1200, Uint8Array.of(3));
    drainSegments(a, 1200);
    a.onAck(1250, ackBytes(3, 1024, []));
    // RTTVAR = 3/4·50 + 1/4·|100 − 50| = 50; SRTT = 7/8·100 + 1/8·50 = 93.75
    assert.equal(a.srttMs, 93.75);
    assert.equal(a.rtoMs, 93.75 + 200);
  });

  test("RTO backs off once per loss episode, again when a retransmission times out", () => {
    const a = new ArqChannel(config());
    a.send(0, Uint8Array.of(1));
    drainSegments(a, 0);
    a.send(10, Uint8Array.of(2));
    drainSegments(a, 10);
    a.tick(1000);
    assert.equal(a.rtoMs, 2000);
    assert.deepEqual(drainSegments(a, 1000).map((s) => u32(s, 0)), [0]);
    assert.equal(a.nextDeadline(), 2010, "segment 1, sent before the backoff, now waits the longer RTO");
    a.tick(2010);
    assert.equal(a.rtoMs, 2000, "same episode: no second doubling");
    assert.deepEqual(drainSegments(a, 2010).map((s) => u32(s, 0)), [1]);
    assert.equal(a.nextDeadline(), 3000);
    a.tick(3000);
    assert.equal(a.rtoMs, 4000, "the retransmission itself timed out");
    assert.equal(a.consecutiveTimeouts, 2);
  });

  test("RTO is clamped to minRtoMs and maxRtoMs", () => {
    const a = new ArqChannel(config({ minRtoMs: 30, maxRtoMs: 5000 }));
    a.send(0, Uint8Array.of(1));
    drainSegments(a, 0);
    a.onAck(2, ackBytes(1, 1024, []));
    assert.equal(a.rtoMs, 30);
    a.send(10, Uint8Array.of(2));
    drainSegments(a, 10);
    let now = 10;
    for (let i = 0; i < 12; i++) {
      now = a.nextDeadline();
      a.tick(now);
      assert.ok(a.pollSegment(now) !== undefined);
    }
    assert.equal(a.rtoMs, 5000);
  });

  test("fast retransmit once segments sent 3 later are SACKed", () => {
    const a = new ArqChannel(config({ maxSegmentBytes: 1 }));
    for (let i = 0; i < 5; i++) a.send(0, Uint8Array.of(i));
    const sent = drainSegments(a, 0);
    assert.deepEqual(sent.map((s) => u32(s, 0)), [0, 1, 2, 3, 4]);
    // Only segment 2 arrived: 0 and 1 may still be on their way (reordering), nothing is resent.
    a.onAck(20, ackBytes(0, 1024, [[2, 3]]));
    assert.equal(a.srttMs, 20);
    assert.equal(a.pollSegment(20), undefined);
    assert.equal(a.nextDeadline(), 20 + 4 * 10, "only the RTO is pending");
    // Segment 4, sent three after 1, arrived: 0 and 1 are lost once they had 1.25 × SRTT to arrive.
    a.onAck(20, ackBytes(0, 1024, [[4, 5], [2, 3]]));
    assert.equal(a.pollSegment(20), undefined);
    assert.equal(a.nextDeadline(), 25);
    assert.equal(a.pollSegment(24.9), undefined);
    assert.deepEqual(drainSegments(a, 25).map((s) => u32(s, 0)), [0, 1], "3 was sent too recently to be lost");
    assert.equal(a.stats.retransmits, 2);
    assert.equal(a.queuedBytes, 3 * 6, "SACKed segments are released");
  });

  test("sender respects the send window", () => {
    const a = new ArqChannel(config({ sendWindowSegments: 3 }));
    for (let i = 0; i < 10; i++) a.send(0, Uint8Array.of(i));
    assert.equal(drainSegments(a, 0).length, 3);
    a.onAck(10, ackBytes(2, 1024, []));
    assert.deepEqual(drainSegments(a, 10).map((s) => u32(s, 0)), [3, 4]);
    assert.equal(a.inFlightSegments, 3);
  });

  test("sender respects the peer's window and probes a closed one", () => {
    const a = new ArqChannel(config({ receiveWindowSegments: 4 }));
    for (let i = 0; i < 10; i++) a.send(0, Uint8Array.of(i));
    assert.deepEqual(drainSegments(a, 0).map((s) => u32(s, 0)), [0, 1, 2, 3], "assumes our own window at first");
    a.onAck(10, ackBytes(2, 2, []));
    assert.equal(a.pollSegment(10), undefined, "right edge still 4");
    a.onAck(11, ackBytes(4, 0, []));
    assert.deepEqual(drainSegments(a, 11).map((s) => u32(s, 0)), [4], "one probe into the closed window");
    const deadline = a.nextDeadline();
    a.tick(deadline);
    assert.deepEqual(drainSegments(a, deadline).map((s) => u32(s, 0)), [4], "the probe repeats by RTO");
    a.onAck(deadline + 1, ackBytes(4, 3, []));
    assert.deepEqual(drainSegments(a, deadline + 1).map((s) => u32(s, 0)), [5, 6]);
  });

  test("a reordered older ack neither shrinks the peer's window nor moves anything back", () => {
    const a = new ArqChannel(config({ receiveWindowSegments: 4 }));
    for (let i = 0; i < 10; i++) a.send(0, Uint8Array.of(i));
    assert.equal(drainSegments(a, 0).length, 4);
    a.onAck(10, ackBytes(0, 8, [[1, 2]]));
    a.onAck(11, ackBytes(0, 4, []));
    assert.deepEqual(drainSegments(a, 11).map((s) => u32(s, 0)), [4, 5, 6, 7]);
    a.onAck(12, ackBytes(3, 6, []));
    const queued = a.queuedBytes;
    assert.equal(a.onAck(13, ackBytes(1, 9, [])), undefined, "stale, ignored");
    assert.equal(a.queuedBytes, queued);
    assert.equal(a.inFlightSegments, 5);
    assert.deepEqual(drainSegments(a, 13).map((s) => u32(s, 0)), [8]);
  });

  test("receiver acks duplicates and out-of-window segments without delivering them", () => {
    const b = new ArqChannel(config({ receiveWindowSegments: 16 }));
    assert.equal(b.onSegment(0, segmentBytes(0, 1, [7])), undefined);
    b.pollAck();
    assert.equal(b.onSegment(1, segmentBytes(0, 1, [7])), undefined);
    assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 1, window: 15, blocks: [] });
    assert.equal(b.stats.duplicatesReceived, 1);
    for (const seq of [17, 1_000_000, 0x8000_0000, 0xffff_ffff]) {
      assert.equal(b.onSegment(2, segmentBytes(seq, 1, [9])), undefined);
      assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 1, window: 15, blocks: [] }, `seq ${seq}`);
    }
    assert.deepEqual(b.pollDelivered(), Uint8Array.of(7));
    assert.equal(b.pollDelivered(), undefined);
    // Seq 16 is the last one inside the window (read point 1 + 16 slots).
    assert.equal(b.onSegment(3, segmentBytes(16, 1, [1])), undefined);
    assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 1, window: 16, blocks: [[16, 17]] });
  });

  test("draining a full receiver owes a window update, not one per message", () => {
    const b = new ArqChannel(config({ receiveWindowSegments: 4 }));
    for (let seq = 0; seq < 4; seq++) b.onSegment(0, segmentBytes(seq, 1, [seq]));
    assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 4, window: 0, blocks: [] });
    assert.equal(b.onSegment(1, segmentBytes(4, 1, [4])), undefined);
    assert.equal(b.stats.outOfWindowDropped, 1, "a closed window admits nothing");
    assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 4, window: 0, blocks: [] });
    assert.deepEqual(b.pollDelivered(), Uint8Array.of(0));
    assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 4, window: 1, blocks: [] }, "reopened");
    assert.deepEqual(b.pollDelivered(), Uint8Array.of(1));
    assert.equal(b.pollAck(), undefined, "grew by less than half the window");
    assert.deepEqual(b.pollDelivered(), Uint8Array.of(2));
    assert.deepEqual(parseAck(b.pollAck()!), { cumulative: 4, window: 3, blocks: [] });
  });

  test("nextDeadline reports a retransmission waiting for pollSegment", () => {
    const a = new ArqChannel(config());
    a.send(0, Uint8Array.of(1));
    drainSegments(a, 0);
    a.tick(1000);
    assert.equal(a.nextDeadline(), 1000, "due now, not Infinity");
    assert.equal(drainSegments(a, 1000).length, 1);
    assert.equal(a.nextDeadline(), 3000);
    assert.throws(() => a.tick(Infinity), { code: "ARQ_BAD_TIME" });
    assert.throws(() => a.pollSegment(Number.NaN), { code: "ARQ_BAD_TIME" });
  });

  test("reports the 3 newest out-of-order ranges first, then the lowest, at most 8", () => {
    const b = new ArqChannel(config({ receiveWindowSegments: 64 }));
    for (let seq = 2; seq <= 40; seq += 2) b.onSegment(0, segmentBytes(seq, 1, []));
    b.onSegment(0, segmentBytes(31, 1, []));
    const ack = parseAck(b.pollAck()!);
    assert.equal(ack.cumulative, 0);
    assert.deepEqual(ack.blocks, [[30, 33], [40, 41], [38, 39], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]);
    // A duplicate means the sender missed our report: its range goes first again.
    b.onSegment(0, segmentBytes(20, 1, []));
    assert.equal(b.stats.duplicatesReceived, 1);
    assert.deepEqual(parseAck(b.pollAck()!).blocks.slice(0, 4), [[20, 21], [30, 33], [40, 41], [2, 3]]);
    // Once the hole below is filled, the cumulative ack covers the first range.
    b.onSegment(0, segmentBytes(0, 1, []));
    b.onSegment(0, segmentBytes(1, 1, []));
    const after = parseAck(b.pollAck()!);
    assert.equal(after.cumulative, 3);
    assert.deepEqual(after.blocks.slice(0, 4), [[20, 21], [30, 33], [40, 41], [4, 5]]);
  });

  test("a message over 4 MiB is dropped with an error and the stream goes on", () => {
    const b = new ArqChannel(config());
    const chunk = new Uint8Array(60_000);
    let seq = 0;
    const errors: string[] = [];
    while (seq * chunk.byteLength <= ARQ_MAX_MESSAGE_BYTES + chunk.byteLength) {
      const error = b.onSegment(0, segmentBytes(seq++, 0, chunk));
      if (error !== undefined) errors.push(error);
    }
    b.onSegment(0, segmentBytes(seq++, 1, chunk));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /exceeds/);
    assert.equal(b.pollDelivered(), undefined);
    assert.equal(b.onSegment(0, segmentBytes(seq++, 1, [42])), undefined);
    assert.deepEqual(b.pollDelivered(), Uint8Array.of(42));
  });

  test("a message of more segments than the receive window still completes", () => {
    const cfg = config({ maxSegmentBytes: 10, receiveWindowSegments: 8 });
    const message = new Uint8Array(1000).map((_, i) => i & 0xff);
    const outcome = run({ seed: 3, net: CLEAN_NET, config: cfg, outbox: [[message, Uint8Array.of(1)], []] });
    assertSameMessages(outcome.delivered[1], [message, Uint8Array.of(1)]);
  });

  test("send refuses beyond maxQueuedBytes and accepts again once acknowledged", () => {
    const a = new ArqChannel(config({ maxSegmentBytes: 100, maxQueuedBytes: 1000 }));
    // 190 bytes = 2 segments = 190 + 2·5 = 200 queued bytes.
    for (let i = 0; i < 5; i++) assert.equal(a.send(0, new Uint8Array(190)), true);
    assert.equal(a.queuedBytes, 1000);
    assert.equal(a.send(0, new Uint8Array(0)), false);
    assert.equal(a.queuedBytes, 1000, "a refused send queues nothing");
    assert.equal(drainSegments(a, 0).length, 10);
    assert.equal(a.send(1, new Uint8Array(0)), false, "in-flight bytes still count");
    a.onAck(20, ackBytes(2, 1024, []));
    assert.equal(a.queuedBytes, 800);
    assert.equal(a.send(21, new Uint8Array(190)), true);
    assert.equal(a.send(21, new Uint8Array(0)), false);
  });

  test("send throws for a message larger than 4 MiB; bad config throws", () => {
    const a = new ArqChannel(config({ maxQueuedBytes: 64 * 1024 * 1024 }));
    assert.throws(() => a.send(0, new Uint8Array(ARQ_MAX_MESSAGE_BYTES + 1)), { code: "ARQ_MESSAGE_TOO_LARGE" });
    assert.equal(a.send(0, new Uint8Array(ARQ_MAX_MESSAGE_BYTES)), true);
    assert.throws(() => new ArqChannel(config({ maxSegmentBytes: 0 })), { code: "ARQ_CONFIG_INVALID" });
    assert.throws(() => new ArqChannel(config({ sendWindowSegments: 1.5 })), { code: "ARQ_CONFIG_INVALID" });
    assert.throws(() => new ArqChannel(config({ minRtoMs: 100, maxRtoMs: 10 })), { code: "ARQ_CONFIG_INVALID" });
  });
});

// ---------------------------------------------------------------- malformed input

describe("arq: malformed input", () => {
  test("malformed segments return errors", () => {
    const b = new ArqChannel(config());
    assert.match(b.onSegment(0, Uint8Array.of(0, 0, 0, 0)) ?? "", /shorter/);
    assert.match(b.onSegment(0, Uint8Array.of(0, 0, 0, 0, 2, 9)) ?? "", /flag/);
    assert.match(b.onSegment(0, Uint8Array.of(0, 0, 0, 0, 0x81)) ?? "", /flag/);
    assert.match(b.onSegment(0, new Uint8Array(5 + 65_536)) ?? "", /data bytes/);
    assert.equal(b.pollAck(), undefined, "malformed segments are not acked");
    assert.equal(b.pollDelivered(), undefined);
  });

  test("malformed acks return errors and change nothing", () => {
    const a = new ArqChannel(config({ maxSegmentBytes: 1 }));
    for (let i = 0; i < 4; i++) a.send(0, Uint8Array.of(i));
    drainSegments(a, 0);
    const before = a.queuedBytes;
    const bad: [Uint8Array, RegExp][] = [
      [Uint8Array.of(0, 0, 0, 0, 0, 1), /shorter/],
      [ackBytes(0, 10, new Array<[number, number]>(9).fill([1, 2])), /9 SACK blocks/],
      [Uint8Array.of(...ackBytes(0, 10, [[1, 2]]), 0), /must be 15 bytes/],
      [ackBytes(0, 10, [[1, 2]]).subarray(0, 14), /must be 15 bytes/],
      [ackBytes(5, 10, []), /never sent/],
      [ackBytes(1, 10, [[3, 3]]), /empty or outside/],
      [ackBytes(1, 10, [[3, 2]]), /empty or outside/],
      [ackBytes(1, 10, [[2, 5]]), /empty or outside/],
      [ackBytes(1, 10, [[2, 3], [0, 1]]), /empty or outside/],
    ];
    for (const [bytes, pattern] of bad) {
      assert.match(a.onAck(5, bytes) ?? "(accepted)", pattern);
      assert.equal(a.queuedBytes, before, "state untouched");
      assert.equal(a.inFlightSegments, 4);
      assert.equal(a.srttMs, undefined);
    }
  });

  test("random bytes never throw and either pass or return a string", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 80 })), { maxLength: 30 }), (inputs) => {
        const channel = new ArqChannel(config({ maxSegmentBytes: 8, receiveWindowSegments: 16, sendWindowSegments: 16 }));
        for (let i = 0; i < 20; i++) channel.send(i, Uint8Array.of(i, i));
        drainSegments(channel, 0);
        let now = 0;
        for (const [isAck, bytes] of inputs) {
          now += 7;
          const result = isAck ? channel.onAck(now, bytes) : channel.onSegment(now, bytes);
          assert.ok(result === undefined || (typeof result === "string" && result.length > 0));
          channel.tick(now);
          drainSegments(channel, now);
          const ack = channel.pollAck();
          if (ack !== undefined) parseAck(ack);
          while (channel.pollDelivered() !== undefined);
          assert.ok(channel.queuedBytes >= 0);
          assert.ok(channel.inFlightSegments <= 16);
          const deadline = channel.nextDeadline();
          assert.ok(deadline === Infinity || deadline >= 0);
        }
      }),
      { seed: 20240611, numRuns: 300 },
    );
  });

  test("random bytes directly into each entry point", () => {
    fc.assert(
      fc.property(fc.uint8Array(), (bytes) => {
        const channel = new ArqChannel(config());
        const s = channel.onSegment(0, bytes);
        const a = channel.onAck(0, bytes);
        assert.ok(s === undefined || typeof s === "string");
        assert.ok(a === undefined || typeof a === "string");
        // Nothing was sent, so any ack acknowledging something must be refused.
        if (bytes.byteLength >= 7 && u32(bytes, 0) !== 0 && u32(bytes, 0) < 0x8000_0000) assert.equal(typeof a, "string");
      }),
      { seed: 7, numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------- simulated networks

describe("arq: delivery over a virtual network", () => {
  test("(a) no loss: in order, exactly once, no retransmission", () => {
    const outcome = oneWay(1, CLEAN_NET, 500, 250);
    assert.equal(outcome.channels[0].stats.retransmits, 0);
    assert.equal(outcome.channels[1].stats.duplicatesReceived, 0);
    assert.equal(outcome.channels[1].stats.delivered, 500);
    const srtt = outcome.channels[0].srttMs;
    assert.ok(srtt !== undefined && srtt >= 40 && srtt <= 48, `srtt ${srtt} follows the 2×(20..24) ms path`);
  });

  for (const loss of [0.1, 0.3]) {
    test(`(b) ${loss * 100}% loss in both directions`, () => {
      for (const seed of [11, 12, 13]) {
        const outcome = oneWay(seed, { ...CLEAN_NET, loss }, 400, 250);
        assert.ok(outcome.channels[0].stats.retransmits > 0, "loss forced retransmissions");
      }
    });
  }

  test("(c) heavy reordering", () => {
    const outcome = oneWay(21, { ...CLEAN_NET, jitterMs: 60, reorder: 0.4, reorderExtraMs: 300 }, 500, 250);
    assert.ok(outcome.channels[1].stats.outOfOrderReceived > 50, "the network did reorder");
  });

  test("(d) duplication", () => {
    const outcome = oneWay(31, { ...CLEAN_NET, duplicate: 0.5, jitterMs: 30 }, 500, 250);
    assert.ok(outcome.channels[1].stats.duplicatesReceived > 50, "the network did duplicate");
  });

  test("(e) messages larger than a segment, with loss and reordering", () => {
    const messages = makeMessages(new SeededRng(41), 60, 5000);
    const net = { ...CLEAN_NET, loss: 0.1, reorder: 0.2, reorderExtraMs: 100 };
    const outcome = run({ seed: 41, net, config: config({ maxSegmentBytes: 100 }), outbox: [messages, []] });
    assertSameMessages(outcome.delivered[1], messages);
    assert.ok(messages.some((m) => m.byteLength > 1000));
  });

  test("(f) zero-length messages only, with loss", () => {
    const messages = Array.from({ length: 300 }, () => new Uint8Array(0));
    const outcome = run({ seed: 51, net: { ...CLEAN_NET, loss: 0.2 }, config: config(), outbox: [messages, []] });
    assertSameMessages(outcome.delivered[1], messages);
  });

  for (const loss of [0, 0.1]) {
    test(`(g) flow control: a slow receiver is never overrun (loss ${loss})`, () => {
      const windowSegments = 16;
      const cfg = config({ maxSegmentBytes: 50, receiveWindowSegments: windowSegments, sendWindowSegments: 64 });
      const messages = makeMessages(new SeededRng(61), 300, 120);
      let edgeKnownToSender = windowSegments;
      let cumulativeKnownToSender = 0;
      let highestSent = -1;
      let probes = 0;
      let zeroWindows = 0;
      let maxDrained = 0;
      const outcome = run({
        seed: 61,
        net: { ...CLEAN_NET, loss },
        config: cfg,
        outbox: [messages, []],
        drainEveryMs: 1500,
        onDrain: (node, count) => {
          if (node === 1) maxDrained = Math.max(maxDrained, count);
        },
        onWire: (event, _now, from, kind, bytes) => {
          if (kind === "ack" && from === 1) {
            const ack = parseAck(bytes);
            if (event === "transmit" && ack.window === 0) zeroWindows++;
            if (event === "deliver") {
              const edge = (ack.cumulative + ack.window) >>> 0;
              if (serialLt(edgeKnownToSender, edge)) edgeKnownToSender = edge;
              if (serialLt(cumulativeKnownToSender, ack.cumulative)) cumulativeKnownToSender = ack.cumulative;
            }
          }
          if (kind === "segment" && from === 0 && event === "transmit") {
            const seq = u32(bytes, 0);
            if (seq > highestSent) {
              highestSent = seq;
              assert.ok(seq - cumulativeKnownToSender < 64, "send window");
              if (seq >= edgeKnownToSender) {
                assert.equal(seq, cumulativeKnownToSender, `segment ${seq} beyond the window ${edgeKnownToSender} while others are in flight`);
                probes++;
              }
            }
          }
        },
      });
      assertSameMessages(outcome.delivered[1], messages);
      assert.ok(zeroWindows > 0, "the receiver's window did close");
      assert.ok(maxDrained > 0 && maxDrained <= windowSegments, `drained ${maxDrained} at once: buffered beyond the window`);
      assert.ok(outcome.channels[1].stats.outOfWindowDropped <= outcome.channels[0].stats.segmentsSent);
      if (loss === 0) assert.ok(outcome.channels[1].stats.outOfWindowDropped <= probes + outcome.channels[0].stats.retransmits);
    });
  }

  test("(h) backpressure: send returns false and the application retries", () => {
    const messages = makeMessages(new SeededRng(71), 200, 400);
    const outcome = run({
      seed: 71,
      net: { ...CLEAN_NET, loss: 0.05 },
      config: config({ maxQueuedBytes: 2000 }),
      outbox: [messages, []],
    });
    assertSameMessages(outcome.delivered[1], messages);
    assert.ok(outcome.refusals > 0, "the queue limit was hit");
  });

  test("(i) sequence numbers wrap around 2^32", () => {
    const seqs = new Set<number>();
    const messages = makeMessages(new SeededRng(81), 300, 150);
    const outcome = run({
      seed: 81,
      net: { ...CLEAN_NET, loss: 0.1, reorder: 0.2, reorderExtraMs: 80 },
      config: config({ initialSeq: 0xffff_ffff - 40, receiveWindowSegments: 32 }),
      outbox: [messages, messages.slice(0, 100)],
      onWire: (event, _now, _from, kind, bytes) => {
        if (event === "transmit" && kind === "segment") seqs.add(u32(bytes, 0));
      },
    });
    assertSameMessages(outcome.delivered[1], messages);
    assertSameMessages(outcome.delivered[0], messages.slice(0, 100));
    assert.ok(seqs.has(0xffff_ffff) && seqs.has(0) && seqs.has(200), "the stream crossed the wrap");
  });

  test("both directions at once under loss, reordering and duplication, many seeds", () => {
    for (let seed = 100; seed < 112; seed++) {
      const rng = new SeededRng(seed);
      const ab = makeMessages(rng, 80, 400);
      const ba = makeMessages(rng, 80, 400);
      const net: NetOptions = {
        delayMs: 5 + rng.nextInt(50),
        jitterMs: rng.nextInt(40),
        loss: rng.nextFloat() * 0.25,
        duplicate: rng.nextFloat() * 0.2,
        reorder: rng.nextFloat() * 0.3,
        reorderExtraMs: 150,
      };
      const cfg = config({
        maxSegmentBytes: 60 + rng.nextInt(100),
        receiveWindowSegments: 8 + rng.nextInt(64),
        sendWindowSegments: 8 + rng.nextInt(64),
      });
      const slowReader = rng.nextInt(2) === 0 ? { drainEveryMs: 300 } : {};
      const outcome = run({ seed, net, config: cfg, outbox: [ab, ba], ...slowReader });
      assertSameMessages(outcome.delivered[1], ab);
      assertSameMessages(outcome.delivered[0], ba);
    }
  });

  test("(k) same seed, same trace; another seed, another trace", () => {
    const scenario = (seed: number): Scenario => ({
      seed,
      net: { ...CLEAN_NET, loss: 0.15, duplicate: 0.1, reorder: 0.2, reorderExtraMs: 100 },
      config: config(),
      outbox: [makeMessages(new SeededRng(91), 150, 300), makeMessages(new SeededRng(92), 50, 300)],
    });
    const first = run(scenario(91));
    const second = run(scenario(91));
    const other = run(scenario(92));
    assert.ok(first.trace.length > 400);
    assert.deepEqual(second.trace, first.trace);
    assert.deepEqual(second.channels[0].stats, first.channels[0].stats);
    assert.notDeepEqual(other.trace, first.trace);
  });
});

test("arq: in-order data is acked in batches; holes, duplicates and time make the ack due at once", () => {
  const receiver = new ArqChannel(config());
  assert.equal(receiver.ackDue(0), false);
  assert.equal(receiver.ackDeadline(), Infinity);
  for (let seq = 0; seq < ACK_EVERY_SEGMENTS - 1; seq += 1) {
    assert.equal(receiver.onSegment(10, segmentBytes(seq, 1, [seq])), undefined);
    assert.equal(receiver.ackDue(10), false, `not yet after ${seq + 1} in-order segments`);
  }
  assert.equal(receiver.ackDeadline(), 10 + DELAYED_ACK_MS);
  assert.equal(receiver.ackDue(10 + DELAYED_ACK_MS), true, "the delay ran out");
  receiver.onSegment(11, segmentBytes(ACK_EVERY_SEGMENTS - 1, 1, [0]));
  assert.equal(receiver.ackDue(11), true, "every ACK_EVERY_SEGMENTS segments");
  assert.equal(parseAck(receiver.pollAck()!).cumulative, ACK_EVERY_SEGMENTS);
  assert.equal(receiver.ackDue(11), false, "taken");
  receiver.onSegment(12, segmentBytes(ACK_EVERY_SEGMENTS + 1, 1, [0]));
  assert.equal(receiver.ackDue(12), true, "a hole is reported at once");
  receiver.pollAck();
  receiver.onSegment(13, segmentBytes(0, 1, [0]));
  assert.equal(receiver.ackDue(13), true, "a duplicate is answered at once");
});

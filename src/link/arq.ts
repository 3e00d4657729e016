/**
 * A small selective-repeat ARQ that gives a UDP link its reliable-ordered class (see
 * README-arq.md for the wire format and the reasoning). It is pure: time arrives as `now` (ms), and
 * the engine wraps what it produces in ArqSegment / ArqAck frames.
 *
 * One `ArqChannel` holds both halves of one link: the sender state for what we send and the
 * receiver state for what the peer sends us. Both ends must start from the same `initialSeq`.
 */
import { SkeinError } from "../core/errors.js";

export interface ArqConfig {
  /** Data bytes per segment (the engine derives it from the UDP MTU). */
  maxSegmentBytes: number;
  /** Most segments in flight (sequence numbers between the oldest unacked and the next new one). */
  sendWindowSegments: number;
  /** Receiver reorder buffer plus undelivered messages, in segments; advertised to the peer. */
  receiveWindowSegments: number;
  /** Bytes (segment payloads, headers included) queued or unacknowledged; `send` refuses beyond. */
  maxQueuedBytes: number;
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
  /** First sequence number in both directions; both ends must agree. Tests use it to cross the wrap. */
  initialSeq?: number;
}

export const DEFAULT_ARQ_CONFIG: Omit<ArqConfig, "maxSegmentBytes"> = {
  sendWindowSegments: 1024,
  receiveWindowSegments: 1024,
  maxQueuedBytes: 16 * 1024 * 1024,
  initialRtoMs: 1000,
  minRtoMs: 30,
  maxRtoMs: 10_000,
};

export const ARQ_SEGMENT_HEADER_BYTES = 5;
export const ARQ_ACK_HEADER_BYTES = 7;
export const ARQ_SACK_BLOCK_BYTES = 8;
export const ARQ_MAX_SACK_BLOCKS = 8;
/** Segment flag: this segment ends a message. */
export const ARQ_FLAG_LAST_FRAGMENT = 0x01;
/** Largest message `send` takes and the receiver reassembles (matches MAX_FRAME_PAYLOAD_BYTES). */
export const ARQ_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Bounds the fragment list of one message even when a hostile peer sends tiny fragments. */
export const ARQ_MAX_FRAGMENTS_PER_MESSAGE = 65_536;
/** Largest data part the receiver stores per segment: no UDP datagram carries more. */
export const ARQ_MAX_SEGMENT_DATA_BYTES = 65_535;
/** The ack's window field is a u16. */
export const ARQ_MAX_ADVERTISED_WINDOW_SEGMENTS = 65_535;
/** Keeps every sequence distance far below 2^31, where serial-number comparison stops working. */
const MAX_WINDOW_SEGMENTS = 1 << 20;
/**
 * A segment is declared lost once a segment transmitted this many transmissions after it has been
 * acknowledged (TCP's DupThresh, but counted in transmission order so that lost retransmissions
 * are detected too) and it has had a little more than one RTT to arrive: the time condition (as in
 * RACK, RFC 8985) stops a reordering path from making us resend everything again and again.
 */
const REORDER_THRESHOLD_SEGMENTS = 3;
const REORDER_WINDOW_RTT_FRACTION = 0.25;
/** RFC 6298: clock granularity G and the RTTVAR multiplier K. */
const CLOCK_GRANULARITY_MS = 1;
const RTO_VARIANCE_FACTOR = 4;
const SERIAL_HALF = 0x8000_0000;
/**
 * SACK blocks around this many recent arrivals are repeated in each ack (newest first), so that
 * one lost ack does not hide a received range from the sender; the other blocks report the lowest
 * ranges, which are the ones that hold back the cumulative ack.
 */
const RECENT_SACK_TRIGGERS = 3;

const SENT_SACKED = 0x01;
const SENT_LOST = 0x02;
const RECV_PRESENT = 0x01;
const RECV_LAST = 0x02;

const EMPTY = new Uint8Array(0);
/**
 * Delayed acks (the engine asks `ackDue`): in-order segments are acked every ACK_EVERY_SEGMENTS
 * or DELAYED_ACK_MS after the first unacked one, whichever comes first; anything that reveals a
 * hole, a duplicate or a reopened window is acked at once. One ack per data datagram was half of
 * the UDP link's packets and most of its CPU.
 */
export const ACK_EVERY_SEGMENTS = 4;
export const DELAYED_ACK_MS = 2;

export interface ArqStats {
  /** Segment transmissions, retransmissions included. */
  segmentsSent: number;
  retransmits: number;
  /** Segments received again (already delivered or already buffered). */
  duplicatesReceived: number;
  /** New segments accepted ahead of a hole. */
  outOfOrderReceived: number;
  /** Segments dropped because they lay beyond our receive window (zero-window probes, mostly). */
  outOfWindowDropped: number;
  /** Messages handed out by pollDelivered. */
  delivered: number;
}

/** RFC 1982: a is before b. */
function serialLt(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < SERIAL_HALF;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/** FIFO ring of object references; grows by doubling, so pushes are amortised allocation-free. */
class Ring<T> {
  private items: (T | undefined)[];
  private head = 0;
  size = 0;

  constructor(initialCapacity: number) {
    this.items = new Array<T | undefined>(Math.max(4, initialCapacity));
  }

  push(item: T): void {
    if (this.size === this.items.length) {
      const next = new Array<T | undefined>(this.items.length * 2);
      for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) % this.items.length];
      this.items = next;
      this.head = 0;
    }
    this.items[(this.head + this.size) % this.items.length] = item;
    this.size++;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.size--;
    return item;
  }
}

/** FIFO ring of fixed-width numeric records in one Float64Array: no object per record. */
class RecordRing {
  private data: Float64Array;
  private capacity: number;
  private head = 0;
  size = 0;

  constructor(
    private readonly stride: number,
    initialCapacity: number,
  ) {
    this.capacity = Math.max(4, initialCapacity);
    this.data = new Float64Array(this.capacity * stride);
  }

  push(a: number, b = 0, c = 0): void {
    if (this.size === this.capacity) this.grow();
    const at = ((this.head + this.size) % this.capacity) * this.stride;
    this.data[at] = a;
    if (this.stride > 1) this.data[at + 1] = b;
    if (this.stride > 2) this.data[at + 2] = c;
    this.size++;
  }

  /** Field `field` of the oldest record (the caller checks `size` first). */
  peek(field: number): number {
    return this.data[this.head * this.stride + field]!;
  }

  shift(): void {
    this.head = (this.head + 1) % this.capacity;
    this.size--;
  }

  private grow(): void {
    const next = new Float64Array(this.capacity * 2 * this.stride);
    for (let i = 0; i < this.size; i++) {
      const from = ((this.head + i) % this.capacity) * this.stride;
      next.set(this.data.subarray(from, from + this.stride), i * this.stride);
    }
    this.data = next;
    this.capacity *= 2;
    this.head = 0;
  }
}

function checkConfig(config: ArqConfig): void {
  const integerIn = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new SkeinError(
        "ARQ_CONFIG_INVALID",
        `ArqConfig.${name} is ${value}; use an integer from ${min} to ${max}`,
      );
    }
  };
  integerIn("maxSegmentBytes", config.maxSegmentBytes, 1, ARQ_MAX_SEGMENT_DATA_BYTES);
  integerIn("sendWindowSegments", config.sendWindowSegments, 1, MAX_WINDOW_SEGMENTS);
  integerIn("receiveWindowSegments", config.receiveWindowSegments, 1, MAX_WINDOW_SEGMENTS);
  integerIn("maxQueuedBytes", config.maxQueuedBytes, 1, Number.MAX_SAFE_INTEGER);
  integerIn("initialSeq", config.initialSeq ?? 0, 0, 0xffff_ffff);
  const positive = (name: string, value: number): void => {
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new SkeinError("ARQ_CONFIG_INVALID", `ArqConfig.${name} is ${value}; use a positive number of ms`);
    }
  };
  positive("initialRtoMs", config.initialRtoMs);
  positive("minRtoMs", config.minRtoMs);
  positive("maxRtoMs", config.maxRtoMs);
  if (config.minRtoMs > config.maxRtoMs) {
    throw new SkeinError("ARQ_CONFIG_INVALID", `ArqConfig.minRtoMs (${config.minRtoMs}) exceeds maxRtoMs (${config.maxRtoMs})`);
  }
}

export class ArqChannel {
  private readonly maxSegmentBytes: number;
  private readonly maxQueuedBytes: number;
  private readonly minRtoMs: number;
  private readonly maxRtoMs: number;
  private readonly statsData: ArqStats = {
    segmentsSent: 0,
    retransmits: 0,
    duplicatesReceived: 0,
    outOfOrderReceived: 0,
    outOfWindowDropped: 0,
    delivered: 0,
  };

  // ---- sender: a ring of `sendCapacity` slots, slot `sendHead` holds sequence number `sndUna`.
  private readonly sendCapacity: number;
  private readonly sendBuffers: (Uint8Array | undefined)[];
  private readonly sendFlags: Uint8Array;
  private readonly sendTxCount: Uint32Array;
  private readonly sendLastTxId: Float64Array;
  private readonly sendLastSentAt: Float64Array;
  private sendHead = 0;
  private sndUna: number;
  private nextSeq: number;
  /** First sequence number the peer will not accept (cumulative + window of its newest ack). */
  private peerRightEdge: number;
  private txCounter = 0;
  private highestDeliveredTxId = 0;
  /**
   * Every transmission (seq, txId, sentAt) in send order. Both loss signals (RTO expiry and the
   * reorder threshold) are monotone along it, so each check pops a prefix: amortised O(1).
   */
  private readonly transmissions: RecordRing;
  /** Sequence numbers marked lost, oldest first; stale entries are skipped when popped. */
  private readonly lostQueue: RecordRing;
  /** Messages not yet cut into segments; cutting happens at transmission so the window is the only ring. */
  private readonly pending = new Ring<Uint8Array>(64);
  private pendingOffset = 0;
  private queued = 0;
  private rto: number;
  private srtt: number | undefined;
  private rttvar = 0;
  private timeouts = 0;
  private lastBackoffAt = -Infinity;
  private lastLossMarkedAt = 0;
  // Per-ack scratch, kept as fields so that processing an ack allocates nothing.
  private readonly blockScratch = new Uint32Array(ARQ_MAX_SACK_BLOCKS * 2);
  private sampleTxId = -1;
  private sampleSentAt = 0;
  private newlyDelivered = false;

  // ---- receiver: a ring of `recvCapacity` slots, slot `recvHead` holds sequence number `rcvNext`.
  private readonly recvCapacity: number;
  private readonly recvData: (Uint8Array | undefined)[];
  private readonly recvFlags: Uint8Array;
  private recvHead = 0;
  private rcvNext: number;
  /**
   * Oldest sequence number whose data the application still holds us responsible for. The window
   * we advertise ends at readSeq + recvCapacity, so it never shrinks (readSeq only moves forward).
   */
  private readSeq: number;
  /** Offsets [1, recvSpan) from rcvNext may hold buffered segments; bounds the SACK scan. */
  private recvSpan = 0;
  /** Out-of-order arrivals that triggered the latest acks, newest first (RFC 2018 block order). */
  private readonly recentTriggers = new Uint32Array(RECENT_SACK_TRIGGERS);
  private recentTriggerCount = 0;
  private readonly fragments: Uint8Array[] = [];
  private fragmentBytes = 0;
  private discarding = false;
  private messageStartSeq: number;
  private readonly ready = new Ring<Uint8Array>(64);
  private readonly readyStartSeq = new RecordRing(1, 64);
  private ackOwed = false;
  /** When the oldest unacknowledged in-order segment arrived (Infinity: none). */
  private ackOwedSince = Infinity;
  private segmentsSinceAck = 0;
  private ackUrgent = false;
  private lastAdvertisedWindow: number;
  private readonly windowUpdateThresholdSegments: number;

  constructor(config: ArqConfig) {
    checkConfig(config);
    this.maxSegmentBytes = config.maxSegmentBytes;
    this.maxQueuedBytes = config.maxQueuedBytes;
    this.minRtoMs = config.minRtoMs;
    this.maxRtoMs = config.maxRtoMs;
    this.rto = Math.min(Math.max(config.initialRtoMs, config.minRtoMs), config.maxRtoMs);
    const initialSeq = (config.initialSeq ?? 0) >>> 0;

    this.sendCapacity = config.sendWindowSegments;
    this.sendBuffers = new Array<Uint8Array | undefined>(this.sendCapacity);
    this.sendFlags = new Uint8Array(this.sendCapacity);
    this.sendTxCount = new Uint32Array(this.sendCapacity);
    this.sendLastTxId = new Float64Array(this.sendCapacity);
    this.sendLastSentAt = new Float64Array(this.sendCapacity);
    // Each outstanding segment has at most one live record; 2× covers records of segments acked meanwhile.
    this.transmissions = new RecordRing(3, Math.min(2 * this.sendCapacity + 2, 4096));
    this.lostQueue = new RecordRing(1, Math.min(this.sendCapacity + 1, 4096));
    this.sndUna = initialSeq;
    this.nextSeq = initialSeq;
    // Until the peer's first ack we assume its window equals ours: links are configured symmetrically.
    this.peerRightEdge = (initialSeq + Math.min(config.receiveWindowSegments, ARQ_MAX_ADVERTISED_WINDOW_SEGMENTS)) >>> 0;

    this.recvCapacity = config.receiveWindowSegments;
    this.recvData = new Array<Uint8Array | undefined>(this.recvCapacity);
    this.recvFlags = new Uint8Array(this.recvCapacity);
    this.rcvNext = initialSeq;
    this.readSeq = initialSeq;
    this.messageStartSeq = initialSeq;
    this.lastAdvertisedWindow = Math.min(this.recvCapacity, ARQ_MAX_ADVERTISED_WINDOW_SEGMENTS);
    this.windowUpdateThresholdSegments = Math.max(1, this.recvCapacity >>> 1);
  }

  get queuedBytes(): number {
    return this.queued;
  }

  get stats(): Readonly<ArqStats> {
    return this.statsData;
  }

  get srttMs(): number | undefined {
    return this.srtt;
  }

  /** The current retransmission timeout, backoff included. */
  get rtoMs(): number {
    return this.rto;
  }

  /** RTO expiries since new data was last acknowledged: the engine may declare the link dead on it. */
  get consecutiveTimeouts(): number {
    return this.timeouts;
  }

  /** Sequence numbers between the oldest unacknowledged segment and the next new one. */
  get inFlightSegments(): number {
    return (this.nextSeq - this.sndUna) >>> 0;
  }

  /**
   * Queues `message` for reliable, ordered delivery. The channel keeps a reference to `message`
   * until it has been cut into segments: do not modify it after the call. Returns false, queueing
   * nothing, when it would take queuedBytes beyond maxQueuedBytes; throws for a message larger than
   * ARQ_MAX_MESSAGE_BYTES (a programming error, not backpressure).
   */
  send(now: number, message: Uint8Array): boolean {
    void now;
    const length = message.byteLength;
    if (length > ARQ_MAX_MESSAGE_BYTES) {
      throw new SkeinError(
        "ARQ_MESSAGE_TOO_LARGE",
        `a reliable message of ${length} bytes exceeds ${ARQ_MAX_MESSAGE_BYTES}; split it or use a stream`,
      );
    }
    const segments = Math.max(1, Math.ceil(length / this.maxSegmentBytes));
    if (segments > ARQ_MAX_FRAGMENTS_PER_MESSAGE) {
      throw new SkeinError(
        "ARQ_MESSAGE_TOO_LARGE",
        `a reliable message of ${length} bytes needs ${segments} segments (more than ${ARQ_MAX_FRAGMENTS_PER_MESSAGE}); raise maxSegmentBytes`,
      );
    }
    const cost = length + segments * ARQ_SEGMENT_HEADER_BYTES;
    if (this.queued + cost > this.maxQueuedBytes) return false;
    this.queued += cost;
    this.pending.push(message);
    return true;
  }

  /**
   * The next segment payload to transmit now: a retransmission first, then new data within both
   * windows. The returned buffer stays owned by the channel (it is sent again if lost): copy it
   * into the frame, never modify it. Call until it returns undefined.
   */
  pollSegment(now: number): Uint8Array | undefined {
    this.detectLosses(now);
    while (this.lostQueue.size > 0) {
      const seq = this.lostQueue.peek(0);
      this.lostQueue.shift();
      const slot = this.isLost(seq) ? this.outstandingSlot(seq) : -1;
      if (slot >= 0) {
        this.sendFlags[slot] = this.sendFlags[slot]! & ~SENT_LOST;
        this.statsData.retransmits++;
        return this.transmit(slot, seq, now);
      }
    }
    if (this.pending.size === 0) return undefined;
    const inFlight = (this.nextSeq - this.sndUna) >>> 0;
    if (inFlight >= this.sendCapacity) return undefined;
    // With nothing in flight one segment goes out even into a closed window: it is the probe that
    // brings back the peer's window once it reopens, so a lost window update cannot deadlock us.
    if (inFlight > 0 && !serialLt(this.nextSeq, this.peerRightEdge)) return undefined;

    const message = this.pending.peek()!;
    const remaining = message.byteLength - this.pendingOffset;
    const dataBytes = Math.min(remaining, this.maxSegmentBytes);
    const last = dataBytes === remaining;
    const segment = new Uint8Array(ARQ_SEGMENT_HEADER_BYTES + dataBytes);
    const seq = this.nextSeq;
    writeU32(segment, 0, seq);
    segment[4] = last ? ARQ_FLAG_LAST_FRAGMENT : 0;
    if (dataBytes > 0) segment.set(message.subarray(this.pendingOffset, this.pendingOffset + dataBytes), ARQ_SEGMENT_HEADER_BYTES);
    if (last) {
      this.pending.shift();
      this.pendingOffset = 0;
    } else {
      this.pendingOffset += dataBytes;
    }
    const slot = (this.sendHead + inFlight) % this.sendCapacity;
    this.sendBuffers[slot] = segment;
    this.sendFlags[slot] = 0;
    this.sendTxCount[slot] = 0;
    this.nextSeq = (seq + 1) >>> 0;
    return this.transmit(slot, seq, now);
  }

  /** Marks every segment whose RTO has expired for retransmission (and backs the RTO off). */
  tick(now: number): void {
    this.detectLosses(now);
  }

  /**
   * When `tick` or `pollSegment` has work: the earliest RTO (or reorder) expiry of a segment in
   * flight, a time already past while a retransmission waits for `pollSegment`, or Infinity.
   */
  nextDeadline(): number {
    while (this.lostQueue.size > 0 && !this.isLost(this.lostQueue.peek(0))) this.lostQueue.shift();
    if (this.lostQueue.size > 0) return this.lastLossMarkedAt;
    this.dropStaleTransmissions();
    if (this.transmissions.size === 0) return Infinity;
    const sentAt = this.transmissions.peek(2);
    const deadline = sentAt + this.rto;
    if (this.transmissions.peek(1) + REORDER_THRESHOLD_SEGMENTS > this.highestDeliveredTxId) return deadline;
    return Math.min(deadline, sentAt + this.reorderDelayMs());
  }

  /** Processes the payload of an ArqAck frame; returns an error text for a malformed one. */
  onAck(now: number, payload: Uint8Array): string | undefined {
    if (payload.byteLength < ARQ_ACK_HEADER_BYTES) {
      return `arq ack of ${payload.byteLength} bytes is shorter than its ${ARQ_ACK_HEADER_BYTES}-byte header`;
    }
    const cumulative = readU32(payload, 0);
    const window = (payload[4]! << 8) | payload[5]!;
    const blockCount = payload[6]!;
    if (blockCount > ARQ_MAX_SACK_BLOCKS) return `arq ack carries ${blockCount} SACK blocks; at most ${ARQ_MAX_SACK_BLOCKS} are allowed`;
    const expected = ARQ_ACK_HEADER_BYTES + blockCount * ARQ_SACK_BLOCK_BYTES;
    if (payload.byteLength !== expected) {
      return `arq ack with ${blockCount} SACK blocks must be ${expected} bytes, not ${payload.byteLength}`;
    }
    const inFlight = (this.nextSeq - this.sndUna) >>> 0;
    const cumulativeOffset = (cumulative - this.sndUna) >>> 0;
    // An ack older than one already processed (reordered on the way) carries nothing new.
    if (cumulativeOffset >= SERIAL_HALF) return undefined;
    if (cumulativeOffset > inFlight) return `arq ack acknowledges sequence ${cumulative}, which was never sent`;
    const sentSpan = (this.nextSeq - cumulative) >>> 0;
    for (let i = 0; i < blockCount; i++) {
      const start = readU32(payload, ARQ_ACK_HEADER_BYTES + i * ARQ_SACK_BLOCK_BYTES);
      const end = readU32(payload, ARQ_ACK_HEADER_BYTES + i * ARQ_SACK_BLOCK_BYTES + 4);
      const startOffset = (start - cumulative) >>> 0;
      const endOffset = (end - cumulative) >>> 0;
      if (!(startOffset < endOffset && endOffset <= sentSpan)) {
        return `arq ack SACK block [${start}, ${end}) is empty or outside the sent range [${cumulative}, ${this.nextSeq})`;
      }
      this.blockScratch[2 * i] = startOffset;
      this.blockScratch[2 * i + 1] = endOffset;
    }

    // Validated: now apply, so that a malformed ack changes nothing.
    this.sampleTxId = -1;
    this.newlyDelivered = false;
    while (this.sndUna !== cumulative) {
      const slot = this.sendHead;
      if ((this.sendFlags[slot]! & SENT_SACKED) === 0) this.markDelivered(slot);
      this.sendBuffers[slot] = undefined;
      this.sendFlags[slot] = 0;
      this.sendHead = (slot + 1) % this.sendCapacity;
      this.sndUna = (this.sndUna + 1) >>> 0;
    }
    for (let i = 0; i < blockCount; i++) {
      const end = this.blockScratch[2 * i + 1]!;
      for (let offset = this.blockScratch[2 * i]!; offset < end; offset++) {
        const slot = (this.sendHead + offset) % this.sendCapacity;
        const flags = this.sendFlags[slot]!;
        if ((flags & SENT_SACKED) !== 0) continue;
        // We never renege on SACKed data (README-arq.md), so its buffer can go now.
        this.sendFlags[slot] = (flags | SENT_SACKED) & ~SENT_LOST;
        this.markDelivered(slot);
        this.sendBuffers[slot] = undefined;
      }
    }
    if (this.newlyDelivered) this.timeouts = 0;
    if (this.sampleTxId >= 0) this.updateRtt(now - this.sampleSentAt);
    const edge = (cumulative + window) >>> 0;
    if (serialLt(this.peerRightEdge, edge)) this.peerRightEdge = edge;
    this.detectLosses(now);
    return undefined;
  }

  /** Processes the payload of an ArqSegment frame; returns an error text for a malformed one. */
  onSegment(now: number, payload: Uint8Array): string | undefined {
    if (payload.byteLength < ARQ_SEGMENT_HEADER_BYTES) {
      return `arq segment of ${payload.byteLength} bytes is shorter than its ${ARQ_SEGMENT_HEADER_BYTES}-byte header`;
    }
    const seq = readU32(payload, 0);
    const flags = payload[4]!;
    if ((flags & ~ARQ_FLAG_LAST_FRAGMENT) !== 0) return `arq segment has unknown flag bits 0x${flags.toString(16)}`;
    const dataBytes = payload.byteLength - ARQ_SEGMENT_HEADER_BYTES;
    if (dataBytes > ARQ_MAX_SEGMENT_DATA_BYTES) {
      return `arq segment carries ${dataBytes} data bytes; at most ${ARQ_MAX_SEGMENT_DATA_BYTES} are allowed`;
    }
    // Every well-formed segment is acked, even a duplicate or one we drop: the ack is what tells
    // the sender its earlier ack was lost, or that our window is still closed.
    this.ackOwed = true;
    if (this.ackOwedSince === Infinity) this.ackOwedSince = now;
    this.segmentsSinceAck++;
    const offset = (seq - this.rcvNext) >>> 0;
    if (offset >= SERIAL_HALF) {
      this.statsData.duplicatesReceived++;
      this.ackUrgent = true;
      return undefined;
    }
    if (offset >= this.receiveLimit()) {
      this.statsData.outOfWindowDropped++;
      this.ackUrgent = true;
      return undefined;
    }
    const slot = (this.recvHead + offset) % this.recvCapacity;
    if ((this.recvFlags[slot]! & RECV_PRESENT) !== 0) {
      this.statsData.duplicatesReceived++;
      this.ackUrgent = true;
      // A duplicate means the sender missed our report of it: report its range first again.
      if (offset > 0) this.noteTrigger(seq);
      return undefined;
    }
    // The payload is a view into the engine's packet buffer: keep a copy.
    this.recvData[slot] = dataBytes === 0 ? EMPTY : payload.slice(ARQ_SEGMENT_HEADER_BYTES);
    this.recvFlags[slot] = RECV_PRESENT | ((flags & ARQ_FLAG_LAST_FRAGMENT) !== 0 ? RECV_LAST : 0);
    if (offset >= this.recvSpan) this.recvSpan = offset + 1;
    if (offset > 0) {
      this.statsData.outOfOrderReceived++;
      this.ackUrgent = true;
      this.noteTrigger(seq);
      return undefined;
    }
    return this.drainInOrder();
  }

  /** An ack payload if one is owed (after segments arrived, or when our window reopened). */
  pollAck(): Uint8Array | undefined {
    if (!this.ackOwed) return undefined;
    this.ackOwed = false;
    this.ackOwedSince = Infinity;
    this.segmentsSinceAck = 0;
    this.ackUrgent = false;
    const blocks = this.blockScratch;
    let count = 0;
    const span = this.recvSpan;
    // RFC 2018: the first block holds the newest arrival, so the sender learns of it even when
    // there are more holes than blocks.
    for (let i = 0; i < this.recentTriggerCount; i++) {
      const trigger = (this.recentTriggers[i]! - this.rcvNext) >>> 0;
      if (trigger === 0 || trigger >= span || !this.recvPresent(trigger)) continue;
      let start = trigger;
      while (start > 1 && this.recvPresent(start - 1)) start--;
      if (this.hasBlockStartingAt(count, start)) continue;
      let end = trigger + 1;
      while (end < span && this.recvPresent(end)) end++;
      blocks[2 * count] = start;
      blocks[2 * count + 1] = end;
      count++;
    }
    const reported = count;
    let offset = 1;
    while (offset < span && count < ARQ_MAX_SACK_BLOCKS) {
      if (!this.recvPresent(offset)) {
        offset++;
        continue;
      }
      const start = offset;
      while (offset < span && this.recvPresent(offset)) offset++;
      if (!this.hasBlockStartingAt(reported, start)) {
        blocks[2 * count] = start;
        blocks[2 * count + 1] = offset;
        count++;
      }
    }
    const window = this.advertisedWindow();
    this.lastAdvertisedWindow = window;
    const ack = new Uint8Array(ARQ_ACK_HEADER_BYTES + count * ARQ_SACK_BLOCK_BYTES);
    writeU32(ack, 0, this.rcvNext);
    ack[4] = window >>> 8;
    ack[5] = window & 0xff;
    ack[6] = count;
    for (let i = 0; i < count; i++) {
      writeU32(ack, ARQ_ACK_HEADER_BYTES + i * ARQ_SACK_BLOCK_BYTES, (this.rcvNext + blocks[2 * i]!) >>> 0);
      writeU32(ack, ARQ_ACK_HEADER_BYTES + i * ARQ_SACK_BLOCK_BYTES + 4, (this.rcvNext + blocks[2 * i + 1]!) >>> 0);
    }
    return ack;
  }

  /** Whether the owed ack should go now (see ACK_EVERY_SEGMENTS); `pollAck` takes it. */
  ackDue(now: number): boolean {
    if (!this.ackOwed) return false;
    return this.ackUrgent || this.segmentsSinceAck >= ACK_EVERY_SEGMENTS || now >= this.ackOwedSince + DELAYED_ACK_MS;
  }

  /** When a delayed ack falls due (Infinity: none owed). */
  ackDeadline(): number {
    if (!this.ackOwed) return Infinity;
    return this.ackUrgent || this.segmentsSinceAck >= ACK_EVERY_SEGMENTS ? this.ackOwedSince : this.ackOwedSince + DELAYED_ACK_MS;
  }

  /** The next whole message, in order, exactly once. */
  pollDelivered(): Uint8Array | undefined {
    const message = this.ready.shift();
    if (message === undefined) return undefined;
    this.readyStartSeq.shift();
    this.statsData.delivered++;
    this.advanceReadSeq();
    const window = this.advertisedWindow();
    // Tell a sender that may be stalled on our window that it reopened, without an ack per poll.
    if (
      (this.lastAdvertisedWindow === 0 && window > 0) ||
      window - this.lastAdvertisedWindow >= this.windowUpdateThresholdSegments
    ) {
      this.ackOwed = true;
      this.ackUrgent = true;
    }
    return message;
  }

  // ---- sender internals

  private transmit(slot: number, seq: number, now: number): Uint8Array {
    const txId = ++this.txCounter;
    this.sendLastTxId[slot] = txId;
    this.sendLastSentAt[slot] = now;
    this.sendTxCount[slot] = this.sendTxCount[slot]! + 1;
    this.transmissions.push(seq, txId, now);
    this.statsData.segmentsSent++;
    return this.sendBuffers[slot]!;
  }

  /** The ring slot of `seq` if it is in flight, else -1. */
  private outstandingSlot(seq: number): number {
    const offset = (seq - this.sndUna) >>> 0;
    if (offset >= ((this.nextSeq - this.sndUna) >>> 0)) return -1;
    return (this.sendHead + offset) % this.sendCapacity;
  }

  /** Whether `seq` is in flight and waits for retransmission. */
  private isLost(seq: number): boolean {
    const slot = this.outstandingSlot(seq);
    return slot >= 0 && (this.sendFlags[slot]! & SENT_LOST) !== 0;
  }

  private markDelivered(slot: number): void {
    this.queued -= this.sendBuffers[slot]?.byteLength ?? 0;
    this.newlyDelivered = true;
    const txId = this.sendLastTxId[slot]!;
    if (txId > this.highestDeliveredTxId) this.highestDeliveredTxId = txId;
    // Karn: the ack of a retransmitted segment may belong to either copy, so it gives no sample.
    if (this.sendTxCount[slot] === 1 && txId > this.sampleTxId) {
      this.sampleTxId = txId;
      this.sampleSentAt = this.sendLastSentAt[slot]!;
    }
  }

  /** The slot of the transmission record at the head if it is still the live one, else -1. */
  private liveHeadSlot(): number {
    const slot = this.outstandingSlot(this.transmissions.peek(0));
    if (slot < 0) return -1;
    if ((this.sendFlags[slot]! & (SENT_SACKED | SENT_LOST)) !== 0) return -1;
    return this.sendLastTxId[slot] === this.transmissions.peek(1) ? slot : -1;
  }

  private dropStaleTransmissions(): void {
    while (this.transmissions.size > 0 && this.liveHeadSlot() < 0) this.transmissions.shift();
  }

  private detectLosses(now: number): void {
    // A non-finite time would expire every retransmission at once, forever.
    if (!Number.isFinite(now)) throw new SkeinError("ARQ_BAD_TIME", `ArqChannel was given now = ${now}; pass a finite time in ms`);
    let backOff = false;
    while (this.transmissions.size > 0) {
      const slot = this.liveHeadSlot();
      if (slot >= 0) {
        const sentAt = this.transmissions.peek(2);
        const reordered =
          this.transmissions.peek(1) + REORDER_THRESHOLD_SEGMENTS <= this.highestDeliveredTxId &&
          sentAt + this.reorderDelayMs() <= now;
        const timedOut = sentAt + this.rto <= now;
        if (!reordered && !timedOut) break;
        // RFC 6298 5.5 backs off once per expiry. Segments sent before the last backoff belong to
        // the episode that caused it; only a segment sent since (a retransmission, or new data)
        // expiring shows that the longer timeout is still too short.
        if (!reordered && sentAt >= this.lastBackoffAt) backOff = true;
        this.sendFlags[slot] = this.sendFlags[slot]! | SENT_LOST;
        this.lostQueue.push(this.transmissions.peek(0));
        this.lastLossMarkedAt = now;
      }
      this.transmissions.shift();
    }
    if (backOff) {
      this.rto = Math.min(this.rto * 2, this.maxRtoMs);
      this.lastBackoffAt = now;
      this.timeouts++;
    }
  }

  /** How long after its transmission a segment overtaken by later ones may still arrive. */
  private reorderDelayMs(): number {
    return this.srtt === undefined ? 0 : this.srtt * (1 + REORDER_WINDOW_RTT_FRACTION);
  }

  private updateRtt(sampleMs: number): void {
    const r = Math.max(0, sampleMs);
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    const rto = this.srtt + Math.max(CLOCK_GRANULARITY_MS, RTO_VARIANCE_FACTOR * this.rttvar);
    this.rto = Math.min(Math.max(rto, this.minRtoMs), this.maxRtoMs);
  }

  // ---- receiver internals

  private noteTrigger(seq: number): void {
    if (this.recentTriggerCount > 0 && this.recentTriggers[0] === seq) return;
    this.recentTriggers.copyWithin(1, 0, RECENT_SACK_TRIGGERS - 1);
    this.recentTriggers[0] = seq;
    if (this.recentTriggerCount < RECENT_SACK_TRIGGERS) this.recentTriggerCount++;
  }

  /** Whether one of the first `count` blocks being built starts at `start`. */
  private hasBlockStartingAt(count: number, start: number): boolean {
    for (let i = 0; i < count; i++) if (this.blockScratch[2 * i] === start) return true;
    return false;
  }

  private recvPresent(offset: number): boolean {
    return (this.recvFlags[(this.recvHead + offset) % this.recvCapacity]! & RECV_PRESENT) !== 0;
  }

  /** Offsets from rcvNext below this are inside our window. */
  private receiveLimit(): number {
    return (this.readSeq + this.recvCapacity - this.rcvNext) >>> 0;
  }

  private advertisedWindow(): number {
    return Math.min(this.receiveLimit(), ARQ_MAX_ADVERTISED_WINDOW_SEGMENTS);
  }

  private drainInOrder(): string | undefined {
    let error: string | undefined;
    while ((this.recvFlags[this.recvHead]! & RECV_PRESENT) !== 0) {
      const slot = this.recvHead;
      const data = this.recvData[slot]!;
      const last = (this.recvFlags[slot]! & RECV_LAST) !== 0;
      this.recvData[slot] = undefined;
      this.recvFlags[slot] = 0;
      const seq = this.rcvNext;
      this.recvHead = (slot + 1) % this.recvCapacity;
      this.rcvNext = (seq + 1) >>> 0;
      if (this.recvSpan > 0) this.recvSpan--;
      error = this.reassemble(seq, data, last) ?? error;
    }
    this.advanceReadSeq();
    return error;
  }

  private reassemble(seq: number, data: Uint8Array, last: boolean): string | undefined {
    if (this.fragments.length === 0 && !this.discarding) this.messageStartSeq = seq;
    if (this.discarding) {
      if (last) this.discarding = false;
      return undefined;
    }
    if (
      this.fragmentBytes + data.byteLength > ARQ_MAX_MESSAGE_BYTES ||
      this.fragments.length + 1 > ARQ_MAX_FRAGMENTS_PER_MESSAGE
    ) {
      const bytes = this.fragmentBytes + data.byteLength;
      this.fragments.length = 0;
      this.fragmentBytes = 0;
      this.discarding = !last;
      return (
        `arq message starting at sequence ${this.messageStartSeq} exceeds ${ARQ_MAX_MESSAGE_BYTES} bytes ` +
        `or ${ARQ_MAX_FRAGMENTS_PER_MESSAGE} fragments (${bytes} bytes so far); dropped`
      );
    }
    if (!last) {
      this.fragments.push(data);
      this.fragmentBytes += data.byteLength;
      return undefined;
    }
    let message = data;
    if (this.fragments.length > 0) {
      message = new Uint8Array(this.fragmentBytes + data.byteLength);
      let at = 0;
      for (const fragment of this.fragments) {
        message.set(fragment, at);
        at += fragment.byteLength;
      }
      message.set(data, at);
      this.fragments.length = 0;
      this.fragmentBytes = 0;
    }
    this.ready.push(message);
    this.readyStartSeq.push(this.messageStartSeq);
    return undefined;
  }

  /**
   * Moves readSeq to the oldest data the application has not taken. A message being reassembled
   * with nothing complete ahead of it may hold at most half the window: otherwise a message of
   * more segments than the window could never complete (its bytes stay bounded by
   * ARQ_MAX_MESSAGE_BYTES instead).
   */
  private advanceReadSeq(): void {
    let candidate: number;
    if (this.ready.size > 0) {
      candidate = this.readyStartSeq.peek(0);
    } else if (this.fragments.length > 0 || this.discarding) {
      candidate = this.messageStartSeq;
      const floor = (this.rcvNext - (this.recvCapacity >>> 1)) >>> 0;
      if (serialLt(candidate, floor)) candidate = floor;
    } else {
      candidate = this.rcvNext;
    }
    if (serialLt(this.readSeq, candidate)) this.readSeq = candidate;
  }
}

/**
 * One neighbour link: its explicit state, and the measurement of the path under it (keepalive
 * probes, RFC 6298 smoothed RTT and variance, loss over a sliding window, liveness timeout).
 *
 * The engine owns the transport path a link rides on and moves the link through its states:
 *
 *   opening ──(path open)──▶ handshaking ──▶ hello_sent ──(hello_ack)──▶ up
 *   (inbound: a hello arrives on an accepted path) ───────────────────────▶ up
 *
 * `handshaking` is where the secure handshake (Noise) runs before any other frame; in this version
 * it completes at once.
 */
import type { Address } from "../core/address.js";
import type { NodeId } from "../core/node-id.js";
import type { Rng } from "../core/rng.js";
import { LOSS_WINDOW_PROBES, MAX_PENDING_PROBES, PROBE_LOSS_MIN_MS, RTT_EVENT_CHANGE_RATIO } from "./constants.js";
import { LossWindow, RttEstimator } from "./rtt.js";

export type LinkState =
  | { kind: "opening"; since: number }
  | { kind: "handshaking"; since: number }
  | { kind: "hello_sent"; since: number; lastHelloAt: number }
  | { kind: "up"; since: number };

export interface LinkTimers {
  probeIntervalMs: number;
  linkTimeoutMs: number;
}

export class LinkMeasurement {
  readonly rtt = new RttEstimator();
  readonly loss = new LossWindow(LOSS_WINDOW_PROBES);
  private probeSeq = 0;
  /** seq → send time of probes not yet answered nor declared lost, oldest first. */
  private readonly pending = new Map<number, number>();
  nextProbeAt: number;
  lastReceivedAt: number;
  private lastReportedSrttMs: number | undefined = undefined;

  constructor(
    now: number,
    private readonly timers: LinkTimers,
    private readonly rng: Rng,
  ) {
    this.lastReceivedAt = now;
    this.nextProbeAt = now;
  }

  /** How long an unanswered probe waits before it counts as lost. */
  lossTimeoutMs(): number {
    const { srttMs, rttvarMs } = this.rtt;
    if (srttMs === undefined || rttvarMs === undefined) return PROBE_LOSS_MIN_MS;
    return Math.max(PROBE_LOSS_MIN_MS, 2 * srttMs + 4 * rttvarMs);
  }

  /** Returns the sequence number of the probe to send now, or undefined when none is due. */
  takeProbe(now: number): number | undefined {
    if (now < this.nextProbeAt) return undefined;
    // ±10% jitter keeps the probes of many links from falling into step.
    this.nextProbeAt = now + this.timers.probeIntervalMs * (0.9 + 0.2 * this.rng.nextFloat());
    this.probeSeq = (this.probeSeq + 1) >>> 0;
    if (this.pending.size >= MAX_PENDING_PROBES) {
      const oldest = this.pending.keys().next().value as number;
      this.pending.delete(oldest);
      this.loss.record(true);
    }
    this.pending.set(this.probeSeq, now);
    return this.probeSeq;
  }

  /** A probe answer: returns true when SRTT moved enough to be reported. */
  onProbeAck(now: number, seq: number): boolean {
    const sentAt = this.pending.get(seq);
    if (sentAt === undefined) return false;
    this.pending.delete(seq);
    this.loss.record(false);
    this.rtt.addSample(now - sentAt);
    const srtt = this.rtt.srttMs!;
    const last = this.lastReportedSrttMs;
    if (last === undefined || Math.abs(srtt - last) > RTT_EVENT_CHANGE_RATIO * last) {
      this.lastReportedSrttMs = srtt;
      return true;
    }
    return false;
  }

  /** Declares overdue probes lost. */
  expireProbes(now: number): void {
    const timeout = this.lossTimeoutMs();
    for (const [seq, sentAt] of this.pending) {
      // Same expression as nextDeadline(): `now - sentAt < timeout` can disagree by a rounding step
      // and leave a deadline that never fires.
      if (now < sentAt + timeout) break;
      this.pending.delete(seq);
      this.loss.record(true);
    }
  }

  isDead(now: number): boolean {
    return now >= this.lastReceivedAt + this.timers.linkTimeoutMs;
  }

  nextDeadline(): number {
    let deadline = Math.min(this.nextProbeAt, this.lastReceivedAt + this.timers.linkTimeoutMs);
    const oldest = this.pending.values().next();
    if (!oldest.done) deadline = Math.min(deadline, oldest.value + this.lossTimeoutMs());
    return deadline;
  }
}

/** What a node knows of a peer it may link to. */
export interface KnownPeer {
  nodeId: NodeId;
  addresses: Address[];
  lastMentionedAt: number;
  failures: number;
  retryAt: number;
  isSeed: boolean;
}

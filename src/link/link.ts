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
import {
  ACTIVE_MIN_FRAMES,
  ACTIVE_PROBE_INTERVAL_MS,
  ACTIVE_WINDOW_MS,
  LINK_WARMUP_PROBE_INTERVAL_MS,
  LINK_WARMUP_PROBES,
  LOSS_WINDOW_PROBES,
  MAX_PENDING_PROBES,
  PROBE_LOSS_MIN_MS,
  RTT_EVENT_CHANGE_RATIO,
  SUSPECT_SILENCE_MS,
} from "./constants.js";
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
  /** Routed traffic was sent on the link until this time minus ACTIVE_WINDOW_MS (see markActive). */
  private activeUntil = -Infinity;
  /** When the current active period began. */
  private activeSince = -Infinity;
  /** Routed frames sent in the current ACTIVE_WINDOW_MS window, and when it began. */
  private windowFrames = 0;
  private windowStart = -Infinity;
  /**
   * Nothing arrived from an active link for longer than expected (`suspectDeadline`): routing
   * avoids it until anything arrives again (`heard`). Not a link state: the link stays up.
   */
  suspected = false;

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

  /**
   * Routed traffic goes out on this link now. Cheap (called per frame): once ACTIVE_MIN_FRAMES went
   * out within ACTIVE_WINDOW_MS, it keeps the link in fast probing (ACTIVE_PROBE_INTERVAL_MS) for
   * ACTIVE_WINDOW_MS, so that a dead next hop carrying a flow is noticed at once.
   */
  markActive(now: number): void {
    if (now >= this.windowStart + ACTIVE_WINDOW_MS) {
      this.windowStart = now;
      this.windowFrames = 0;
    }
    if (++this.windowFrames < ACTIVE_MIN_FRAMES) return;
    if (now >= this.activeUntil) {
      this.activeSince = now;
      if (this.nextProbeAt > now + ACTIVE_PROBE_INTERVAL_MS) this.nextProbeAt = now;
    }
    this.activeUntil = now + ACTIVE_WINDOW_MS;
  }

  /** Anything arrived from the peer. Returns true when that cleared a suspicion. */
  heard(now: number): boolean {
    this.lastReceivedAt = now;
    if (!this.suspected) return false;
    this.suspected = false;
    return true;
  }

  /**
   * When an active link becomes suspect if nothing arrives meanwhile: SUSPECT_SILENCE_MS + 4·RTTVAR
   * after the later of the last arrival and the first answer the active period could bring back.
   * Infinity while idle (no routed traffic) or already suspected.
   */
  suspectDeadline(): number {
    if (this.suspected || this.activeUntil === -Infinity) return Infinity;
    const { srttMs, rttvarMs } = this.rtt;
    const rttvar = rttvarMs ?? 0;
    const firstAnswer = this.activeSince + (srttMs === undefined ? this.lossTimeoutMs() : srttMs + 4 * rttvar);
    const deadline = Math.max(this.lastReceivedAt, firstAnswer) + SUSPECT_SILENCE_MS + 4 * rttvar;
    return deadline < this.activeUntil ? deadline : Infinity;
  }

  private probeIntervalMs(now: number): number {
    const base = this.timers.probeIntervalMs;
    if (this.suspected || now < this.activeUntil) return Math.min(base, ACTIVE_PROBE_INTERVAL_MS);
    if (this.probeSeq < LINK_WARMUP_PROBES) return Math.min(base, LINK_WARMUP_PROBE_INTERVAL_MS);
    return base;
  }

  /** Returns the sequence number of the probe to send now, or undefined when none is due. */
  takeProbe(now: number): number | undefined {
    if (now < this.nextProbeAt) return undefined;
    // ±10% jitter keeps the probes of many links from falling into step.
    this.nextProbeAt = now + this.probeIntervalMs(now) * (0.9 + 0.2 * this.rng.nextFloat());
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
    let deadline = Math.min(this.nextProbeAt, this.lastReceivedAt + this.timers.linkTimeoutMs, this.suspectDeadline());
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
  /** When the neighbour policy last tried a link to it, or it dropped / left us (-Infinity: never). */
  lastTrialAt: number;
  /**
   * Discovery by tags: the peer's tags and whether it is selective (has --connect-tags), as last
   * heard from the peer itself or relayed in peer exchange, and when a neighbour of the peer vouched
   * for them (-Infinity: never heard).
   */
  tags: string[];
  selective: boolean;
  tagsSeenAt: number;
  /** CA mode: the tags of the peer's certificate, once it authenticated; claims beyond them are ignored. */
  certificateTags: string[] | undefined;
}

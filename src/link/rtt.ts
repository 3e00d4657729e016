/**
 * Smoothed RTT and RTT variance as in RFC 6298 §2: the first sample sets SRTT = R and
 * RTTVAR = R/2; later samples move them by the gains ALPHA = 1/8 and BETA = 1/4. Routing uses the
 * smoothed values, never a raw last sample, so one delayed probe does not move a route.
 */
import { RTT_ALPHA, RTT_BETA } from "./constants.js";

export class RttEstimator {
  srttMs: number | undefined = undefined;
  rttvarMs: number | undefined = undefined;
  /**
   * The routing metric's variance term: the same smoothed mean deviation as RTTVAR (gain BETA), but
   * starting at 0 instead of R/2. RFC 6298's R/2 start is a safety margin for retransmission
   * timers; as a measurement it would make every new link look worse than it is for its first
   * dozen probes.
   */
  mdevMs: number | undefined = undefined;
  samples = 0;

  addSample(sampleMs: number): void {
    if (!(sampleMs >= 0) || !Number.isFinite(sampleMs)) return;
    this.samples += 1;
    if (this.srttMs === undefined || this.rttvarMs === undefined || this.mdevMs === undefined) {
      this.srttMs = sampleMs;
      this.rttvarMs = sampleMs / 2;
      this.mdevMs = 0;
      return;
    }
    this.rttvarMs = (1 - RTT_BETA) * this.rttvarMs + RTT_BETA * Math.abs(this.srttMs - sampleMs);
    this.mdevMs = (1 - RTT_BETA) * this.mdevMs + RTT_BETA * Math.abs(this.srttMs - sampleMs);
    this.srttMs = (1 - RTT_ALPHA) * this.srttMs + RTT_ALPHA * sampleMs;
  }
}

/** Fraction of lost probes over the last `size` probes whose fate is known. */
export class LossWindow {
  private readonly outcomes: Uint8Array;
  private next = 0;
  private count = 0;
  private lost = 0;

  constructor(readonly size: number) {
    this.outcomes = new Uint8Array(size);
  }

  record(wasLost: boolean): void {
    if (this.count === this.size) this.lost -= this.outcomes[this.next]!;
    else this.count += 1;
    this.outcomes[this.next] = wasLost ? 1 : 0;
    this.lost += wasLost ? 1 : 0;
    this.next = (this.next + 1) % this.size;
  }

  get ratio(): number {
    return this.count === 0 ? 0 : this.lost / this.count;
  }

  /** Probes whose fate is known in the window, and how many of them were lost. */
  get samples(): number {
    return this.count;
  }

  get lostSamples(): number {
    return this.lost;
  }
}

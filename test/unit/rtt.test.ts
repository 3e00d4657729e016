import { test } from "node:test";
import assert from "node:assert/strict";
import { LossWindow, RttEstimator } from "../../src/link/rtt.js";
import { LinkMeasurement } from "../../src/link/link.js";
import { SeededRng } from "../../src/core/rng.js";

test("RTT estimator follows RFC 6298", () => {
  const rtt = new RttEstimator();
  rtt.addSample(100);
  assert.equal(rtt.srttMs, 100);
  assert.equal(rtt.rttvarMs, 50);
  rtt.addSample(200);
  // RTTVAR = 3/4·50 + 1/4·|100-200| = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5
  assert.equal(rtt.rttvarMs, 62.5);
  assert.equal(rtt.srttMs, 112.5);
  for (let index = 0; index < 200; index += 1) rtt.addSample(80);
  assert.ok(Math.abs(rtt.srttMs! - 80) < 0.01);
  assert.ok(rtt.rttvarMs! < 0.01);
  rtt.addSample(Number.NaN);
  rtt.addSample(-5);
  assert.ok(Math.abs(rtt.srttMs! - 80) < 0.01, "bad samples are ignored");
});

test("one outlier moves SRTT by only an eighth of the difference", () => {
  const rtt = new RttEstimator();
  for (let index = 0; index < 50; index += 1) rtt.addSample(50);
  rtt.addSample(450);
  assert.ok(Math.abs(rtt.srttMs! - 100) < 0.5);
});

test("loss window counts over the last N outcomes only", () => {
  const loss = new LossWindow(4);
  assert.equal(loss.ratio, 0);
  loss.record(true);
  loss.record(false);
  assert.equal(loss.ratio, 0.5);
  loss.record(false);
  loss.record(false);
  assert.equal(loss.ratio, 0.25);
  loss.record(false);
  assert.equal(loss.ratio, 0, "the lost probe slid out of the window");
});

test("link measurement: probes answered give RTT samples; unanswered ones count as lost; silence kills the link", () => {
  const measurement = new LinkMeasurement(0, { probeIntervalMs: 1000, linkTimeoutMs: 5000 }, new SeededRng(1));
  const first = measurement.takeProbe(0);
  assert.equal(first, 1);
  assert.equal(measurement.takeProbe(10), undefined, "not due yet");
  assert.equal(measurement.onProbeAck(40, 1), true, "first sample is reported");
  assert.equal(measurement.rtt.srttMs, 40);
  assert.equal(measurement.onProbeAck(41, 1), false, "a duplicate answer is ignored");
  const second = measurement.takeProbe(1200)!;
  measurement.expireProbes(1200 + 999);
  assert.equal(measurement.loss.ratio, 0);
  measurement.expireProbes(1200 + 1000);
  assert.equal(measurement.loss.ratio, 0.5);
  assert.equal(measurement.onProbeAck(2300, second), false, "a late answer after the loss verdict is ignored");
  assert.equal(measurement.isDead(4999), false);
  assert.equal(measurement.isDead(5000), true);
  measurement.lastReceivedAt = 4000;
  assert.equal(measurement.isDead(5000), false);
});

/**
 * Max neighbours enforced at handshake time, over secured links in the simulator: a full node
 * refuses a new inbound handshake at its first message — before any DH, so it never sends an
 * HS_RESPONSE — with HS_REJECT `full` naming its neighbours, and the refused node tries those.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Simulator } from "../../src/sim/simulator.js";
import { UnitType } from "../../src/crypto/units.js";

test("max neighbours: a full node refuses a handshake at HS_INIT (no DH, counted) and the refused node tries its referrals", () => {
  const sim = new Simulator({
    matrix: { a: { b: 10, c: 10, d: 10 }, b: { c: 10, d: 10 }, c: { d: 10 } },
    seeds: [2],
    seed: 9,
    manualStart: true,
    engine: { maxNeighbours: 2 },
  });
  const unitsTo4 = new Map<number, number[]>();
  sim.onTransmit((record) => {
    if (record.to === 4) unitsTo4.set(record.from, [...(unitsTo4.get(record.from) ?? []), record.packet[0]!]);
  });
  for (const id of [1, 2, 3]) sim.start(id);
  const full = (id: number): boolean => sim.neighbours(id).filter((neighbour) => neighbour.state === "up").length === 2;
  assert.ok(sim.runUntilCondition(() => full(1) && full(2) && full(3), 20_000), "1, 2, 3 linked to each other: all full");
  sim.start(4);
  // 4 is refused by its seed 2, then by 1 and 3, which it only learns from 2's referrals.
  const refused = (id: number): number => sim.engine(id)!.stats().dropped.handshake_full ?? 0;
  assert.ok(sim.runUntilCondition(() => refused(2) >= 1 && refused(1) >= 1 && refused(3) >= 1, 30_000), JSON.stringify([refused(1), refused(2), refused(3)]));
  sim.runFor(100); // the last HS_REJECT on its way to 4
  assert.deepEqual(sim.neighbours(4).filter((neighbour) => neighbour.state === "up"), []);
  assert.ok((sim.engine(4)!.stats().dropped.handshake_rejected ?? 0) >= 3);
  for (const id of [1, 2, 3]) {
    const units = unitsTo4.get(id) ?? [];
    assert.ok(units.length > 0 && units.every((type) => type === UnitType.HandshakeReject), `node ${id} sent node 4 only HS_REJECTs: ${units}`);
  }
});

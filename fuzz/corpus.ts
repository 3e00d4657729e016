/**
 * Valid captures to mutate: every packet two real engines send each other while they link up,
 * probe, exchange peer lists and carry data on both classes (with fragmentation over UDP). The
 * engines run in virtual time on a loss-free wire, so the corpus is the same on every run.
 */
import { type Address, type TransportKind, formatAddress } from "../src/core/address.js";
import { nullLogger } from "../src/core/log.js";
import { SeededRng } from "../src/core/rng.js";
import { NodeEngine } from "../src/node/engine.js";
import { ENGINE_DEFAULTS } from "../src/node/engine-config.js";
import type { PathId } from "../src/node/io.js";

export interface Capture {
  transport: TransportKind;
  packet: Uint8Array;
}

const ONE_WAY_MS = 5;

export function captureTraffic(transport: TransportKind, seed = 1): Capture[] {
  const captures: Capture[] = [];
  const addresses: Address[] = [1, 2].map((id) => ({ transport, host: `10.0.0.${id}`, port: 7000 }));
  const engines = [1, 2].map(
    (id) =>
      new NodeEngine({
        ...ENGINE_DEFAULTS,
        nodeId: id,
        listenAddresses: [addresses[id - 1]!],
        seeds: id === 2 ? [{ nodeId: 1, address: addresses[0]! }] : [],
        rng: new SeededRng(seed + id),
        logger: nullLogger,
      }),
  );
  // Each engine's path to the other: one connection, ids allocated by each engine.
  const pathTo: (PathId | undefined)[] = [undefined, undefined];
  let now = 0;
  const wire: { at: number; to: number; packet: Uint8Array }[] = [];
  const drain = (index: number): void => {
    const engine = engines[index]!;
    for (let output = engine.pollOutput(); output; output = engine.pollOutput()) {
      if (output.kind === "open_path") {
        pathTo[index] = output.pathId;
        const other = 1 - index;
        pathTo[other] ??= engines[other]!.acceptPath(now, addresses[index]!);
        engine.pathOpened(now, output.pathId);
      } else if (output.kind === "transmit") {
        const packet = output.tail === undefined ? output.packet.slice() : new Uint8Array([...output.packet, ...output.tail]);
        captures.push({ transport, packet });
        wire.push({ at: now + ONE_WAY_MS, to: 1 - index, packet });
      }
    }
  };
  engines.forEach((engine, index) => {
    engine.start(now);
    drain(index);
  });
  const step = (until: number): void => {
    while (true) {
      wire.sort((a, b) => a.at - b.at);
      const nextPacket = wire[0]?.at ?? Infinity;
      const nextTimer = Math.min(engines[0]!.nextDeadline(), engines[1]!.nextDeadline());
      const next = Math.min(nextPacket, nextTimer);
      if (next > until) break;
      now = next;
      if (nextPacket <= nextTimer) {
        const { to, packet } = wire.shift()!;
        const pathId = pathTo[to];
        if (pathId !== undefined) engines[to]!.receive(now, pathId, packet);
        drain(to);
      } else {
        for (const [index, engine] of engines.entries()) {
          if (engine.nextDeadline() <= now) {
            engine.tick(now);
            drain(index);
          }
        }
      }
    }
    now = until;
  };
  step(3000);
  const sizes = [0, 1, 100, 1500, 5000];
  for (const [index, size] of sizes.entries()) {
    const data = new Uint8Array(size).map((_, offset) => (offset * 7 + index) & 0xff);
    for (const reliable of [true, false]) {
      try {
        engines[1]!.send(now, 1, data, { reliable });
      } catch {
        // a datagram over the UDP MTU is refused: that is fine, the corpus keeps what was sent
      }
    }
    drain(1);
  }
  step(now + 3000);
  for (const [index, engine] of engines.entries()) {
    engine.shutdown(now);
    drain(index);
  }
  void formatAddress;
  return captures;
}

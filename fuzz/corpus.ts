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
  /** What went on the wire: handshake units and sealed records. */
  packet: Uint8Array;
  /** The frames a record sealed (undefined for handshake units): the corpus of the frame decoders. */
  plaintext: Uint8Array | undefined;
  /** Engine index (0: node 1, 1: node 2) it went to, and when it arrived. */
  to: number;
  at: number;
}

/** The configuration of capture engine `index` (0 or 1): linkedEngine rebuilds engine 0 to replay what it received. */
export function captureEngineConfig(transport: TransportKind, index: number, seed = 1) {
  const addresses: Address[] = [1, 2].map((id) => ({ transport, host: `10.0.0.${id}`, port: 7000 }));
  const id = index + 1;
  return {
    ...ENGINE_DEFAULTS,
    nodeId: id,
    listenAddresses: [addresses[index]!],
    seeds: id === 2 ? [{ nodeId: 1, address: addresses[0]! }] : [],
    rng: new SeededRng(seed + id),
    logger: nullLogger,
    exposePlaintext: true,
  };
}

const ONE_WAY_MS = 5;

export function captureTraffic(transport: TransportKind, seed = 1): Capture[] {
  const captures: Capture[] = [];
  const addresses: Address[] = [1, 2].map((id) => ({ transport, host: `10.0.0.${id}`, port: 7000 }));
  const engines = [0, 1].map((index) => new NodeEngine(captureEngineConfig(transport, index, seed)));
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
        const packet = output.rest === undefined ? output.packet.slice() : new Uint8Array([...output.packet, ...output.rest.flatMap((piece) => [...piece])]);
        captures.push({ transport, packet, plaintext: output.plaintext?.slice(), to: 1 - index, at: now + ONE_WAY_MS });
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

/**
 * Every decoder that reads bytes from the network, as a fuzz target: a name, a corpus of valid
 * inputs, and a function that must never throw whatever it is fed (it may return an error).
 * New decoders (routing, crypto records, …) register here.
 */
import { nullLogger } from "../src/core/log.js";
import { SeededRng } from "../src/core/rng.js";
import { ArqChannel, DEFAULT_ARQ_CONFIG } from "../src/link/arq.js";
import { decodeLinkMessage } from "../src/link/messages.js";
import { NodeEngine } from "../src/node/engine.js";
import { ENGINE_DEFAULTS } from "../src/node/engine-config.js";
import { FrameReassembler, UNIT_FRAMING } from "../src/runtime/tcp.js";
import { cryptoFuzzTargets } from "../test/crypto/fuzz-targets.js";
import { ModuleId } from "../src/core/module.js";
import { type RouteMessage, decodeRouteMessage, encodeRouteMessage } from "../src/routing/messages.js";
import { Router } from "../src/routing/router.js";
import { FrameKind, forEachFrame } from "../src/wire/frame.js";
import { type Capture, captureEngineConfig, captureTraffic } from "./corpus.js";
import { mutate } from "./mutate.js";

export interface FuzzTarget {
  name: string;
  corpus: Uint8Array[];
  /** Feeds one input; throwing is a finding. */
  feed(input: Uint8Array): void;
}

function payloadsOfKind(captures: Capture[], kind: number): Uint8Array[] {
  const payloads: Uint8Array[] = [];
  for (const capture of captures) {
    if (capture.plaintext === undefined) continue;
    forEachFrame(capture.plaintext, (header, payload) => {
      if (header.kind === kind) payloads.push(payload.slice());
    });
  }
  return payloads;
}

/** An engine with an up link to node 2 on path 1, ready to take hostile packets on that path. */
function linkedEngine(captures: Capture[], transport: "udp" | "tcp"): { engine: NodeEngine; pathId: number } {
  // The capture's node 1 again (same keys, same seeded entropy): replaying what node 2 sent it
  // runs the same handshake, so the secured link comes up and deeper code is reachable.
  const engine = new NodeEngine(captureEngineConfig(transport, 0));
  engine.start(0);
  const pathId = engine.acceptPath(0, { transport, host: "10.0.0.2", port: 7000 })!;
  for (const capture of captures) {
    if (capture.to !== 0 || capture.at > 1000) continue;
    engine.receive(capture.at, pathId, capture.packet);
    while (engine.pollOutput()) {
      // outputs are not needed
    }
  }
  while (engine.pollOutput()) {
    // outputs are not needed
  }
  return { engine, pathId };
}

export function fuzzTargets(): FuzzTarget[] {
  const udp = captureTraffic("udp");
  const tcp = captureTraffic("tcp");
  const all = [...udp, ...tcp];
  const packets = all.flatMap((capture) => (capture.plaintext === undefined ? [] : [capture.plaintext]));

  const arq = new ArqChannel({ ...DEFAULT_ARQ_CONFIG, maxSegmentBytes: 1355 });
  let arqInputs = 0;
  const freshArq = (): ArqChannel => {
    arqInputs += 1;
    // A new channel now and then, so both fresh and long-lived states are exercised.
    return arqInputs % 5000 === 0 ? new ArqChannel({ ...DEFAULT_ARQ_CONFIG, maxSegmentBytes: 1355 }) : arq;
  };
  let arqChannel = arq;
  let arqNow = 0;

  let engineInputs = 0;
  let udpVictim = linkedEngine(udp.filter((capture) => capture.packet.byteLength > 0), "udp");
  let tcpVictim = linkedEngine(tcp, "tcp");
  let engineNow = 1001;

  let reassembler = new FrameReassembler(UNIT_FRAMING);

  // Routing: route messages from the captures (LINK and ROUTED frames of module 3), plus the
  // end-to-end messages two engines rarely exchange, into the decoder and a live router.
  const routePayloads: Uint8Array[] = [];
  for (const capture of all) {
    if (capture.plaintext === undefined) continue;
    forEachFrame(capture.plaintext, (header, payload) => {
      if (header.module === ModuleId.Routing) routePayloads.push(payload.slice());
    });
  }
  const extra: RouteMessage[] = [
    { type: "seqno_request", requests: [{ destination: 2, seqno: 7, hopLimit: 32 }] },
    { type: "route_request", destinations: [2, 3] },
    { type: "unreachable", reason: 1, destination: 9 },
    { type: "echo_request", id: 258 },
    { type: "time_exceeded", id: 257, previousHop: 1, linkRttUs: 1000 },
  ];
  for (const message of extra) {
    routePayloads.push(encodeRouteMessage(message));
  }
  let router = new Router({ localId: 1, rng: new SeededRng(3) }, 0);
  let routerInputs = 0;
  let routerNow = 0;
  const freshRouter = (): Router => {
    routerInputs += 1;
    if (routerInputs % 5000 === 1) {
      router = new Router({ localId: 1, rng: new SeededRng(3) }, 0);
      for (const peer of [2, 3]) {
        router.linkUp(0, peer);
        router.linkCost(0, peer, 1000, 2000);
      }
      router.trace(0, 9);
    }
    return router;
  };

  return [
    {
      name: "frame packets (wire/frame.ts forEachFrame)",
      corpus: packets,
      feed(input) {
        forEachFrame(input, () => {});
      },
    },
    {
      name: "link messages (link/messages.ts)",
      corpus: payloadsOfKind(all, FrameKind.Link),
      feed(input) {
        decodeLinkMessage(input);
      },
    },
    {
      name: "ARQ segments (link/arq.ts onSegment)",
      corpus: payloadsOfKind(udp, FrameKind.ArqSegment),
      feed(input) {
        arqChannel = freshArq();
        arqNow += 1;
        arqChannel.onSegment(arqNow, input);
        while (arqChannel.pollDelivered()) {
          // drain
        }
        arqChannel.pollAck();
      },
    },
    {
      name: "ARQ acks (link/arq.ts onAck)",
      corpus: payloadsOfKind(udp, FrameKind.ArqAck),
      feed(input) {
        arqChannel = freshArq();
        arqNow += 1;
        arqChannel.send(arqNow, input);
        while (arqChannel.pollSegment(arqNow)) {
          // drain
        }
        arqChannel.onAck(arqNow, input);
        arqChannel.tick(arqNow + 5000);
      },
    },
    {
      name: "route messages (routing/messages.ts, routing/router.ts)",
      corpus: routePayloads,
      feed(input) {
        decodeRouteMessage(input);
        const live = freshRouter();
        routerNow += 1;
        live.onLinkMessage(routerNow, 2 + (routerInputs % 2), input);
        live.onRoutedMessage(routerNow, 9, 2, input);
        live.onTtlExpired(routerNow, 9, 3, input);
        live.tick(routerNow + 4000);
        while (live.pollOutput()) {
          // drain
        }
      },
    },
    {
      name: "TCP stream reassembly (runtime/tcp.ts FrameReassembler)",
      corpus: tcp.map((capture) => capture.packet),
      feed(input) {
        const error = reassembler.push(input, () => true);
        if (error !== undefined || reassembler.bufferedBytes > 8 * 1024 * 1024) reassembler = new FrameReassembler(UNIT_FRAMING);
      },
    },
    {
      name: "whole engine, UDP link (node/engine.ts receive)",
      corpus: udp.map((capture) => capture.packet),
      feed(input) {
        engineInputs += 1;
        if (engineInputs % 2000 === 0) udpVictim = linkedEngine(udp, "udp");
        engineNow += 1;
        udpVictim.engine.receive(engineNow, udpVictim.pathId, input);
        udpVictim.engine.tick(engineNow);
        while (udpVictim.engine.pollOutput()) {
          // drain
        }
      },
    },
    {
      name: "whole engine, TCP link (node/engine.ts receive)",
      corpus: tcp.map((capture) => capture.packet),
      feed(input) {
        engineInputs += 1;
        if (engineInputs % 2000 === 0) tcpVictim = linkedEngine(tcp, "tcp");
        engineNow += 1;
        tcpVictim.engine.receive(engineNow, tcpVictim.pathId, input);
        tcpVictim.engine.tick(engineNow);
        while (tcpVictim.engine.pollOutput()) {
          // drain
        }
      },
    },
    // The crypto layer's own decoders and state machines (handshake, records, certificates, keys…).
    ...cryptoFuzzTargets(),
  ];
}

export interface TargetReport {
  target: string;
  inputs: number;
  corpus: number;
  findings: { input: string; error: string }[];
}

/** Runs every target for `msPerTarget` of wall time: the corpus as is, then seeded mutations of it. */
export function fuzzDecoders(options: { seed: number; msPerTarget: number }): TargetReport[] {
  const reports: TargetReport[] = [];
  for (const target of fuzzTargets()) {
    const rng = new SeededRng(options.seed);
    const report: TargetReport = { target: target.name, inputs: 0, corpus: target.corpus.length, findings: [] };
    const corpus = target.corpus.length > 0 ? target.corpus : [new Uint8Array(0)];
    for (const input of corpus) run(target, input, report);
    const deadline = performance.now() + options.msPerTarget;
    while (performance.now() < deadline && report.findings.length < 10) {
      for (let batch = 0; batch < 200; batch += 1) {
        const base = corpus[rng.nextInt(corpus.length)]!;
        const other = corpus[rng.nextInt(corpus.length)];
        run(target, mutate(rng, base, other), report);
      }
    }
    reports.push(report);
  }
  return reports;
}

function run(target: FuzzTarget, input: Uint8Array, report: TargetReport): void {
  report.inputs += 1;
  try {
    target.feed(input);
  } catch (error) {
    report.findings.push({ input: Buffer.from(input).toString("hex").slice(0, 400), error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
}

/**
 * One node of `npm run bench -- pubsub`, in its own process (bench/pubsub.ts forks five of them,
 * so that no node's event loop waits on another's):
 *
 *   node dist/bench/pubsub-node.js ROLE NODE_ID DATA_DIR TRANSPORT SIZE [SEED]
 *
 * ROLE is `publisher` or `subscriber`. It talks to the parent over the IPC channel:
 *   → { kind: "ready", address }                      once the node is up
 *   ← { kind: "neighbours" } → { kind: "neighbours", up }
 *   ← { kind: "probe", run }                           publisher: publish one probe message
 *   ← { kind: "run", run, rate, durationMs }           publisher: publish at `rate` for durationMs
 *   → { kind: "sent", run, sent, elapsedMs }
 *   ← { kind: "report", run }                          subscriber: what arrived for `run`
 *   → { kind: "report", run, received, samples }       samples: latencies in ms (Float64Array, base64)
 *   ← { kind: "stop" }                                 close the node and exit
 *
 * A message carries its publish time in its first 8 bytes (process.hrtime: CLOCK_MONOTONIC, one
 * clock for every process on the machine) and its run number in the next 4; latency is publish()
 * in the publisher's process → the subscriber's async iterator in its process.
 */
import { createNode } from "../src/runtime/node.js";

type Command =
  | { kind: "neighbours" }
  | { kind: "probe"; run: number }
  | { kind: "run"; run: number; rate: number; durationMs: number }
  | { kind: "report"; run: number }
  | { kind: "stop" };

const SUBJECT = "bench.pubsub";

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function send(message: Record<string, unknown>): void {
  process.send!(message);
}

async function main(): Promise<void> {
  const [role, idText, dataDir, transport, sizeText, seed] = process.argv.slice(2);
  const size = Number(sizeText);
  const port = transport === "udp" ? { udpPort: 0 } : { tcpPort: 0 };
  const node = await createNode({ nodeId: Number(idText), ...port, dataDir, seeds: seed === undefined ? [] : [seed], logLevel: "error" });

  // Subscriber state: per run, arrival count and latencies.
  const runs = new Map<number, { received: number; samples: number[] }>();
  if (role === "subscriber") {
    const sub = node.subscribe(SUBJECT);
    void (async () => {
      for await (const msg of sub) {
        const at = nowMs();
        const data = msg.data;
        const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
        const run = view.getUint32(8);
        let state = runs.get(run);
        if (state === undefined) runs.set(run, (state = { received: 0, samples: [] }));
        state.received++;
        state.samples.push(at - view.getFloat64(0));
      }
    })();
  }

  const payload = new Uint8Array(size);
  const view = new DataView(payload.buffer);
  const publishOne = (run: number): void => {
    view.setFloat64(0, nowMs());
    view.setUint32(8, run);
    node.publish(SUBJECT, payload);
  };

  process.on("message", (command: Command) => {
    switch (command.kind) {
      case "neighbours":
        send({ kind: "neighbours", up: node.neighbours().filter((n) => n.state === "up").length, routed: node.routes().filter((r) => r.nextHop !== undefined).length });
        return;
      case "probe":
        publishOne(command.run);
        return;
      case "run": {
        // Paced by a 1 ms timer: each turn publishes what is due. The event loop stays free for
        // the node in between (no busy loop).
        const started = performance.now();
        let sent = 0;
        const turn = (): void => {
          const elapsed = performance.now() - started;
          const due = Math.min(Math.floor((elapsed / 1000) * command.rate), Math.floor((command.durationMs / 1000) * command.rate));
          while (sent < due) {
            publishOne(command.run);
            sent++;
          }
          if (elapsed < command.durationMs) setTimeout(turn, 1);
          else send({ kind: "sent", run: command.run, sent, elapsedMs: elapsed });
        };
        setTimeout(turn, 1);
        return;
      }
      case "report": {
        const state = runs.get(command.run) ?? { received: 0, samples: [] };
        runs.delete(command.run);
        const samples = Buffer.from(new Float64Array(state.samples).buffer).toString("base64");
        send({ kind: "report", run: command.run, received: state.received, samples });
        return;
      }
      case "stop":
        void node.close().then(() => process.exit(0));
        return;
    }
  });
  send({ kind: "ready", address: node.addresses[0] });
}

main().catch((error: unknown) => {
  process.stderr.write(`pubsub-node: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

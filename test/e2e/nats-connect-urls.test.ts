/**
 * connect_urls across the overlay, with the real `nats` client and real `skein node` processes:
 * three nodes A(1), B(2), C(3) with NATS ports. Each node's INFO lists the other nodes' client
 * ports (/varz too: test/e2e/nats-cluster.test.ts), learned through the overlay (advertised as pub/sub interest). A client given only
 * A's URL fails over when A is killed: it reconnects to a port it learned from connect_urls (B's or
 * C's), its subscription comes back with it, and it goes on receiving C's publishes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection, StringCodec } from "nats";
import { getNode, type Listening, type SkeinProcess, startSkein, stopAll, upNeighbourIds, waitFor } from "./processes.js";

const sc = StringCodec();
const clients: NatsConnection[] = [];
type Started = Listening & { nats: string };

function args(id: number, extra: string[] = []): string[] {
  return ["node", "--node-id", String(id), "--tcp-port", "0", "--nats-port", "0", "--web-addr", "127.0.0.1:0", "--probe-interval-ms", "300", "--link-timeout-ms", "2000", "--log-level", "warn", ...extra];
}

function hostPort(url: string): string {
  return url.replace(/^nats:\/\//, "");
}

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
  await stopAll();
});

describe("NATS connect_urls: clients learn the other nodes' ports and fail over", () => {
  const info: Record<number, Started> = {};
  let a: SkeinProcess;

  before(async () => {
    a = startSkein(args(1));
    info[1] = (await a.listening) as Started;
    const seed = `1@${info[1].addresses[0]!}`;
    const b = startSkein(args(2, ["--seeds", seed]));
    const c = startSkein(args(3, ["--seeds", seed]));
    info[2] = (await b.listening) as Started;
    info[3] = (await c.listening) as Started;
    // B and C must be linked to each other too, so that they still form an overlay once A is gone.
    await waitFor("a full mesh of A, B and C", async () => {
      for (const id of [1, 2, 3]) if (upNeighbourIds(await getNode(info[id]!.web!)).length !== 2) return false;
      return true;
    }, 60_000);
  });

  test("INFO lists every node's client port (own first in nats-server's order, then the others)", async () => {
    const expected = [info[1]!, info[2]!, info[3]!].map((node) => hostPort(node.nats)).sort();
    const nc = await connect({ servers: info[1]!.nats, reconnect: false });
    clients.push(nc);
    // The first INFO may predate the advertisements: a reconnecting client gets the update as an
    // async INFO. Poll what the client holds.
    await waitFor("A's INFO to list B's and C's ports", () => {
      const urls = (nc.info?.connect_urls ?? []).slice().sort();
      return JSON.stringify(urls) === JSON.stringify(expected);
    }, 60_000);
    await nc.close();
    // A fresh connection's first INFO carries them.
    const fresh = await connect({ servers: info[2]!.nats, reconnect: false });
    clients.push(fresh);
    await waitFor("B's INFO to list A's and C's ports", () => JSON.stringify((fresh.info?.connect_urls ?? []).slice().sort()) === JSON.stringify(expected), 60_000);
    await fresh.close();
  });

  test("a client that knows only A's URL moves to another node when A dies, with its subscription", async () => {
    const publisher = await connect({ servers: info[3]!.nats, reconnect: false });
    clients.push(publisher);
    const mover = await connect({ servers: info[1]!.nats, reconnect: true, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    clients.push(mover);
    await waitFor("the mover to learn B's and C's ports", () => (mover.info?.connect_urls ?? []).includes(hostPort(info[2]!.nats)) && (mover.info?.connect_urls ?? []).includes(hostPort(info[3]!.nats)), 60_000);
    const got: string[] = [];
    mover.subscribe("failover.x", { callback: (_err, msg) => got.push(sc.decode(msg.data)) });
    await mover.flush();
    let i = 0;
    const publishUntil = async (what: string, done: () => boolean): Promise<void> =>
      waitFor(what, async () => {
        publisher.publish("failover.x", sc.encode(`m${i++}`));
        await publisher.flush();
        await new Promise((resolve) => setTimeout(resolve, 50));
        return done();
      }, 60_000);
    await publishUntil("the mover on A to get C's messages", () => got.length > 0);

    await a.kill("SIGKILL");
    const before = got.length;
    await publishUntil("the mover, reconnected elsewhere, to get C's messages", () => got.length > before && !mover.isClosed());
    const server = mover.getServer();
    assert.ok([hostPort(info[2]!.nats), hostPort(info[3]!.nats)].some((url) => server.includes(url)), `the mover is on B or C now, not on ${server}`);
    assert.equal(new Set(got).size, got.length, "no message twice");
  });
});

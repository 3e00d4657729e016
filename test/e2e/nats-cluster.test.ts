/**
 * A NATS-style cluster configuration forms a skein overlay: two `skein nats-server -c FILE`
 * processes whose `cluster { name, listen, routes [ ] }` blocks name each other (both list both
 * routes, as NATS configurations often do: the route to itself is skipped). Their ports files
 * carry the cluster URL; a real `nats` client on each server talks across (pub/sub both ways,
 * request/reply); /varz lists the other server's client port in connect_urls and the cluster.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect, type NatsConnection, StringCodec } from "nats";
import { type NatsProcess, startSkeinNatsServer, stopAllNats } from "./nats-helpers.js";
import { waitFor } from "./processes.js";

const sc = StringCodec();
const clients: NatsConnection[] = [];
const confDir = mkdtempSync(path.join(tmpdir(), "skein-cluster-conf-"));

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
  await stopAllNats();
  rmSync(confDir, { recursive: true, force: true });
});

/** Publishes on `subject` from `pub` until `received()` says the message crossed. */
async function publishUntil(pub: NatsConnection, subject: string, what: string, received: () => boolean): Promise<void> {
  let i = 0;
  await waitFor(what, async () => {
    pub.publish(subject, sc.encode(`m${i++}`));
    await pub.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    return received();
  }, 60_000);
}

describe("skein nats-server: a NATS cluster config becomes a skein overlay", () => {
  const servers: NatsProcess[] = [];
  const clusterPorts: number[] = [];

  before(async () => {
    clusterPorts.push(await freePort(), await freePort());
    const routes = clusterPorts.map((port) => `    nats-route://127.0.0.1:${port}`).join("\n");
    for (const [index, port] of clusterPorts.entries()) {
      const file = path.join(confDir, `s${index + 1}.conf`);
      writeFileSync(
        file,
        [
          "# a NATS-style cluster configuration",
          "listen: 127.0.0.1:-1",
          "http: 127.0.0.1:-1",
          `server_name: "s${index + 1}"`,
          "cluster {",
          "  name: skeinc",
          `  listen: 127.0.0.1:${port}`,
          "  routes [",
          routes,
          "  ]",
          "}",
          "",
        ].join("\n"),
      );
      servers.push(await startSkeinNatsServer(["-c", file]));
    }
  });

  test("the ports file carries the cluster URL", () => {
    for (const [index, server] of servers.entries()) {
      const ports = JSON.parse(readFileSync(server.portsFile, "utf8")) as { nats: string[]; cluster?: string[]; monitoring?: string[] };
      assert.deepEqual(ports.cluster, [`nats://127.0.0.1:${clusterPorts[index]}`]);
      assert.equal(ports.nats.length, 1);
      assert.equal(ports.monitoring?.length, 1);
    }
  });

  test("a client on each server talks across: pub/sub both ways, request/reply", async () => {
    const one = await connect({ servers: servers[0]!.clientUrl, reconnect: false });
    const two = await connect({ servers: servers[1]!.clientUrl, reconnect: false });
    clients.push(one, two);
    const atTwo: string[] = [];
    two.subscribe("cluster.to-two", { callback: (_err, msg) => atTwo.push(sc.decode(msg.data)) });
    const atOne: string[] = [];
    one.subscribe("cluster.to-one", { callback: (_err, msg) => atOne.push(sc.decode(msg.data)) });
    two.subscribe("cluster.echo", { callback: (_err, msg) => msg.respond(sc.encode(`echo ${sc.decode(msg.data)}`)) });
    await Promise.all([one.flush(), two.flush()]);
    await publishUntil(one, "cluster.to-two", "server 1's publish to reach server 2's subscriber", () => atTwo.length > 0);
    await publishUntil(two, "cluster.to-one", "server 2's publish to reach server 1's subscriber", () => atOne.length > 0);
    let answer = "";
    await waitFor("a request from server 1 answered on server 2", async () => {
      try {
        answer = sc.decode((await one.request("cluster.echo", sc.encode("hi"), { timeout: 2_000 })).data);
        return true;
      } catch {
        return false; // no responders until the interest crossed
      }
    }, 60_000);
    assert.equal(answer, "echo hi");
  });

  test("/varz lists the other server's client port (connect_urls) and the cluster", async () => {
    const other = servers[1]!.clientUrl.replace("nats://", "");
    let varz: { connect_urls?: string[]; cluster?: { name?: string; cluster_port?: number } } = {};
    await waitFor("server 1's /varz to list server 2's client port", async () => {
      varz = (await (await fetch(`${servers[0]!.monitorUrl!}/varz`)).json()) as typeof varz;
      return (varz.connect_urls ?? []).includes(other);
    }, 60_000);
    assert.equal(varz.cluster?.name, "skeinc");
    assert.equal(varz.cluster?.cluster_port, clusterPorts[0]);
  });
});

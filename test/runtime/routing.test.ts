/**
 * Routing through the library API with real sockets: nodes 1 and 3 may each keep one link (to 2),
 * so everything between them is relayed by node 2. `node.routes()`, `route` events, `send` to a
 * non-neighbour (both classes, both transports), `trace`, `ping`, and GET /api/routes.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createNode, type SkeinNode } from "../../src/index.js";
import type { NodeEventOf } from "../../src/node/api.js";
import type { ProbeResult } from "../../src/node/io.js";
import { closeAll, nextEvent, waitFor } from "./helpers.js";

const opened: SkeinNode[] = [];
after(() => closeAll(opened));

async function start(options: Parameters<typeof createNode>[0]): Promise<SkeinNode> {
  const node = await createNode({ logLevel: "silent", ...options });
  opened.push(node);
  return node;
}

/** The first complete answer of up to three probes (the last answer when none completes). */
async function probeUntilComplete(probe: () => Promise<ProbeResult>): Promise<ProbeResult> {
  let result = await probe();
  for (let attempt = 1; attempt < 3 && !result.complete; attempt++) result = await probe();
  return result;
}

for (const transport of ["udp", "tcp"] as const) {
  test(`${transport}: a non-neighbour is reached through a relay; routes, route events, trace and ping`, async () => {
    // a speaks `transport` only and b only the other one, so they can never link directly (a
    // neighbour policy free to swap links would otherwise be free to do so): b is reachable from a
    // only through the relay, which speaks both.
    const other = transport === "udp" ? "tcp" : "udp";
    const relay = await start({ udpPort: 0, tcpPort: 0, webAddr: "127.0.0.1:0" });
    const seedOver = (kind: "udp" | "tcp"): string[] => [`${relay.id}@${relay.addresses.find((address) => address.includes(`/${kind}/`))!}`];
    const a = await start({ ...(transport === "udp" ? { udpPort: 0 } : { tcpPort: 0 }), seeds: seedOver(transport), maxNeighbours: 1 });
    // Listen before b exists: its link and the relay's announcement can complete while
    // createNode(b) is still resolving.
    const routeEvents: NodeEventOf<"route">[] = [];
    a.on("route", (event) => routeEvents.push(event));
    const b = await start({ ...(other === "udp" ? { udpPort: 0 } : { tcpPort: 0 }), seeds: seedOver(other), maxNeighbours: 1 });
    const isRouteToB = (event: NodeEventOf<"route">): boolean => event.destination === b.id && event.nextHop === relay.id;
    await waitFor(() => routeEvents.some(isRouteToB), "a route event to b via the relay");
    const event = routeEvents.find(isRouteToB)!;
    assert.equal(event.hops, 2);
    assert.ok(event.metricMs! > 0);

    assert.deepEqual(
      a.neighbours().map((neighbour) => neighbour.id),
      [relay.id],
      "a's only link is to the relay",
    );
    const route = a.routes().find((entry) => entry.destination === b.id)!;
    assert.equal(route.state, "routed");
    assert.equal(route.nextHop, relay.id);
    assert.equal(route.hops, 2);
    assert.deepEqual(
      route.alternates.map((alternate) => alternate.via),
      [relay.id],
    );

    // Both classes reach b through the relay, in order for the reliable one.
    const inbox = b.messages()[Symbol.asyncIterator]();
    for (let index = 0; index < 200; index++) await a.send(b.id, new Uint8Array([index, 1, 2, 3]), { reliable: true });
    for (let index = 0; index < 200; index++) {
      const { value } = await inbox.next();
      assert.equal(value!.from, a.id);
      assert.equal(value!.data[0], index);
      assert.equal(value!.reliable, true);
    }
    await a.send(b.id, new Uint8Array(5000), { reliable: true });
    assert.equal((await inbox.next()).value!.data.byteLength, 5000, "a reliable message larger than a datagram is relayed whole");
    await waitFor(() => relay.stats().framesForwarded >= 201, "the relay counted what it forwarded");

    // A trace's echo replies travel b → a: wait until b routes to a too. Probes are datagrams and
    // a loaded machine can make the relay suspect a link for a moment (its route is withdrawn,
    // and the replies are dropped as no_route), so, like traceroute, a probe is tried again, up
    // to three times; it must complete.
    await waitFor(() => b.routes().some((entry) => entry.destination === a.id && entry.nextHop === relay.id), "b routes to a via the relay");
    const trace = await probeUntilComplete(() => a.trace(b.id));
    assert.equal(trace.complete, true, JSON.stringify({ trace, relay: relay.stats().dropped, a: a.stats().dropped, b: b.stats().dropped }));
    assert.deepEqual(
      trace.hops.map((hop) => [hop.node, hop.previousHop]),
      [
        [relay.id, a.id],
        [b.id, relay.id],
      ],
    );
    assert.ok(trace.hops.every((hop) => typeof hop.linkRttMs === "number"));
    const ping = await probeUntilComplete(() => a.ping(b.id));
    assert.equal(ping.complete, true);
    assert.ok(ping.rttMs! >= 0);
    await assert.rejects(a.ping(4_000_000_000), { code: "NO_ROUTE" });

    const api = (await (await fetch(`${relay.webUrl}/api/routes`)).json()) as { id: number; routes: { destination: number; next_hop: number; hops: number }[] };
    assert.equal(api.id, relay.id);
    assert.deepEqual(
      api.routes.map((entry) => [entry.destination, entry.next_hop, entry.hops]).sort((x, y) => x[0]! - y[0]!),
      [
        [a.id, a.id, 1],
        [b.id, b.id, 1],
      ].sort((x, y) => x[0]! - y[0]!),
    );
    const missing = await fetch(`${relay.webUrl}/api/trace/123`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, "NO_ROUTE");
    assert.equal((await fetch(`${relay.webUrl}/api/routes/x`)).status, 400);

    // The relay leaves: a loses its route to b (a route event said so, unless the route was
    // between seqnos at that moment) and sending fails.
    await relay.close();
    await waitFor(() => a.routes().every((entry) => entry.nextHop === undefined), "a has no route left");
    await assert.rejects(a.send(b.id, new Uint8Array(1)), { code: "NO_ROUTE" });
  });
}

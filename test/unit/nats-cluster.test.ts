/**
 * services/nats/cluster.ts: a NATS cluster block as skein links (node id from the listen address,
 * routes as seeds, the route to itself skipped), and the connect_urls advertisement subjects
 * (runtime/pubsub.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterNodeId, parseRouteUrl, planCluster } from "../../src/services/nats/cluster.js";
import { natsUrlOfSubject, natsUrlSubject } from "../../src/runtime/pubsub.js";

test("cluster: node ids come from the listen address; wildcard and localhost count as 127.0.0.1", () => {
  assert.equal(clusterNodeId("0.0.0.0", 6222), clusterNodeId("127.0.0.1", 6222));
  assert.equal(clusterNodeId("localhost", 6222), clusterNodeId("127.0.0.1", 6222));
  assert.notEqual(clusterNodeId("127.0.0.1", 6222), clusterNodeId("127.0.0.1", 6223));
  assert.notEqual(clusterNodeId("10.0.0.1", 6222), clusterNodeId("10.0.0.2", 6222));
  assert.ok(clusterNodeId("10.0.0.1", 6222) > 0);
});

test("cluster: routes become seeds naming the node id their peer derives; itself skipped; bad routes warned", () => {
  const plan = planCluster({ name: "c", host: "127.0.0.1", port: 7001, routes: ["nats-route://127.0.0.1:7001", "nats-route://user:pw@127.0.0.1:7002", "nats://localhost:7003", "nats-route://db.example:7004", "junk"] });
  assert.equal(plan.nodeId, clusterNodeId("127.0.0.1", 7001));
  assert.equal(plan.bind, "127.0.0.1");
  assert.equal(plan.tcpPort, 7001);
  assert.deepEqual(plan.seeds, [`${clusterNodeId("127.0.0.1", 7002)}@/ip4/127.0.0.1/tcp/7002`, `${clusterNodeId("127.0.0.1", 7003)}@/ip4/127.0.0.1/tcp/7003`]);
  assert.equal(plan.warnings.length, 2);
  assert.match(plan.warnings[0]!, /IPv4/);
  assert.match(plan.warnings[1]!, /expected nats-route:\/\/HOST:PORT/);
  // The peer at 7002 derives the same id for itself as the seed above names.
  assert.equal(planCluster({ host: "127.0.0.1", port: 7002, routes: [] }).nodeId, clusterNodeId("127.0.0.1", 7002));
});

test("cluster: a random cluster port (-1) keeps the key's own node id; no listen host means all interfaces", () => {
  const plan = planCluster({ port: 0, routes: [] });
  assert.equal(plan.nodeId, undefined);
  assert.equal(plan.bind, "0.0.0.0");
  assert.equal(planCluster({ routes: [] }).tcpPort, 6222);
});

test("cluster: route URLs", () => {
  assert.deepEqual(parseRouteUrl("nats-route://10.1.2.3:6222"), { host: "10.1.2.3", port: 6222 });
  assert.deepEqual(parseRouteUrl("10.1.2.3:6222"), { host: "10.1.2.3", port: 6222 });
  assert.equal(typeof parseRouteUrl("nats-route://10.1.2.3:0"), "string");
  assert.equal(typeof parseRouteUrl("nats-route://10.1.2.3"), "string");
});

test("connect_urls advertisement subjects round-trip; other subjects are not advertisements", () => {
  const subject = natsUrlSubject("127.0.0.1", 4222);
  assert.equal(subject, "$SKEIN.NATS.URL.127_0_0_1.4222");
  assert.equal(natsUrlOfSubject(subject), "127.0.0.1:4222");
  assert.equal(natsUrlOfSubject("orders.eu"), undefined);
  assert.equal(natsUrlOfSubject("$SKEIN.NATS.URL.127_0_0_1.99999"), undefined);
  assert.equal(natsUrlOfSubject("$SKEIN.NATS.URL.a_b_c_d.4222"), undefined);
});

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createNode, type SkeinNode } from "../../src/index.js";
import { closeAll, nextEvent, waitFor } from "./helpers.js";

const opened: SkeinNode[] = [];
after(() => closeAll(opened));

test("HTTP API: /api/node, /metrics and 404", async () => {
  const a = await createNode({ udpPort: 0, webAddr: "127.0.0.1:0", logLevel: "silent", probeIntervalMs: 50, linkTimeoutMs: 2000, localTags: ["eu", "edge"], connectTags: ["gpu"] });
  opened.push(a);
  const b = await createNode({ udpPort: 0, logLevel: "silent", seeds: [`${a.id}@${a.addresses[0]}`], probeIntervalMs: 50, linkTimeoutMs: 2000, localTags: ["gpu"] });
  opened.push(b);
  assert.match(a.webUrl ?? "", /^http:\/\/127\.0\.0\.1:[1-9][0-9]*$/);
  assert.equal(b.webUrl, undefined);
  await nextEvent(a, "link_up");
  await waitFor(() => a.neighbours()[0]?.srttMs !== undefined, "an RTT sample");
  await waitFor(() => a.neighbours()[0]?.tags?.length === 1, "the neighbour's tags");
  await b.send(a.id, new Uint8Array(100));

  const response = await fetch(`${a.webUrl}/api/node`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ["addresses", "connect_tags", "id", "local_tags", "neighbours", "security", "uptime_s"]);
  assert.deepEqual(body.local_tags, ["edge", "eu"]);
  assert.deepEqual(body.connect_tags, ["gpu"]);
  assert.deepEqual(a.tags(), { local: ["edge", "eu"], connect: ["gpu"] });
  assert.deepEqual(b.tags(), { local: ["gpu"], connect: [] });
  const security = body.security as Record<string, unknown>;
  assert.equal(security.mode, "open");
  assert.equal(security.node_id_binding, "derived");
  assert.equal(security.key_fingerprint, a.securityInfo().signingKey);
  assert.match(security.key_fingerprint as string, /^[0-9a-f]{16}$/);
  assert.match(security.static_key_fingerprint as string, /^[0-9a-f]{16}$/);
  assert.equal(security.network_key_id, null);
  assert.equal(security.ca_fingerprint, null);
  assert.equal(security.certificate, null);
  assert.equal((security.end_to_end as { enabled: boolean }).enabled, true);
  assert.deepEqual(security.neighbours, [{ id: b.id, key_fingerprint: b.securityInfo().signingKey, binding: "derived" }]);
  assert.equal(body.id, a.id);
  assert.deepEqual(body.addresses, a.addresses);
  assert.equal(typeof body.uptime_s, "number");
  assert.ok((body.uptime_s as number) >= 0);
  const neighbours = body.neighbours as Record<string, unknown>[];
  assert.equal(neighbours.length, 1);
  const n = neighbours[0]!;
  assert.deepEqual(Object.keys(n).sort(), ["address", "binding", "id", "key_fingerprint", "loss", "rttvar_ms", "srtt_ms", "state", "tags", "transport"]);
  assert.deepEqual(n.tags, ["gpu"]);
  // The neighbour's key as a's handshake with b authenticated it: b's own key.
  assert.equal(n.key_fingerprint, b.securityInfo().signingKey);
  assert.notEqual(n.key_fingerprint, security.key_fingerprint);
  assert.equal(n.binding, "derived");
  assert.equal(n.id, b.id);
  assert.equal(n.transport, "udp");
  assert.equal(n.state, "up");
  assert.match(n.address as string, /^\/ip4\/127\.0\.0\.1\/udp\/\d+$/);
  assert.equal(typeof n.srtt_ms, "number");
  assert.equal(typeof n.rttvar_ms, "number");
  assert.equal(n.loss, 0);

  const metrics = await fetch(`${a.webUrl}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get("content-type") ?? "", /text\/plain/);
  const text = await metrics.text();
  for (const line of [
    new RegExp(`^skein_link_rtt_ms\\{peer="${b.id}"\\} [0-9.e-]+$`, "m"),
    new RegExp(`^skein_link_rttvar_ms\\{peer="${b.id}"\\} [0-9.e-]+$`, "m"),
    new RegExp(`^skein_link_loss_ratio\\{peer="${b.id}"\\} 0$`, "m"),
    /^# TYPE skein_frames_in_total counter$/m,
    /^skein_frames_in_total [1-9][0-9]*$/m,
    /^skein_frames_out_total [1-9][0-9]*$/m,
    /^skein_bytes_in_total [1-9][0-9]*$/m,
    /^skein_bytes_out_total [1-9][0-9]*$/m,
    /^# TYPE skein_frames_dropped_total counter$/m,
    /^process_cpu_user_seconds_total /m,
    /^nodejs_heap_size_total_bytes /m,
  ]) {
    assert.match(text, line);
  }
  const stats = a.stats();
  const framesIn = Number(/^skein_frames_in_total (\d+)$/m.exec(text)![1]);
  assert.ok(framesIn <= stats.framesIn && framesIn > 0);

  const missing = await fetch(`${a.webUrl}/nope`);
  assert.equal(missing.status, 404);
  assert.match(((await missing.json()) as { error: string }).error, /\/nope/);

  const post = await fetch(`${a.webUrl}/api/node`, { method: "POST" });
  assert.equal(post.status, 405);
  await post.arrayBuffer();
});

test("HTTP API: two nodes in one process have separate registries", async () => {
  const a = await createNode({ udpPort: 0, webAddr: "127.0.0.1:0", logLevel: "silent" });
  opened.push(a);
  const b = await createNode({ udpPort: 0, webAddr: "127.0.0.1:0", logLevel: "silent" });
  opened.push(b);
  const [ta, tb] = await Promise.all([fetch(`${a.webUrl}/metrics`).then((r) => r.text()), fetch(`${b.webUrl}/metrics`).then((r) => r.text())]);
  assert.match(ta, /skein_frames_in_total 0/);
  assert.match(tb, /skein_frames_in_total 0/);
  await a.close();
  await assert.rejects(fetch(`${a.webUrl}/api/node`));
});

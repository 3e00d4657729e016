/**
 * Four real `skein node` processes with emulated latency where the direct path 1–4 (100 ms) is
 * slower than 1–2–4 (40 ms) and 1–3–4 (60 ms): `skein route` and the frames actually forwarded
 * (node 2's forwarding counter, traces through the data plane) show 1→2→4; killing node 2 moves the
 * 1→4 traffic to 1→3→4 through suspicion and multipath failover, before the link timeout would have
 * noticed, with no loop and a consistent table afterwards.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CLI_PATH, getNode, startSkein, stopAll, upNeighbourIds, waitFor } from "./processes.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "skein-routing-"));
after(async () => {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

const LINK_TIMEOUT_MS = 5000;
/**
 * How long any condition may take to become true. Generous on purpose: the figures this test
 * prints (how fast the route moved) are printed, not asserted, and a loaded machine can stall the
 * processes for seconds. Waits end as soon as their condition holds.
 */
const WAIT_MS = 120_000;
// RTTs in ms, keyed by NodeId: 1–2–4 = 40, 1–3–4 = 60, direct 1–4 = 100.
const MATRIX = {
  "1": { "2": 20, "3": 30, "4": 100 },
  "2": { "3": 40, "4": 20 },
  "3": { "4": 30 },
};

interface Route {
  destination: number;
  next_hop: number | null;
  metric_ms: number | null;
  hops: number;
}

interface Trace {
  complete: boolean;
  rtt_ms: number | null;
  hops: { node: number; previous_hop: number; link_rtt_ms: number | null; ttl: number }[];
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

async function routes(web: string): Promise<Route[]> {
  return (await getJson<{ routes: Route[] }>(`${web}/api/routes`)).routes;
}

async function nextHop(web: string, destination: number): Promise<number | null> {
  return (await routes(web)).find((route) => route.destination === destination)?.next_hop ?? null;
}

async function forwarded(web: string): Promise<number> {
  const text = await (await fetch(`${web}/metrics`)).text();
  const match = /^skein_frames_forwarded_total (\d+)/m.exec(text);
  if (!match) throw new Error(`no skein_frames_forwarded_total in ${web}/metrics`);
  return Number(match[1]);
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

test("four processes: 1→2→4 beats the direct link; killing 2 moves the traffic to 1→3→4 at once, loop-free", { timeout: 900_000 }, async (t) => {
  const matrixFile = path.join(tmp, "latency.json");
  writeFileSync(matrixFile, JSON.stringify(MATRIX));
  const args = (id: number, extra: string[] = []): string[] => [
    "node",
    "--node-id",
    String(id),
    "--udp-port",
    "0",
    "--web-addr",
    "127.0.0.1:0",
    "--emulate-latency",
    matrixFile,
    "--probe-interval-ms",
    "500",
    "--link-timeout-ms",
    String(LINK_TIMEOUT_MS),
    "--log-level",
    "info",
    ...extra,
  ];
  const one = startSkein(args(1));
  const oneInfo = await one.listening;
  const seed = `1@${oneInfo.addresses[0]!}`;
  const others = [2, 3, 4].map((id) => startSkein(args(id, ["--seeds", seed])));
  const infos = await Promise.all(others.map((process) => process.listening));
  const web: Record<number, string> = { 1: oneInfo.web!, 2: infos[0]!.web!, 3: infos[1]!.web!, 4: infos[2]!.web! };
  const [two] = others;

  await waitFor("a full mesh of four", async () => {
    const views = await Promise.all([1, 2, 3, 4].map((id) => getNode(web[id]!)));
    return views.every((view) => upNeighbourIds(view).length === 3);
  }, WAIT_MS);
  await waitFor("node 1 routes to 4 through 2, and 4 to 1 through 2", async () => (await nextHop(web[1]!, 4)) === 2 && (await nextHop(web[4]!, 1)) === 2, WAIT_MS);

  // skein route shows the path hop by hop and why it beats the direct link. (Fresh links' RTT
  // estimates still move for a second or two, and a loaded machine may stall a process: the checks
  // below retry until a calm moment, and fail if the path never shows.)
  let route = { code: null as number | null, stdout: "", stderr: "" };
  await waitFor("skein route to show 1→2→4", async () => {
    route = await runCli(["route", "--api", web[1]!, "4"]);
    return route.code === 0 && /^ +1 +2 +1 +[\d.]+$/m.test(route.stdout) && /^ +2 +4 +2 +[\d.]+$/m.test(route.stdout);
  }, WAIT_MS);
  assert.equal(route.code, 0, route.stderr);
  t.diagnostic(`skein route --api <node 1> 4:\n${route.stdout}`);
  assert.match(route.stdout, /^route from node 1 to node 4: 2 hops, [\d.]+ ms round trip/);
  assert.match(route.stdout, /^ +1 +2 +1 +[\d.]+$/m, "hop 1 is node 2, from node 1");
  assert.match(route.stdout, /^ +2 +4 +2 +[\d.]+$/m, "hop 2 is node 4, from node 2");
  assert.match(route.stdout, /direct link 1–4: RTT [\d.]+ ms; the path via 2 is faster by [\d.]+ ms/);
  assert.match(route.stdout, /route table: next hop 2, .*alternates: .*via 3 /);

  // The frames actually forwarded: 10 round trips 1→4 all go through node 2 (its forwarding
  // counter: the request and the reply) and none through node 3; a trace shows the same path.
  let relayed = "";
  await waitFor("10 round trips 1→4 relayed by node 2 alone", async () => {
    const [before2, before3] = await Promise.all([forwarded(web[2]!), forwarded(web[3]!)]);
    for (let index = 0; index < 10; index++) if (!(await getJson<Trace>(`${web[1]}/api/ping/4`)).complete) return false;
    const [after2, after3] = await Promise.all([forwarded(web[2]!), forwarded(web[3]!)]);
    relayed = `node 2 relayed ${after2 - before2}, node 3 ${after3 - before3}`;
    return after2 - before2 >= 20 && after3 - before3 === 0;
  }, WAIT_MS);
  t.diagnostic(relayed);
  await waitFor("a trace 1→4 through 2", async () => {
    const trace = await getJson<Trace>(`${web[1]}/api/trace/4`);
    return JSON.stringify(trace.hops.map((hop) => [hop.node, hop.previous_hop])) === JSON.stringify([[2, 1], [4, 2]]);
  }, WAIT_MS);

  // Traffic 1→4 keeps flowing while node 2 is killed: a ping every 25 ms, each on its own (an
  // unanswered one waits for the probe timeout without holding the others back).
  const pings: { at: number; ok: boolean | undefined }[] = [];
  const inFlight: Promise<void>[] = [];
  const pinger = setInterval(() => {
    const record: { at: number; ok: boolean | undefined } = { at: Date.now(), ok: undefined };
    pings.push(record);
    inFlight.push(
      getJson<Trace>(`${web[1]}/api/ping/4`).then(
        (ping) => void (record.ok = ping.complete),
        () => void (record.ok = false),
      ),
    );
  }, 25);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const killedAt = Date.now();
  await two!.kill("SIGKILL");
  let movedAt = 0;
  await waitFor("node 1 routes to 4 through 3", async () => {
    if ((await nextHop(web[1]!, 4)) !== 3) return false;
    movedAt = Date.now();
    return true;
  }, WAIT_MS);
  // Whether the link to 2 was still up at node 1 when the route had moved: normally it is (the
  // failover comes from suspicion of the silent next hop and the multipath table, within a few
  // hundred ms, long before the 5 s link timeout). Printed, not asserted: a stalled machine can
  // delay the observation past the link timeout, and that is timing, not routing.
  const stillUp = upNeighbourIds(await getNode(web[1]!)).includes(2);
  await waitFor("pings 1→4 get through again", () => pings.some((ping) => ping.at > killedAt && ping.ok === true), WAIT_MS);
  clearInterval(pinger);
  await Promise.all(inFlight);
  const firstOk = pings.find((ping) => ping.at > killedAt && ping.ok === true)!;
  const lost = pings.filter((ping) => ping.ok === false).length;
  t.diagnostic(
    `route moved ${movedAt - killedAt} ms after the kill (observed by polling; link to 2 still up then: ${stillUp}); ` +
      `first ping sent after the kill that got through: +${firstOk.at - killedAt} ms; ${lost} of ${pings.length} pings lost`,
  );

  // Afterwards: 2 is gone everywhere, the table is consistent and loop-free, traffic goes 1→3→4.
  await waitFor("nodes 1, 3, 4 drop node 2", async () => {
    const views = await Promise.all([1, 3, 4].map((id) => getNode(web[id]!)));
    return views.every((view) => !upNeighbourIds(view).includes(2));
  }, WAIT_MS);
  await waitFor("no route to node 2 anywhere", async () => {
    for (const id of [1, 3, 4]) if ((await nextHop(web[id]!, 2)) !== null) return false;
    return true;
  }, WAIT_MS);
  // The tables are read one node after another: wait until two consecutive readings agree (and
  // node 1 routes to 4 through 3, node 3 directly), so that the checks below see one consistent
  // state rather than a route change caught half-way; then every check is strict.
  const tables = new Map<number, Route[]>();
  const neighboursOf = new Map<number, number[]>();
  const snapshot = async (): Promise<string> => {
    const parts: unknown[] = [];
    for (const id of [1, 3, 4]) {
      const table = (await routes(web[id]!)).map((route) => ({ destination: route.destination, next_hop: route.next_hop }));
      const neighbours = upNeighbourIds(await getNode(web[id]!));
      parts.push([id, table, neighbours]);
    }
    return JSON.stringify(parts);
  };
  await waitFor("stable route tables, 1→4 through 3", async () => {
    const first = await snapshot();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await snapshot();
    if (first !== second) return false;
    for (const [id, table, neighbours] of JSON.parse(second) as [number, Route[], number[]][]) {
      tables.set(id, table);
      neighboursOf.set(id, neighbours);
    }
    return tables.get(1)!.find((route) => route.destination === 4)?.next_hop === 3;
  }, WAIT_MS);
  for (const source of [1, 3, 4]) {
    const neighbours = neighboursOf.get(source)!;
    for (const destination of [1, 3, 4]) {
      if (destination === source) continue;
      // Walk the next hops: each one an up neighbour, never a node twice.
      const visited = [source];
      let at = source;
      while (at !== destination) {
        const hop = tables.get(at)!.find((route) => route.destination === destination)?.next_hop ?? null;
        assert.notEqual(hop, null, `${at} has a route to ${destination}`);
        assert.ok(!visited.includes(hop!), `loop: ${[...visited, hop].join("→")}`);
        if (at === source) assert.ok(neighbours.includes(hop!), `${source}'s next hop ${hop} is an up neighbour`);
        visited.push(hop!);
        at = hop!;
      }
    }
  }
  assert.equal(tables.get(1)!.find((route) => route.destination === 4)?.next_hop, 3);
  assert.equal(tables.get(3)!.find((route) => route.destination === 4)?.next_hop, 4);
  // The frames actually forwarded after the kill: a trace through the data plane shows 1→3→4, and
  // 5 round trips 1→4 are relayed by node 3 (a probe lost on a stalled machine is retried).
  let traceAfter: Trace | undefined;
  await waitFor("a complete trace 1→4 after the kill", async () => {
    traceAfter = await getJson<Trace>(`${web[1]}/api/trace/4`);
    return traceAfter.complete;
  }, WAIT_MS);
  assert.deepEqual(
    traceAfter!.hops.map((hop) => hop.node),
    [3, 4],
  );
  let relayedAfter = "";
  await waitFor("5 round trips 1→4 relayed by node 3", async () => {
    const before = await forwarded(web[3]!);
    for (let index = 0; index < 5; index++) if (!(await getJson<Trace>(`${web[1]}/api/ping/4`)).complete) return false;
    const relayedNow = (await forwarded(web[3]!)) - before;
    relayedAfter = `node 3 relayed ${relayedNow} frames for 5 round trips 1→4`;
    return relayedNow >= 10;
  }, WAIT_MS);
  t.diagnostic(relayedAfter);
  await Promise.all([one.kill("SIGTERM"), ...others.slice(1).map((process) => process.kill("SIGTERM"))]);
});

/**
 * Three real `skein node` processes join through one seed, see each other in /api/node, notice a
 * `kill -9` through the link timeout, and take the node back when it restarts.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getNode, startSkein, stopAll, upNeighbourIds, waitFor } from "./processes.js";

after(stopAll);

const LINK_TIMEOUT_MS = 2000;

function nodeArgs(id: number, transport: "udp" | "tcp", extra: string[] = []): string[] {
  return [
    "node",
    "--node-id",
    String(id),
    `--${transport}-port`,
    "0",
    "--web-addr",
    "127.0.0.1:0",
    "--probe-interval-ms",
    "200",
    "--link-timeout-ms",
    String(LINK_TIMEOUT_MS),
    "--log-level",
    "info",
    ...extra,
  ];
}

for (const transport of ["udp", "tcp"] as const) {
  test(`${transport}: three nodes join through one seed; kill -9 is seen as link down; restart rejoins`, async () => {
    const seed = startSkein(nodeArgs(1, transport));
    const seedInfo = await seed.listening;
    const seedAddress = seedInfo.addresses.find((address) => address.includes(`/${transport}/`))!;
    const second = startSkein(nodeArgs(2, transport, ["--seeds", `1@${seedAddress}`]));
    // Node 3 keeps its key across the restart, as a restarted service does.
    const thirdDataDir = mkdtempSync(path.join(tmpdir(), "skein-e2e-node3-"));
    const third = startSkein(nodeArgs(3, transport, ["--seeds", `1@${seedAddress}`, "--data-dir", thirdDataDir]));
    const [secondInfo, thirdInfo] = await Promise.all([second.listening, third.listening]);
    const webs = { 1: seedInfo.web!, 2: secondInfo.web!, 3: thirdInfo.web! };

    await waitFor("a full mesh of three", async () => {
      const views = await Promise.all([getNode(webs[1]), getNode(webs[2]), getNode(webs[3])]);
      return (
        JSON.stringify(views.map(upNeighbourIds)) ===
        JSON.stringify([
          [2, 3],
          [1, 3],
          [1, 2],
        ])
      );
    });
    const view = await getNode(webs[2]);
    assert.equal(view.id, 2);
    for (const neighbour of view.neighbours) {
      assert.equal(neighbour.transport, transport);
      assert.match(neighbour.address, new RegExp(`^/ip4/127\\.0\\.0\\.1/${transport}/\\d+$`));
    }
    await waitFor("RTT measured on every link", async () => (await getNode(webs[2])).neighbours.every((neighbour) => typeof neighbour.srtt_ms === "number"));

    await third.kill("SIGKILL");
    await waitFor("nodes 1 and 2 to drop node 3", async () => {
      const [one, two] = await Promise.all([getNode(webs[1]), getNode(webs[2])]);
      return JSON.stringify(upNeighbourIds(one)) === "[2]" && JSON.stringify(upNeighbourIds(two)) === "[1]";
    });
    for (const survivor of [seed, second]) {
      const downLine = survivor.stderrLines.find((line) => line.includes('"link down"') && line.includes('"peer":3'));
      assert.ok(downLine, `node saw link down to 3:\n${survivor.stderrLines.join("\n")}`);
      if (transport === "udp") {
        // Over UDP nothing but silence tells: the link timeout must be what noticed.
        assert.match(downLine, new RegExp(`nothing received for ${LINK_TIMEOUT_MS} ms`));
      }
    }

    const restarted = startSkein(nodeArgs(3, transport, ["--seeds", `1@${seedAddress}`, "--data-dir", thirdDataDir]));
    const restartedInfo = await restarted.listening;
    await waitFor("node 3 back in the mesh", async () => {
      const views = await Promise.all([getNode(webs[1]), getNode(webs[2]), getNode(restartedInfo.web!)]);
      return JSON.stringify(views.map(upNeighbourIds)) === JSON.stringify([[2, 3], [1, 3], [1, 2]]);
    });
    await Promise.all([seed.kill("SIGTERM"), second.kill("SIGTERM"), restarted.kill("SIGTERM")]);
  });
}

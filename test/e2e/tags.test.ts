/**
 * Discovery by tags with real `skein node` processes on 127.0.0.1: a node with --connect-tags edge
 * links to the node tagged edge (learned through the seed) and not to the untagged one, which
 * itself meshes with everyone else; tags show in /api/node and `skein status`; bad tags on the
 * command line stop `skein node` with a clear error.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { CLI_PATH, getNode, startSkein, stopAll, upNeighbourIds, waitFor } from "./processes.js";

after(stopAll);

const run = promisify(execFile);

function nodeArgs(id: number, extra: string[] = []): string[] {
  return ["node", "--node-id", String(id), "--udp-port", "0", "--web-addr", "127.0.0.1:0", "--probe-interval-ms", "200", "--link-timeout-ms", "3000", "--log-level", "info", ...extra];
}

test("nodes with matching tags link, others don't; tags show in /api/node and skein status", async () => {
  const seed = startSkein(nodeArgs(1));
  const seedInfo = await seed.listening;
  const seeds = ["--seeds", `1@${seedInfo.addresses[0]!}`];
  const edge = startSkein(nodeArgs(2, [...seeds, "--local-tags", "edge,eu"]));
  const wants = startSkein(nodeArgs(3, [...seeds, "--connect-tags", "edge"]));
  const plain = startSkein(nodeArgs(4, seeds));
  const infos = await Promise.all([edge.listening, wants.listening, plain.listening]);
  const webs: Record<number, string> = { 1: seedInfo.web!, 2: infos[0].web!, 3: infos[1].web!, 4: infos[2].web! };

  // Everyone knows everyone through the seed: the plain nodes mesh, the selective one (3) links to
  // its seed and the edge node only.
  const expected = { 1: [2, 3, 4], 2: [1, 3, 4], 3: [1, 2], 4: [1, 2] };
  await waitForLinks(webs, expected);

  const view = (await getNode(webs[3]!)) as unknown as { local_tags: string[]; connect_tags: string[]; neighbours: { id: number; tags: string[] }[] };
  assert.deepEqual(view.local_tags, []);
  assert.deepEqual(view.connect_tags, ["edge"]);
  assert.deepEqual(
    view.neighbours.map((n) => [n.id, n.tags]),
    [
      [1, []],
      [2, ["edge", "eu"]],
    ],
  );
  const edgeView = (await getNode(webs[2]!)) as unknown as { local_tags: string[]; connect_tags: string[] };
  assert.deepEqual([edgeView.local_tags, edgeView.connect_tags], [["edge", "eu"], []]);

  const status = await run(process.execPath, [CLI_PATH, "status", "--api", webs[3]!]);
  assert.match(status.stdout, /^tags -  connect-tags edge$/m);
  assert.match(status.stdout, /^ 2 .* up .*edge,eu$/m);
  assert.match(status.stdout, /TAGS$/m);
});

test("CA mode: tags come from certificates (skein ca sign --tags); a tag the certificate lacks is not advertised", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-e2e-tags-ca-"));
  const skein = (args: string[]) => run(process.execPath, [CLI_PATH, ...args], { cwd: dir });
  await skein(["ca", "init", "--out", "ca/"]);
  const certTags: Record<number, string> = { 1: "", 2: "edge", 3: "", 4: "other" };
  for (const id of [1, 2, 3, 4]) {
    await skein(["keygen", "--out", `n${id}.key`]);
    await skein(["ca", "sign", "--ca", "ca/ca.key", "--node-id", String(id), "--pubkey", `n${id}.key.pub`, ...(certTags[id] ? ["--tags", certTags[id]!] : []), "--out", `n${id}.cert`]);
  }
  const ca = (id: number, extra: string[] = []): string[] =>
    nodeArgs(id, ["--key", path.join(dir, `n${id}.key`), "--ca", path.join(dir, "ca", "ca.pub"), "--cert", path.join(dir, `n${id}.cert`), ...extra]);
  const seed = startSkein(ca(1));
  const seedInfo = await seed.listening;
  const seeds = ["--seeds", `1@${seedInfo.addresses[0]!}`];
  // 2: no --local-tags, advertises its certificate's `edge`. 4: claims `edge`, its certificate says `other`.
  const edge = startSkein(ca(2, seeds));
  const wants = startSkein(ca(3, [...seeds, "--connect-tags", "edge,other"]));
  const claims = startSkein(ca(4, [...seeds, "--local-tags", "edge"]));
  const infos = await Promise.all([edge.listening, wants.listening, claims.listening]);
  const webs: Record<number, string> = { 1: seedInfo.web!, 2: infos[0].web!, 3: infos[1].web!, 4: infos[2].web! };

  // 3 wants `edge` or `other`: node 2 (certified edge); node 4 advertises nothing (its claim is not
  // in its certificate, and it gave --local-tags, so not `other` either): 3 does not link to it.
  const expected = { 1: [2, 3, 4], 2: [1, 3, 4], 3: [1, 2], 4: [1, 2] };
  await waitForLinks(webs, expected);
  const tagsOf = async (id: number) => (await getNode(webs[id]!)) as unknown as { local_tags: string[]; neighbours: { id: number; tags: string[] }[] };
  assert.deepEqual((await tagsOf(2)).local_tags, ["edge"]);
  assert.deepEqual((await tagsOf(4)).local_tags, []);
  assert.deepEqual(
    (await tagsOf(1)).neighbours.map((n) => [n.id, n.tags]),
    [
      [2, ["edge"]],
      [3, []],
      [4, []],
    ],
  );
  assert.ok(
    claims.stderrLines.some((line) => line.includes("--local-tags edge not in this node's certificate")),
    claims.stderrLines.join("\n"),
  );
});

test("bad tags stop skein node with one clear line (exit 2)", async () => {
  for (const [flag, value, reason] of [
    ["--local-tags", "edge,Bad!", 'tag "Bad!" must be 1..32 characters from a-z 0-9 . _ -'],
    ["--connect-tags", "a,b,c,d,e,f,g,h,i", "9 tags, at most 8"],
  ] as const) {
    const child = startSkein(nodeArgs(9, [flag, value]));
    const code = await child.exited;
    assert.equal(code, 2);
    const text = child.stderrLines.join("\n");
    assert.ok(text.includes(`bad ${flag} value "${value}": ${reason}`), text);
  }
});

/** Waits until every node's up neighbours (GET /api/node) are exactly `expected`; the error shows the last view. */
async function waitForLinks(webs: Record<number, string>, expected: Record<number, number[]>): Promise<void> {
  let last = "";
  await waitFor(
    `links ${JSON.stringify(expected)}`,
    async () => {
      const views = await Promise.all(Object.keys(webs).map((id) => getNode(webs[Number(id)]!)));
      last = JSON.stringify(Object.fromEntries(views.map((view) => [view.id, upNeighbourIds(view)])));
      return last === JSON.stringify(expected);
    },
    60_000,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}; last seen ${last}`);
  });
}

/**
 * Discovery by tags in the simulator, the real engine on generated matrices: nodes with
 * --connect-tags link to the nodes carrying those tags and not to untagged ones (beyond their
 * seed), within --max-neighbours; tags cross several hops of peer exchange; in CA mode a node
 * cannot claim tags its certificate does not carry.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { RecordingLogger } from "../../src/core/log.js";
import { SeededEntropy } from "../../src/core/entropy.js";
import { generateCertificateAuthority, signCertificate } from "../../src/crypto/certificate.js";
import { NodeEngine } from "../../src/node/engine.js";
import type { EngineConfig } from "../../src/node/engine-config.js";
import { generateInternetMatrix } from "../../src/sim/generate.js";
import { SIM_WALL_CLOCK_EPOCH_MS, Simulator } from "../../src/sim/simulator.js";
import { upPeers } from "./helpers.js";

const DAY_MS = 86_400_000;


function withTags(perNode: Record<number, Partial<Pick<EngineConfig, "localTags" | "connectTags" | "seeds" | "maxNeighbours">>>): (config: EngineConfig) => NodeEngine {
  return (config) => new NodeEngine({ ...config, ...(perNode[config.nodeId] ?? {}) });
}

test("8 nodes through one seed: --connect-tags edge links to the edge nodes and the seed, nothing else", () => {
  // 2, 3 carry `edge`; 4, 5 connect to `edge`; 6, 7, 8 are plain nodes (today's full mesh).
  const sim = new Simulator({
    matrix: generateInternetMatrix({ nodes: 8, seed: 11 }),
    seed: 5,
    createEngine: withTags({ 2: { localTags: ["edge"] }, 3: { localTags: ["edge"] }, 4: { connectTags: ["edge"] }, 5: { connectTags: ["edge"] } }),
  });
  sim.runUntil(30_000);
  assert.deepEqual(upPeers(sim, 4), [1, 2, 3]);
  assert.deepEqual(upPeers(sim, 5), [1, 2, 3]);
  // Plain nodes mesh among themselves and with the tagged ones, not with the selective ones.
  assert.deepEqual(upPeers(sim, 6), [1, 2, 3, 7, 8]);
  assert.deepEqual(upPeers(sim, 2), [1, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(upPeers(sim, 1), [2, 3, 4, 5, 6, 7, 8]);
  // Tags show in the neighbour view.
  assert.deepEqual(
    sim.neighbours(4).map((n) => [n.id, n.tags]),
    [
      [1, []],
      [2, ["edge"]],
      [3, ["edge"]],
    ],
  );
  assert.deepEqual(sim.engine(4)!.tags(), { local: [], connect: ["edge"] });
  assert.deepEqual(sim.engine(2)!.tags(), { local: ["edge"], connect: [] });
  // Stable: nothing changes in the next minute.
  const before = sim.upLinks();
  sim.runFor(60_000);
  assert.deepEqual(sim.upLinks(), before);
});

test("without tags everything is a full mesh as before (the same 8 nodes)", () => {
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes: 8, seed: 11 }), seed: 5 });
  sim.runUntil(30_000);
  assert.equal(sim.upLinks().length, 28);
});

test("--connect-tags stays within --max-neighbours", () => {
  // Six edge nodes (2..7); node 10 wants them but may keep 3 links.
  const perNode: Record<number, Partial<EngineConfig>> = { 10: { connectTags: ["edge"], maxNeighbours: 3 } };
  for (let id = 2; id <= 7; id += 1) perNode[id] = { localTags: ["edge"] };
  const sim = new Simulator({ matrix: generateInternetMatrix({ nodes: 10, seed: 3 }), seed: 2, createEngine: withTags(perNode) });
  sim.runUntil(30_000);
  const peers = upPeers(sim, 10);
  assert.equal(peers.length, 3, JSON.stringify(peers));
  assert.ok(peers.includes(1), "the seed is kept");
  for (const peer of peers) assert.ok(peer <= 7, `node 10 linked to untagged node ${peer}`);
});

test("tags cross several hops: a node finds the edge node six hops away and links to it", () => {
  // A chain 1-2-3-4-5-6-7-8 (each node's seed is the previous one; 1..7 are selective on a tag
  // nobody carries, so they keep only their seed links). Node 8 carries `edge`; node 1 wants it:
  // it can only learn of node 8 through entries relayed hop by hop.
  const perNode: Record<number, Partial<EngineConfig>> = { 1: { connectTags: ["edge"], seeds: [] }, 8: { localTags: ["edge"] } };
  const sim = new Simulator({
    matrix: generateInternetMatrix({ nodes: 8, seed: 4 }),
    seed: 9,
    createEngine: (config) => {
      const id = config.nodeId;
      const seed = id - 1;
      const overrides: Partial<EngineConfig> = {
        connectTags: ["blue"],
        ...(seed >= 1 ? { seeds: [{ nodeId: seed, address: { transport: "udp" as const, host: sim.address(seed).split("/")[2]!, port: Number(sim.address(seed).split("/")[4]) } }] } : {}),
        ...perNode[id],
      };
      if (id === 8) delete overrides.connectTags;
      return new NodeEngine({ ...config, ...overrides });
    },
  });
  sim.runUntil(10_000);
  assert.deepEqual(upPeers(sim, 1), [2], "before the tags arrive, the chain only");
  sim.runUntil(90_000);
  assert.deepEqual(upPeers(sim, 1), [2, 8]);
  assert.deepEqual(upPeers(sim, 4), [3, 5]);
  assert.deepEqual(upPeers(sim, 8), [1, 7]);
  // Node 4 relays what it heard of node 8, fresh (a node linked to 8 vouches for it every ~5 s).
  const heard = sim.engine(4)!.taggedPeers(sim.now);
  assert.deepEqual(heard.map((peer) => [peer.id, peer.tags, peer.linked]), [[8, ["edge"], false]]);
  assert.ok(heard[0]!.ageMs <= 60_000);

  // Node 8 dies: nobody vouches for it any more, and its entry ages out everywhere instead of
  // circulating (ages only grow along relays).
  sim.crash(8);
  sim.runFor(5_000 + 60_000 + 30_000);
  for (let id = 1; id <= 7; id += 1) assert.deepEqual(sim.engine(id)!.taggedPeers(sim.now), [], `node ${id} still relays node 8`);
});

test("CA mode: a node cannot claim a tag its certificate does not carry", () => {
  const ca = generateCertificateAuthority(new SeededEntropy("tags test ca"));
  const certTags: Record<number, string[]> = { 2: ["edge"], 3: [] };
  // 2 carries `edge` in its certificate; 3 claims `edge` without it; 4 wants `edge`.
  const claims: Record<number, Partial<EngineConfig>> = { 2: { localTags: ["edge"] }, 3: { localTags: ["edge"] }, 4: { connectTags: ["edge"] } };
  const logger = new RecordingLogger();
  const sim = new Simulator({
    matrix: generateInternetMatrix({ nodes: 6, seed: 8 }),
    seed: 4,
    logger,
    createEngine: (config) => {
      const certificate = signCertificate(ca, {
        nodeId: config.nodeId,
        publicKey: config.identity!.signing.publicKey,
        tags: certTags[config.nodeId] ?? [],
        notBefore: SIM_WALL_CLOCK_EPOCH_MS - DAY_MS,
        notAfter: SIM_WALL_CLOCK_EPOCH_MS + 30 * DAY_MS,
      });
      return new NodeEngine({ ...config, certificate, trust: { caPublicKey: ca.publicKey }, ...(claims[config.nodeId] ?? {}) });
    },
  });
  sim.runUntil(30_000);
  assert.equal(sim.engine(1)!.securityInfo().mode, "ca");
  assert.deepEqual(upPeers(sim, 4), [1, 2]);
  assert.deepEqual(
    sim.neighbours(1).map((n) => [n.id, n.tags]),
    [
      [2, ["edge"]],
      [3, []],
      [4, []],
      [5, []],
      [6, []],
    ],
  );
  const warnings = logger.records.filter((record) => record.level === "warn" && /advertises tags its certificate does not carry \(edge\)/.test(record.message));
  assert.ok(warnings.length > 0, "the refused claim is logged");
  assert.ok(warnings.every((record) => record.fields.peer === 3));
});

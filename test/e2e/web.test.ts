/**
 * The web view in a real browser (Debian's chromium, driven headless by playwright-core) against a
 * demo network of real processes: every node and link is drawn, clicking two nodes highlights the
 * path the source's /api/routes (and a trace through the data plane) reports, a killed node fades
 * (stale) and then disappears, and a screenshot is saved in test-artifacts/.
 *
 * No skip: without /usr/bin/chromium the test fails (CI installs it in .ci/run).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { type Browser, type Page, chromium } from "playwright-core";
import { startDemo, waitForFullTopology } from "./demo-helpers.js";
import { waitFor } from "./processes.js";

export const CHROMIUM_PATH = "/usr/bin/chromium";
const NODES = 5;

interface RouteJson {
  destination: number;
  next_hop: number | null;
  hops: number;
}

async function graph(page: Page): Promise<{ nodes: { id: number; stale: boolean; opacity: number }[]; edges: string[]; pathEdges: string[]; path: string; complete: string }> {
  return page.evaluate(() => {
    // Runs in the page (no DOM types in this project's TypeScript setup).
    const page = globalThis as any;
    const cy = page.skein.cy;
    const box = page.document.getElementById("path-result");
    return {
      nodes: cy.nodes().map((node: any) => ({ id: node.data("nodeId"), stale: node.hasClass("stale"), opacity: Number(node.style("opacity")) })),
      edges: cy.edges().map((edge: any) => edge.id()).sort(),
      pathEdges: cy.edges(".path").map((edge: any) => edge.id()).sort(),
      path: box.dataset.path ?? "",
      complete: box.dataset.complete ?? "",
    };
  });
}

async function clickNode(page: Page, id: number): Promise<void> {
  const point = await page.evaluate((nodeId) => {
    const cy = (globalThis as any).skein.cy;
    const position = cy.getElementById(`n${nodeId}`).renderedPosition();
    const box = cy.container().getBoundingClientRect();
    return { x: box.left + position.x, y: box.top + position.y };
  }, id);
  await page.mouse.click(point.x, point.y);
}

describe("web view in chromium", () => {
  let browser: Browser | undefined;
  const demo = startDemo(["--nodes", String(NODES), "--web-addr", "127.0.0.1:0", "--snapshot-s", "0.5"]);
  after(async () => {
    await browser?.close();
    demo.kill();
  });

  it("shows every node and link, highlights the routed path, fades then drops a killed node", { timeout: 240_000 }, async () => {
    const url = await demo.url();
    const topology = await waitForFullTopology(url, NODES);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${url}/`);

    // Every node and every link of the collector's model is drawn.
    const expectedEdges = topology.links.map((link) => `e${link.a}-${link.b}`).sort();
    await waitFor("all nodes and links drawn", async () => {
      const drawn = await graph(page);
      return drawn.nodes.length === NODES && JSON.stringify(drawn.edges) === JSON.stringify(expectedEdges);
    });
    const summary = await page.textContent("#summary");
    assert.match(summary ?? "", new RegExp(`^${NODES} nodes \\(${NODES} live, 0 stale\\) · ${expectedEdges.length} links`));

    // Pick the collector (whose /api/routes we can read) and a destination, preferring a relayed route.
    const routes = ((await (await fetch(`${url}/api/routes`)).json()) as { routes: RouteJson[] }).routes.filter((route) => route.next_hop !== null);
    const target = routes.find((route) => route.hops >= 2) ?? routes[0]!;
    await clickNode(page, 1);
    await clickNode(page, target.destination);
    // The drawn path is the one the routes report: first hop from node 1's /api/routes, then hop by
    // hop to the destination, the same as a trace through the data plane (routes may move while we
    // look, so both are read again until they agree).
    await waitFor("the highlighted path to agree with /api/routes and /api/trace of node 1", async () => {
      const route = (await (await fetch(`${url}/api/routes/${target.destination}`)).json()) as RouteJson;
      const trace = (await (await fetch(`${url}/api/trace/${target.destination}`)).json()) as { complete: boolean; hops: { node: number }[] };
      const drawn = await graph(page);
      const path = drawn.path.split(",").map(Number);
      const traced = [1, ...trace.hops.map((hop) => hop.node)];
      const pairs = path.slice(1).map((id, index) => `e${Math.min(id, path[index]!)}-${Math.max(id, path[index]!)}`).sort();
      return (
        drawn.complete === "true" &&
        path[0] === 1 &&
        path.at(-1) === target.destination &&
        path[1] === route.next_hop &&
        trace.complete &&
        JSON.stringify(traced) === JSON.stringify(path) &&
        JSON.stringify(drawn.pathEdges) === JSON.stringify(pairs)
      );
    }, 30_000);
    const pathText = await page.textContent("#path-result");
    assert.match(pathText ?? "", /overlay path 1 → /);
    assert.match(pathText ?? "", /direct link 1 → \d+/);
    assert.match((await page.textContent("#path-rtt")) ?? "", /^\d+(\.\d)? ms$/);
    assert.match((await page.textContent("#direct-rtt")) ?? "", /^\d+(\.\d)? ms$/);
    // The panel of the last clicked node: its neighbours and routes.
    assert.match((await page.textContent("#node-title")) ?? "", new RegExp(`^Node ${target.destination}`));
    assert.equal(await page.locator("#node-neighbours tbody tr").count(), NODES - 1);
    assert.equal(await page.locator("#node-routes tbody tr").count(), NODES - 1);
    mkdirSync("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/web-view.png" });

    // Kill a node that is neither the collector nor an end of the picked path: it fades, then goes.
    await waitFor("the pids of every demo node", () => demo.pids().size === NODES, 30_000);
    const victim = [2, 3, 4, 5].find((id) => id !== target.destination)!;
    process.kill(demo.pids().get(victim)!, "SIGKILL");
    await waitFor(`node ${victim} drawn stale (faded)`, async () => {
      const node = (await graph(page)).nodes.find((candidate) => candidate.id === victim);
      return node !== undefined && node.stale && node.opacity < 1;
    }, 30_000);
    await page.screenshot({ path: "test-artifacts/web-view-stale.png" });
    await waitFor(`node ${victim} gone from the graph`, async () => {
      const drawn = await graph(page);
      return drawn.nodes.length === NODES - 1 && !drawn.nodes.some((node) => node.id === victim) && drawn.edges.every((edge) => !edge.split(/[e-]/).includes(String(victim)));
    }, 60_000);
    assert.deepEqual(errors, [], "no script errors in the page");
  });
});

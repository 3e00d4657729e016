#!/usr/bin/env node
// Takes the README's screenshot of the demo's web view: starts `skein demo` (built: npm run build),
// opens the page in headless chromium (playwright-core), picks the pair whose overlay path saves
// the most over the direct link, and saves the picture.
//
//   node scripts/demo-screenshot.mjs [--nodes N] [--out docs/demo.png] [--chromium /usr/bin/chromium]
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : fallback;
};
const nodes = Number(flag("--nodes", "8"));
const out = flag("--out", "docs/demo.png");
const executablePath = flag("--chromium", "/usr/bin/chromium");

const demo = spawn(process.execPath, ["dist/src/cli/main.js", "demo", "--nodes", String(nodes), "--snapshot-s", "3600"], { stdio: ["ignore", "pipe", "inherit"] });
let stdout = "";
demo.stdout.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let browser;
try {
  let url;
  for (let i = 0; i < 300 && url === undefined; i++, await sleep(100)) url = /web view at (http:\/\/\S+?)\/? /.exec(stdout)?.[1];
  if (url === undefined) throw new Error(`no URL from the demo:\n${stdout}`);
  // Until every node reports a route to every other one.
  for (let i = 0; ; i++, await sleep(500)) {
    const topology = await (await fetch(`${url}/api/topology`)).json();
    if (topology.nodes.length === nodes && topology.nodes.every((n) => n.routes.filter((r) => r.next_hop !== null).length === nodes - 1)) break;
    if (i > 120) throw new Error("the network did not converge within 60 s");
  }
  await sleep(4000);
  browser = await chromium.launch({ executablePath, headless: true });
  const page = await browser.newPage({ viewport: { width: 1360, height: 820 }, deviceScaleFactor: 1 });
  await page.goto(`${url}/`);
  await page.waitForFunction((n) => globalThis.skein?.cy.nodes().length === n, nodes);
  await sleep(1500);
  // The pair where relaying saves the most.
  const best = await page.evaluate(() => {
    const { cy, pathOf } = globalThis.skein;
    const rtt = (a, b) => cy.getElementById(`e${Math.min(a, b)}-${Math.max(a, b)}`).data("rtt");
    let best;
    const ids = cy.nodes().map((n) => n.data("nodeId"));
    for (const a of ids) for (const b of ids) {
      if (a === b) continue;
      const { path, complete } = pathOf(a, b);
      if (!complete || path.length < 3) continue;
      let sum = 0;
      for (let i = 0; i + 1 < path.length; i++) sum += rtt(path[i], path[i + 1]);
      const gain = rtt(a, b) - sum;
      if (best === undefined || gain > best.gain) best = { a, b, gain };
    }
    return best;
  });
  if (best !== undefined) {
    await page.evaluate(({ a, b }) => {
      globalThis.skein.state.selected = b;
      globalThis.skein.pick(a, b);
      globalThis.skein.apply(globalThis.skein.state.topology);
    }, best);
  }
  await sleep(300);
  await page.screenshot({ path: out });
  console.log(`saved ${out}${best === undefined ? "" : ` (path ${best.a} → ${best.b}, relaying saves ${best.gain.toFixed(0)} ms)`}`);
} finally {
  await browser?.close();
  demo.kill("SIGINT");
  await new Promise((resolve) => demo.once("close", resolve));
}

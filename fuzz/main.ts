/**
 * `npm run fuzz -- [--seconds N] [--seed S]`: fuzzes every network decoder (N/2 seconds spread
 * over the targets), then a live node (N/2 seconds), and prints one JSON line per report. Exits 1
 * on any finding.
 */
import { parseArgs } from "node:util";
import { fuzzDecoders } from "./targets.js";
import { fuzzLiveNode } from "./live.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, seed: { type: "string", default: "1" } } });
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!(seconds > 0) || !Number.isInteger(seed)) {
  console.error(`fuzz: expected --seconds N (> 0) and --seed S (an integer), got --seconds ${values.seconds} --seed ${values.seed}`);
  process.exit(2);
}
const decoders = fuzzDecoders({ seed, msPerTarget: (seconds * 500) / 7 });
let failed = false;
for (const report of decoders) {
  console.log(JSON.stringify({ fuzz: "decoder", ...report }));
  if (report.findings.length > 0) failed = true;
}
const live = await fuzzLiveNode({ seconds: seconds / 2, seed });
console.log(JSON.stringify({ fuzz: "live", ...live }));
if (!live.victim_alive || !live.honest_links_up || live.honest_link_downs > 0 || !live.newcomer_joined) failed = true;
process.exit(failed ? 1 : 0);

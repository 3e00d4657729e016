import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { childEnv, demoMatrix, parseListeningLine, regionOf, renderDemo, renderDemoCompact, renderDemoFitting, repaint, summarizeLogLine } from "../../src/cli/demo.js";
import { UsageError } from "../../src/cli/errors.js";
import { generateMatrixText, rekeyByNodeIds } from "../../src/cli/sim-command.js";
import { normalizeApiUrl, parseNodeStatus, renderStatus, type NodeStatus } from "../../src/cli/status.js";
import { formatDuration, formatNumber, formatPercent, renderTable } from "../../src/cli/table.js";
import { findPackageJson } from "../../src/cli/version.js";
import { parseMatrix } from "../../src/sim/matrix.js";

/** What the runtime's GET /api/node returns (src/runtime/http.ts). */
const NODE_JSON = {
  id: 1,
  addresses: ["/ip4/127.0.0.1/udp/40001"],
  uptime_s: 3723.4,
  neighbours: [
    { id: 12, address: "/ip4/127.0.0.1/udp/40012", transport: "udp", state: "up", srtt_ms: 80.456, rttvar_ms: 2.1, loss: 0.05 },
    { id: 2, address: "/ip4/127.0.0.1/udp/40002", transport: "udp", state: "connecting", srtt_ms: null, rttvar_ms: null, loss: 0 },
  ],
};

describe("table", () => {
  it("aligns columns (headers too), right-aligns numbers, trims trailing spaces", () => {
    const lines = renderTable(
      [{ header: "ID", align: "right" }, { header: "NAME" }, { header: "X" }],
      [
        ["1", "alpha", ""],
        ["100", "b", "z"],
      ],
    );
    assert.deepEqual(lines, [" ID  NAME   X", "  1  alpha", "100  b      z"]);
  });

  it("formats numbers, percentages and durations", () => {
    assert.equal(formatNumber(80.456), "80.5");
    assert.equal(formatNumber(undefined), "-");
    assert.equal(formatNumber(Number.NaN), "-");
    assert.equal(formatPercent(0.05), "5.0");
    assert.equal(formatPercent(null), "-");
    assert.equal(formatDuration(45_000), "45s");
    assert.equal(formatDuration(125_000), "2m 05s");
    assert.equal(formatDuration(3_723_000), "1h 02m 03s");
    assert.equal(formatDuration(90_061_000), "1d 01h 01m");
    assert.equal(formatDuration(undefined), "-");
  });
});

describe("skein status rendering", () => {
  it("renders the header and the neighbour table sorted by id", () => {
    const status = parseNodeStatus(NODE_JSON);
    assert.ok(status !== undefined);
    assert.equal(
      renderStatus(status),
      [
        "node 1  up 1h 02m 03s  2 neighbours (1 up)  /ip4/127.0.0.1/udp/40001",
        "ID  ADDRESS                   TRANSPORT  STATE       RTT(ms)  RTTVAR(ms)  LOSS(%)",
        " 2  /ip4/127.0.0.1/udp/40002  udp        connecting        -           -      0.0",
        "12  /ip4/127.0.0.1/udp/40012  udp        up             80.5         2.1      5.0",
        "",
      ].join("\n"),
    );
  });

  it("says so when there are no neighbours", () => {
    const status: NodeStatus = { id: 9, addresses: [], uptimeMs: 5000, neighbours: [] };
    assert.equal(renderStatus(status), "node 9  up 5s  0 neighbours (0 up)\n(no neighbours)\n");
  });

  it("parses tolerantly and refuses what is not a node", () => {
    assert.equal(parseNodeStatus([]), undefined);
    assert.equal(parseNodeStatus({ neighbours: [] }), undefined);
    assert.equal(parseNodeStatus({ id: 1, neighbours: "x" }), undefined);
    const status = parseNodeStatus({ id: 3, uptimeMs: 2000, neighbors: [{ id: 5, srttMs: 3, rttvarMs: 1 }, { id: 4 }, "junk", { nope: 1 }] });
    assert.deepEqual(status, {
      id: 3,
      addresses: [],
      uptimeMs: 2000,
      neighbours: [
        { id: 4, address: "-", transport: "-", state: "-", srttMs: undefined, rttvarMs: undefined, loss: undefined, tags: [] },
        { id: 5, address: "-", transport: "-", state: "-", srttMs: 3, rttvarMs: 1, loss: undefined, tags: [] },
      ],
      localTags: [],
      connectTags: [],
    });
  });

  it("shows discovery tags: the node's own line, and a TAGS column when a neighbour has tags", () => {
    const status = parseNodeStatus({
      ...NODE_JSON,
      local_tags: ["edge", "eu"],
      connect_tags: ["gpu"],
      neighbours: [{ ...NODE_JSON.neighbours[0]!, tags: ["gpu", "x.y_z-1"] }, { ...NODE_JSON.neighbours[1]!, tags: [] }],
    });
    assert.ok(status !== undefined);
    assert.deepEqual(status.localTags, ["edge", "eu"]);
    assert.deepEqual(status.neighbours.map((n) => n.tags), [[], ["gpu", "x.y_z-1"]]);
    assert.equal(
      renderStatus(status),
      [
        "node 1  up 1h 02m 03s  2 neighbours (1 up)  /ip4/127.0.0.1/udp/40001",
        "tags edge,eu  connect-tags gpu",
        "ID  ADDRESS                   TRANSPORT  STATE       RTT(ms)  RTTVAR(ms)  LOSS(%)  TAGS",
        " 2  /ip4/127.0.0.1/udp/40002  udp        connecting        -           -      0.0",
        "12  /ip4/127.0.0.1/udp/40012  udp        up             80.5         2.1      5.0  gpu,x.y_z-1",
        "",
      ].join("\n"),
    );
    assert.match(renderStatus({ id: 2, addresses: [], uptimeMs: 1000, neighbours: [], connectTags: ["edge"] }), /^node 2 .*\ntags -  connect-tags edge\n\(no neighbours\)\n$/);
  });

  it("normalizes the API URL", () => {
    assert.equal(normalizeApiUrl("127.0.0.1:8080"), "http://127.0.0.1:8080");
    assert.equal(normalizeApiUrl("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    assert.equal(normalizeApiUrl("https://example.org/skein/"), "https://example.org/skein");
    assert.throws(() => normalizeApiUrl("ftp://x"), (error: unknown) => error instanceof UsageError && /expected an http:\/\/ or https:\/\/ URL/.test(error.message));
    assert.throws(() => normalizeApiUrl("http://[bad"), (error: unknown) => error instanceof UsageError && /^bad --api value "http:\/\/\[bad"/.test(error.message));
  });
});

describe("skein demo rendering", () => {
  it("renders one row per node when the full table does not fit the terminal, with the web view's URL", () => {
    const status = parseNodeStatus(NODE_JSON)!;
    const up = (id: number, srttMs: number, loss = 0) => ({ id, address: "a", transport: "udp", state: "up", srttMs, rttvarMs: 1, loss });
    const view = {
      elapsedMs: 3_000,
      webUrl: "http://127.0.0.1:8080/",
      nodes: [
        { id: 1, pid: 100, address: "/ip4/127.0.0.1/udp/40001", phase: "running" as const, status: { ...status, neighbours: [up(2, 10), up(3, 30, 0.05), up(4, 20)] } },
        { id: 2, pid: 101, address: "/ip4/127.0.0.1/udp/40002", phase: "running" as const, status: { ...status, neighbours: [up(1, 11), up(3, 12)] } },
        { id: 3, pid: 102, address: undefined, phase: "exited" as const, note: "exited (signal SIGKILL)" },
        { id: 4, pid: undefined, address: undefined, phase: "starting" as const },
      ],
    };
    const compact = [
      "skein demo: 2/4 nodes running on 127.0.0.1 with emulated Internet latency, 3s",
      "web view: http://127.0.0.1:8080/",
      "NODE  PID  ADDRESS                      LINKS  RTT MIN(ms)  MEDIAN   MAX  LOSS MAX(%)",
      "   1  100  /ip4/127.0.0.1/udp/40001         3         10.0    20.0  30.0          5.0",
      "   2  101  /ip4/127.0.0.1/udp/40002         2         11.0    11.5  12.0          0.0",
      "   3  102  -                           exited",
      "   4    -  -                         starting",
      "links up: 4 of 6 pairs",
      "node 3: exited (signal SIGKILL)",
      "",
    ].join("\n");
    assert.equal(renderDemoCompact(view), compact);
    assert.equal(renderDemoFitting(view, 10), compact);
    assert.equal(renderDemoFitting(view, 100), renderDemo(view));
    assert.equal(renderDemoFitting(view, undefined), renderDemo(view));
    assert.match(renderDemo(view), /^web view: http:\/\/127\.0\.0\.1:8080\/$/m);
  });

  it("names the region of a point on the globe (the demo's tags)", () => {
    assert.equal(regionOf(48.8, 2.3), "europe");
    assert.equal(regionOf(40.7, -74), "north-america");
    assert.equal(regionOf(-23.5, -46.6), "south-america");
    assert.equal(regionOf(35.7, 139.7), "asia");
    assert.equal(regionOf(-33.9, 151.2), "oceania");
    assert.equal(regionOf(-1.3, 36.8), "africa");
    assert.equal(regionOf(25.2, 55.3), "middle-east");
  });

  it("renders one row per neighbour, grouped by node, with emulated RTTs, a links summary and notes", () => {
    const status = parseNodeStatus(NODE_JSON)!;
    const text = renderDemo({
      elapsedMs: 12_000,
      hint: "Ctrl-C to stop",
      emulatedRttMs: (a, b) => (Number(a) + Number(b)) * 10,
      nodes: [
        { id: 1, pid: 100, address: "/ip4/127.0.0.1/udp/40001", phase: "running", status },
        { id: 2, pid: 101, address: "/ip4/127.0.0.1/udp/40002", phase: "running", status: { id: 2, addresses: [], uptimeMs: 1, neighbours: [] } },
        { id: 3, pid: 102, address: undefined, phase: "exited", note: "exited (code 1): port in use" },
        { id: 4, pid: undefined, address: undefined, phase: "starting" },
      ],
    });
    assert.equal(
      text,
      [
        "skein demo: 2/4 nodes running on 127.0.0.1 with emulated Internet latency, 12s",
        "NODE  PID  ADDRESS                   PEER  STATE       RTT(ms)  EMULATED(ms)  RTTVAR(ms)  LOSS(%)",
        "   1  100  /ip4/127.0.0.1/udp/40001     2  connecting        -          30.0           -      0.0",
        "                                       12  up             80.5         130.0         2.1      5.0",
        "   2  101  /ip4/127.0.0.1/udp/40002     -  no links",
        "   3  102  -                            -  exited",
        "   4    -  -                            -  starting",
        "links up: 1 of 6 pairs",
        "node 3: exited (code 1): port in use",
        "Ctrl-C to stop",
        "",
      ].join("\n"),
    );
  });

  it("counts a link once when both ends report it", () => {
    const up = (id: number) => ({ id, address: "a", transport: "udp", state: "up", srttMs: 1, rttvarMs: 1, loss: 0 });
    const text = renderDemo({
      elapsedMs: 0,
      nodes: [
        { id: 1, pid: 1, address: "a", phase: "running", status: { id: 1, addresses: [], uptimeMs: 0, neighbours: [up(2)] } },
        { id: 2, pid: 2, address: "b", phase: "running", status: { id: 2, addresses: [], uptimeMs: 0, neighbours: [up(1)] } },
      ],
    });
    assert.match(text, /^links up: 1 of 1 pairs$/m);
  });

  it("parses the listening line and summarizes log lines", () => {
    assert.deepEqual(parseListeningLine('{"event":"listening","id":3,"addresses":["/ip4/127.0.0.1/udp/1"],"web":"http://127.0.0.1:2"}'), {
      event: "listening",
      id: 3,
      addresses: ["/ip4/127.0.0.1/udp/1"],
      web: "http://127.0.0.1:2",
    });
    assert.equal(parseListeningLine('{"level":30,"msg":"hello"}'), undefined);
    assert.equal(parseListeningLine("not json"), undefined);
    assert.equal(summarizeLogLine('{"level":50,"msg":"link failed","err":{"message":"boom"}}'), "link failed: boom");
    assert.equal(summarizeLogLine("skein: bad --udp-port value"), "bad --udp-port value");
  });

  it("repaints a terminal in place, erasing leftovers of the previous frame", () => {
    assert.equal(repaint("a\nbb\n"), "\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J");
  });

  it("keeps SKEIN_* variables away from the children", () => {
    assert.deepEqual(childEnv({ PATH: "/bin", SKEIN_UDP_PORT: "1", HOME: "/h" }), { PATH: "/bin", HOME: "/h" });
  });

  it("re-keys a generated matrix by NodeIds 1..N", () => {
    const matrix = demoMatrix(3, 7);
    assert.deepEqual(Object.keys(matrix), ["1", "2", "3"]);
    for (const row of Object.values(matrix)) assert.deepEqual(Object.keys(row).sort(), ["1", "2", "3"]);
    assert.deepEqual(rekeyByNodeIds({ b: { a: 5 }, a: { b: 4, a: 1 } }), { "1": { "1": 1, "2": 4 }, "2": { "1": 5 } });
  });
});

describe("skein sim generate", () => {
  it("is deterministic and valid", () => {
    const a = generateMatrixText({ nodes: "4", seed: "9" });
    assert.equal(a, generateMatrixText({ nodes: "4", seed: "9" }));
    assert.notEqual(a, generateMatrixText({ nodes: "4", seed: "10" }));
    const parsed = parseMatrix(JSON.parse(a));
    assert.ok(parsed.ok);
    const ids = parseMatrix(JSON.parse(generateMatrixText({ nodes: "4", seed: "9", nodeIds: true })));
    assert.ok(ids.ok && Object.keys(ids.value).join() === "1,2,3,4");
  });

  it("refuses bad flags", () => {
    assert.throws(() => generateMatrixText({ nodes: "0" }), { message: 'bad --nodes value "0": expected an integer in 1..10000' });
    assert.throws(() => generateMatrixText({}), { message: "missing --nodes: expected the number of nodes, an integer in 1..10000" });
    assert.throws(() => generateMatrixText({ nodes: "3", seed: "x" }), { message: 'bad --seed value "x": expected an integer in 0..4294967295' });
  });
});

describe("version", () => {
  it("finds the skein package.json above the compiled file", () => {
    const found = findPackageJson(new URL(".", import.meta.url).pathname);
    assert.ok(found !== undefined);
    assert.match(found.version, /^\d+\.\d+\.\d+/);
  });
});

import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { UsageError } from "../../src/cli/errors.js";
import { configFormat, configPathFrom, envName, parseConfig, resolveNodeOptions, type ResolveInput } from "../../src/cli/options.js";
import { assertUsage } from "./helpers.js";

const DEFAULTS = {
  bind: "127.0.0.1",
  maxNeighbours: 32,
  logLevel: "info",
  probeIntervalMs: 1000,
  linkTimeoutMs: 5000,
  udpMtu: 1400,
};


describe("resolveNodeOptions: sources and precedence", () => {
  it("gives the defaults when nothing is set", () => {
    assert.deepEqual(resolveNodeOptions({ flags: {} }), DEFAULTS);
  });

  it("takes flags over env over config over defaults, key by key", () => {
    const configText = "udpPort: 1000\ntcpPort: 1001\nmaxNeighbours: 5\nlogLevel: warn\n";
    const env = { SKEIN_UDP_PORT: "2000", SKEIN_TCP_PORT: "2001" };
    const flags = { udpPort: "3000" };
    const options = resolveNodeOptions({ flags, env, configText, configPath: "node.yaml" });
    assert.deepEqual(options, { ...DEFAULTS, udpPort: 3000, tcpPort: 2001, maxNeighbours: 5, logLevel: "warn" });
    assert.equal(resolveNodeOptions({ flags: {}, env, configText, configPath: "node.yaml" }).udpPort, 2000);
    assert.equal(resolveNodeOptions({ flags: {}, env: {}, configText, configPath: "node.yaml" }).udpPort, 1000);
  });

  it("reads every option from flags", () => {
    const options = resolveNodeOptions({
      flags: {
        nodeId: "7",
        udpPort: "10001",
        tcpPort: "0",
        bind: "0.0.0.0",
        seeds: "1@/ip4/127.0.0.1/udp/10001, 2@/ip4/10.0.0.2/tcp/10002",
        maxNeighbours: "8",
        webAddr: "127.0.0.1:0",
        emulateLatency: "m.json",
        logLevel: "silent",
        probeIntervalMs: "250",
        linkTimeoutMs: "1000",
        udpMtu: "65507",
      },
    });
    assert.deepEqual(options, {
      nodeId: 7,
      udpPort: 10001,
      tcpPort: 0,
      bind: "0.0.0.0",
      seeds: ["1@/ip4/127.0.0.1/udp/10001", "2@/ip4/10.0.0.2/tcp/10002"],
      maxNeighbours: 8,
      webAddr: "127.0.0.1:0",
      emulateLatency: "m.json",
      logLevel: "silent",
      probeIntervalMs: 250,
      linkTimeoutMs: 1000,
      udpMtu: 65507,
    });
  });

  it("reads every option from SKEIN_* variables", () => {
    const env = {
      SKEIN_NODE_ID: "4294967295",
      SKEIN_UDP_PORT: "65535",
      SKEIN_TCP_PORT: "1",
      SKEIN_BIND: "10.1.2.3",
      SKEIN_SEEDS: "3@/ip4/1.2.3.4/udp/5",
      SKEIN_MAX_NEIGHBOURS: "1",
      SKEIN_WEB_ADDR: "localhost:8080",
      SKEIN_EMULATE_LATENCY: "/tmp/x.json",
      SKEIN_LOG_LEVEL: "debug",
      SKEIN_PROBE_INTERVAL_MS: "1",
      SKEIN_LINK_TIMEOUT_MS: "2",
      SKEIN_UDP_MTU: "512",
      SKEIN_UNRELATED: "ignored",
    };
    assert.deepEqual(resolveNodeOptions({ flags: {}, env }), {
      nodeId: 4294967295,
      udpPort: 65535,
      tcpPort: 1,
      bind: "10.1.2.3",
      seeds: ["3@/ip4/1.2.3.4/udp/5"],
      maxNeighbours: 1,
      webAddr: "localhost:8080",
      emulateLatency: "/tmp/x.json",
      logLevel: "debug",
      probeIntervalMs: 1,
      linkTimeoutMs: 2,
      udpMtu: 512,
    });
  });

  it("names environment variables after the option", () => {
    assert.equal(envName("probeIntervalMs"), "SKEIN_PROBE_INTERVAL_MS");
    assert.equal(envName("nodeId"), "SKEIN_NODE_ID");
  });

  it("ignores empty environment variables", () => {
    assert.deepEqual(resolveNodeOptions({ flags: {}, env: { SKEIN_UDP_PORT: "", SKEIN_SEEDS: "" } }), DEFAULTS);
  });

  it("accepts repeated --seeds and drops empty entries", () => {
    const options = resolveNodeOptions({ flags: { seeds: ["1@/ip4/127.0.0.1/udp/1,", "2@/ip4/127.0.0.1/udp/2"] } });
    assert.deepEqual(options.seeds, ["1@/ip4/127.0.0.1/udp/1", "2@/ip4/127.0.0.1/udp/2"]);
  });

  it("reads YAML with camelCase and kebab-case keys, seeds as a list", () => {
    const configText = ["node-id: 3", "udp-port: 10003", "seeds:", "  - 1@/ip4/127.0.0.1/udp/10001", "probeIntervalMs: 200", ""].join("\n");
    const options = resolveNodeOptions({ flags: {}, configText, configPath: "/etc/skein/node.yml" });
    assert.deepEqual(options, { ...DEFAULTS, nodeId: 3, udpPort: 10003, seeds: ["1@/ip4/127.0.0.1/udp/10001"], probeIntervalMs: 200 });
  });

  it("reads JSON, by extension or by content", () => {
    const configText = '{ "udpPort": 10005, "web-addr": "127.0.0.1:8005", "seeds": "1@/ip4/127.0.0.1/udp/10001" }';
    for (const configPath of ["node.json", "node.conf", undefined]) {
      const options = resolveNodeOptions({ flags: {}, configText, ...(configPath === undefined ? {} : { configPath }) });
      assert.equal(options.udpPort, 10005);
      assert.equal(options.webAddr, "127.0.0.1:8005");
      assert.deepEqual(options.seeds, ["1@/ip4/127.0.0.1/udp/10001"]);
    }
    assert.equal(configFormat("{}", "x.json"), "json");
    assert.equal(configFormat("a: 1", "x.yaml"), "yaml");
    assert.equal(configFormat("a: 1", "x.yml"), "yaml");
    assert.equal(configFormat(" {\"a\":1}", "x"), "json");
    assert.equal(configFormat("a: 1", "x"), "yaml");
  });

  it("treats an empty config file and null values as unset", () => {
    assert.deepEqual(resolveNodeOptions({ flags: {}, configText: "", configPath: "empty.yaml" }), DEFAULTS);
    assert.deepEqual(resolveNodeOptions({ flags: {}, configText: "udpPort:\n", configPath: "n.yaml" }), DEFAULTS);
  });

  it("takes a relative emulateLatency in a config file relative to the file's folder", () => {
    const options = resolveNodeOptions({ flags: {}, configText: "emulateLatency: matrices/m.json", configPath: "/etc/skein/node.yaml" });
    assert.equal(options.emulateLatency, path.resolve("/etc/skein/matrices/m.json"));
    assert.equal(resolveNodeOptions({ flags: { emulateLatency: "m.json" } }).emulateLatency, "m.json");
  });

  it("finds the config file from --config, then SKEIN_CONFIG", () => {
    assert.equal(configPathFrom({ config: "a.yaml" }, { SKEIN_CONFIG: "b.yaml" }), "a.yaml");
    assert.equal(configPathFrom({}, { SKEIN_CONFIG: "b.yaml" }), "b.yaml");
    assert.equal(configPathFrom({}, { SKEIN_CONFIG: "" }), undefined);
    assert.equal(configPathFrom({}, {}), undefined);
    assert.throws(() => configPathFrom({ config: "" }, {}), /bad --config value "": expected the path of a JSON or YAML file/);
  });
});

describe("resolveNodeOptions: bad input names the value and what is expected", () => {
  it("a seed with a bad IPv4 address", () => {
    assertUsage(
      { flags: { seeds: "1@/ip4/999.1.1.1/udp/x" } },
      'bad --seeds value "1@/ip4/999.1.1.1/udp/x": "999.1.1.1" is not an IPv4 address; expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001',
    );
  });

  it("names the one bad seed of a list", () => {
    assertUsage(
      { flags: { seeds: "1@/ip4/127.0.0.1/udp/1,2@/ip4/127.0.0.1/udp/0" } },
      'bad --seeds value "2@/ip4/127.0.0.1/udp/0": port "0" is not in 1..65535; expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001',
    );
  });

  it("a seed without a node id, with a bad node id, with a bad transport", () => {
    assertUsage(
      { flags: { seeds: "/ip4/127.0.0.1/udp/1" } },
      'bad --seeds value "/ip4/127.0.0.1/udp/1": expected NODEID@ADDRESS, e.g. 1@/ip4/127.0.0.1/udp/10001',
    );
    assertUsage(
      { flags: { seeds: "0@/ip4/127.0.0.1/udp/1" } },
      'bad --seeds value "0@/ip4/127.0.0.1/udp/1": node id "0" is not an integer in 1..4294967295',
    );
    assertUsage(
      { flags: { seeds: "1@/ip4/127.0.0.1/sctp/1" } },
      'bad --seeds value "1@/ip4/127.0.0.1/sctp/1": transport "sctp" is not udp or tcp; expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001',
    );
  });

  it("bad numbers", () => {
    for (const value of ["abc", "70000", "-1", "1.5", "0x10", ""]) {
      assertUsage({ flags: { udpPort: value } }, `bad --udp-port value ${JSON.stringify(value)}: expected an integer in 0..65535 (0 = any free port)`);
    }
    assertUsage({ flags: { nodeId: "0" } }, 'bad --node-id value "0": expected an integer in 1..4294967295');
    assertUsage({ flags: { nodeId: "4294967296" } }, 'bad --node-id value "4294967296": expected an integer in 1..4294967295');
    assertUsage({ flags: { maxNeighbours: "0" } }, 'bad --max-neighbours value "0": expected an integer in 1..65535');
    assertUsage({ flags: { udpMtu: "100" } }, 'bad --udp-mtu value "100": expected an integer in 512..65507');
    assertUsage({ flags: { probeIntervalMs: "soon" } }, 'bad --probe-interval-ms value "soon": expected an integer in 1..3600000');
  });

  it("a bad number from the environment names the variable", () => {
    assertUsage({ flags: {}, env: { SKEIN_UDP_PORT: "abc" } }, 'bad SKEIN_UDP_PORT value "abc": expected an integer in 0..65535 (0 = any free port)');
    assertUsage(
      { flags: {}, env: { SKEIN_SEEDS: "1@nowhere" } },
      'bad SKEIN_SEEDS value "1@nowhere": expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001',
    );
  });

  it("a flag wins over a bad environment variable (it is never read)", () => {
    assert.equal(resolveNodeOptions({ flags: { udpPort: "5" }, env: { SKEIN_UDP_PORT: "abc" } }).udpPort, 5);
  });

  it("bad strings", () => {
    assertUsage({ flags: { logLevel: "verbose" } }, 'bad --log-level value "verbose": expected one of debug, info, warn, error, silent');
    assertUsage(
      { flags: { bind: "localhost" } },
      'bad --bind value "localhost": "localhost" is not an IPv4 address; expected an IPv4 interface address such as 127.0.0.1 or 0.0.0.0',
    );
    assertUsage(
      { flags: { webAddr: "8080" } },
      'bad --web-addr value "8080": expected HOST:PORT with an IPv4 HOST, e.g. 127.0.0.1:8080 (port 0 = any free port)',
    );
    assertUsage(
      { flags: { webAddr: "127.0.0.1:99999" } },
      'bad --web-addr value "127.0.0.1:99999": port "99999" is not in 0..65535; expected HOST:PORT with an IPv4 HOST, e.g. 127.0.0.1:8080 (port 0 = any free port)',
    );
    assertUsage(
      { flags: { webAddr: "300.0.0.1:80" } },
      'bad --web-addr value "300.0.0.1:80": "300.0.0.1" is not an IPv4 address; expected HOST:PORT with an IPv4 HOST, e.g. 127.0.0.1:8080 (port 0 = any free port)',
    );
    assertUsage({ flags: { emulateLatency: " " } }, 'bad --emulate-latency value " ": expected the path of an RTT matrix JSON file');
  });

  it("a link timeout not above the probe interval", () => {
    assertUsage(
      { flags: { linkTimeoutMs: "500" } },
      "bad link timeout 500 ms (--link-timeout-ms): expected more than the probe interval 1000 ms (default)",
    );
    assertUsage(
      { flags: {}, env: { SKEIN_PROBE_INTERVAL_MS: "6000" } },
      "bad link timeout 5000 ms (default): expected more than the probe interval 6000 ms (SKEIN_PROBE_INTERVAL_MS)",
    );
  });

  it("a bad value in a config file names the key and the file", () => {
    assertUsage(
      { flags: {}, configText: "udpPort: abc\n", configPath: "node.yaml" },
      'bad "udpPort" value "abc" in config file "node.yaml": expected an integer in 0..65535 (0 = any free port)',
      "BAD_CONFIG",
    );
    assertUsage(
      { flags: {}, configText: '{"udp-port": 1.5}', configPath: "node.json" },
      'bad "udpPort" value 1.5 in config file "node.json": expected an integer in 0..65535 (0 = any free port)',
      "BAD_CONFIG",
    );
    assertUsage(
      { flags: {}, configText: "seeds: [1, 2]\n", configPath: "node.yaml" },
      'bad "seeds" value [1,2] in config file "node.yaml": expected NODEID@/ip4/HOST/udp/PORT or NODEID@/ip4/HOST/tcp/PORT, comma-separated or as a list',
      "BAD_CONFIG",
    );
    assertUsage(
      { flags: {}, configText: "seeds: ['1@/ip4/1.2.3/udp/1']\n", configPath: "node.yaml" },
      'bad "seeds" value "1@/ip4/1.2.3/udp/1" in config file "node.yaml": "1.2.3" is not an IPv4 address; expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001',
      "BAD_CONFIG",
    );
    assertUsage(
      { flags: {}, configText: "bind: 127\n", configPath: "node.yaml" },
      'bad "bind" value 127 in config file "node.yaml": expected an IPv4 interface address such as 127.0.0.1 or 0.0.0.0',
      "BAD_CONFIG",
    );
  });

  it("unknown config keys, with a suggestion when one is close", () => {
    const keys = "nodeId, udpPort, tcpPort, bind, seeds, maxNeighbours, localTags, connectTags, webAddr, emulateLatency, logLevel, probeIntervalMs, linkTimeoutMs, udpMtu, natsPort, natsAddr, key, dataDir, networkKey, ca, cert, collector, collectorIntervalMs, routeHopCostMs";
    assertUsage(
      { flags: {}, configText: "udpPrt: 1\n", configPath: "node.yaml" },
      `unknown key "udpPrt" in config file "node.yaml" (did you mean "udpPort"?); expected one of ${keys} (camelCase or kebab-case)`,
      "BAD_CONFIG",
    );
    assertUsage(
      { flags: {}, configText: '{"colour": "blue"}', configPath: "node.json" },
      `unknown key "colour" in config file "node.json"; expected one of ${keys} (camelCase or kebab-case)`,
      "BAD_CONFIG",
    );
  });

  it("the same key in both spellings", () => {
    assertUsage(
      { flags: {}, configText: "udp-port: 1\nudpPort: 2\n", configPath: "node.yaml" },
      'config file "node.yaml" sets "udpPort" twice (as "udp-port" and "udpPort"); keep one',
      "BAD_CONFIG",
    );
  });

  it("malformed config files", () => {
    assert.throws(
      () => parseConfig('{"udpPort": 1,}', "node.json"),
      (error: unknown) =>
        error instanceof UsageError &&
        error.code === "BAD_CONFIG" &&
        /^bad config file "node\.json": not valid JSON \(.+\); expected an object such as \{"udpPort": 10001\}$/.test(error.message),
    );
    assert.throws(
      () => parseConfig("udpPort: [1\n", "node.yaml"),
      (error: unknown) =>
        error instanceof UsageError &&
        !error.message.includes("\n") &&
        /^bad config file "node\.yaml": not valid YAML \(.+\); expected a mapping such as "udpPort: 10001"$/.test(error.message),
    );
    assert.throws(() => parseConfig("udpPort: 1\nudpPort: 2\n", "node.yaml"), /^UsageError: bad config file "node\.yaml": not valid YAML/);
    assertUsage(
      { flags: {}, configText: "- 1\n- 2\n", configPath: "node.yaml" },
      'bad config file "node.yaml": expected a mapping of options such as "udpPort: 10001", got a list',
      "BAD_CONFIG",
    );
    assertUsage(
      { flags: {}, configText: "just text\n", configPath: "node.yaml" },
      'bad config file "node.yaml": expected a mapping of options such as "udpPort: 10001", got a string',
      "BAD_CONFIG",
    );
  });
});

describe("resolveNodeOptions: collector and tags (issue 6)", () => {
  it("--collector is a switch; env and config files take true/false", () => {
    assert.equal(resolveNodeOptions({ flags: { collector: true } }).collector, true);
    assert.equal(resolveNodeOptions({ flags: {}, env: { SKEIN_COLLECTOR: "true" } }).collector, true);
    assert.equal(resolveNodeOptions({ flags: {}, env: { SKEIN_COLLECTOR: "0" } }).collector, false);
    assert.equal(resolveNodeOptions({ flags: {}, configText: "collector: true\n", configPath: "n.yaml" }).collector, true);
    assert.equal(resolveNodeOptions({ flags: {} }).collector, undefined);
    assertUsage({ flags: {}, env: { SKEIN_COLLECTOR: "maybe" } }, 'bad SKEIN_COLLECTOR value "maybe": expected true or false');
  });

  it("--local-tags takes a comma-separated list, repeated flags or a YAML list", () => {
    assert.deepEqual(resolveNodeOptions({ flags: { localTags: "gpu, eu" } }).localTags, ["eu", "gpu"]);
    assert.deepEqual(resolveNodeOptions({ flags: { localTags: ["gpu", "eu,x"] } }).localTags, ["eu", "gpu", "x"]);
    assert.deepEqual(resolveNodeOptions({ flags: { connectTags: ["b", "a"] } }).connectTags, ["a", "b"]);
    assert.deepEqual(resolveNodeOptions({ flags: {}, configText: "local-tags: [a, b]\n", configPath: "n.yaml" }).localTags, ["a", "b"]);
    assertUsage({ flags: { localTags: ["eu", "bad tag"] } }, 'bad --local-tags value "eu,bad tag": tag "bad tag" must be 1..32 characters from a-z 0-9 . _ -');
  });

  it("--collector-interval-ms is 100..60000", () => {
    assert.equal(resolveNodeOptions({ flags: { collectorIntervalMs: "250" } }).collectorIntervalMs, 250);
    assertUsage({ flags: { collectorIntervalMs: "5" } }, 'bad --collector-interval-ms value "5": expected an integer in 100..60000');
  });
});

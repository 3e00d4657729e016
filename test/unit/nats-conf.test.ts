import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseNatsServerArgs } from "../../src/cli/nats-server-command.js";
import { ConfError, parseNatsConf, parseNatsConfDetailed } from "../../src/services/nats/conf.js";
import { parseGoDuration, resolveNatsServerOptions } from "../../src/services/nats/options.js";

const SAMPLE = `
# A nats-server configuration, as people write them.
listen: 127.0.0.1:4333
server_name = "edge-1"   // a comment here too
http 8333
max_payload: 2MB
max_control_line 8kb
ping_interval: "30s"
ping_max: 3
max_connections: 100
debug: true; trace: false
secret = "s3cr3t"

authorization {
  timeout: 1.5
  users = [
    { user: alice, password: $secret, permissions: { publish: { allow: ["orders.>", "_INBOX.>"], deny: "orders.secret" }, subscribe: ["orders.*", "_INBOX.>"] } }
    { user: "bob", password: 'p\\w' }
  ]
}

cluster {
  name: "c1"
  listen: 0.0.0.0:6222
  routes = [
    nats://10.0.0.2:6222
    nats://10.0.0.3:6222
  ]
}
jetstream { store_dir: "/tmp/js" }
lame_duck_duration: "45s"
frobnicate: 1
`;

test("the sample configuration parses into the value tree nats-server would build", () => {
  const conf = parseNatsConf(SAMPLE);
  assert.equal(conf.listen, "127.0.0.1:4333");
  assert.equal(conf.server_name, "edge-1");
  assert.equal(conf.http, 8333);
  assert.equal(conf.max_payload, 2 * 1024 * 1024);
  assert.equal(conf.max_control_line, 8 * 1024);
  assert.equal(conf.debug, true);
  assert.equal(conf.trace, false);
  const auth = conf.authorization as Record<string, unknown>;
  const users = auth.users as Record<string, unknown>[];
  assert.equal(users[0]!.password, "s3cr3t", "variables resolve to earlier keys");
  assert.equal(users[1]!.password, "p\\w", "single quotes are raw");
  assert.deepEqual((conf.cluster as Record<string, unknown>).routes, ["nats://10.0.0.2:6222", "nats://10.0.0.3:6222"]);
});

test("value forms: numbers with suffixes, floats, booleans, strings, escapes, dates, blocks", () => {
  const conf = parseNatsConf(
    'a: 1k\nb: 1kb\nc: 1m\nd: 1MB\ne: 2g\nf: -5\ng: 1.25\nh: yes\ni: off\nj: "t\\tn\\n\\x41\\"\\\\"\nk: 2024-01-02T03:04:05Z\nl: (\nline one\nline two\n)\nm: [1, "two", [3]]\nn { o: p }\nq = bare-string\n',
  );
  assert.deepEqual(
    { ...conf, k: (conf.k as Date).toISOString() },
    {
      a: 1000,
      b: 1024,
      c: 1_000_000,
      d: 1024 * 1024,
      e: 2_000_000_000,
      f: -5,
      g: 1.25,
      h: true,
      i: false,
      j: 't\tn\nA"\\',
      k: "2024-01-02T03:04:05.000Z",
      l: "\nline one\nline two",
      m: [1, "two", [3]],
      n: { o: "p" },
      q: "bare-string",
    },
  );
  assert.deepEqual(parseNatsConf("{ port: 1, host: x }"), { port: 1, host: "x" }, "a file wrapped in { }");
  assert.deepEqual(parseNatsConf("t: $TOKEN", { TOKEN: "1MB" }), { t: 1024 * 1024 }, "environment variables parse as values");
});

test("errors name the line and what was expected", () => {
  const cases: [string, RegExp][] = [
    ["port: 4222\nhost: [1,\n", /line 3: unterminated array/],
    ["a {\n b: 1\n", /unterminated map/],
    ['a: "open', /unterminated "string"/],
    ["a: $missing", /variable \$missing is not defined/],
    ["include ./other.conf", /"include" is not supported/],
    ["a: 10s", /line 1: expected a new line/],
    ["a:\nb: 1", /expected a value for "a" but found a new line/],
    ['a: "\\q"', /invalid escape/],
    ["}", /unexpected "}"/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseNatsConf(text), (error: Error) => error instanceof ConfError && pattern.test(error.message), text);
  }
});

test("fuzz: the config parser either returns a tree or throws ConfError, nothing else", () => {
  const pieces = fc.constantFrom("a", "b", ":", "=", " ", "\n", "{", "}", "[", "]", ",", ";", "#", "//", '"', "'", "1", "k", "-", ".", "$a", "\\", "(", ")", "true");
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 40 }), (parts) => {
      try {
        parseNatsConf(parts.join(""));
      } catch (error) {
        assert.ok(error instanceof ConfError, String(error));
      }
    }),
    { numRuns: 2000 },
  );
});

test("resolution: config keys into server settings, warnings for unknown and unsupported keys", () => {
  const { conf, variables } = parseNatsConfDetailed(SAMPLE);
  const resolved = resolveNatsServerOptions({ conf, variables, confPath: "sample.conf", flags: {} });
  const s = resolved.server;
  assert.equal(s.host, "127.0.0.1");
  assert.equal(s.port, 4333);
  assert.equal(s.serverName, "edge-1");
  assert.deepEqual(s.monitor, { host: "127.0.0.1", port: 8333 });
  assert.equal(s.connection.maxPayload, 2 * 1024 * 1024);
  assert.equal(s.connection.maxControlLine, 8192);
  assert.equal(s.connection.pingIntervalMs, 30_000);
  assert.equal(s.connection.pingMax, 3);
  assert.equal(s.maxConnections, 100);
  assert.equal(s.lameDuckDurationMs, 45_000);
  assert.equal(resolved.debug, true);
  assert.equal(s.authorization?.timeoutMs, 1500);
  assert.deepEqual(s.authorization?.users?.[0]?.permissions, {
    publish: { allow: ["orders.>", "_INBOX.>"], deny: ["orders.secret"] },
    subscribe: { allow: ["orders.*", "_INBOX.>"] },
  });
  assert.deepEqual(s.cluster, { name: "c1", host: "0.0.0.0", port: 6222, routes: ["nats://10.0.0.2:6222", "nats://10.0.0.3:6222"] });
  assert.equal(resolved.warnings.length, 2);
  assert.match(resolved.warnings.join("\n"), /"jetstream" in config file "sample.conf" is a nats-server feature skein does not have: ignored/);
  assert.match(resolved.warnings.join("\n"), /ignoring unknown key "frobnicate"/);
});

test("flags win over the file; -p -1 means any free port", () => {
  const resolved = resolveNatsServerOptions({
    conf: parseNatsConf("port: 1\nauthorization { token: abc }"),
    flags: { port: "-1", addr: "127.0.0.1", httpPort: "-1", user: "u", pass: "p", routes: "nats://a:1, nats://b:2", clusterName: "x" },
  });
  assert.equal(resolved.server.port, 0);
  assert.equal(resolved.server.host, "127.0.0.1");
  assert.deepEqual(resolved.server.monitor, { host: "127.0.0.1", port: 0 });
  assert.deepEqual(resolved.server.authorization, { user: "u", password: "p" });
  assert.deepEqual(resolved.server.cluster, { routes: ["nats://a:1", "nats://b:2"], name: "x" });
});

test("values skein cannot honour are errors naming the key and the file", () => {
  const bad: [string, RegExp][] = [
    ["port: 70000", /bad "port" in config file "f.conf": 70000; expected an integer in -1\.\.65535/],
    ["ping_interval: bogus", /bad "ping_interval"/],
    ["authorization { users: [ { user: a } ] }", /has no "password"/],
    ['authorization { users: [ { user: a, password: b, permissions: { publish: "a..b" } } ] }', /bad subject "a\.\.b"/],
    ["authorization { users: [ { nkey: UABC } ] }", /nkey users are not supported/],
  ];
  for (const [text, pattern] of bad) {
    assert.throws(() => resolveNatsServerOptions({ conf: parseNatsConf(text), confPath: "f.conf", flags: {} }), pattern, text);
  }
});

test("Go durations", () => {
  assert.equal(parseGoDuration("2m"), 120_000);
  assert.equal(parseGoDuration("1m30s"), 90_000);
  assert.equal(parseGoDuration("500ms"), 500);
  assert.equal(parseGoDuration("1.5s"), 1500);
  assert.equal(parseGoDuration("1h"), 3_600_000);
  assert.equal(parseGoDuration("10"), undefined);
  assert.equal(parseGoDuration("abc"), undefined);
});

test("nats-server's flags in Go's style", () => {
  const parsed = parseNatsServerArgs(["-p", "-1", "--addr=0.0.0.0", "-DV", "-m", "8222", "--ports_file_dir", "/tmp/x", "-c", "a.conf", "--user", "u", "--pass=p", "-js", "-T"]);
  assert.deepEqual(parsed.flags, { port: "-1", addr: "0.0.0.0", debug: true, trace: true, httpPort: "8222", portsFileDir: "/tmp/x", config: "a.conf", user: "u", pass: "p" });
  assert.equal(parsed.warnings.length, 1);
  assert.equal(parseNatsServerArgs(["-V"]).flags.trace, true);
  assert.equal(parseNatsServerArgs(["--version"]).version, true);
  assert.equal(parseNatsServerArgs(["-h"]).help, true);
  assert.throws(() => parseNatsServerArgs(["--bogus"]), /flag provided but not defined: -bogus/);
  assert.throws(() => parseNatsServerArgs(["-p"]), /flag needs an argument: -p/);
  assert.throws(() => parseNatsServerArgs(["extra"]), /unexpected argument "extra"/);
});

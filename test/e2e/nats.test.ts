/**
 * The NATS client port with the real `nats` npm client, against real processes: a `skein node
 * --nats-port 0` and `skein nats-server -p -1` with a configuration file (users, permissions,
 * pings). Malformed input over raw sockets gets nats-server's errors and close behaviour while
 * the same server keeps serving other clients.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect, ErrorCode, Events, headers, type NatsConnection, type NatsError, StringCodec } from "nats";
import { type NatsProcess, raw, startSkeinNatsServer, stopAllNats } from "./nats-helpers.js";
import { CLI_PATH, startSkein, stopAll, waitFor } from "./processes.js";

const sc = StringCodec();
const clients: NatsConnection[] = [];

async function client(url: string, options: Parameters<typeof connect>[0] = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: url, reconnect: false, ...options });
  clients.push(nc);
  return nc;
}

after(async () => {
  await Promise.all(clients.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
  await stopAll();
  await stopAllNats();
});

async function collect(sub: AsyncIterable<{ subject: string; data: Uint8Array }>, count: number, limitMs = 5000): Promise<string[]> {
  const out: string[] = [];
  const timer = setTimeout(() => (sub as unknown as { unsubscribe(): void }).unsubscribe(), limitMs);
  for await (const msg of sub) {
    out.push(`${msg.subject}=${sc.decode(msg.data)}`);
    if (out.length === count) break;
  }
  clearTimeout(timer);
  return out;
}

describe("skein node --nats-port", () => {
  let url: string;
  let port: number;

  before(async () => {
    const node = startSkein(["node", "--udp-port", "0", "--nats-port", "0", "--log-level", "warn"]);
    const listening = (await node.listening) as unknown as { nats: string };
    url = listening.nats;
    assert.match(url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    port = Number(url.split(":").pop());
  });

  test("pub/sub with wildcards, headers, request/reply, no responders", async () => {
    const a = await client(url, { name: "a" });
    const b = await client(url, { name: "b" });
    const star = b.subscribe("e2e.*.x");
    const rest = b.subscribe("e2e.>");
    await b.flush();
    for (const subject of ["e2e.1.x", "e2e.2.y", "e2e.3.x.deep"]) a.publish(subject, sc.encode(subject));
    assert.deepEqual(await collect(star, 1), ["e2e.1.x=e2e.1.x"]);
    assert.deepEqual(await collect(rest, 3), ["e2e.1.x=e2e.1.x", "e2e.2.y=e2e.2.y", "e2e.3.x.deep=e2e.3.x.deep"]);

    b.subscribe("svc.echo", {
      callback: (_err, msg) => {
        const h = headers();
        h.set("X-Echo", msg.headers?.get("X-Req") ?? "none");
        msg.respond(sc.encode(`echo:${sc.decode(msg.data)}`), { headers: h });
      },
    });
    await b.flush();
    const h = headers();
    h.set("X-Req", "42");
    const answer = await a.request("svc.echo", sc.encode("hi"), { timeout: 2000, headers: h });
    assert.equal(sc.decode(answer.data), "echo:hi");
    assert.equal(answer.headers?.get("X-Echo"), "42");

    const started = Date.now();
    await assert.rejects(a.request("nobody.home", sc.encode("x"), { timeout: 5000 }), (error: NatsError) => error.code === ErrorCode.NoResponders);
    assert.ok(Date.now() - started < 1000, "no responders fails at once, not by timeout");
  });

  test("queue groups: each message exactly once across members", async () => {
    const members = await Promise.all([0, 1, 2].map(() => client(url)));
    const got: string[][] = [[], [], []];
    members.forEach((nc, index) => nc.subscribe("jobs", { queue: "workers", callback: (_e, msg) => got[index]!.push(sc.decode(msg.data)) }));
    await Promise.all(members.map((nc) => nc.flush()));
    const publisher = await client(url);
    for (let i = 0; i < 300; i++) publisher.publish("jobs", sc.encode(String(i)));
    await publisher.flush();
    await waitFor("300 jobs", () => got.flat().length === 300, 5000);
    await Promise.all(members.map((nc) => nc.flush()));
    assert.equal(got.flat().length, 300);
    assert.equal(new Set(got.flat()).size, 300);
    for (const list of got) assert.ok(list.length > 30, `uneven: ${got.map((l) => l.length).join(",")}`);
  });

  test("auto-unsubscribe and echo off", async () => {
    const nc = await client(url, { noEcho: true });
    const other = await client(url);
    const limited = other.subscribe("auto", { max: 3 });
    await other.flush();
    for (let i = 0; i < 6; i++) nc.publish("auto", sc.encode(String(i)));
    assert.deepEqual(await collect(limited, 10, 2000), ["auto=0", "auto=1", "auto=2"]);
    assert.equal(limited.isClosed(), true);

    const own = nc.subscribe("echo.test");
    await nc.flush();
    nc.publish("echo.test", sc.encode("mine"));
    other.publish("echo.test", sc.encode("theirs"));
    assert.deepEqual(await collect(own, 1), ["echo.test=theirs"]);
  });

  test("max payload: the client refuses, a raw PUB gets -ERR 'Maximum Payload Violation' and is closed", async () => {
    const nc = await client(url);
    assert.equal(nc.info?.max_payload, 1024 * 1024);
    assert.throws(() => nc.publish("big", new Uint8Array(1024 * 1024 + 1)), (error: NatsError) => error.code === ErrorCode.MaxPayloadExceeded);
    const result = await raw(port, ["CONNECT {\"verbose\":false}\r\nPUB big 1048577\r\n"]);
    assert.deepEqual([result.text, result.closed], ["-ERR 'Maximum Payload Violation'\r\n", true]);
    // The largest allowed payload goes through.
    const sub = nc.subscribe("big.ok");
    await nc.flush();
    nc.publish("big.ok", new Uint8Array(1024 * 1024));
    for await (const msg of sub) {
      assert.equal(msg.data.length, 1024 * 1024);
      break;
    }
  });

  test("malformed protocol input: nats-server's error and close, and the node keeps serving others", async () => {
    const bystander = await client(url);
    bystander.subscribe("still.there", { callback: (_e, msg) => msg.respond(sc.encode("yes")) });
    await bystander.flush();
    const cases: [string[], string, boolean][] = [
      [["FOO\r\n"], "-ERR 'Unknown Protocol Operation'\r\n", true],
      [["PUB foo 3\r\nabcdef\r\n"], "-ERR 'Unknown Protocol Operation'\r\n", true],
      [["PUB foo bar\r\n"], "", true],
      [["SUB foo\r\n"], "", true],
      [[`SUB ${"a".repeat(5000)} 1\r\n`], "-ERR 'maximum control line exceeded'\r\n", true],
      [["CONNECT {bad json\r\n"], "", true],
      [['CONNECT {"protocol":9}\r\n'], "-ERR 'invalid client protocol'\r\n", true],
      [["HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n"], "", true],
      [['CONNECT {"verbose":false}\r\nSUB a..b 1\r\nPING\r\n'], "-ERR 'Invalid Subject'\r\nPONG\r\n", false],
      [['CONNECT {"verbose":true}\r\nPUB a.* 0\r\n\r\n'], "+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n", false],
      [["-ERR 'bye'\r\n"], "", true],
      [["PU", "B x 1\r", "\nx\r\nPI", "NG\r\n"], "+OK\r\nPONG\r\n", false],
    ];
    for (const [parts, expected, closed] of cases) {
      const result = await raw(port, parts, closed ? 2000 : 300);
      assert.deepEqual([result.text, result.closed], [expected, closed], JSON.stringify(parts).slice(0, 80));
      // Everyone else is still served.
      const answer = await bystander.request("still.there", sc.encode("?"), { timeout: 2000 });
      assert.equal(sc.decode(answer.data), "yes");
    }
  });
});

describe("skein nats-server", () => {
  let server: NatsProcess;
  let confPath: string;
  const config = (users: string): string => `
ping_interval: "400ms"
ping_max: 1
authorization {
  timeout: 0.3
  users = [
${users}
  ]
}
`;
  const ALICE = `    { user: alice, password: secret, permissions: { publish: { allow: ["orders.>", "_INBOX.>"], deny: "orders.secret" }, subscribe: { deny: "payroll.>" } } }`;
  const BOB = `    { user: bob, password: pw }`;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "skein-nats-conf-"));
    confPath = path.join(dir, "server.conf");
    writeFileSync(confPath, config(`${ALICE}\n${BOB}`));
    server = await startSkeinNatsServer(["-p", "-1", "-m", "-1", "-c", confPath]);
  });

  test("INFO, ports file and monitoring endpoints look like nats-server's", async () => {
    assert.match(server.stderr(), /\[INF\] Listening for client connections on 0\.0\.0\.0:\d+/);
    assert.match(server.stderr(), /\[INF\] Server is ready/);
    const hello = await raw(server.port, [], 200);
    assert.equal(hello.info.auth_required, true);
    assert.equal(hello.info.headers, true);
    assert.equal(hello.info.proto, 1);
    assert.equal(hello.info.max_payload, 1048576);
    const nc = await client(server.clientUrl, { user: "bob", pass: "pw", name: "monitored" });
    nc.subscribe("mon.>", { queue: "q" });
    await nc.flush();
    const varz = (await (await fetch(`${server.monitorUrl}/varz`)).json()) as Record<string, unknown>;
    assert.equal(varz.port, server.port);
    assert.equal(varz.ping_interval, 400_000_000);
    assert.equal(varz.max_control_line, 4096);
    assert.ok((varz.connections as number) >= 1);
    const connz = (await (await fetch(`${server.monitorUrl}/connz?subs=detail`)).json()) as { connections: { name?: string; subscriptions_list_detail?: { subject: string; qgroup?: string }[] }[] };
    const mine = connz.connections.find((c) => c.name === "monitored");
    assert.deepEqual(mine?.subscriptions_list_detail?.map((s) => [s.subject, s.qgroup]), [["mon.>", "q"]]);
    const subsz = (await (await fetch(`${server.monitorUrl}/subsz`)).json()) as Record<string, number>;
    assert.ok(subsz.num_subscriptions! >= 1);
    assert.deepEqual(await (await fetch(`${server.monitorUrl}/healthz`)).json(), { status: "ok" });
  });

  test("authentication failures and timeouts", async () => {
    await assert.rejects(client(server.clientUrl, { user: "alice", pass: "wrong" }), (error: NatsError) => error.code === ErrorCode.AuthorizationViolation);
    await assert.rejects(client(server.clientUrl), (error: NatsError) => error.code === ErrorCode.AuthorizationViolation);
    const early = await raw(server.port, ["PING\r\n"], 2000);
    assert.deepEqual([early.text, early.closed], ["-ERR 'Authorization Violation'\r\n", true]);
    const idle = await raw(server.port, [], 3000);
    assert.equal(idle.closed, true);
    assert.match(idle.text, /-ERR 'Authentication Timeout'\r\n$/);
  });

  test("permissions: violations are reported, the connection stays, denied messages never arrive", async () => {
    const alice = await client(server.clientUrl, { user: "alice", pass: "secret" });
    const bob = await client(server.clientUrl, { user: "bob", pass: "pw" });
    const errors: string[] = [];
    void (async () => {
      for await (const status of alice.status()) {
        // The client parses the operation and subject out of the exact -ERR text.
        const context = (status as { permissionContext?: { operation: string; subject: string } }).permissionContext;
        if (status.type === Events.Error && context !== undefined) errors.push(`${context.operation} ${context.subject}`);
      }
    })();
    const seen: string[] = [];
    bob.subscribe("orders.>", { callback: (_e, msg) => seen.push(msg.subject) });
    await bob.flush();
    alice.publish("orders.new", sc.encode("1"));
    alice.publish("orders.secret", sc.encode("2"));
    alice.publish("elsewhere", sc.encode("3"));
    await alice.flush();
    await bob.flush();
    await waitFor("violations reported", () => errors.length >= 2, 3000);
    assert.deepEqual(seen, ["orders.new"]);
    assert.deepEqual(errors, ["publish orders.secret", "publish elsewhere"]);
    const raw1 = await raw(server.port, ['CONNECT {"user":"alice","pass":"secret","verbose":false}\r\nSUB payroll.x 1\r\nSUB payroll.x q 2\r\nPING\r\n']);
    assert.equal(
      raw1.text,
      "-ERR 'Permissions Violation for Subscription to \"payroll.x\"'\r\n-ERR 'Permissions Violation for Subscription to \"payroll.x\" using queue \"q\"'\r\nPONG\r\n",
    );
    assert.equal(alice.isClosed(), false);
    // Requests work through the allowed _INBOX.> replies.
    bob.subscribe("orders.ask", { max: 1, callback: (_e, msg) => msg.respond(sc.encode("!")) });
    await bob.flush();
    const reply = await alice.request("orders.ask", sc.encode("?"), { timeout: 2000 });
    assert.equal(sc.decode(reply.data), "!");
  });

  test("server PINGs: a client that answers stays, one that does not gets 'Stale Connection'", async () => {
    const nc = await client(server.clientUrl, { user: "bob", pass: "pw" });
    const silent = await raw(server.port, ['CONNECT {"user":"bob","pass":"pw","verbose":false}\r\n'], 3000);
    assert.equal(silent.closed, true);
    assert.match(silent.text, /^PING\r\n(PING\r\n)*-ERR 'Stale Connection'\r\n$/);
    assert.equal(nc.isClosed(), false);
    await nc.flush();
  });

  test("SIGHUP reloads authorization: a removed user is cut, the others stay", async () => {
    const alice = await client(server.clientUrl, { user: "alice", pass: "secret" });
    const bob = await client(server.clientUrl, { user: "bob", pass: "pw" });
    const bobClosed = bob.closed();
    writeFileSync(confPath, config(ALICE));
    server.child.kill("SIGHUP");
    const error = await bobClosed;
    assert.equal((error as NatsError | void)?.code, ErrorCode.AuthorizationViolation);
    await alice.flush();
    await assert.rejects(client(server.clientUrl, { user: "bob", pass: "pw" }), (e: NatsError) => e.code === ErrorCode.AuthorizationViolation);
    await waitFor("the reload log line", () => server.stderr().includes("Reloaded: authorization"), 2000);
  });

  test("SIGTERM stops cleanly and removes the ports file", async () => {
    const portsFile = server.portsFile;
    assert.ok(existsSync(portsFile));
    server.child.kill("SIGTERM");
    assert.equal(await server.exited, 0);
    assert.equal(existsSync(portsFile), false);
  });
});

test("skein nats-server: SIGUSR2 lame-duck mode tells clients (INFO ldm), closes them, exits", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-nats-ldm-"));
  const conf = path.join(dir, "ldm.conf");
  writeFileSync(conf, 'lame_duck_duration: "600ms"\nlame_duck_grace_period: "100ms"\n');
  const server = await startSkeinNatsServer(["-p", "-1", "-c", conf]);
  const nc = await client(server.clientUrl);
  let ldm = false;
  void (async () => {
    for await (const status of nc.status()) if (status.type === Events.LDM) ldm = true;
  })();
  await nc.flush();
  server.child.kill("SIGUSR2");
  await nc.closed();
  assert.equal(ldm, true);
  assert.equal(await server.exited, 0);
  assert.match(server.stderr(), /Entering lame duck mode/);
});

test("skein nats-server: a stuck subscriber is cut as a slow consumer; the publisher and others go on", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-nats-slow-"));
  const conf = path.join(dir, "slow.conf");
  writeFileSync(conf, "max_pending: 512kb\nwrite_deadline: \"2s\"\n");
  const server = await startSkeinNatsServer(["-p", "-1", "-m", "-1", "-c", conf]);
  // A subscriber that stops reading: its socket fills up on the server side.
  const stuck = net.connect(server.port, "127.0.0.1");
  await new Promise((resolve) => stuck.once("connect", resolve));
  stuck.write('CONNECT {"verbose":false}\r\nSUB flood 1\r\nPING\r\n');
  await new Promise((resolve) => stuck.once("data", resolve));
  stuck.pause();
  const stuckClosed = new Promise((resolve) => stuck.once("close", resolve));
  stuck.on("error", () => {});
  const healthy = await client(server.clientUrl);
  let received = 0;
  healthy.subscribe("flood", { callback: () => received++ });
  await healthy.flush();
  const publisher = await client(server.clientUrl);
  const payload = new Uint8Array(16 * 1024);
  const total = 1000; // 16 MB
  for (let i = 0; i < total; i++) {
    publisher.publish("flood", payload);
    if (i % 100 === 99) await publisher.flush();
  }
  await publisher.flush();
  await waitFor("the healthy subscriber to get everything", () => received === total, 10_000);
  const varz = (await (await fetch(`${server.monitorUrl}/varz`)).json()) as { slow_consumers: number };
  assert.equal(varz.slow_consumers, 1);
  assert.match(server.stderr(), /Slow consumer detected .*reason=Slow Consumer \(Pending Bytes\)/);
  // Reading again, the stuck client finds its connection closed (a paused socket sees no end).
  stuck.resume();
  await stuckClosed;
});

test("skein nats-server: bad flags and configs exit 2 with one line; -t checks a config", () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI_PATH, "nats-server", ...args], { encoding: "utf8", timeout: 10_000 });
  const dir = mkdtempSync(path.join(tmpdir(), "skein-nats-cli-"));
  const bad = path.join(dir, "bad.conf");
  writeFileSync(bad, "authorization { users: [ { user: a } ] }\n");
  const cases: [string[], RegExp][] = [
    [["--bogus"], /^skein: flag provided but not defined: -bogus; see "skein nats-server --help"\n$/],
    [["-p", "99999"], /^skein: bad --port value "99999": expected an integer in -1\.\.65535\n$/],
    [["-c", path.join(dir, "missing.conf")], /^skein: cannot read config file ".*missing\.conf": no such file\n$/],
    [["-c", bad, "-t"], /^skein: "authorization\.users\[0\]" in config file ".*bad\.conf" \(user "a"\) has no "password"\n$/],
  ];
  for (const [args, pattern] of cases) {
    const result = cli(args);
    assert.equal(result.status, 2, args.join(" "));
    assert.match(result.stderr, pattern);
  }
  writeFileSync(bad, "port: 4222\n");
  const ok = cli(["-c", bad, "-t"]);
  assert.equal(ok.status, 0);
  assert.match(ok.stdout, /test is successful/);
  assert.match(cli(["--help"]).stdout, /--ports_file_dir/);
});

test("skein node --nats-addr HOST:PORT", async () => {
  const node = startSkein(["node", "--udp-port", "0", "--nats-addr", "127.0.0.1:0", "--log-level", "warn"]);
  const listening = (await node.listening) as unknown as { nats: string };
  const nc = await client(listening.nats);
  await nc.flush();
  assert.equal(nc.info?.server_name.startsWith("skein-"), true);
});

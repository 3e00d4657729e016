/**
 * The NATS connection's protocol logic without sockets: bytes in, bytes out, time as `now`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { nullLogger } from "../../src/core/log.js";
import { SeededRng } from "../../src/core/rng.js";
import { Broker } from "../../src/features/pubsub/broker.js";
import { type AuthorizationSpec, Authenticator } from "../../src/services/nats/auth.js";
import { type CloseReason, type ConnectionConfig, type ConnectionHost, defaultConnectionConfig, NatsConnection } from "../../src/services/nats/connection.js";

class Host implements ConnectionHost {
  readonly logger = nullLogger;
  readonly trace = false;
  readonly closedWith: { id: number; reason: CloseReason; flush: boolean }[] = [];
  auth: Authenticator | undefined;
  constructor(
    readonly broker: Broker,
    readonly cfg: ConnectionConfig,
  ) {}
  config(): ConnectionConfig {
    return this.cfg;
  }
  authenticator(): Authenticator | undefined {
    return this.auth;
  }
  infoLine(connection: NatsConnection): string {
    return `INFO {"client_id":${connection.id}} \r\n`;
  }
  wantsFlush(): void {}
  closed(connection: NatsConnection, reason: CloseReason, flush: boolean): void {
    this.closedWith.push({ id: connection.id, reason, flush });
  }
}

function setup(config: Partial<ConnectionConfig> = {}, auth?: AuthorizationSpec) {
  const host = new Host(new Broker({ rng: new SeededRng(1) }), { ...defaultConnectionConfig(), ...config });
  if (auth !== undefined) host.auth = new Authenticator(auth);
  let nextId = 1;
  const open = (now = 0) => {
    const connection = new NatsConnection(host, nextId++, "127.0.0.1", 5000, now);
    connection.start(now);
    connection.takeOutput();
    return connection;
  };
  return { host, open };
}

function io(connection: NatsConnection, input: string, now = 0): string {
  connection.receive(now, Buffer.from(input));
  return Buffer.concat(connection.takeOutput()).toString("utf8");
}

test("INFO first; verbose and pedantic by default until CONNECT says otherwise", () => {
  const { host } = setup();
  const connection = new NatsConnection(host, 1, "127.0.0.1", 1, 0);
  connection.start(0);
  assert.equal(Buffer.concat(connection.takeOutput()).toString(), 'INFO {"client_id":1} \r\n');
  assert.equal(io(connection, "SUB a 1\r\nPUB a.* 1\r\nx\r\n"), "+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n");
  assert.equal(io(connection, 'CONNECT {"verbose":false,"pedantic":false}\r\nPUB a 2\r\nhi\r\nPING\r\n'), "MSG a 1 2\r\nhi\r\nPONG\r\n");
});

test("two connections: MSG and HMSG out, queue group once, no responders for the requester", () => {
  const { open } = setup();
  const a = open();
  const b = open();
  io(a, 'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.r.* 9\r\n');
  io(b, 'CONNECT {"verbose":false,"headers":true}\r\nSUB svc q 1\r\nSUB svc q 2\r\nSUB ev.> 3\r\n');
  io(a, "PUB svc _INBOX.r.1 4\r\nping\r\nHPUB ev.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
  const out = Buffer.concat(b.takeOutput()).toString();
  assert.match(out, /^MSG svc [12] _INBOX\.r\.1 4\r\nping\r\nHMSG ev\.x 3 12 14\r\nNATS\/1\.0\r\n\r\nhi\r\n$/);
  assert.equal(io(a, "PUB nobody _INBOX.r.2 0\r\n\r\n"), "HMSG _INBOX.r.2 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
});

test("a subscriber without headers support gets the payload alone, as MSG", () => {
  const { open } = setup();
  const plain = open();
  const publisher = open();
  io(plain, 'CONNECT {"verbose":false}\r\nSUB h 1\r\n');
  io(publisher, 'CONNECT {"verbose":false,"headers":true}\r\nHPUB h r 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nHPUB h 12 12\r\nNATS/1.0\r\n\r\n\r\n');
  assert.equal(Buffer.concat(plain.takeOutput()).toString(), "MSG h 1 r 2\r\nhi\r\nMSG h 1 0\r\n\r\n");
});

test("server PINGs: skipped while the client is active, Stale Connection after ping_max unanswered", () => {
  const { open, host } = setup({ pingIntervalMs: 1000, pingMax: 2 });
  const connection = open(0);
  io(connection, 'CONNECT {"verbose":false}\r\n', 10);
  assert.equal(connection.nextDeadline(), 1000);
  connection.tick(1000);
  assert.equal(Buffer.concat(connection.takeOutput()).toString(), "PING\r\n");
  io(connection, "PONG\r\n", 1005);
  assert.equal(connection.rttMs, 5);
  // Activity within the interval: no PING at the next deadline.
  io(connection, "PUB x 0\r\n\r\n", 1900);
  connection.tick(2000);
  assert.equal(Buffer.concat(connection.takeOutput()).toString(), "");
  connection.tick(3000);
  connection.tick(4000);
  assert.equal(Buffer.concat(connection.takeOutput()).toString(), "PING\r\nPING\r\n");
  connection.tick(5000);
  assert.equal(Buffer.concat(connection.takeOutput()).toString(), "-ERR 'Stale Connection'\r\n");
  assert.deepEqual(host.closedWith, [{ id: 1, reason: "Stale Connection", flush: true }]);
});

test("authentication: timeout, violation, user permissions and their exact errors", () => {
  const { open, host } = setup({}, {
    users: [
      { user: "alice", password: "pw", permissions: { publish: { allow: ["foo.>"], deny: ["foo.secret"] }, subscribe: { deny: ["bar"] } } },
      { user: "bob", password: "b" },
    ],
    timeoutMs: 500,
  });
  const idle = open(0);
  assert.equal(idle.nextDeadline(), 500);
  idle.tick(500);
  assert.equal(Buffer.concat(idle.takeOutput()).toString(), "-ERR 'Authentication Timeout'\r\n");
  const early = open(0);
  assert.equal(io(early, "PING\r\n"), "-ERR 'Authorization Violation'\r\n");
  const wrong = open(0);
  assert.equal(io(wrong, 'CONNECT {"user":"alice","pass":"nope"}\r\n'), "-ERR 'Authorization Violation'\r\n");
  assert.deepEqual(
    host.closedWith.map((c) => c.reason),
    ["Authentication Timeout", "Authentication Failure", "Authentication Failure"],
  );
  const alice = open(0);
  assert.equal(
    io(alice, 'CONNECT {"user":"alice","pass":"pw","verbose":true}\r\nPUB foo.a 1\r\nx\r\nPUB foo.secret 1\r\nx\r\nPUB baz 0\r\n\r\nSUB bar 1\r\nSUB bar q 2\r\nSUB b* 3\r\n'),
    "+OK\r\n+OK\r\n-ERR 'Permissions Violation for Publish to \"foo.secret\"'\r\n-ERR 'Permissions Violation for Publish to \"baz\"'\r\n" +
      "-ERR 'Permissions Violation for Subscription to \"bar\"'\r\n-ERR 'Permissions Violation for Subscription to \"bar\" using queue \"q\"'\r\n+OK\r\n",
  );
  assert.ok(alice.isOpen, "permission violations do not close");
});

test("token authentication", () => {
  const { open } = setup({}, { token: "s3cret" });
  assert.equal(io(open(), 'CONNECT {"auth_token":"nope"}\r\n'), "-ERR 'Authorization Violation'\r\n");
  assert.equal(io(open(), 'CONNECT {"user":"x","pass":"s3cret"}\r\n'), "-ERR 'Authorization Violation'\r\n");
  assert.equal(io(open(), 'CONNECT {"auth_token":"s3cret","verbose":false}\r\nPING\r\n'), "PONG\r\n");
});

test("a wildcard subscription overlapping a denied subject is filtered message by message", () => {
  const { open } = setup({}, { users: [{ user: "c", password: "c", permissions: { subscribe: { deny: ["x.secret"] } } }] });
  const c = open();
  const publisher = open();
  io(c, 'CONNECT {"user":"c","pass":"c","verbose":false}\r\nSUB x.* 1\r\n');
  io(publisher, 'CONNECT {"user":"c","pass":"c","verbose":false}\r\nPUB x.secret 1\r\na\r\nPUB x.ok 1\r\nb\r\n');
  assert.equal(Buffer.concat(c.takeOutput()).toString(), "MSG x.ok 1 1\r\nb\r\n");
});

test("reload: a client whose credentials no longer pass is closed, the others get new permissions", () => {
  const { open, host } = setup({}, { users: [{ user: "a", password: "1" }, { user: "b", password: "2" }] });
  const a = open();
  const b = open();
  io(a, 'CONNECT {"user":"a","pass":"1","verbose":false}\r\n');
  io(b, 'CONNECT {"user":"b","pass":"2","verbose":false}\r\n');
  host.auth = new Authenticator({ users: [{ user: "b", password: "2", permissions: { publish: { allow: ["only"] } } }] });
  a.reauthorize();
  b.reauthorize();
  assert.equal(Buffer.concat(a.takeOutput()).toString(), "-ERR 'Authorization Violation'\r\n");
  assert.equal(a.isOpen, false);
  assert.equal(io(b, "PUB other 0\r\n\r\n"), "-ERR 'Permissions Violation for Publish to \"other\"'\r\n");
});

test("slow consumer: cut without an -ERR and without flushing once pending bytes pass max_pending", () => {
  const { open, host, } = setup({ maxPending: 4096 });
  const slow = open();
  const fast = open();
  io(slow, 'CONNECT {"verbose":false}\r\nSUB s 1\r\n');
  io(fast, 'CONNECT {"verbose":false}\r\n');
  slow.socketPending = 4000; // the socket is backed up
  io(fast, `PUB s 200\r\n${"x".repeat(200)}\r\n`);
  assert.equal(slow.isOpen, false);
  assert.deepEqual(host.closedWith.at(-1), { id: 1, reason: "Slow Consumer (Pending Bytes)", flush: false });
  assert.equal(host.broker.stats().slowConsumers, 1);
  assert.equal(host.broker.stats().subscriptions, 0, "its subscriptions are gone");
  assert.ok(fast.isOpen);
});

test("malformed input: Unknown Protocol Operation, then closed; bad arguments close without -ERR", () => {
  const { open, host } = setup();
  assert.equal(io(open(), "FOO\r\n"), "-ERR 'Unknown Protocol Operation'\r\n");
  assert.equal(io(open(), "PUB foo bar\r\n"), "");
  assert.equal(io(open(), "PUB foo 2000000\r\n"), "-ERR 'Maximum Payload Violation'\r\n");
  assert.equal(io(open(), `SUB ${"a".repeat(5000)} 1\r\n`), "-ERR 'maximum control line exceeded'\r\n");
  assert.equal(io(open(), 'CONNECT {"protocol":2}\r\n'), "-ERR 'invalid client protocol'\r\n");
  assert.equal(io(open(), 'CONNECT {"no_responders":true}\r\n'), "-ERR 'no responders requires headers support'\r\n");
  assert.deepEqual(
    host.closedWith.map((c) => c.reason),
    ["Protocol Violation", "Protocol Violation", "Maximum Payload Exceeded", "Maximum Control Line Exceeded", "Bad Client Protocol Version", "No Responders Requires Headers"],
  );
});

test("max subscriptions per connection and UNSUB with max", () => {
  const { open } = setup({ maxSubscriptions: 1 });
  const c = open();
  assert.equal(io(c, 'CONNECT {"verbose":false}\r\nSUB a 1\r\nSUB b 2\r\n'), "-ERR 'maximum subscriptions exceeded'\r\n");
  assert.equal(io(c, "UNSUB 1 2\r\nPUB a 1\r\nx\r\nPUB a 1\r\ny\r\nPUB a 1\r\nz\r\n"), "MSG a 1 1\r\nx\r\nMSG a 1 1\r\ny\r\n");
  assert.equal(c.subs.size, 0);
  assert.equal(io(c, "SUB b 2\r\nPING\r\n"), "PONG\r\n", "room again after the auto-unsubscribe");
});

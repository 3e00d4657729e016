/**
 * Differential test: the same raw protocol input against nats-server (when installed) and
 * `skein nats-server`, side by side; every answer and close must be identical. Skipped when
 * nats-server is not on the PATH (apt-get install nats-server).
 *
 * Cases run one after the other (their subjects overlap), each against both servers at once. A
 * case that ends with PING is complete at its PONG; the few others that leave the connection
 * open are read for OPEN_WAIT_MS (an "open" verdict without a PONG can only be a wait).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { natsServerInstalled, type NatsProcess, raw, startNatsProcess, startSkeinNatsServer, stopAllNats } from "./nats-helpers.js";

after(stopAllNats);

const NATS_SERVER = natsServerInstalled();
const OPEN_WAIT_MS = 250;

/** Protocol inputs, including malformed ones; answers taken from nats-server 2.9.10. */
const BASIC_CASES: string[][] = [
  ["CONNECT {\"verbose\":true}\r\nPING\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nSUB foo.*.> 2\r\nSUB a..b 3\r\nPUB foo.* 1\r\nx\r\nUNSUB 1\r\nUNSUB 99\r\nPING\r\n"],
  ["FOO\r\n"],
  ["PUB foo 2000000\r\n"],
  ["PUB foo bar\r\n"],
  ["PUB foo 3\r\nabcdef\r\n"],
  ["SUB\r\n"],
  ["SUB foo\r\nPING\r\n"],
  ["SUB foo 1 2 3\r\nPING\r\n"],
  ["UNSUB\r\n"],
  ["UNSUB 1 x\r\n"],
  ["PUB\r\n"],
  ["PUB a b c d\r\n"],
  ["CONNECT {bad json\r\n"],
  ["CONNECT {\"pedantic\":true,\"verbose\":true}\r\nPUB foo.* 1\r\nx\r\nPUB foo..bar 1\r\nx\r\nSUB foo..bar 1\r\nSUB foo.> q 2\r\nPING\r\n"],
  ["HPUB foo 10 5\r\nabcdefghij\r\n"],
  ["HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\nPING\r\n"],
  ["ping\r\n"],
  ["PING\n"],
  ["PING x\r\n"],
  ["PONG\r\n"],
  ["INFO {}\r\n"],
  ["+OK\r\n"],
  ["-ERR foo\r\n"],
  ["MSG foo 1 2\r\nhi\r\n"],
  ["CONNECT {\"headers\":true,\"no_responders\":true,\"verbose\":false}\r\nPUB foo _INBOX.x 2\r\nhi\r\nSUB _INBOX.x 1\r\nPUB foo _INBOX.x 2\r\nhi\r\nPING\r\n"],
  ["CONNECT {\"headers\":false,\"no_responders\":true}\r\nSUB _INBOX.x 1\r\nPUB foo _INBOX.x 2\r\nhi\r\nPING\r\n"],
  ["CONNECT {\"echo\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n"],
  ["SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n"],
  ["SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1 1\r\nPUB foo 1\r\nb\r\nPING\r\n"],
  ["SUB foo 1\r\nSUB foo 1\r\nPUB foo 1\r\na\r\nPING\r\n"],
  ["PUB foo 0\r\n\r\nPING\r\n"],
  ["pub foo 1\r\nx\r\nsub foo 1\r\npub foo 1\r\ny\r\nping\r\n"],
  ["PUB  foo   1\r\nx\r\nPING\r\n"],
  ["PUB\tfoo\t1\r\nx\r\nPING\r\n"],
  ["SUB foo 1\r\nPUB foo 1\nx\r\nPING\r\n"],
  ["SUB foo 1\r\nPUB foo 1\r\nx\nPING\r\n"],
  ["CONNECT {\"verbose\":true}\r\nPONG\r\n+OK\r\nINFO {}\r\n"],
  ["CONNECT {\"lang\":\"x\",\"version\":\"1\",\"protocol\":1}\r\nPING\r\n"],
  ["CONNECT {\"protocol\":2}\r\nPING\r\n"],
  ["CONNECT {\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n"],
  ["CONNECT {\"verbose\":true,\"verbose\":1}\r\nPING\r\n"],
  ["CONNECT\r\nPING\r\n"],
  ["CONNECT \r\n"],
  ["CONNECT {\"verbose\":false}\r\nPUB foo a..b 1\r\nx\r\nPUB foo a.* 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB a.* 1\r\nPUB a.* 1\r\nx\r\nPUB a..b 1\r\nx\r\nPUB foo a.* 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo 1\r\nHPUB foo r 12 14\r\nNATS/1.0\r\n\r\nxy\r\nHPUB foo 0 0\r\n\r\nPUB foo -1\r\n\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo 1\r\nHPUB foo 5 5\r\nabcde\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nUNSUB 1 -1\r\nPUB foo 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nPUB foo 00001\r\nx\r\nPUB foo +1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nPUB foo 1x\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB foo q.* 1\r\nSUB foo.>.bar 5\r\nSUB . 6\r\nSUB foo. 7\r\nSUB .foo 8\r\nSUB foo\tbar 1\r\nSUB * 11\r\nSUB > 12\r\nSUB a.>.> 13\r\nSUB foo.bar* 14\r\nSUB fo>o 15\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nPUB foo 1234567890\r\n"],
  ["CONNECT {\"verbose\":false}\r\nPUB foo 123456789\r\n"],
  ["CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB foo r1 r2 1\r\nx\r\n"],
  ["HMSG foo 1 2 2\r\nhi\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB _INBOX.> 1\r\nSUB foo 2\r\nPUB foo _INBOX.1 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nSUB foo 2\r\nPUB foo 1\r\nx\r\nPING\r\n"],
  ["-ERR\r\n"],
  ["+OKX\r\nPING\r\n"],
  ["PINGPONG\r\n"],
  ["PUBX foo 1\r\n"],
  ["SUBfoo 1\r\n"],
  ["CONNECTX\r\n"],
  ["CONNECT {}\r\nSUB foo 1\r\nPUB foo 5\r\nhel"],
  ["CONNECT {}\r\nSUB foo 1\r\nPU", "B foo 5\r", "\nhel", "lo\r", "\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nUNSUB 5 3\r\nPING\r\n"],
  ["\r\n"],
  ["\n"],
  [" PING\r\n"],
  ["CONNECT [1]\r\n"],
  ["CONNECT {\"verbose\":\"yes\"}\r\n"],
  ["CONNECT {\"protocol\":-1}\r\nPING\r\n"],
  ["CONNECT {\"protocol\":1.5}\r\nPING\r\n"],
  ["CONNECT {\"echo\":false,\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB q 1\r\nSUB _i.* 2\r\nPUB q _i.1 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"echo\":false,\"verbose\":false}\r\nSUB foo g 1\r\nPUB foo 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo r 3\r\nabc\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 0\r\n\r\nHPUB foo 0 0\r\n\r\nPING\r\n"],
  ["CONNECT {\"verbose\":false, \"headers\":true}\r\nSUB foo 1\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n"],
];

const AUTH_CONF = `
authorization {
  users = [
    { user: alice, password: secret, permissions: { publish: { allow: ["foo.>", "_INBOX.>"], deny: ["foo.secret"] }, subscribe: { deny: "bar" } } }
    { user: bob, password: pw }
    { user: carol, password: c, permissions: { subscribe: { deny: ["x.secret"] } } }
  ]
}
`;

const AUTH_CASES: string[][] = [
  ["PING\r\n"],
  ["CONNECT {}\r\nPING\r\n"],
  ["CONNECT {\"user\":\"alice\",\"pass\":\"x\"}\r\nPING\r\n"],
  ["CONNECT {\"user\":\"alice\",\"pass\":\"secret\",\"verbose\":true}\r\nPUB foo.a 1\r\nx\r\nPUB foo.secret 1\r\nx\r\nPUB baz 1\r\nx\r\nSUB bar 1\r\nSUB bar q 2\r\nSUB baz 3\r\nPING\r\n"],
  ["CONNECT {\"user\":\"bob\",\"pass\":\"pw\",\"auth_token\":\"zz\"}\r\nPING\r\n"],
  ["CONNECT {\"user\":\"alice\",\"pass\":\"secret\"}\r\nSUB foo.* 1\r\nSUB > 2\r\nPING\r\n"],
  ["CONNECT {\"user\":\"alice\",\"pass\":\"secret\",\"verbose\":false}\r\nHPUB baz 12 14\r\nNATS/1.0\r\n\r\nxy\r\nPING\r\n"],
  ["CONNECT {\"user\":\"alice\",\"pass\":\"secret\",\"verbose\":false}\r\nSUB ba* 1\r\nSUB * 2\r\nPUB foo.x 1\r\nx\r\nPING\r\n"],
  ["CONNECT {\"user\":\"carol\",\"pass\":\"c\",\"verbose\":false}\r\nSUB > 1\r\nSUB x.* 2\r\nSUB x.> 3\r\nSUB y 4\r\nPUB x.secret 1\r\na\r\nPUB x.ok 1\r\nb\r\nPUB y 1\r\nc\r\nPING\r\n"],
  ["connect {\"user\":\"bob\",\"pass\":\"pw\"}\r\nPING\r\n"],
  ["  CONNECT {}\r\n"],
  ["CONNECT {\"user\":\"bob\"}\r\nPING\r\n"],
  ["CONNECT {\"user\":\"bob\",\"pass\":\"pw\",\"protocol\":5}\r\nPING\r\n"],
];

/**
 * nats-server delivers one message to several subscriptions of a subject in no set order (its
 * sublist keeps them in a Go map): runs of consecutive MSG/HMSG frames are compared as sets.
 */
export function normalize(text: string): string {
  const frames: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) {
      frames.push(rest);
      break;
    }
    const line = rest.slice(0, eol + 2);
    const msg = /^(H?)MSG \S+ \S+ (?:\S+ )?(?:(\d+) )?(\d+)\r\n$/.exec(line);
    const size = msg === null ? 0 : Number(msg[3]) + 2;
    frames.push(rest.slice(0, eol + 2 + size));
    rest = rest.slice(eol + 2 + size);
  }
  const out: string[] = [];
  let run: string[] = [];
  for (const frame of [...frames, ""]) {
    if (/^H?MSG /.test(frame)) {
      run.push(frame);
      continue;
    }
    out.push(...run.sort());
    run = [];
    out.push(frame);
  }
  return out.join("");
}

async function compare(reference: NatsProcess, candidate: NatsProcess, cases: string[][]): Promise<void> {
  const results = [];
  for (const parts of cases) {
    const endsWithPing = /PING[^\n]*\n$/i.test(parts.join(""));
    const done = endsWithPing ? (received: string) => received.endsWith("PONG\r\n") : undefined;
    const [expected, actual] = await Promise.all([raw(reference.port, parts, OPEN_WAIT_MS, done), raw(candidate.port, parts, OPEN_WAIT_MS, done)]);
    results.push({
      parts,
      expected: `${normalize(expected.text)} <${expected.closed ? "closed" : "open"}>`,
      actual: `${normalize(actual.text)} <${actual.closed ? "closed" : "open"}>`,
    });
  }
  const differences = results.filter((result) => result.expected !== result.actual);
  assert.deepEqual(
    differences.map((d) => ({ input: d.parts.join("").slice(0, 120), actual: d.actual })),
    differences.map((d) => ({ input: d.parts.join("").slice(0, 120), actual: d.expected })),
  );
}

test("raw protocol: skein nats-server answers exactly as nats-server", { skip: NATS_SERVER === undefined && process.env.CI !== "true" ? "nats-server is not installed (CI installs it: apt-get install nats-server)" : false }, async () => {
  const [reference, candidate] = await Promise.all([startNatsProcess([NATS_SERVER!], ["-p", "-1", "-a", "127.0.0.1"]), startSkeinNatsServer(["-p", "-1", "-a", "127.0.0.1"])]);
  await compare(reference, candidate, BASIC_CASES);
});

test("raw protocol with users and permissions: identical answers", { skip: NATS_SERVER === undefined && process.env.CI !== "true" ? "nats-server is not installed (CI installs it: apt-get install nats-server)" : false }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "skein-nats-compat-"));
  const conf = path.join(dir, "auth.conf");
  writeFileSync(conf, AUTH_CONF);
  const [reference, candidate] = await Promise.all([
    startNatsProcess([NATS_SERVER!], ["-p", "-1", "-a", "127.0.0.1", "-c", conf]),
    startSkeinNatsServer(["-p", "-1", "-a", "127.0.0.1", "-c", conf]),
  ]);
  await compare(reference, candidate, AUTH_CASES);
});

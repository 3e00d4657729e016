import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NatsParser, type NatsOpHandler, ParseError, parseSize } from "../../src/services/nats/parser.js";

class Recorder implements NatsOpHandler {
  readonly ops: string[] = [];
  readonly dataBuffers: Buffer[] = [];
  headers = true;
  stopOn: string | undefined;
  constructor(private readonly parser: () => NatsParser) {}
  private push(op: string): void {
    this.ops.push(op);
    if (this.stopOn !== undefined && op.startsWith(this.stopOn)) this.parser().stop();
  }
  onConnect(buf: Buffer, start: number, end: number): void {
    this.push(`CONNECT ${buf.toString("utf8", start, end)}`);
  }
  onMsg(args: Buffer, ss: number, se: number, rs: number, re: number, data: Buffer, ds: number, hdr: number, total: number): void {
    this.dataBuffers.push(data);
    this.push(`${hdr < 0 ? "PUB" : "HPUB"} ${args.toString("latin1", ss, se)} [${args.toString("latin1", rs, re)}] ${hdr} ${total} ${JSON.stringify(data.toString("latin1", ds, ds + total))}`);
  }
  onSub(args: Buffer, ss: number, se: number, qs: number, qe: number, is: number, ie: number): void {
    this.push(`SUB ${args.toString("latin1", ss, se)} [${args.toString("latin1", qs, qe)}] ${args.toString("latin1", is, ie)}`);
  }
  onUnsub(args: Buffer, is: number, ie: number, max: number): void {
    this.push(`UNSUB ${args.toString("latin1", is, ie)} ${max}`);
  }
  onPing(): void {
    this.push("PING");
  }
  onPong(): void {
    this.push("PONG");
  }
  headersEnabled(): boolean {
    return this.headers;
  }
}

function run(chunks: Buffer[], limits = { maxControlLine: 4096, maxPayload: 1024 * 1024 }, setup?: (r: Recorder, p: NatsParser) => void) {
  let parser!: NatsParser;
  const recorder = new Recorder(() => parser);
  parser = new NatsParser(recorder, limits);
  setup?.(recorder, parser);
  let error: ParseError = ParseError.none;
  for (const chunk of chunks) {
    error = parser.feed(chunk);
    if (error !== ParseError.none) break;
  }
  return { ops: recorder.ops, error, recorder, parser };
}

const STREAM = Buffer.from(
  [
    'CONNECT {"verbose":false,"name":"x y"}\r\n',
    "PING\r\n",
    "SUB foo.* 1\r\n",
    "sub foo.> workers 22\r\n",
    "PUB foo.bar 5\r\nhello\r\n",
    "PUB foo.bar _INBOX.1 0\r\n\r\n",
    "pub\tfoo\t\t3\r\nx\ry\r\n",
    "HPUB foo r 12 17\r\nNATS/1.0\r\n\r\nhello\r\n",
    "UNSUB 1\r\n",
    "UNSUB 22 10\r\n",
    "PUB big 300\r\n" + "z".repeat(300) + "\r\n",
    "PONG\r\n",
    "+OK\r\n",
    "INFO {}\r\n",
    "PING extra\n",
    "PUB lf 2\nab\r\n",
  ].join(""),
  "latin1",
);

const EXPECTED = [
  'CONNECT {"verbose":false,"name":"x y"}',
  "PING",
  "SUB foo.* [] 1",
  "SUB foo.> [workers] 22",
  'PUB foo.bar [] -1 5 "hello"',
  'PUB foo.bar [_INBOX.1] -1 0 ""',
  'PUB foo [] -1 3 "x\\ry"',
  'HPUB foo [r] 12 17 "NATS/1.0\\r\\n\\r\\nhello"',
  "UNSUB 1 -1",
  "UNSUB 22 10",
  `PUB big [] -1 300 "${"z".repeat(300)}"`,
  "PONG",
  "PING",
  'PUB lf [] -1 2 "ab"',
];

test("parses every operation, case-insensitively, with spaces and tabs", () => {
  const { ops, error } = run([STREAM]);
  assert.equal(error, ParseError.none);
  assert.deepEqual(ops, EXPECTED);
});

test("split at every byte: the same operations whatever the chunking", () => {
  for (let cut = 1; cut < STREAM.length; cut++) {
    const { ops, error } = run([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
    assert.equal(error, ParseError.none, `cut at ${cut}`);
    assert.deepEqual(ops, EXPECTED, `cut at ${cut}`);
  }
  const bytes = [...STREAM].map((b) => Buffer.from([b]));
  const { ops, error } = run(bytes);
  assert.equal(error, ParseError.none);
  assert.deepEqual(ops, EXPECTED);
});

test("whole commands in one chunk are parsed in place (the payload is not copied)", () => {
  const chunk = Buffer.from("PUB a 3\r\nabc\r\nPUB b 1\r\nx\r\n");
  const { recorder } = run([chunk]);
  assert.equal(recorder.dataBuffers.length, 2);
  for (const data of recorder.dataBuffers) assert.equal(data, chunk);
});

test("errors: each case gets the code the connection turns into nats-server's answer", () => {
  const cases: [string, ParseError][] = [
    ["FOO\r\n", ParseError.unknownOp],
    ["PUB\r\n", ParseError.unknownOp],
    ["SUBfoo 1\r\n", ParseError.unknownOp],
    ["MSG foo 1 2\r\nhi\r\n", ParseError.unknownOp],
    ["\r\n", ParseError.unknownOp],
    ["PUB foo 3\r\nabcdef\r\n", ParseError.unknownOp],
    ["PUB foo 1\r\nx\nPING\r\n", ParseError.unknownOp],
    ["PUB foo bar\r\n", ParseError.badArgs],
    ["PUB a b c d\r\n", ParseError.badArgs],
    ["PUB foo 1234567890\r\n", ParseError.badArgs],
    ["PUB foo +1\r\n", ParseError.badArgs],
    ["SUB foo\r\n", ParseError.badArgs],
    ["SUB a b c d\r\n", ParseError.badArgs],
    ["UNSUB\r\n", ParseError.unknownOp],
    ["UNSUB 1 2 3\r\n", ParseError.badArgs],
    ["HPUB foo 10 5\r\n", ParseError.badArgs],
    ["PUB foo 2000000\r\n", ParseError.maxPayload],
    ["HPUB foo 1 2000000\r\n", ParseError.maxPayload],
    ["-ERR 'x'\r\n", ParseError.clientErr],
  ];
  for (const [input, expected] of cases) {
    const { error, parser } = run([Buffer.from(input)]);
    assert.equal(error, expected, `${JSON.stringify(input)}: ${parser.detail}`);
    assert.equal(parser.feed(Buffer.from("PING\r\n")), ParseError.stopped, "a failed parser stays stopped");
  }
  const noHeaders = run([Buffer.from("HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")], undefined, (r) => (r.headers = false));
  assert.equal(noHeaders.error, ParseError.badArgs);
});

test("before CONNECT (auth required) anything else is an authorization violation", () => {
  const { error, ops } = run([Buffer.from("PING\r\n")], undefined, (_r, p) => (p.awaitingConnect = true));
  assert.equal(error, ParseError.authorization);
  assert.deepEqual(ops, []);
  const ok = run([Buffer.from('CONNECT {}\r\nPING\r\n')], undefined, (_r, p) => (p.awaitingConnect = true));
  assert.equal(ok.error, ParseError.authorization, "the connection clears awaitingConnect after CONNECT; here nobody does");
  assert.deepEqual(ok.ops, ["CONNECT {}"]);
});

test("max control line: the argument length is checked exactly, even when split", () => {
  const limits = { maxControlLine: 64, maxPayload: 1024 };
  const fits = `SUB ${"a".repeat(62)} 1\r\n`; // argument of 64 bytes
  const over = `SUB ${"a".repeat(63)} 1\r\n`;
  assert.equal(run([Buffer.from(fits)], limits).error, ParseError.none);
  assert.equal(run([Buffer.from(over)], limits).error, ParseError.maxControlLine);
  for (let cut = 1; cut < over.length; cut++) {
    const buf = Buffer.from(over);
    assert.equal(run([buf.subarray(0, cut), buf.subarray(cut)], limits).error, ParseError.maxControlLine, `cut ${cut}`);
    const good = Buffer.from(fits);
    assert.equal(run([good.subarray(0, cut), good.subarray(cut)], limits).error, ParseError.none, `cut ${cut}`);
  }
  // An endless line without "\n" is refused as soon as it passes the limit (memory stays bounded).
  assert.equal(run([Buffer.from("SUB "), Buffer.alloc(100, 0x61)], limits).error, ParseError.maxControlLine);
});

test("the handler can stop the parser mid-chunk", () => {
  const { ops, error } = run([Buffer.from("PING\r\nSUB a 1\r\nPING\r\n")], undefined, (r) => (r.stopOn = "SUB"));
  assert.equal(error, ParseError.stopped);
  assert.deepEqual(ops, ["PING", "SUB a [] 1"]);
});

test("parseSize is nats-server's: 1..9 digits", () => {
  const b = (s: string) => Buffer.from(s);
  assert.equal(parseSize(b("0"), 0, 1), 0);
  assert.equal(parseSize(b("00012"), 0, 5), 12);
  assert.equal(parseSize(b("999999999"), 0, 9), 999999999);
  assert.equal(parseSize(b("1234567890"), 0, 10), -1);
  assert.equal(parseSize(b(""), 0, 0), -1);
  assert.equal(parseSize(b("-1"), 0, 2), -1);
  assert.equal(parseSize(b("1x"), 0, 2), -1);
});

// ---------------------------------------------------------------- fuzz

const tokenArb = fc.stringMatching(/^[a-zA-Z0-9_$]{1,8}$/);
const subjectArb = fc.array(tokenArb, { minLength: 1, maxLength: 4 }).map((t) => t.join("."));
const payloadArb = fc.uint8Array({ maxLength: 200 });
const commandArb = fc.oneof(
  fc.tuple(subjectArb, fc.option(subjectArb, { nil: undefined }), payloadArb).map(([s, r, p]) => ({
    wire: Buffer.concat([Buffer.from(`PUB ${s}${r === undefined ? "" : ` ${r}`} ${p.length}\r\n`), Buffer.from(p), Buffer.from("\r\n")]),
    op: `PUB ${s} [${r ?? ""}] -1 ${p.length} ${JSON.stringify(Buffer.from(p).toString("latin1"))}`,
  })),
  fc.tuple(subjectArb, payloadArb).map(([s, p]) => {
    const header = "NATS/1.0\r\nK: v\r\n\r\n";
    const body = Buffer.concat([Buffer.from(header), Buffer.from(p)]);
    return {
      wire: Buffer.concat([Buffer.from(`HPUB ${s} ${header.length} ${body.length}\r\n`), body, Buffer.from("\r\n")]),
      op: `HPUB ${s} [] ${header.length} ${body.length} ${JSON.stringify(body.toString("latin1"))}`,
    };
  }),
  fc.tuple(subjectArb, fc.option(tokenArb, { nil: undefined }), fc.nat(99999)).map(([s, q, sid]) => ({
    wire: Buffer.from(`SUB ${s}${q === undefined ? "" : ` ${q}`} ${sid}\r\n`),
    op: `SUB ${s} [${q ?? ""}] ${sid}`,
  })),
  fc.tuple(fc.nat(99999), fc.option(fc.nat(1000), { nil: undefined })).map(([sid, max]) => ({
    wire: Buffer.from(`UNSUB ${sid}${max === undefined ? "" : ` ${max}`}\r\n`),
    op: `UNSUB ${sid} ${max ?? -1}`,
  })),
  fc.constant({ wire: Buffer.from("PING\r\n"), op: "PING" }),
  fc.constant({ wire: Buffer.from("PONG\r\n"), op: "PONG" }),
);

test("fuzz: random valid command streams, randomly chunked, parse to the same operations", () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 25 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 40 }), (commands, cuts) => {
      const stream = Buffer.concat(commands.map((c) => c.wire));
      const chunks: Buffer[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const size = cuts[i % cuts.length]!;
        chunks.push(stream.subarray(at, at + size));
        at += size;
      }
      const { ops, error } = run(chunks);
      assert.equal(error, ParseError.none);
      assert.deepEqual(ops, commands.map((c) => c.op));
    }),
    { numRuns: 300 },
  );
});

test("fuzz: arbitrary bytes never throw, and a failed parser reports a code and stays stopped", () => {
  const printable = fc.uint8Array({ maxLength: 300 });
  const mutated = fc.tuple(fc.array(commandArb, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 })).map(([commands, flips]) => {
    const stream = Buffer.concat(commands.map((c) => c.wire));
    for (const [position, value] of flips) stream[position % stream.length] = value;
    return new Uint8Array(stream);
  });
  fc.assert(
    fc.property(fc.oneof(printable, mutated), fc.integer({ min: 1, max: 50 }), (bytes, size) => {
      const buf = Buffer.from(bytes);
      const chunks: Buffer[] = [];
      for (let at = 0; at < buf.length; at += size) chunks.push(buf.subarray(at, at + size));
      const { error, parser } = run(chunks, { maxControlLine: 128, maxPayload: 256 });
      assert.ok(Object.values(ParseError).includes(error));
      if (error !== ParseError.none) assert.equal(parser.feed(Buffer.from("PING\r\n")), ParseError.stopped);
    }),
    { numRuns: 1000 },
  );
});

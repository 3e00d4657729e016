/**
 * The NATS client protocol parser: a hand-written, byte-level state machine in the style of
 * nats-server's server/parser.go. It is fed whatever chunks the socket delivers (a command may be
 * split anywhere, even inside "PUB" or between "\r" and "\n") and calls the handler once per
 * complete operation.
 *
 * Input must be Buffers (socket chunks are), so that the handler can decode strings from them.
 *
 * Why no allocation per operation: at hundreds of thousands of messages per second, one small
 * object per PUB is what the garbage collector spends its time on, and every GC pause stalls every
 * connection of the node. So the parser never builds strings, arrays or views: it hands the
 * handler the buffer and offsets (subject, reply, payload), and keeps its own state in plain number
 * fields and two buffers allocated once per connection:
 *   - `scratch` holds an argument line split across chunks (at most the control-line limit), and
 *   - `payload` holds a payload split across chunks (grows once up to max_payload + 2, reused).
 * Whole commands inside one chunk (the usual case under load) are parsed in place, never copied.
 * The handler decides what to materialise (the subject string, for the trie); the bytes it is
 * given are only valid during the call.
 *
 * Errors follow nats-server 2.9.10 (README.md lists each one with what the server sends and
 * whether it closes). `feed()` returns a ParseError code; the connection does the sending and
 * closing. Argument lines longer than max_control_line are refused precisely (nats-server checks
 * only at read-buffer boundaries), which bounds `scratch`.
 */

/** What `feed()` returns. */
export const ParseError = {
  none: 0,
  /** -ERR 'Unknown Protocol Operation', then close. */
  unknownOp: 1,
  /** Close without -ERR (bad arguments: nats-server returns an error from processPub/Sub/… and closes). */
  badArgs: 2,
  /** -ERR 'Maximum Payload Violation', then close. */
  maxPayload: 3,
  /** -ERR 'maximum control line exceeded', then close. */
  maxControlLine: 4,
  /** -ERR 'Authorization Violation', then close (a command other than CONNECT while auth is awaited). */
  authorization: 5,
  /** The client sent -ERR: close. */
  clientErr: 6,
  /** The handler stopped the parser (it is closing the connection). */
  stopped: 7,
} as const;
export type ParseError = (typeof ParseError)[keyof typeof ParseError];

export interface NatsOpHandler {
  onConnect(buf: Buffer, start: number, end: number): void;
  /**
   * One PUB (headerSize -1) or HPUB. Subject and reply are `args[subjectStart, subjectEnd)` and
   * `args[replyStart, replyEnd)` (empty reply: replyStart === replyEnd). The header block and
   * payload are `data[dataStart, dataStart + totalSize)`, the header block first.
   */
  onMsg(
    args: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    data: Buffer,
    dataStart: number,
    headerSize: number,
    totalSize: number,
  ): void;
  /** SUB: queue empty when queueStart === queueEnd. */
  onSub(args: Buffer, subjectStart: number, subjectEnd: number, queueStart: number, queueEnd: number, sidStart: number, sidEnd: number): void;
  /** UNSUB: max -1 when absent or not a number (unsubscribe now). */
  onUnsub(args: Buffer, sidStart: number, sidEnd: number, max: number): void;
  onPing(): void;
  onPong(): void;
  /** HPUB is only allowed after CONNECT with headers: true. */
  headersEnabled(): boolean;
}

const enum S {
  START,
  H,
  HP,
  HPU,
  HPUB,
  HPUB_SPC,
  P,
  PU,
  PUB,
  PUB_SPC,
  PI,
  PIN,
  PING,
  PO,
  PON,
  PONG,
  S,
  SU,
  SUB,
  SUB_SPC,
  U,
  UN,
  UNS,
  UNSU,
  UNSUB,
  UNSUB_SPC,
  C,
  CO,
  CON,
  CONN,
  CONNE,
  CONNEC,
  CONNECT,
  I,
  IN,
  INF,
  INFO,
  PLUS,
  PLUS_O,
  PLUS_OK,
  MINUS,
  MINUS_E,
  MINUS_ER,
  MINUS_ERR,
  /** In an argument line (which op: `argOp`), looking for "\n". */
  ARG,
  /** Reading a payload plus its "\r\n". */
  PAYLOAD,
  /** The handler stopped the parser. */
  STOPPED,
}

const enum Op {
  PUB,
  HPUB,
  SUB,
  UNSUB,
  CONNECT,
  INFO,
  ERR,
}

const NL = 10;
const CR = 13;
const SP = 32;
const TAB = 9;

/** Largest number parseSize accepts (9 digits, as nats-server). */
const MAX_SIZE_DIGITS = 9;

/** nats-server's parseSize: 1..9 ASCII digits, else -1. */
export function parseSize(buf: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length <= 0 || length > MAX_SIZE_DIGITS) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i]! - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

function isArgSpace(b: number): boolean {
  return b === SP || b === TAB || b === CR || b === NL;
}

export interface ParserLimits {
  maxControlLine: number;
  maxPayload: number;
}

export class NatsParser {
  private state: S = S.START;
  private argOp: Op = Op.PUB;
  /** Argument line: where it is (chunk or scratch) and its bounds. */
  private argBuf: Buffer;
  private argStart = 0;
  private argEnd = 0;
  /** Bytes of an argument line copied into scratch so far (split across chunks). */
  private scratchLength = 0;
  private readonly scratch: Buffer;
  // Up to 4 argument fields, as [start, end) pairs into argBuf (no allocation).
  private readonly fieldStart = new Int32Array(5);
  private readonly fieldEnd = new Int32Array(5);
  private fields = 0;
  // The PUB/HPUB in progress.
  private subjectStart = 0;
  private subjectEnd = 0;
  private replyStart = 0;
  private replyEnd = 0;
  private headerSize = -1;
  private totalSize = 0;
  /** A payload split across chunks: `payload[0, payloadHave)` received so far. */
  private payload: Buffer = Buffer.alloc(0);
  private payloadHave = 0;
  private stopRequested = false;
  /** When set, anything but CONNECT first is an authorization violation. */
  awaitingConnect = false;
  /** What went wrong, for logs (set with every error). */
  detail = "";

  constructor(
    private readonly handler: NatsOpHandler,
    private limits: ParserLimits,
  ) {
    this.scratch = Buffer.allocUnsafe(limits.maxControlLine + 2);
    this.argBuf = this.scratch;
  }

  /** The handler calls this to stop parsing (the connection is closing). */
  stop(): void {
    this.stopRequested = true;
  }

  setMaxPayload(maxPayload: number): void {
    this.limits = { ...this.limits, maxPayload };
  }

  /** Parses one chunk. Returns ParseError.none, or why the connection must close. */
  feed(buf: Buffer): ParseError {
    if (this.state === S.STOPPED) return ParseError.stopped;
    const n = buf.length;
    let i = 0;
    while (i < n) {
      const b = buf[i]!;
      switch (this.state) {
        case S.START: {
          if (this.awaitingConnect && b !== 0x43 && b !== 0x63) return this.fail(ParseError.authorization, "a command before CONNECT");
          switch (b | 0x20) {
            case 0x70 /* p */:
              this.state = S.P;
              break;
            case 0x68 /* h */:
              this.state = S.H;
              break;
            case 0x73 /* s */:
              this.state = S.S;
              break;
            case 0x75 /* u */:
              this.state = S.U;
              break;
            case 0x63 /* c */:
              this.state = S.C;
              break;
            case 0x69 /* i */:
              this.state = S.I;
              break;
            default:
              if (b === 0x2b /* + */) this.state = S.PLUS;
              else if (b === 0x2d /* - */) this.state = S.MINUS;
              else return this.unknown(buf, i);
          }
          i++;
          continue;
        }
        case S.P:
          switch (b | 0x20) {
            case 0x75 /* u */:
              this.state = S.PU;
              break;
            case 0x69 /* i */:
              this.state = S.PI;
              break;
            case 0x6f /* o */:
              this.state = S.PO;
              break;
            default:
              return this.unknown(buf, i);
          }
          i++;
          continue;
        case S.PU:
          if ((b | 0x20) !== 0x62 /* b */) return this.unknown(buf, i);
          this.state = S.PUB;
          i++;
          continue;
        case S.PUB:
          if (b !== SP && b !== TAB) return this.unknown(buf, i);
          this.state = S.PUB_SPC;
          i++;
          continue;
        case S.PUB_SPC:
          if (b === SP || b === TAB) {
            i++;
            continue;
          }
          this.beginArg(Op.PUB, buf, i);
          continue;
        case S.H:
          if ((b | 0x20) !== 0x70 /* p */) return this.unknown(buf, i);
          this.state = S.HP;
          i++;
          continue;
        case S.HP:
          if ((b | 0x20) !== 0x75 /* u */) return this.unknown(buf, i);
          this.state = S.HPU;
          i++;
          continue;
        case S.HPU:
          if ((b | 0x20) !== 0x62 /* b */) return this.unknown(buf, i);
          this.state = S.HPUB;
          i++;
          continue;
        case S.HPUB:
          if (b !== SP && b !== TAB) return this.unknown(buf, i);
          this.state = S.HPUB_SPC;
          i++;
          continue;
        case S.HPUB_SPC:
          if (b === SP || b === TAB) {
            i++;
            continue;
          }
          this.beginArg(Op.HPUB, buf, i);
          continue;
        case S.S:
          if ((b | 0x20) !== 0x75 /* u */) return this.unknown(buf, i);
          this.state = S.SU;
          i++;
          continue;
        case S.SU:
          if ((b | 0x20) !== 0x62 /* b */) return this.unknown(buf, i);
          this.state = S.SUB;
          i++;
          continue;
        case S.SUB:
          if (b !== SP && b !== TAB) return this.unknown(buf, i);
          this.state = S.SUB_SPC;
          i++;
          continue;
        case S.SUB_SPC:
          if (b === SP || b === TAB) {
            i++;
            continue;
          }
          this.beginArg(Op.SUB, buf, i);
          continue;
        case S.U:
          if ((b | 0x20) !== 0x6e /* n */) return this.unknown(buf, i);
          this.state = S.UN;
          i++;
          continue;
        case S.UN:
          if ((b | 0x20) !== 0x73 /* s */) return this.unknown(buf, i);
          this.state = S.UNS;
          i++;
          continue;
        case S.UNS:
          if ((b | 0x20) !== 0x75 /* u */) return this.unknown(buf, i);
          this.state = S.UNSU;
          i++;
          continue;
        case S.UNSU:
          if ((b | 0x20) !== 0x62 /* b */) return this.unknown(buf, i);
          this.state = S.UNSUB;
          i++;
          continue;
        case S.UNSUB:
          if (b !== SP && b !== TAB) return this.unknown(buf, i);
          this.state = S.UNSUB_SPC;
          i++;
          continue;
        case S.UNSUB_SPC:
          if (b === SP || b === TAB) {
            i++;
            continue;
          }
          this.beginArg(Op.UNSUB, buf, i);
          continue;
        case S.PI:
          if ((b | 0x20) !== 0x6e /* n */) return this.unknown(buf, i);
          this.state = S.PIN;
          i++;
          continue;
        case S.PIN:
          if ((b | 0x20) !== 0x67 /* g */) return this.unknown(buf, i);
          this.state = S.PING;
          i++;
          continue;
        case S.PO:
          if ((b | 0x20) !== 0x6e /* n */) return this.unknown(buf, i);
          this.state = S.PON;
          i++;
          continue;
        case S.PON:
          if ((b | 0x20) !== 0x67 /* g */) return this.unknown(buf, i);
          this.state = S.PONG;
          i++;
          continue;
        case S.PING:
        case S.PONG:
        case S.PLUS_OK: {
          // Anything up to the end of the line is ignored, as nats-server does.
          const nl = indexOfNl(buf, i);
          if (nl < 0) return ParseError.none;
          const state = this.state;
          this.state = S.START;
          i = nl + 1;
          if (state === S.PING) this.handler.onPing();
          else if (state === S.PONG) this.handler.onPong();
          if (this.stopRequested) return this.halt();
          continue;
        }
        case S.C:
          if ((b | 0x20) !== 0x6f /* o */) return this.unknown(buf, i);
          this.state = S.CO;
          i++;
          continue;
        case S.CO:
          if ((b | 0x20) !== 0x6e /* n */) return this.unknown(buf, i);
          this.state = S.CON;
          i++;
          continue;
        case S.CON:
          if ((b | 0x20) !== 0x6e /* n */) return this.unknown(buf, i);
          this.state = S.CONN;
          i++;
          continue;
        case S.CONN:
          if ((b | 0x20) !== 0x65 /* e */) return this.unknown(buf, i);
          this.state = S.CONNE;
          i++;
          continue;
        case S.CONNE:
          if ((b | 0x20) !== 0x63 /* c */) return this.unknown(buf, i);
          this.state = S.CONNEC;
          i++;
          continue;
        case S.CONNEC:
          if ((b | 0x20) !== 0x74 /* t */) return this.unknown(buf, i);
          this.state = S.CONNECT;
          i++;
          continue;
        case S.CONNECT:
          if (b === SP || b === TAB) {
            i++;
            continue;
          }
          this.beginArg(Op.CONNECT, buf, i);
          continue;
        case S.I:
          if ((b | 0x20) !== 0x6e /* n */) return this.unknown(buf, i);
          this.state = S.IN;
          i++;
          continue;
        case S.IN:
          if ((b | 0x20) !== 0x66 /* f */) return this.unknown(buf, i);
          this.state = S.INF;
          i++;
          continue;
        case S.INF:
          if ((b | 0x20) !== 0x6f /* o */) return this.unknown(buf, i);
          this.state = S.INFO;
          i++;
          continue;
        case S.INFO:
          if (b === SP || b === TAB) {
            i++;
            continue;
          }
          this.beginArg(Op.INFO, buf, i);
          continue;
        case S.PLUS:
          if ((b | 0x20) !== 0x6f /* o */) return this.unknown(buf, i);
          this.state = S.PLUS_O;
          i++;
          continue;
        case S.PLUS_O:
          if ((b | 0x20) !== 0x6b /* k */) return this.unknown(buf, i);
          this.state = S.PLUS_OK;
          i++;
          continue;
        case S.MINUS:
          if ((b | 0x20) !== 0x65 /* e */) return this.unknown(buf, i);
          this.state = S.MINUS_E;
          i++;
          continue;
        case S.MINUS_E:
          if ((b | 0x20) !== 0x72 /* r */) return this.unknown(buf, i);
          this.state = S.MINUS_ER;
          i++;
          continue;
        case S.MINUS_ER:
          if ((b | 0x20) !== 0x72 /* r */) return this.unknown(buf, i);
          this.state = S.MINUS_ERR;
          i++;
          continue;
        case S.MINUS_ERR:
          if (b !== SP && b !== TAB) return this.unknown(buf, i);
          // nats-server closes a client connection that sends -ERR.
          return this.fail(ParseError.clientErr, "the client sent -ERR");
        case S.ARG: {
          const result = this.continueArg(buf, i);
          if (result < 0) return this.halt(-result as ParseError);
          i = result;
          continue;
        }
        case S.PAYLOAD: {
          const result = this.continuePayload(buf, i);
          if (result < 0) return this.halt(-result as ParseError);
          i = result;
          continue;
        }
        default:
          return ParseError.stopped;
      }
    }
    return ParseError.none;
  }

  /** Whether the parser is between commands (nothing partial held). */
  get idle(): boolean {
    return this.state === S.START;
  }

  private beginArg(op: Op, buf: Buffer, i: number): void {
    this.state = S.ARG;
    this.argOp = op;
    this.argBuf = buf;
    this.argStart = i;
    this.scratchLength = 0;
  }

  /**
   * In an argument line: finds its end, copying a partial line into `scratch`. Returns the index
   * to continue at, or a negated ParseError.
   */
  private continueArg(buf: Buffer, i: number): number {
    const limit = this.limits.maxControlLine;
    const nl = indexOfNl(buf, i);
    if (this.scratchLength === 0 && this.argBuf === buf) {
      // The line started in this chunk.
      if (nl < 0) {
        const length = buf.length - this.argStart;
        if (length > limit + 1) return -this.fail(ParseError.maxControlLine, `argument line longer than ${limit} bytes`);
        this.scratch.set(buf.subarray(this.argStart, buf.length), 0);
        this.scratchLength = length;
        this.argBuf = this.scratch;
        return buf.length;
      }
      let end = nl;
      if (end > this.argStart && buf[end - 1] === CR) end--;
      if (end - this.argStart > limit) return -this.fail(ParseError.maxControlLine, `argument line of ${end - this.argStart} bytes, limit ${limit}`);
      this.argEnd = end;
      return this.endArg(buf, nl + 1);
    }
    // Continuing a line held in scratch.
    const upto = nl < 0 ? buf.length : nl;
    const add = upto - i;
    if (this.scratchLength + add > limit + 1) return -this.fail(ParseError.maxControlLine, `argument line longer than ${limit} bytes`);
    this.scratch.set(buf.subarray(i, upto), this.scratchLength);
    this.scratchLength += add;
    if (nl < 0) return buf.length;
    let end = this.scratchLength;
    if (end > 0 && this.scratch[end - 1] === CR) end--;
    if (end > limit) return -this.fail(ParseError.maxControlLine, `argument line of ${end} bytes, limit ${limit}`);
    this.argBuf = this.scratch;
    this.argStart = 0;
    this.argEnd = end;
    return this.endArg(buf, nl + 1);
  }

  /** Splits the argument line into fields (space, tab, CR, LF separate them). */
  private split(max: number): number {
    const args = this.argBuf;
    let count = 0;
    let i = this.argStart;
    const end = this.argEnd;
    while (i < end) {
      while (i < end && isArgSpace(args[i]!)) i++;
      if (i >= end) break;
      const start = i;
      while (i < end && !isArgSpace(args[i]!)) i++;
      if (count >= max) return max + 1;
      this.fieldStart[count] = start;
      this.fieldEnd[count] = i;
      count++;
    }
    this.fields = count;
    return count;
  }

  /** A complete argument line: dispatch. `next` is the index after its "\n". */
  private endArg(buf: Buffer, next: number): number {
    const args = this.argBuf;
    switch (this.argOp) {
      case Op.PUB: {
        const count = this.split(3);
        if (count !== 2 && count !== 3) return -this.fail(ParseError.badArgs, "PUB needs subject [reply] size");
        this.subjectStart = this.fieldStart[0]!;
        this.subjectEnd = this.fieldEnd[0]!;
        if (count === 3) {
          this.replyStart = this.fieldStart[1]!;
          this.replyEnd = this.fieldEnd[1]!;
        } else this.replyStart = this.replyEnd = 0;
        const size = parseSize(args, this.fieldStart[count - 1]!, this.fieldEnd[count - 1]!);
        if (size < 0) return -this.fail(ParseError.badArgs, "PUB has a bad or missing size");
        if (size > this.limits.maxPayload) return -this.fail(ParseError.maxPayload, `PUB of ${size} bytes, max_payload ${this.limits.maxPayload}`);
        this.headerSize = -1;
        this.totalSize = size;
        return this.beginPayload(buf, next);
      }
      case Op.HPUB: {
        if (!this.handler.headersEnabled()) return -this.fail(ParseError.badArgs, "HPUB without headers: true in CONNECT");
        const count = this.split(4);
        if (count !== 3 && count !== 4) return -this.fail(ParseError.badArgs, "HPUB needs subject [reply] header_size total_size");
        this.subjectStart = this.fieldStart[0]!;
        this.subjectEnd = this.fieldEnd[0]!;
        if (count === 4) {
          this.replyStart = this.fieldStart[1]!;
          this.replyEnd = this.fieldEnd[1]!;
        } else this.replyStart = this.replyEnd = 0;
        const headerSize = parseSize(args, this.fieldStart[count - 2]!, this.fieldEnd[count - 2]!);
        const total = parseSize(args, this.fieldStart[count - 1]!, this.fieldEnd[count - 1]!);
        if (headerSize < 0) return -this.fail(ParseError.badArgs, "HPUB has a bad or missing header size");
        if (total < 0) return -this.fail(ParseError.badArgs, "HPUB has a bad or missing total size");
        if (headerSize > total) return -this.fail(ParseError.badArgs, "HPUB header size larger than total size");
        if (total > this.limits.maxPayload) return -this.fail(ParseError.maxPayload, `HPUB of ${total} bytes, max_payload ${this.limits.maxPayload}`);
        this.headerSize = headerSize;
        this.totalSize = total;
        return this.beginPayload(buf, next);
      }
      case Op.SUB: {
        const count = this.split(3);
        if (count !== 2 && count !== 3) return -this.fail(ParseError.badArgs, "SUB needs subject [queue] sid");
        const queueStart = count === 3 ? this.fieldStart[1]! : 0;
        const queueEnd = count === 3 ? this.fieldEnd[1]! : 0;
        this.state = S.START;
        this.handler.onSub(args, this.fieldStart[0]!, this.fieldEnd[0]!, queueStart, queueEnd, this.fieldStart[count - 1]!, this.fieldEnd[count - 1]!);
        return this.stopRequested ? -this.halt() : next;
      }
      case Op.UNSUB: {
        const count = this.split(2);
        if (count !== 1 && count !== 2) return -this.fail(ParseError.badArgs, "UNSUB needs sid [max]");
        const max = count === 2 ? parseSize(args, this.fieldStart[1]!, this.fieldEnd[1]!) : -1;
        this.state = S.START;
        this.handler.onUnsub(args, this.fieldStart[0]!, this.fieldEnd[0]!, max);
        return this.stopRequested ? -this.halt() : next;
      }
      case Op.CONNECT: {
        this.state = S.START;
        this.handler.onConnect(args, this.argStart, this.argEnd);
        return this.stopRequested ? -this.halt() : next;
      }
      case Op.INFO:
        // A client's INFO is ignored, as nats-server does.
        this.state = S.START;
        return next;
      case Op.ERR:
        return -this.fail(ParseError.clientErr, "the client sent -ERR");
    }
  }

  private beginPayload(buf: Buffer, i: number): number {
    const need = this.totalSize + 2;
    if (buf.length - i >= need) {
      // The whole payload is in this chunk: no copy (the arguments stay where they are).
      if (buf[i + this.totalSize] !== CR || buf[i + this.totalSize + 1] !== NL) return -this.unknownAt(buf, i + this.totalSize);
      this.state = S.START;
      this.deliver(buf, i);
      return this.stopRequested ? -this.halt() : i + need;
    }
    // Split: keep the argument line (it may point into this chunk) and collect the payload.
    if (this.argBuf !== this.scratch) {
      const length = this.argEnd - this.argStart;
      this.scratch.set(this.argBuf.subarray(this.argStart, this.argEnd), 0);
      const shift = this.argStart;
      this.subjectStart -= shift;
      this.subjectEnd -= shift;
      if (this.replyEnd > this.replyStart) {
        this.replyStart -= shift;
        this.replyEnd -= shift;
      }
      this.argBuf = this.scratch;
      this.argStart = 0;
      this.argEnd = length;
    }
    if (this.payload.length < need) this.payload = Buffer.allocUnsafe(Math.max(need, Math.min(this.payload.length * 2, this.limits.maxPayload + 2)));
    this.payloadHave = 0;
    this.state = S.PAYLOAD;
    return this.continuePayload(buf, i);
  }

  private continuePayload(buf: Buffer, i: number): number {
    const need = this.totalSize + 2;
    const take = Math.min(need - this.payloadHave, buf.length - i);
    this.payload.set(buf.subarray(i, i + take), this.payloadHave);
    this.payloadHave += take;
    if (this.payloadHave < need) return i + take;
    if (this.payload[this.totalSize] !== CR || this.payload[this.totalSize + 1] !== NL) {
      this.detail = "payload not followed by CRLF";
      return -this.fail(ParseError.unknownOp, this.detail);
    }
    this.state = S.START;
    this.deliver(this.payload, 0);
    return this.stopRequested ? -this.halt() : i + take;
  }

  private deliver(data: Buffer, start: number): void {
    this.handler.onMsg(this.argBuf, this.subjectStart, this.subjectEnd, this.replyStart, this.replyEnd, data, start, this.headerSize, this.totalSize);
  }

  private unknownAt(buf: Buffer, i: number): number {
    this.detail = `payload not followed by CRLF near ${JSON.stringify(snippet(buf, i))}`;
    return this.fail(ParseError.unknownOp, this.detail);
  }

  private unknown(buf: Buffer, i: number): ParseError {
    return this.fail(ParseError.unknownOp, `unexpected ${JSON.stringify(snippet(buf, i))}`);
  }

  private fail(error: ParseError, detail: string): ParseError {
    this.detail = detail;
    this.state = S.STOPPED;
    return error;
  }

  private halt(error: ParseError = ParseError.stopped): ParseError {
    this.state = S.STOPPED;
    return error;
  }
}

function indexOfNl(buf: Uint8Array, from: number): number {
  return buf.indexOf(NL, from);
}

function snippet(buf: Uint8Array, i: number): string {
  let text = "";
  for (let k = i; k < Math.min(buf.length, i + 16); k++) text += String.fromCharCode(buf[k]!);
  return text;
}

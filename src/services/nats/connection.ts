/**
 * One NATS client connection's protocol logic: CONNECT and authentication, PUB/HPUB into the
 * broker, SUB/UNSUB, MSG/HMSG out, +OK/-ERR, server PINGs and stale detection, the
 * authentication timeout, slow-consumer cut-off and no-responders. Pure: bytes in (`receive`),
 * bytes out (`takeOutput`), time as `now` (ms, monotonic), timers as `nextDeadline()`/`tick()`.
 * The socket lives in server.ts.
 *
 * Close behaviour (as nats-server): every -ERR that closes the connection is flushed first, then
 * the socket is ended; a slow consumer is cut without flushing (its socket is backed up anyway)
 * and without an -ERR.
 */
import type { Logger } from "../../core/log.js";
import { type Broker, type Consumer, type Message, type Subscription } from "../../features/pubsub/broker.js";
import { NO_RESPONDERS_BLOCK } from "../../features/pubsub/headers.js";
import { checkPublishSubject, checkSubject, subjectMatches } from "../../features/pubsub/subject.js";
import type { Authenticator, Permissions } from "./auth.js";
import { OutBuffer, writeUint, writeUtf8 } from "./out-buffer.js";
import { NatsParser, type NatsOpHandler, ParseError } from "./parser.js";
import {
  applyConnect,
  type ConnectOptions,
  defaultConnectOptions,
  errLine,
  NATS_DEFAULTS,
  NatsErr,
  OK_LINE,
  PING_LINE,
  PONG_LINE,
} from "./protocol.js";

export interface ConnectionConfig {
  maxPayload: number;
  maxControlLine: number;
  /** Outbound bytes waiting (ours + the socket's) above which the client is a slow consumer. */
  maxPending: number;
  pingIntervalMs: number;
  pingMax: number;
  authTimeoutMs: number;
  /** Per connection; 0 = no limit. */
  maxSubscriptions: number;
  /** A client whose socket makes no progress for this long while bytes wait is a slow consumer (nats-server's write_deadline). */
  writeDeadlineMs: number;
}

export function defaultConnectionConfig(): ConnectionConfig {
  return {
    maxPayload: NATS_DEFAULTS.maxPayloadBytes,
    maxControlLine: NATS_DEFAULTS.maxControlLineBytes,
    maxPending: NATS_DEFAULTS.maxPendingBytes,
    pingIntervalMs: NATS_DEFAULTS.pingIntervalMs,
    pingMax: NATS_DEFAULTS.pingMax,
    authTimeoutMs: NATS_DEFAULTS.authTimeoutMs,
    maxSubscriptions: NATS_DEFAULTS.maxSubscriptions,
    writeDeadlineMs: NATS_DEFAULTS.writeDeadlineMs,
  };
}

/** Why a connection closed (the `reason` of closed connections, as nats-server names them). */
export type CloseReason =
  | "Client Closed"
  | "Server Shutdown"
  | "Protocol Violation"
  | "Maximum Payload Exceeded"
  | "Maximum Control Line Exceeded"
  | "Authentication Failure"
  | "Authentication Timeout"
  | "Stale Connection"
  | "Slow Consumer (Pending Bytes)"
  | "Slow Consumer (Write Deadline)"
  | "Bad Client Protocol Version"
  | "No Responders Requires Headers"
  | "Lame Duck Mode"
  | "Read Error"
  | "Write Error";

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly broker: Broker;
  readonly logger: Logger;
  config(): ConnectionConfig;
  /** The current authorization (undefined: none required); reloadable. */
  authenticator(): Authenticator | undefined;
  /** The INFO line for this client (`INFO {…} \r\n`). */
  infoLine(connection: NatsConnection): string;
  /** The connection has output to write: flush it soon. Called once until `takeOutput()`. */
  wantsFlush(connection: NatsConnection): void;
  /** The connection is closed: flush what it has (when `flush`), then end the socket. */
  closed(connection: NatsConnection, reason: CloseReason, flush: boolean): void;
  /** Whether protocol tracing is on (-V): logs every operation at debug level. */
  readonly trace: boolean;
}

const enum ConnState {
  Open,
  Closed,
}

/** Subjects this long or shorter are kept (as bytes) to reuse the last subject string. */
const INTERN_MAX_BYTES = 256;

export class NatsConnection implements Consumer, NatsOpHandler {
  readonly out = new OutBuffer();
  opts: ConnectOptions = defaultConnectOptions();
  /** Set by the server after each write: bytes the socket still holds. */
  socketPending = 0;
  connectReceived = false;
  user: string | undefined;
  permissions: Permissions | undefined;
  readonly subs = new Map<string, Subscription>();
  inMsgs = 0;
  inBytes = 0;
  outMsgs = 0;
  outBytes = 0;
  rttMs: number | undefined;
  lastActivityMs: number;
  closeReason: CloseReason | undefined;
  private state = ConnState.Open;
  private flushRequested = false;
  private readonly parser: NatsParser;
  private now: number;
  private authDeadline = Infinity;
  private nextPingAt: number;
  private pingsOut = 0;
  private pingSentAt = 0;
  private lastInMs: number;
  /** The message object reused for every PUB (its fields change; consumers copy). */
  private readonly msg: Message = { subject: "", reply: "", bytes: Buffer.alloc(0), offset: 0, headerLength: 0, totalLength: 0 };
  private readonly lastSubjectBytes = Buffer.allocUnsafe(INTERN_MAX_BYTES);
  private lastSubjectLength = -1;
  private lastSubject = "";

  constructor(
    private readonly host: ConnectionHost,
    readonly id: number,
    readonly ip: string,
    readonly port: number,
    readonly startedAtMs: number,
  ) {
    const config = host.config();
    this.parser = new NatsParser(this, { maxControlLine: config.maxControlLine, maxPayload: config.maxPayload });
    this.now = startedAtMs;
    this.lastActivityMs = startedAtMs;
    this.lastInMs = startedAtMs;
    this.nextPingAt = startedAtMs + Math.min(config.pingIntervalMs, NATS_DEFAULTS.firstPingMs);
  }

  /** Sends INFO and arms the authentication timeout when authorization is required. */
  start(now: number): void {
    this.now = now;
    this.write(this.host.infoLine(this));
    const auth = this.host.authenticator();
    if (auth?.required === true) {
      this.parser.awaitingConnect = true;
      this.authDeadline = now + (auth.timeoutMs ?? this.host.config().authTimeoutMs);
    }
  }

  get isOpen(): boolean {
    return this.state === ConnState.Open;
  }

  /** Messages and bytes waiting for the socket, ours and its. */
  get pendingBytes(): number {
    return this.out.length + this.socketPending;
  }

  // ------------------------------------------------------------------ driver side

  receive(now: number, chunk: Buffer): void {
    if (this.state !== ConnState.Open) return;
    this.now = now;
    this.lastInMs = now;
    this.lastActivityMs = now;
    const error = this.parser.feed(chunk);
    if (error !== ParseError.none && this.state === ConnState.Open) this.parseFailed(error);
  }

  tick(now: number): void {
    if (this.state !== ConnState.Open) return;
    this.now = now;
    if (now >= this.authDeadline) {
      this.fatal(NatsErr.authTimeout, "Authentication Timeout");
      return;
    }
    if (now >= this.nextPingAt) {
      const config = this.host.config();
      this.nextPingAt = now + config.pingIntervalMs;
      // Recent traffic proves the client alive: no PING needed (as nats-server).
      if (this.rttMs !== undefined && now - this.lastInMs < config.pingIntervalMs) return;
      if (this.pingsOut + 1 > config.pingMax) {
        this.fatal(NatsErr.stale, "Stale Connection");
        return;
      }
      this.pingsOut++;
      this.pingSentAt = now;
      this.write(PING_LINE);
    }
  }

  nextDeadline(): number {
    if (this.state !== ConnState.Open) return Infinity;
    return Math.min(this.authDeadline, this.nextPingAt);
  }

  /** Output waiting, in order (the connection is empty afterwards). */
  takeOutput(): Buffer[] {
    this.flushRequested = false;
    return this.out.take();
  }

  /** The server closes the connection (shutdown, lame duck, revoked authorization). */
  close(reason: CloseReason, errText?: string): void {
    if (this.state !== ConnState.Open) return;
    if (errText !== undefined) this.write(errLine(errText));
    this.shut(reason, true);
  }

  /** The socket ended or failed: forget the subscriptions, nothing to flush. */
  socketClosed(reason: CloseReason): void {
    if (this.state !== ConnState.Open) return;
    this.shut(reason, false);
  }

  /** An async INFO (connect_urls changed, lame duck mode) for clients that asked for them (protocol >= 1). */
  sendInfo(force = false): void {
    if (this.state !== ConnState.Open) return;
    if (!force && this.opts.protocol < 1) return;
    this.write(this.host.infoLine(this));
  }

  // ------------------------------------------------------------------ Consumer (from the broker)

  get echo(): boolean {
    return this.opts.echo;
  }

  deliver(sub: Subscription, msg: Message): boolean {
    if (this.state !== ConnState.Open) return false;
    if (sub.filtered && this.permissions !== undefined && !this.permissions.deliverable(msg.subject)) return false;
    // As nats-server: counted with this message, then checked.
    if (this.out.length + this.socketPending + msg.totalLength > this.host.config().maxPending) {
      this.slowConsumer();
      return false;
    }
    this.writeMsg(sub, msg);
    this.outMsgs++;
    this.outBytes += msg.totalLength;
    if (sub.max > 0 && sub.delivered + 1 >= sub.max) this.subs.delete(sub.sid);
    return true;
  }

  // ------------------------------------------------------------------ NatsOpHandler (from the parser)

  headersEnabled(): boolean {
    return this.opts.headers;
  }

  onConnect(buf: Buffer, start: number, end: number): void {
    const json = buf.toString("utf8", start, end);
    if (this.host.trace) this.host.logger.debug({ cid: this.id, op: "CONNECT" }, "<<- CONNECT");
    const problem = applyConnect(this.opts, json);
    if (problem !== undefined) {
      this.host.logger.debug({ cid: this.id, reason: problem }, "bad CONNECT");
      this.fatal(undefined, "Protocol Violation");
      return;
    }
    const auth = this.host.authenticator();
    if (auth?.required === true) {
      const result = auth.authenticate(this.opts);
      if (!result.ok) {
        this.host.logger.info({ cid: this.id, user: this.opts.user ?? null }, "authorization violation");
        this.fatal(NatsErr.authorization, "Authentication Failure");
        return;
      }
      this.user = result.user;
      this.permissions = result.permissions;
    }
    this.parser.awaitingConnect = false;
    this.authDeadline = Infinity;
    if (this.opts.protocol < 0 || this.opts.protocol > 1) {
      this.fatal(NatsErr.invalidProtocol, "Bad Client Protocol Version");
      return;
    }
    if (this.opts.noResponders && !this.opts.headers) {
      this.fatal(NatsErr.noRespondersRequiresHeaders, "No Responders Requires Headers");
      return;
    }
    this.connectReceived = true;
    if (this.opts.verbose) this.write(OK_LINE);
  }

  onMsg(args: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, data: Buffer, dataStart: number, headerSize: number, totalSize: number): void {
    const subject = this.subjectOf(args, subjectStart, subjectEnd);
    const reply = replyStart === replyEnd ? "" : args.toString("utf8", replyStart, replyEnd);
    if (this.host.trace) this.host.logger.debug({ cid: this.id, op: headerSize < 0 ? "PUB" : "HPUB", subject, reply, size: totalSize }, "<<- PUB");
    // nats-server 2.9.10 reports a pedantic violation and still processes the message.
    if (this.opts.pedantic && checkPublishSubject(subject) !== undefined) this.write(errLine(NatsErr.invalidPublishSubject));
    if (this.permissions !== undefined && !this.permissions.canPublish(subject)) {
      this.write(errLine(NatsErr.pubPermission(subject)));
      return;
    }
    if (this.opts.verbose) this.write(OK_LINE);
    this.inMsgs++;
    this.inBytes += totalSize;
    const msg = this.msg;
    msg.subject = subject;
    msg.reply = reply;
    msg.bytes = data;
    msg.offset = dataStart;
    msg.headerLength = headerSize < 0 ? 0 : headerSize;
    msg.totalLength = totalSize;
    const taken = this.host.broker.publish(this, msg);
    msg.bytes = EMPTY;
    if (taken === 0 && reply !== "" && this.opts.noResponders && this.opts.headers && this.state === ConnState.Open) this.noResponders(reply);
  }

  onSub(args: Buffer, subjectStart: number, subjectEnd: number, queueStart: number, queueEnd: number, sidStart: number, sidEnd: number): void {
    const subject = args.toString("utf8", subjectStart, subjectEnd);
    const queue = queueStart === queueEnd ? undefined : args.toString("utf8", queueStart, queueEnd);
    const sid = args.toString("utf8", sidStart, sidEnd);
    if (this.host.trace) this.host.logger.debug({ cid: this.id, op: "SUB", subject, queue: queue ?? null, sid }, "<<- SUB");
    if (this.permissions !== undefined && !this.permissions.canSubscribe(subject)) {
      this.host.logger.info({ cid: this.id, user: this.user ?? null, subject, queue: queue ?? null }, "subscription violation");
      this.write(errLine(NatsErr.subPermission(subject, queue)));
      return;
    }
    const limit = this.host.config().maxSubscriptions;
    if (limit > 0 && this.subs.size >= limit) {
      this.write(errLine(NatsErr.maxSubscriptions));
      return;
    }
    if (this.subs.has(sid)) {
      // A reused sid is ignored, as nats-server does.
      if (this.opts.verbose) this.write(OK_LINE);
      return;
    }
    if (checkSubject(subject) !== undefined) {
      this.write(errLine(NatsErr.invalidSubject));
      return;
    }
    let sub: Subscription;
    try {
      sub = this.host.broker.subscribe(this, subject, queue, sid);
    } catch (error) {
      const code = (error as { code?: string }).code;
      this.write(errLine(code === "TOO_MANY_SUBSCRIPTIONS" ? NatsErr.maxSubscriptions : NatsErr.invalidSubject));
      return;
    }
    if (this.permissions?.subscriptionNeedsFilter(subject) === true) sub.filtered = true;
    this.subs.set(sid, sub);
    if (this.opts.verbose) this.write(OK_LINE);
  }

  onUnsub(args: Buffer, sidStart: number, sidEnd: number, max: number): void {
    const sid = args.toString("utf8", sidStart, sidEnd);
    if (this.host.trace) this.host.logger.debug({ cid: this.id, op: "UNSUB", sid, max }, "<<- UNSUB");
    const sub = this.subs.get(sid);
    if (sub !== undefined) {
      this.host.broker.autoUnsubscribe(sub, max);
      if (sub.closed) this.subs.delete(sid);
    }
    if (this.opts.verbose) this.write(OK_LINE);
  }

  onPing(): void {
    this.write(PONG_LINE);
  }

  onPong(): void {
    if (this.pingsOut > 0 && this.rttMs === undefined) this.rttMs = this.now - this.pingSentAt;
    this.pingsOut = 0;
  }

  // ------------------------------------------------------------------ internals

  /** Applies new limits or authorization after a reload; closes the client when it is no longer authorized. */
  reauthorize(): void {
    if (this.state !== ConnState.Open || !this.connectReceived) return;
    const auth = this.host.authenticator();
    if (auth === undefined || !auth.required) {
      this.permissions = undefined;
      this.user = undefined;
      return;
    }
    const result = auth.authenticate(this.opts);
    if (!result.ok) {
      this.fatal(NatsErr.authorization, "Authentication Failure");
      return;
    }
    this.user = result.user;
    this.permissions = result.permissions;
    for (const sub of this.subs.values()) sub.filtered = this.permissions?.subscriptionNeedsFilter(sub.subject) === true;
  }

  private subjectOf(args: Buffer, start: number, end: number): string {
    const length = end - start;
    if (length === this.lastSubjectLength) {
      const last = this.lastSubjectBytes;
      let same = true;
      for (let i = 0; i < length; i++) {
        if (args[start + i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastSubject;
    }
    const subject = args.toString("utf8", start, end);
    if (length <= INTERN_MAX_BYTES) {
      args.copy(this.lastSubjectBytes, 0, start, end);
      this.lastSubjectLength = length;
      this.lastSubject = subject;
    }
    return subject;
  }

  private writeMsg(sub: Subscription, msg: Message): void {
    const subject = msg.subject;
    const reply = msg.reply;
    const sid = sub.sidBytes;
    // A client without headers support gets the payload alone, as MSG (as nats-server strips them).
    const strip = !this.opts.headers && msg.headerLength > 0;
    const headerLength = strip ? 0 : msg.headerLength;
    const total = strip ? msg.totalLength - msg.headerLength : msg.totalLength;
    const inline = total < 16 * 1024;
    const out = this.out;
    const buf = out.reserve(6 + 3 * subject.length + sid.length + 3 * reply.length + 26 + (inline ? total + 2 : 0));
    let p = out.position;
    if (headerLength > 0) buf[p++] = 0x48; // H
    buf[p++] = 0x4d; // M
    buf[p++] = 0x53; // S
    buf[p++] = 0x47; // G
    buf[p++] = 0x20;
    p += writeUtf8(buf, subject, p);
    buf[p++] = 0x20;
    for (let i = 0; i < sid.length; i++) buf[p++] = sid[i]!;
    buf[p++] = 0x20;
    if (reply.length > 0) {
      p += writeUtf8(buf, reply, p);
      buf[p++] = 0x20;
    }
    if (headerLength > 0) {
      p = writeUint(buf, p, headerLength);
      buf[p++] = 0x20;
    }
    p = writeUint(buf, p, total);
    buf[p++] = 0x0d;
    buf[p++] = 0x0a;
    const bytes = msg.bytes;
    const offset = strip ? msg.offset + msg.headerLength : msg.offset;
    if (inline) {
      if (total <= 64) for (let i = 0; i < total; i++) buf[p++] = bytes[offset + i]!;
      else {
        buf.set(bytes.subarray(offset, offset + total), p);
        p += total;
      }
      buf[p++] = 0x0d;
      buf[p++] = 0x0a;
      out.advance(p - out.position);
    } else {
      out.advance(p - out.position);
      out.writeBytes(bytes, offset, offset + total);
      out.writeAscii("\r\n");
    }
    this.requestFlush();
  }

  /** NATS's no-responders answer: a 503 status HMSG on the publisher's own subscription matching the reply. */
  private noResponders(reply: string): void {
    for (const sub of this.subs.values()) {
      if (sub.closed || !subjectMatches(sub.subject, reply)) continue;
      this.writeMsg(sub, { subject: reply, reply: "", bytes: NO_RESPONDERS_BLOCK, offset: 0, headerLength: NO_RESPONDERS_BLOCK.length, totalLength: NO_RESPONDERS_BLOCK.length });
      return;
    }
  }

  private parseFailed(error: ParseError): void {
    this.host.logger.debug({ cid: this.id, error, detail: this.parser.detail }, "parser error");
    switch (error) {
      case ParseError.unknownOp:
        this.fatal(NatsErr.unknownOp, "Protocol Violation");
        break;
      case ParseError.maxPayload:
        this.fatal(NatsErr.maxPayload, "Maximum Payload Exceeded");
        break;
      case ParseError.maxControlLine:
        this.fatal(NatsErr.maxControlLine, "Maximum Control Line Exceeded");
        break;
      case ParseError.authorization:
        this.fatal(NatsErr.authorization, "Authentication Failure");
        break;
      case ParseError.badArgs:
      case ParseError.clientErr:
        this.fatal(undefined, "Protocol Violation");
        break;
      default:
        break;
    }
  }

  /** Sends `-ERR 'text'` (when given), flushes, and closes. */
  private fatal(errText: string | undefined, reason: CloseReason): void {
    if (errText !== undefined) this.write(errLine(errText));
    this.shut(reason, true);
  }

  private slowConsumer(): void {
    this.cutSlowConsumer("Slow Consumer (Pending Bytes)");
  }

  /** Cuts a slow consumer: no -ERR, nothing flushed (its socket is backed up), counted. */
  cutSlowConsumer(reason: "Slow Consumer (Pending Bytes)" | "Slow Consumer (Write Deadline)"): void {
    if (this.state !== ConnState.Open) return;
    this.host.broker.reportSlowConsumer();
    this.host.logger.info({ cid: this.id, pending: this.pendingBytes, max: this.host.config().maxPending, reason }, "slow consumer detected");
    this.out.clear();
    this.shut(reason, false);
  }

  private shut(reason: CloseReason, flush: boolean): void {
    this.state = ConnState.Closed;
    this.closeReason = reason;
    this.parser.stop();
    for (const sub of this.subs.values()) this.host.broker.unsubscribe(sub);
    this.subs.clear();
    if (!flush) this.out.clear();
    this.host.closed(this, reason, flush);
  }

  private write(text: string): void {
    this.out.writeUtf8(text);
    this.requestFlush();
  }

  private requestFlush(): void {
    if (this.flushRequested) return;
    this.flushRequested = true;
    this.host.wantsFlush(this);
  }
}

const EMPTY = Buffer.alloc(0);

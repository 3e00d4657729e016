/**
 * The library side of pub/sub: subscriptions as async iterables of `Msg` (with `respond()`),
 * publish, request/reply through one multiplexed inbox subscription, drain. Pure: no timers
 * (the runtime arms request timeouts and calls `cancel`), no clock, no randomness (the caller
 * gives the inbox prefix, which must be unique per client).
 *
 * Each subscription buffers at most `maxPendingMessages` messages and `maxPendingBytes` bytes.
 * When either is reached, new messages for that subscription are dropped and counted (`dropped`),
 * the broker's slow-consumer counter goes up once per episode (an episode ends when the buffer
 * falls below half), and other subscriptions are not affected. This is the same policy as the
 * NATS clients' "slow consumer, messages dropped".
 */
import { SkeinError } from "../../core/errors.js";
import { type Broker, type Consumer, type Message, messageOf, type Subscription } from "./broker.js";
import { isNoRespondersBlock, MsgHeaders } from "./headers.js";
import { validatePublishSubject, validateQueueName, validateSubject } from "./subject.js";

export const SUBSCRIPTION_MAX_PENDING_MESSAGES = 65_536;
export const SUBSCRIPTION_MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** Largest header block + payload one publish may carry (NATS's default max_payload). */
export const CLIENT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Requests waiting for an answer at most, per client. */
export const CLIENT_MAX_PENDING_REQUESTS = 65_536;

export type Payload = Uint8Array | string;

export interface PublishOptions {
  reply?: string;
  headers?: MsgHeaders | Record<string, string | string[]>;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
  /** Unsubscribe by itself after this many messages. */
  max?: number;
}

export interface ClientOptions {
  /** Reply subjects of this client are `${inboxPrefix}.N`; unique per client, e.g. `_INBOX.<random>`. */
  inboxPrefix: string;
  maxPendingMessages?: number;
  maxPendingBytes?: number;
  maxPayloadBytes?: number;
  /** Told once per slow-consumer episode of a subscription. */
  onSlowConsumer?: (subscription: PubSubSubscription) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBytes(data: Payload | undefined, what: string): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  throw new SkeinError("BAD_ARGUMENT", `${what} data must be a Uint8Array (or Buffer) or a string, got ${typeof data}`);
}

/** A received message. `data` is this message's own copy. */
export class Msg {
  private decodedHeaders: MsgHeaders | undefined;
  /** Header block + payload bytes (what the subscription buffer limits count). */
  readonly size: number;

  constructor(
    private readonly client: PubSubClient,
    readonly subject: string,
    /** The reply subject, or "" for none. */
    readonly reply: string,
    private readonly headerBlock: Uint8Array | undefined,
    readonly data: Uint8Array,
  ) {
    this.size = data.byteLength + (headerBlock?.byteLength ?? 0);
  }

  /** Copies what `msg` holds (its bytes are only valid during delivery). */
  static copyOf(client: PubSubClient, msg: Message): Msg {
    const copy = msg.bytes.slice(msg.offset, msg.offset + msg.totalLength);
    const headerBlock = msg.headerLength === 0 ? undefined : copy.subarray(0, msg.headerLength);
    return new Msg(client, msg.subject, msg.reply, headerBlock, copy.subarray(msg.headerLength));
  }

  /** Parsed headers, or undefined when the message has none (or an unreadable block). */
  get headers(): MsgHeaders | undefined {
    if (this.decodedHeaders === undefined && this.headerBlock !== undefined) {
      const parsed = MsgHeaders.decode(this.headerBlock);
      if (parsed.ok) this.decodedHeaders = parsed.value;
    }
    return this.decodedHeaders;
  }

  /** True for NATS's "no responders" status message (header status 503, no payload). */
  get isNoResponders(): boolean {
    return this.headerBlock !== undefined && this.data.byteLength === 0 && isNoRespondersBlock(this.headerBlock);
  }

  string(): string {
    return decoder.decode(this.data);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.string()) as T;
  }

  /** Publishes an answer to the reply subject. Returns false when the message has no reply subject. */
  respond(data?: Payload, options?: { headers?: PublishOptions["headers"] }): boolean {
    if (this.reply === "") return false;
    this.client.publish(this.reply, data, { headers: options?.headers });
    return true;
  }
}

type Waiter = (result: IteratorResult<Msg>) => void;

/** One library subscription: an async iterable of messages with a bounded buffer. */
export class PubSubSubscription implements AsyncIterable<Msg>, Consumer {
  readonly echo = true;
  /** Messages received (delivered into the buffer). */
  received = 0;
  /** Messages dropped because the buffer was full. */
  dropped = 0;
  private readonly queue: (Msg | undefined)[] = [];
  private head = 0;
  private bytes = 0;
  private slow = false;
  private waiter: Waiter | undefined;
  private ended = false;
  private stopping = false;
  private resolveClosed!: () => void;
  private drainWaiters: (() => void)[] = [];
  /** Resolves once the subscription ended and its buffer was consumed (or discarded). */
  readonly closed: Promise<void>;
  /** @internal set by the client right after construction. */
  sub!: Subscription;

  constructor(
    private readonly client: PubSubClient,
    readonly subject: string,
    readonly queueGroup: string | undefined,
    private readonly limits: { messages: number; bytes: number },
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** Messages waiting in the buffer. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** @internal Consumer: called by the broker. */
  deliver(sub: Subscription, message: Message): boolean {
    if (this.stopping) return false;
    // The broker removes the subscription right after the delivery that reaches `max`.
    const last = sub.max > 0 && sub.delivered + 1 >= sub.max;
    const size = message.totalLength;
    if (this.pending >= this.limits.messages || this.bytes + size > this.limits.bytes) {
      this.dropped++;
      this.client.broker.reportDropped(1);
      if (!this.slow) {
        this.slow = true;
        this.client.broker.reportSlowConsumer();
        this.client.noteSlow(this);
      }
      // Taken (so it counts against `max` and is not offered to another queue member): dropped here.
      if (last) this.stop();
      return true;
    }
    this.received++;
    const msg = Msg.copyOf(this.client, message);
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter({ value: msg, done: false });
    } else {
      this.queue.push(msg);
      this.bytes += size;
    }
    if (last) this.stop();
    return true;
  }

  /** Stops delivery now; or, with `max`, after `max` messages in all. Buffered messages are still yielded. */
  unsubscribe(max?: number): void {
    if (max !== undefined && max > 0 && !this.sub.closed) {
      this.client.broker.autoUnsubscribe(this.sub, max);
      if (this.sub.closed) this.stop();
      return;
    }
    this.client.broker.unsubscribe(this.sub);
    this.stop();
  }

  /** Stops delivery and resolves once the buffered messages have been consumed. */
  drain(): Promise<void> {
    this.client.broker.unsubscribe(this.sub);
    this.stop();
    return this.closed;
  }

  /** @internal the broker removed the subscription (max reached) or the client closed. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.client.forget(this);
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.stopping || this.pending > 0 || this.ended) return;
    this.ended = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.({ value: undefined, done: true });
    this.resolveClosed();
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private take(): Msg | undefined {
    if (this.pending === 0) return undefined;
    const msg = this.queue[this.head]!;
    this.queue[this.head] = undefined;
    this.head++;
    this.bytes -= msg.size;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.slow && this.pending * 2 < this.limits.messages && this.bytes * 2 < this.limits.bytes) this.slow = false;
    return msg;
  }

  next(): Promise<IteratorResult<Msg>> {
    const msg = this.take();
    if (msg !== undefined) {
      // Auto-unsubscribe may have ended the subscription while messages were buffered.
      if (this.pending === 0) queueMicrotask(() => this.maybeEnd());
      return Promise.resolve({ value: msg, done: false });
    }
    if (this.ended || this.stopping) {
      this.maybeEnd();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter !== undefined) return Promise.reject(new SkeinError("BAD_STATE", `subscription to ${this.subject} is already being iterated`));
    return new Promise((resolve) => (this.waiter = resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    return {
      next: () => this.next(),
      // `break` out of a for-await loop unsubscribes.
      return: () => {
        this.unsubscribe();
        this.queue.length = 0;
        this.head = 0;
        this.bytes = 0;
        this.maybeEnd();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

interface PendingRequest {
  resolve: (msg: Msg) => void;
  reject: (error: unknown) => void;
}

/** The consumer behind the multiplexed inbox `${prefix}.*`: answers go to their pending request. */
class RequestMux implements Consumer {
  readonly echo = true;
  constructor(private readonly client: PubSubClient) {}
  deliver(_sub: Subscription, message: Message): boolean {
    return this.client.answer(message);
  }
}

export interface PendingRequestHandle {
  promise: Promise<Msg>;
  /** Rejects the request with `error` (the runtime's timeout); no-op once it settled. */
  cancel(error: unknown): void;
}

export class PubSubClient {
  private readonly subs = new Set<PubSubSubscription>();
  private readonly requests = new Map<string, PendingRequest>();
  private mux: Subscription | undefined;
  private nextToken = 1;
  private nextSid = 1;
  private closedState = false;
  private readonly limits: { messages: number; bytes: number };
  private readonly maxPayload: number;

  constructor(
    readonly broker: Broker,
    private readonly options: ClientOptions,
  ) {
    validatePublishSubject(`${options.inboxPrefix}.x`, "inbox prefix");
    this.limits = {
      messages: options.maxPendingMessages ?? SUBSCRIPTION_MAX_PENDING_MESSAGES,
      bytes: options.maxPendingBytes ?? SUBSCRIPTION_MAX_PENDING_BYTES,
    };
    this.maxPayload = options.maxPayloadBytes ?? CLIENT_MAX_PAYLOAD_BYTES;
  }

  get isClosed(): boolean {
    return this.closedState;
  }

  subscribe(subject: string, options: SubscribeOptions = {}): PubSubSubscription {
    this.checkOpen("subscribe");
    validateSubject(subject);
    if (options.queue !== undefined) validateQueueName(options.queue);
    const subscription = new PubSubSubscription(this, subject, options.queue, this.limits);
    subscription.sub = this.broker.subscribe(subscription, subject, options.queue, String(this.nextSid++));
    this.subs.add(subscription);
    if (options.max !== undefined) {
      if (!Number.isSafeInteger(options.max) || options.max < 1) {
        this.broker.unsubscribe(subscription.sub);
        this.subs.delete(subscription);
        throw new SkeinError("BAD_ARGUMENT", `bad max ${String(options.max)}: expected a positive integer`);
      }
      subscription.sub.max = options.max;
    }
    return subscription;
  }

  /**
   * Publishes; returns how many took the message (local subscriptions and remote nodes).
   * Throws BAD_SUBJECT, BAD_HEADER, TOO_LARGE, CLOSED.
   */
  publish(subject: string, data?: Payload, options: PublishOptions = {}): number {
    this.checkOpen("publish");
    validatePublishSubject(subject);
    const reply = options.reply ?? "";
    if (reply !== "") validatePublishSubject(reply, "reply subject");
    const payload = toBytes(data, "publish");
    const headerBlock = options.headers === undefined ? undefined : MsgHeaders.from(options.headers).encode();
    const size = payload.byteLength + (headerBlock?.byteLength ?? 0);
    if (size > this.maxPayload) {
      throw new SkeinError("TOO_LARGE", `message to ${subject} is ${size} bytes with headers; the limit is ${this.maxPayload} (maxPayloadBytes)`);
    }
    return this.broker.publish(undefined, messageOf(subject, reply, headerBlock, payload));
  }

  /**
   * Sends a request and waits for the first answer. Rejects at once with NO_RESPONDERS when
   * nobody is subscribed; the caller arms the timeout and calls `cancel`.
   */
  request(subject: string, data?: Payload, options: { headers?: PublishOptions["headers"] } = {}): PendingRequestHandle {
    this.checkOpen("request");
    if (this.requests.size >= CLIENT_MAX_PENDING_REQUESTS) {
      throw new SkeinError("TOO_MANY_REQUESTS", `${CLIENT_MAX_PENDING_REQUESTS} requests are waiting for answers already; wait for some first`);
    }
    const prefix = this.options.inboxPrefix;
    this.mux ??= this.broker.subscribe(new RequestMux(this), `${prefix}.*`, undefined, "_mux");
    const token = (this.nextToken++).toString(36);
    let settle!: PendingRequest;
    const promise = new Promise<Msg>((resolve, reject) => (settle = { resolve, reject }));
    this.requests.set(token, settle);
    const cancel = (error: unknown): void => {
      const pending = this.requests.get(token);
      if (pending === undefined) return;
      this.requests.delete(token);
      pending.reject(error);
    };
    let taken: number;
    try {
      taken = this.publish(subject, data, { reply: `${prefix}.${token}`, headers: options.headers });
    } catch (error) {
      this.requests.delete(token);
      throw error;
    }
    if (taken === 0) cancel(noResponders(subject));
    return { promise, cancel };
  }

  /** @internal an answer arrived on the inbox. */
  answer(message: Message): boolean {
    const token = message.subject.slice(this.options.inboxPrefix.length + 1);
    const pending = this.requests.get(token);
    if (pending === undefined) return false;
    this.requests.delete(token);
    const msg = Msg.copyOf(this, message);
    if (msg.isNoResponders) pending.reject(noResponders(message.subject));
    else pending.resolve(msg);
    return true;
  }

  /** @internal */
  noteSlow(subscription: PubSubSubscription): void {
    this.options.onSlowConsumer?.(subscription);
  }

  /** @internal a subscription stopped. */
  forget(subscription: PubSubSubscription): void {
    this.subs.delete(subscription);
  }

  /** The live subscriptions. */
  subscriptions(): PubSubSubscription[] {
    return [...this.subs];
  }

  /** Stops every subscription, lets their buffers be consumed, then closes the client. */
  async drain(): Promise<void> {
    const all = [...this.subs];
    await Promise.all(all.map((subscription) => subscription.drain()));
    this.close();
  }

  /** Ends everything now: subscriptions end after their buffered messages, requests reject with CLOSED. */
  close(): void {
    if (this.closedState) return;
    this.closedState = true;
    for (const subscription of [...this.subs]) subscription.unsubscribe();
    if (this.mux !== undefined) this.broker.unsubscribe(this.mux);
    const error = new SkeinError("CLOSED", "the node closed while the request was waiting for an answer");
    for (const pending of this.requests.values()) pending.reject(error);
    this.requests.clear();
  }

  private checkOpen(what: string): void {
    if (this.closedState) throw new SkeinError("CLOSED", `cannot ${what}: the node's pub/sub client is closed`);
  }
}

function noResponders(subject: string): SkeinError {
  return new SkeinError("NO_RESPONDERS", `no responders for request on ${JSON.stringify(subject)}: nobody is subscribed to it`);
}

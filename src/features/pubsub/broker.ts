/**
 * The in-node broker: every local subscription (NATS client connections and library handles
 * alike) in one subject trie, and the one place where a published message is matched and handed
 * out. Pure: no I/O, no clock, randomness through the `Rng` it is given.
 *
 * Delivery is synchronous: `publish()` calls each matching consumer's `deliver()` before it
 * returns, so a publisher's messages reach every subscriber in the order they were published.
 * Consumers never block the broker: each one buffers (bounded) and applies its own slow-consumer
 * policy (README.md, "Slow consumers").
 *
 * The overlay plugs in through three things (README.md, "Overlay integration"):
 *   - an `InterestSink` told whenever local interest in a (subject, queue) changes,
 *   - `applyRemoteInterest()` / `removeRemoteNode()` to mirror other nodes' interest into the trie,
 *   - a `RemoteDelivery` that carries a message to the remote nodes that want it, and
 *     `deliverFromRemote()` for messages arriving from them.
 */
import { SkeinError } from "../../core/errors.js";
import type { NodeId } from "../../core/node-id.js";
import type { Rng } from "../../core/rng.js";
import { checkQueueName, checkSubject } from "./subject.js";
import { type MatchResult, MATCH_CACHE_MAX_ENTRIES, type QueueGroupMatch, SubjectTrie, type TrieStats } from "./trie.js";

/** Local subscriptions one broker holds at most (all consumers together). */
export const BROKER_MAX_SUBSCRIPTIONS = 1_000_000;
/** Remote interest entries (distinct node × subject × queue) one broker mirrors at most. */
export const BROKER_MAX_REMOTE_INTEREST = 1_000_000;

/**
 * One message. The bytes are laid out as NATS's HPUB payload: the header block (if any) followed
 * by the payload, contiguous: `bytes[offset, offset + headerLength)` is the header block
 * (`NATS/1.0…\r\n\r\n`), `bytes[offset + headerLength, offset + totalLength)` the payload.
 *
 * A message handed to `deliver()` or `RemoteDelivery.deliver()` is only valid during that call:
 * the NATS port reuses one Message object and its read buffers. Copy what you keep.
 */
export interface Message {
  subject: string;
  /** The reply subject, or "" for none. */
  reply: string;
  bytes: Uint8Array;
  offset: number;
  headerLength: number;
  totalLength: number;
}

export function messageOf(subject: string, reply: string, headerBlock: Uint8Array | undefined, payload: Uint8Array): Message {
  if (headerBlock === undefined || headerBlock.byteLength === 0) {
    return { subject, reply, bytes: payload, offset: 0, headerLength: 0, totalLength: payload.byteLength };
  }
  const bytes = new Uint8Array(headerBlock.byteLength + payload.byteLength);
  bytes.set(headerBlock, 0);
  bytes.set(payload, headerBlock.byteLength);
  return { subject, reply, bytes, offset: 0, headerLength: headerBlock.byteLength, totalLength: bytes.byteLength };
}

export function payloadView(msg: Message): Uint8Array {
  return msg.bytes.subarray(msg.offset + msg.headerLength, msg.offset + msg.totalLength);
}

export function headerView(msg: Message): Uint8Array | undefined {
  return msg.headerLength === 0 ? undefined : msg.bytes.subarray(msg.offset, msg.offset + msg.headerLength);
}

/** Whoever owns subscriptions: a NATS client connection, a library client. */
export interface Consumer {
  /** False: messages this consumer publishes are not delivered to its own subscriptions (NATS `echo: false`). */
  readonly echo: boolean;
  /**
   * Takes one message for `sub`. Returns false when the consumer refuses it (a permission filter),
   * which does not count as a delivery. Never throws, never blocks: a consumer that cannot keep
   * up applies its own bounded-buffer policy. Copy `msg` bytes before returning if you keep them.
   */
  deliver(sub: Subscription, msg: Message): boolean;
}

export class Subscription {
  readonly kind = "local" as const;
  /** Messages delivered so far. */
  delivered = 0;
  /** Auto-unsubscribe after this many deliveries in all; 0 = no limit. */
  max = 0;
  closed = false;
  /** The consumer sets this when some messages must be checked one by one (a deny filter). */
  filtered = false;
  /** `sid` as UTF-8 bytes, encoded once (NATS MSG lines carry it). */
  readonly sidBytes: Uint8Array;

  constructor(
    /** Unique within the broker. */
    readonly id: number,
    readonly consumer: Consumer,
    readonly subject: string,
    readonly queue: string | undefined,
    /** The consumer's own name for it (the NATS sid). */
    readonly sid: string,
  ) {
    this.sidBytes = new TextEncoder().encode(sid);
  }
}

/** Another node's interest, mirrored from the overlay. `weight` is its member count (queue groups). */
export class RemoteInterest {
  readonly kind = "remote" as const;
  constructor(
    readonly node: NodeId,
    readonly subject: string,
    readonly queue: string | undefined,
    public weight: number,
  ) {}
}

export type Entry = Subscription | RemoteInterest;

/** Local interest changed: the overlay announces it to other nodes. */
export interface InterestSink {
  /**
   * The number of local subscriptions on (`subject`, `queue`) is now `count`; 0 means the last one
   * left. Called synchronously and in order, once per change; the overlay coalesces and batches.
   */
  interestChanged(subject: string, queue: string | undefined, count: number): void;
}

export interface RemoteTarget {
  node: NodeId;
  /** Queue groups this node was chosen for: it delivers the message to one local member of each. */
  queues: string[];
}

/** Carries a message to other nodes (the overlay: one copy per link, split per next hop). */
export interface RemoteDelivery {
  /** Each target appears once. Copy the message bytes before returning (they are reused). */
  deliver(targets: readonly RemoteTarget[], msg: Message): void;
}

/** Chooses which member of a queue group gets one message. */
export interface QueuePicker {
  /**
   * Offers the message to members of `group` in order of preference until `offer` returns true
   * (a member may refuse: echo off, a permission filter). Returns whether one took it.
   */
  pick(group: QueueGroupMatch<Entry>, offer: (member: Entry) => boolean): boolean;
}

/**
 * Local members first, from a random start (as nats-server does), then remote members: the
 * nearest first when `distance` (e.g. the route metric to the node) is given, otherwise one drawn
 * with probability proportional to its member count, then the others in turn.
 */
export class NearestQueuePicker implements QueuePicker {
  constructor(
    private readonly rng: Rng,
    private readonly distance?: (node: NodeId) => number,
  ) {}

  pick(group: QueueGroupMatch<Entry>, offer: (member: Entry) => boolean): boolean {
    const members = group.members;
    const n = members.length;
    if (n === 0) return false;
    const start = n === 1 ? 0 : this.rng.nextInt(n);
    let remotes = 0;
    for (let k = 0; k < n; k++) {
      const member = members[(start + k) % n]!;
      if (member.kind === "local") {
        if (offer(member)) return true;
      } else remotes++;
    }
    if (remotes === 0) return false;
    const remote = members.filter((member): member is RemoteInterest => member.kind === "remote");
    if (this.distance !== undefined) {
      const distance = this.distance;
      remote.sort((a, b) => distance(a.node) - distance(b.node));
      for (const member of remote) if (offer(member)) return true;
      return false;
    }
    let total = 0;
    for (const member of remote) total += Math.max(1, member.weight);
    let draw = this.rng.nextInt(total);
    let first = 0;
    for (; first < remote.length - 1; first++) {
      draw -= Math.max(1, remote[first]!.weight);
      if (draw < 0) break;
    }
    for (let k = 0; k < remote.length; k++) if (offer(remote[(first + k) % remote.length]!)) return true;
    return false;
  }
}

export interface BrokerOptions {
  rng: Rng;
  queuePicker?: QueuePicker;
  interestSink?: InterestSink;
  remoteDelivery?: RemoteDelivery;
  maxSubscriptions?: number;
  maxRemoteInterest?: number;
  matchCacheEntries?: number;
}

export interface BrokerStats {
  subscriptions: number;
  remoteInterest: number;
  /** Messages and payload+header bytes published into the broker (local and from remote nodes). */
  inMsgs: number;
  inBytes: number;
  /** Local deliveries and their bytes. */
  outMsgs: number;
  outBytes: number;
  /** Publishes that matched nobody anywhere. */
  noInterest: number;
  /** Messages handed to RemoteDelivery, and target nodes in all. */
  remoteMsgs: number;
  remoteTargets: number;
  /** Messages that arrived from other nodes. */
  remoteIn: number;
  /** A queue group chosen by a remote node had no local member left to take the message. */
  queueMisses: number;
  /** Consumers disconnected or marked slow by their bounded-buffer policy. */
  slowConsumers: number;
  /** Messages consumers dropped (buffer full) and remote interest refused (table full). */
  dropped: number;
  trie: TrieStats;
}

export class Broker {
  private readonly trie: SubjectTrie<Entry>;
  private readonly picker: QueuePicker;
  private interestSink: InterestSink | undefined;
  private remoteDelivery: RemoteDelivery | undefined;
  private readonly maxSubscriptions: number;
  private readonly maxRemoteInterest: number;
  private nextId = 1;
  private subscriptionCount = 0;
  private remoteCount = 0;
  /** Local subscription counts per (subject, queue) key. */
  private readonly interest = new Map<string, number>();
  /** Remote interest per node, by (subject, queue) key. */
  private readonly remote = new Map<NodeId, Map<string, RemoteInterest>>();
  private readonly counters = {
    inMsgs: 0,
    inBytes: 0,
    outMsgs: 0,
    outBytes: 0,
    noInterest: 0,
    remoteMsgs: 0,
    remoteTargets: 0,
    remoteIn: 0,
    queueMisses: 0,
    slowConsumers: 0,
    dropped: 0,
  };

  // State of the publish in progress, read by `offerMember` (created once, not per message).
  // Saved and restored around each dispatch, so a consumer that publishes from deliver() is safe.
  private current: Message | undefined;
  private currentFrom: Consumer | undefined;
  private currentTargets: RemoteTarget[] | undefined;
  private currentQueue = "";
  private currentLocalOnly = false;
  private currentTaken = 0;
  private depth = 0;
  private readonly offerMember = (member: Entry): boolean => {
    if (member.kind === "local") {
      if (!this.deliverTo(member, this.current!, this.currentFrom)) return false;
      this.currentTaken++;
      return true;
    }
    if (this.currentLocalOnly) return false;
    this.addTarget(member.node).queues.push(this.currentQueue);
    return true;
  };

  constructor(options: BrokerOptions) {
    this.trie = new SubjectTrie<Entry>(options.matchCacheEntries ?? MATCH_CACHE_MAX_ENTRIES);
    this.picker = options.queuePicker ?? new NearestQueuePicker(options.rng);
    this.interestSink = options.interestSink;
    this.remoteDelivery = options.remoteDelivery;
    this.maxSubscriptions = options.maxSubscriptions ?? BROKER_MAX_SUBSCRIPTIONS;
    this.maxRemoteInterest = options.maxRemoteInterest ?? BROKER_MAX_REMOTE_INTEREST;
  }

  /** Plugs the overlay in (or out, with undefined). */
  setInterestSink(sink: InterestSink | undefined): void {
    this.interestSink = sink;
  }

  setRemoteDelivery(remote: RemoteDelivery | undefined): void {
    this.remoteDelivery = remote;
  }

  /**
   * Adds a subscription. Throws SkeinError BAD_SUBJECT (invalid subject or queue name) or
   * TOO_MANY_SUBSCRIPTIONS.
   */
  subscribe(consumer: Consumer, subject: string, queue: string | undefined, sid: string): Subscription {
    const reason = checkSubject(subject);
    if (reason !== undefined) throw new SkeinError("BAD_SUBJECT", `bad subject ${JSON.stringify(subject)}: ${reason}`);
    if (queue !== undefined) {
      const queueReason = checkQueueName(queue);
      if (queueReason !== undefined) throw new SkeinError("BAD_SUBJECT", `bad queue group ${JSON.stringify(queue)}: ${queueReason}`);
    }
    if (this.subscriptionCount >= this.maxSubscriptions) {
      throw new SkeinError("TOO_MANY_SUBSCRIPTIONS", `this node holds ${this.maxSubscriptions} subscriptions already; unsubscribe some first`);
    }
    const sub = new Subscription(this.nextId++, consumer, subject, queue, sid);
    this.trie.insert(subject, queue, sub);
    this.subscriptionCount++;
    const key = interestKey(subject, queue);
    const count = (this.interest.get(key) ?? 0) + 1;
    this.interest.set(key, count);
    this.interestSink?.interestChanged(subject, queue, count);
    return sub;
  }

  unsubscribe(sub: Subscription): void {
    if (sub.closed) return;
    sub.closed = true;
    this.trie.remove(sub.subject, sub.queue, sub);
    this.subscriptionCount--;
    const key = interestKey(sub.subject, sub.queue);
    const count = (this.interest.get(key) ?? 1) - 1;
    if (count <= 0) this.interest.delete(key);
    else this.interest.set(key, count);
    this.interestSink?.interestChanged(sub.subject, sub.queue, Math.max(0, count));
  }

  /** NATS `UNSUB sid max`: remove after `max` deliveries in all (at once when already reached or max <= 0). */
  autoUnsubscribe(sub: Subscription, max: number): void {
    if (sub.closed) return;
    if (!(max > 0) || sub.delivered >= max) this.unsubscribe(sub);
    else sub.max = max;
  }

  /**
   * Publishes `msg` from `from` (undefined: from no local consumer). Returns how many took it:
   * local subscriptions plus remote nodes. 0 means no interest anywhere ("no responders").
   */
  publish(from: Consumer | undefined, msg: Message): number {
    this.counters.inMsgs++;
    this.counters.inBytes += msg.totalLength;
    const result = this.trie.match(msg.subject);
    const taken = result.plain.length === 0 && result.queues.length === 0 ? 0 : this.dispatch(result, msg, from, undefined);
    if (taken === 0) this.counters.noInterest++;
    return taken;
  }

  /**
   * A message another node sent here: every local plain subscriber, plus one local member of each
   * queue group in `queues` (the sender chose this node for those). Never forwards to other nodes.
   */
  deliverFromRemote(msg: Message, queues: readonly string[]): number {
    this.counters.remoteIn++;
    this.counters.inMsgs++;
    this.counters.inBytes += msg.totalLength;
    const result = this.trie.match(msg.subject);
    return this.dispatch(result, msg, undefined, queues);
  }

  /**
   * Mirrors another node's interest: `count` subscriptions on (subject, queue) there; 0 withdraws it.
   * Returns false (and counts a drop) when the subject is invalid or the table is full.
   */
  applyRemoteInterest(node: NodeId, subject: string, queue: string | undefined, count: number): boolean {
    if (checkSubject(subject) !== undefined || (queue !== undefined && checkQueueName(queue) !== undefined)) {
      this.counters.dropped++;
      return false;
    }
    const key = interestKey(subject, queue);
    let byKey = this.remote.get(node);
    const existing = byKey?.get(key);
    if (count <= 0) {
      if (existing === undefined) return true;
      byKey!.delete(key);
      if (byKey!.size === 0) this.remote.delete(node);
      this.trie.remove(subject, queue, existing);
      this.remoteCount--;
      return true;
    }
    if (existing !== undefined) {
      existing.weight = count;
      return true;
    }
    if (this.remoteCount >= this.maxRemoteInterest) {
      this.counters.dropped++;
      return false;
    }
    if (byKey === undefined) this.remote.set(node, (byKey = new Map()));
    const entry = new RemoteInterest(node, subject, queue, count);
    byKey.set(key, entry);
    this.trie.insert(subject, queue, entry);
    this.remoteCount++;
    return true;
  }

  /** Forgets everything a node was interested in (it left or died). */
  removeRemoteNode(node: NodeId): void {
    const byKey = this.remote.get(node);
    if (byKey === undefined) return;
    this.remote.delete(node);
    for (const entry of byKey.values()) {
      this.trie.remove(entry.subject, entry.queue, entry);
      this.remoteCount--;
    }
  }

  /** Current local interest, for a full (re)announcement: one item per (subject, queue) with its count. */
  localInterest(): { subject: string; queue: string | undefined; count: number }[] {
    const out: { subject: string; queue: string | undefined; count: number }[] = [];
    for (const [key, count] of this.interest) {
      const newline = key.indexOf("\n");
      out.push(newline < 0 ? { subject: key, queue: undefined, count } : { subject: key.slice(0, newline), queue: key.slice(newline + 1), count });
    }
    return out;
  }

  /** Every local subscription (for monitoring). */
  *subscriptions(): Generator<Subscription> {
    for (const { entry } of this.trie.entriesWithSubjects()) if (entry.kind === "local") yield entry;
  }

  /** What `subject` matches right now (tests, monitoring). */
  match(subject: string): MatchResult<Entry> {
    return this.trie.match(subject);
  }

  /** Consumers report their bounded-buffer outcomes here so that they show in one place. */
  reportSlowConsumer(): void {
    this.counters.slowConsumers++;
  }

  reportDropped(messages: number): void {
    this.counters.dropped += messages;
  }

  stats(): BrokerStats {
    return { subscriptions: this.subscriptionCount, remoteInterest: this.remoteCount, ...this.counters, trie: this.trie.stats() };
  }

  /**
   * Hands `msg` to the matching entries. `remoteQueues` undefined: a local publish (remote interest
   * becomes targets, every queue group gets one member anywhere); otherwise a message from another
   * node (local entries only, and only the queue groups listed).
   */
  private dispatch(result: MatchResult<Entry>, msg: Message, from: Consumer | undefined, remoteQueues: readonly string[] | undefined): number {
    // Only a nested dispatch (a consumer publishing from deliver()) pays for saving the state.
    const saved = this.depth++ === 0 ? undefined : ([this.current, this.currentFrom, this.currentTargets, this.currentQueue, this.currentLocalOnly, this.currentTaken] as const);
    const localOnly = remoteQueues !== undefined;
    this.current = msg;
    this.currentFrom = from;
    this.currentTargets = undefined;
    this.currentLocalOnly = localOnly;
    this.currentTaken = 0;
    try {
      for (const entry of result.plain) {
        if (entry.kind === "local") {
          if (this.deliverTo(entry, msg, from)) this.currentTaken++;
        } else if (!localOnly) this.addTarget(entry.node);
      }
      if (remoteQueues === undefined) {
        for (const group of result.queues) {
          this.currentQueue = group.name;
          this.picker.pick(group, this.offerMember);
        }
      } else {
        for (const name of remoteQueues) {
          const group = result.queues.find((candidate) => candidate.name === name);
          this.currentQueue = name;
          if (group === undefined || !this.picker.pick(group, this.offerMember)) this.counters.queueMisses++;
        }
      }
      let taken = this.currentTaken;
      const targets = this.currentTargets as RemoteTarget[] | undefined;
      if (targets !== undefined && targets.length > 0) {
        taken += targets.length;
        this.counters.remoteMsgs++;
        this.counters.remoteTargets += targets.length;
        this.remoteDelivery?.deliver(targets, msg);
      }
      return taken;
    } finally {
      this.depth--;
      if (saved !== undefined) [this.current, this.currentFrom, this.currentTargets, this.currentQueue, this.currentLocalOnly, this.currentTaken] = saved;
      else {
        this.current = undefined;
        this.currentFrom = undefined;
        this.currentTargets = undefined;
      }
    }
  }

  private addTarget(node: NodeId): RemoteTarget {
    const targets = (this.currentTargets ??= []);
    for (const target of targets) if (target.node === node) return target;
    const target: RemoteTarget = { node, queues: [] };
    targets.push(target);
    return target;
  }

  private deliverTo(sub: Subscription, msg: Message, from: Consumer | undefined): boolean {
    if (sub.closed) return false;
    const consumer = sub.consumer;
    if (consumer === from && !consumer.echo) return false;
    if (!consumer.deliver(sub, msg)) return false;
    this.counters.outMsgs++;
    this.counters.outBytes += msg.totalLength;
    sub.delivered++;
    if (sub.max > 0 && sub.delivered >= sub.max) this.unsubscribe(sub);
    return true;
  }
}

function interestKey(subject: string, queue: string | undefined): string {
  return queue === undefined ? subject : `${subject}\n${queue}`;
}

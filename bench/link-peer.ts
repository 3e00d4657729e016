/**
 * One side of a `link` benchmark measurement, run as its own process by link.ts:
 *
 *   node dist/bench/link-peer.js '{"mode":"skein_tcp","role":"server"}'
 *
 * It speaks to the orchestrator over the IPC channel it was started with (link-protocol.ts): a server announces
 * its address with a `ready` message, then both sides answer commands. Every payload's first
 * byte says what it is for: KIND_SINK (count it) or KIND_ECHO (the server sends it straight back,
 * the client takes it as the answer to its ping).
 *
 * Four stacks, same workloads:
 *  - raw_net: a 4-byte big-endian length + payload on one node:net socket (the bar to beat);
 *  - sealed_net: raw_net with every record sealed by node:crypto's ChaCha20-Poly1305 (counter
 *    nonce, header as associated data, a fixed key and no handshake): the least work any encrypted
 *    link in Node does per byte, so the ceiling an encrypted skein link is measured against;
 *  - raw_dgram: one payload per node:dgram datagram, no reliability (UDP baseline, loses data);
 *  - skein_tcp / skein_udp: two skein nodes, `send(…, { reliable: true })` and `messages()`.
 *
 * skein is imported lazily so that the raw baselines' memory figures do not include it. The
 * process exits by itself once the orchestrator disconnects.
 */
import dgram from "node:dgram";
import net from "node:net";
import { createCipheriv, createDecipheriv, createSecretKey } from "node:crypto";
import { once } from "node:events";
import type { SkeinNode } from "../src/index.js";
import { primeAllocator } from "../src/runtime/allocator.js";
import {
  type EchoResult,
  KIND_ECHO,
  type MeasureResult,
  type MemoryResult,
  type PeerCommand,
  type PeerSpec,
  type ReceivedResult,
  type ReplyMessage,
  type RequestMessage,
  type StreamResult,
} from "./link-protocol.js";

/** Datagrams handed to a raw dgram socket whose send callback has not run yet, at most. */
const DGRAM_MAX_OUTSTANDING = 64;
/** Kernel buffers for raw dgram sockets: the same as skein's UdpTransport asks for. */
const DGRAM_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Raw sockets' writable high-water mark: the sender writes until write() returns false, then
 * waits for 'drain'. Node's default (16 KiB) allows one 64 KiB record per event-loop turn;
 * 1 MiB lets records queue up and leave in one writev, as skein's send() does up to 4 MiB.
 */
const RAW_NET_HIGH_WATER_BYTES = 1024 * 1024;
/** A sender yields to the event loop once per this many bytes (see Peer.stream). */
const YIELD_BYTES = 256 * 1024;
/** How long the process may take to exit once the orchestrator let go of it. */
const EXIT_GRACE_MS = 5_000;

type Deliver = (data: Uint8Array) => void;

/** What the workloads need from a stack. */
interface Endpoint {
  /** Whatever `sendPrepared` wants for `data` (raw_net: the framed bytes, built once). */
  prepare(data: Uint8Array): Uint8Array;
  /** Sends to the peer; a promise when the caller must wait (congestion, or the API says so). */
  sendPrepared(prepared: Uint8Array): Promise<void> | undefined;
  /** Sends `data` back to whoever sent the last message (server echo). */
  reply(data: Uint8Array): void;
  /** Resolves once everything sent has left the process (raw_dgram: no send callback outstanding). */
  flushed(): Promise<void>;
  diagnostics(): unknown;
  close(): Promise<void>;
}

// ─── raw node:net ─────────────────────────────────────────────────────────────────────────────

/** Cuts a stream of (u32 length, payload) records into payloads; copies only records that straddle chunks. */
class LengthPrefixReader {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Size of the straddling record, header included; -1 while its header is incomplete. */
  private need = -1;

  constructor(private readonly deliver: Deliver) {}

  push(input: Buffer): void {
    let chunk = input;
    let offset = 0;
    if (this.partBytes > 0) {
      if (this.need < 0) {
        chunk = Buffer.concat([...this.parts, chunk]);
        this.parts = [];
        this.partBytes = 0;
      } else {
        const missing = this.need - this.partBytes;
        if (chunk.length < missing) {
          this.parts.push(chunk);
          this.partBytes += chunk.length;
          return;
        }
        this.parts.push(chunk.subarray(0, missing));
        const record = Buffer.concat(this.parts, this.need);
        this.parts = [];
        this.partBytes = 0;
        this.deliver(record.subarray(4));
        offset = missing;
      }
    }
    const length = chunk.length;
    while (length - offset >= 4) {
      const end = offset + 4 + chunk.readUInt32BE(offset);
      if (end > length) break;
      this.deliver(chunk.subarray(offset + 4, end));
      offset = end;
    }
    if (offset < length) {
      const rest = chunk.subarray(offset);
      this.parts = [rest];
      this.partBytes = rest.length;
      this.need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : -1;
    }
  }
}

/**
 * sealed_net's records: u32 length | 12-byte nonce (u32 0, u64 counter) | ciphertext | 16-byte
 * tag, the length and nonce authenticated as associated data. The same AEAD calls a skein record
 * makes (session.ts), without an engine around them. Both sides use one fixed key: this baseline
 * measures the per-byte cost of sealing, not a handshake.
 */
class RecordSealer {
  private static readonly key = createSecretKey(Buffer.alloc(32, 0x5e));
  private sendCounter = 0;
  private receiveCounter = 0;

  /** The pieces of one record, for one corked write. */
  seal(data: Uint8Array): Buffer[] {
    const header = Buffer.allocUnsafe(16);
    header.writeUInt32BE(12 + data.byteLength + 16, 0);
    header.writeUInt32BE(0, 4);
    header.writeUInt32BE(Math.floor(this.sendCounter / 0x1_0000_0000), 8);
    header.writeUInt32BE(this.sendCounter >>> 0, 12);
    this.sendCounter += 1;
    const cipher = createCipheriv("chacha20-poly1305", RecordSealer.key, header.subarray(4), { authTagLength: 16 });
    cipher.setAAD(header, { plaintextLength: data.byteLength });
    const ciphertext = cipher.update(data);
    cipher.final();
    return [header, ciphertext, cipher.getAuthTag()];
  }

  /** The plaintext of one record's body (what follows its u32 length). Throws on a bad record. */
  open(body: Uint8Array): Uint8Array {
    const length = body.byteLength - 28;
    if (length < 0) throw new Error(`sealed record of ${body.byteLength} bytes is too short`);
    const nonce = body.subarray(0, 12);
    const u32 = (at: number): number => ((nonce[at]! << 24) | (nonce[at + 1]! << 16) | (nonce[at + 2]! << 8) | nonce[at + 3]!) >>> 0;
    const counter = u32(4) * 0x1_0000_0000 + u32(8);
    if (counter !== this.receiveCounter) throw new Error(`sealed record ${counter} where ${this.receiveCounter} was next`);
    this.receiveCounter += 1;
    const aad = Buffer.allocUnsafe(16);
    aad.writeUInt32BE(body.byteLength, 0);
    aad.set(nonce, 4);
    const decipher = createDecipheriv("chacha20-poly1305", RecordSealer.key, nonce, { authTagLength: 16 });
    decipher.setAAD(aad, { plaintextLength: length });
    decipher.setAuthTag(body.subarray(12 + length));
    const plaintext = decipher.update(body.subarray(12, 12 + length));
    decipher.final();
    return plaintext;
  }
}

class RawNetEndpoint implements Endpoint {
  private drainWaiter: Promise<void> | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly server: net.Server | undefined,
    /** sealed_net: seals every record (and `attach` opened every received one). */
    private readonly sealer: RecordSealer | undefined,
  ) {}

  private static attach(socket: net.Socket, deliver: Deliver, sealer: RecordSealer | undefined): void {
    socket.setNoDelay(true);
    const reader = new LengthPrefixReader(sealer === undefined ? deliver : (body) => deliver(sealer.open(body)));
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", () => {});
  }

  static async listen(deliver: Deliver, connected: (endpoint: RawNetEndpoint) => void, sealed = false): Promise<{ server: net.Server; address: string }> {
    let taken = false;
    const server = net.createServer({ noDelay: true, highWaterMark: RAW_NET_HIGH_WATER_BYTES }, (socket) => {
      if (taken) {
        // Further connections are the accept workload's: each echoes what it gets, then ends.
        socket.setNoDelay(true);
        socket.on("error", () => {});
        const reader = new LengthPrefixReader((data) => {
          const frame = Buffer.allocUnsafe(4 + data.byteLength);
          frame.writeUInt32BE(data.byteLength, 0);
          frame.set(data, 4);
          socket.write(frame);
        });
        socket.on("data", (chunk: Buffer) => reader.push(chunk));
        return;
      }
      taken = true;
      const sealer = sealed ? new RecordSealer() : undefined;
      RawNetEndpoint.attach(socket, deliver, sealer);
      connected(new RawNetEndpoint(socket, server, sealer));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    return { server, address: `127.0.0.1:${port}` };
  }

  static async connect(address: string, deliver: Deliver, sealed = false): Promise<RawNetEndpoint> {
    const [host, port] = splitHostPort(address);
    const socket = net.connect({ host, port, noDelay: true, highWaterMark: RAW_NET_HIGH_WATER_BYTES } as net.NetConnectOpts);
    const sealer = sealed ? new RecordSealer() : undefined;
    RawNetEndpoint.attach(socket, deliver, sealer);
    await once(socket, "connect");
    return new RawNetEndpoint(socket, undefined, sealer);
  }

  /** raw_net: the framed bytes, built once. sealed_net: the payload (every send seals it anew). */
  prepare(data: Uint8Array): Uint8Array {
    if (this.sealer !== undefined) return data;
    const frame = Buffer.allocUnsafe(4 + data.byteLength);
    frame.writeUInt32BE(data.byteLength, 0);
    frame.set(data, 4);
    return frame;
  }

  private drained(): Promise<void> {
    this.drainWaiter ??= once(this.socket, "drain").then(() => {
      this.drainWaiter = undefined;
    });
    return this.drainWaiter;
  }

  sendPrepared(prepared: Uint8Array): Promise<void> | undefined {
    if (this.sealer === undefined) return this.socket.write(prepared) ? undefined : this.drained();
    // One corked write of the record's pieces: they leave in one writev, as skein's do.
    const [header, ciphertext, tag] = this.sealer.seal(prepared);
    this.socket.cork();
    this.socket.write(header!);
    this.socket.write(ciphertext!);
    const room = this.socket.write(tag!);
    this.socket.uncork();
    return room ? undefined : this.drained();
  }

  reply(data: Uint8Array): void {
    if (this.sealer !== undefined) void this.sendPrepared(data);
    else this.socket.write(this.prepare(data));
  }

  async flushed(): Promise<void> {}

  diagnostics(): unknown {
    return { bytesWritten: this.socket.bytesWritten, bytesRead: this.socket.bytesRead };
  }

  async close(): Promise<void> {
    const closed = this.socket.destroyed ? Promise.resolve() : once(this.socket, "close").then(() => undefined);
    this.socket.end();
    await withTimeout(closed, 2_000).catch(() => this.socket.destroy());
    if (this.server !== undefined) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

// ─── raw node:dgram ───────────────────────────────────────────────────────────────────────────

class RawDgramEndpoint implements Endpoint {
  private outstanding = 0;
  private wake: (() => void) | undefined;
  private peerPort = 0;
  private peerHost = "";
  sendErrors = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly connected: boolean,
  ) {}

  private static async bind(deliver: Deliver, onSender?: (endpoint: RawDgramEndpoint, rinfo: dgram.RemoteInfo) => void): Promise<RawDgramEndpoint> {
    const socket = dgram.createSocket({ type: "udp4", recvBufferSize: DGRAM_SOCKET_BUFFER_BYTES, sendBufferSize: DGRAM_SOCKET_BUFFER_BYTES });
    socket.on("error", () => {});
    socket.bind(0, "127.0.0.1");
    await once(socket, "listening");
    const endpoint = new RawDgramEndpoint(socket, onSender === undefined);
    socket.on("message", (message: Buffer, rinfo: dgram.RemoteInfo) => {
      if (onSender !== undefined) onSender(endpoint, rinfo);
      deliver(message);
    });
    return endpoint;
  }

  static async listen(deliver: Deliver): Promise<{ endpoint: RawDgramEndpoint; address: string }> {
    const endpoint = await RawDgramEndpoint.bind(deliver, (self, rinfo) => {
      self.peerPort = rinfo.port;
      self.peerHost = rinfo.address;
    });
    return { endpoint, address: `127.0.0.1:${endpoint.socket.address().port}` };
  }

  /** A connected socket: the efficient way to talk to one peer (no address per send). */
  static async connect(address: string, deliver: Deliver): Promise<RawDgramEndpoint> {
    const [host, port] = splitHostPort(address);
    const endpoint = await RawDgramEndpoint.bind(deliver);
    endpoint.socket.connect(port, host);
    await once(endpoint.socket, "connect");
    return endpoint;
  }

  private readonly afterSend = (error: Error | null): void => {
    this.outstanding--;
    if (error) this.sendErrors++;
    const wake = this.wake;
    if (wake !== undefined) {
      this.wake = undefined;
      wake();
    }
  };

  prepare(data: Uint8Array): Uint8Array {
    return data;
  }

  /** Without a bound on send callbacks outstanding a sender would queue datagrams without limit. */
  sendPrepared(prepared: Uint8Array): Promise<void> | undefined {
    this.outstanding++;
    if (this.connected) this.socket.send(prepared, this.afterSend);
    else this.socket.send(prepared, this.peerPort, this.peerHost, this.afterSend);
    return this.outstanding >= DGRAM_MAX_OUTSTANDING ? this.room() : undefined;
  }

  private async room(): Promise<void> {
    while (this.outstanding >= DGRAM_MAX_OUTSTANDING) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  reply(data: Uint8Array): void {
    this.outstanding++;
    this.socket.send(data, this.peerPort, this.peerHost, this.afterSend);
  }

  async flushed(): Promise<void> {
    while (this.outstanding > 0) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  diagnostics(): unknown {
    return { sendErrors: this.sendErrors, recvBuffer: this.socket.getRecvBufferSize() };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

// ─── skein ────────────────────────────────────────────────────────────────────────────────────

const RELIABLE = { reliable: true } as const;
const SERVER_ID = 1;
const CLIENT_ID = 2;

class SkeinEndpoint implements Endpoint {
  private peer: number;

  private constructor(
    private readonly node: SkeinNode,
    peer: number,
    deliver: Deliver,
  ) {
    this.peer = peer;
    // A link going down in the middle of a benchmark is worth knowing about, with its reason.
    node.on("link_down", (event) => {
      process.stderr.write(`link-peer: node ${node.id} lost its link to ${event.peer}: ${event.reason}\n`);
    });
    void (async () => {
      for await (const message of node.messages()) {
        this.peer = message.from;
        deliver(message.data);
      }
    })();
  }

  private static options(spec: PeerSpec, nodeId: number, seeds: string[]) {
    const transport = spec.mode === "skein_tcp" ? { tcpPort: 0 } : { udpPort: 0, udpMtu: spec.udpMtu };
    // Room for the accept workload's connections: they are links too, for a moment.
    return { nodeId, ...transport, seeds, logLevel: "warn" as const, maxNeighbours: 1024 };
  }

  /** createNode, or for the plaintext baseline the benchmark-only insecure variant. */
  private static async create(spec: PeerSpec, nodeId: number, seeds: string[]): Promise<SkeinNode> {
    const { createBenchmarkNode } = await import("../src/runtime/node.js");
    return createBenchmarkNode(SkeinEndpoint.options(spec, nodeId, seeds), { insecure: spec.insecure === true });
  }

  static async listen(spec: PeerSpec, deliver: Deliver): Promise<{ endpoint: SkeinEndpoint; address: string }> {
    const node = await SkeinEndpoint.create(spec, SERVER_ID, []);
    return { endpoint: new SkeinEndpoint(node, CLIENT_ID, deliver), address: node.addresses[0]! };
  }

  /** Loads skein before the clock starts: the timed part is createNode + link up + first echo. */
  static async load(): Promise<typeof import("../src/index.js")> {
    await import("../src/runtime/node.js");
    return import("../src/index.js");
  }

  static async connect(skein: typeof import("../src/index.js"), spec: PeerSpec, address: string, deliver: Deliver): Promise<SkeinEndpoint> {
    void skein; // loaded before the clock started; create() finds it in the module cache
    const node = await SkeinEndpoint.create(spec, CLIENT_ID, [`${SERVER_ID}@${address}`]);
    const endpoint = new SkeinEndpoint(node, SERVER_ID, deliver);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no link to ${SERVER_ID}@${address} within 10 s`)), 10_000);
      const done = (): void => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const off = node.on("link_up", (event) => {
        if (event.peer === SERVER_ID) done();
      });
      if (node.neighbours().some((n) => n.id === SERVER_ID && n.state === "up")) done();
    });
    return endpoint;
  }

  prepare(data: Uint8Array): Uint8Array {
    return data;
  }

  sendPrepared(prepared: Uint8Array): Promise<void> {
    return this.node.send(this.peer, prepared, RELIABLE);
  }

  reply(data: Uint8Array): void {
    this.node.send(this.peer, data, RELIABLE).catch((error: unknown) => {
      process.stderr.write(`link-peer: echo reply failed: ${String(error)}\n`);
    });
  }

  async flushed(): Promise<void> {}

  diagnostics(): unknown {
    const stats = this.node.stats();
    const runtime = (this.node as { runtimeCounters?: () => Map<string, number> }).runtimeCounters?.();
    return {
      framesIn: stats.framesIn,
      framesOut: stats.framesOut,
      bytesIn: stats.bytesIn,
      bytesOut: stats.bytesOut,
      dropped: stats.dropped,
      runtime: runtime === undefined ? undefined : Object.fromEntries(runtime),
      neighbours: this.node.neighbours().map((n) => ({ id: n.id, state: n.state, srttMs: n.srttMs, loss: n.loss })),
    };
  }

  async close(): Promise<void> {
    await this.node.close();
  }
}

// ─── the harness ──────────────────────────────────────────────────────────────────────────────

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what = "operation"): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

class Peer {
  private endpoint: Endpoint | undefined;
  private endpointReady: Promise<Endpoint>;
  private resolveEndpoint!: (endpoint: Endpoint) => void;
  private received = 0;
  private receivedBytes = 0;
  private firstWaiter: (() => void) | undefined;
  private echoWaiter: (() => void) | undefined;
  private stopping = false;
  private closed = false;

  constructor(private readonly spec: PeerSpec) {
    this.endpointReady = new Promise((resolve) => (this.resolveEndpoint = resolve));
  }

  /** Every message of every stack lands here. */
  readonly deliver: Deliver = (data) => {
    this.received++;
    this.receivedBytes += data.byteLength;
    if (this.firstWaiter !== undefined) {
      const waiter = this.firstWaiter;
      this.firstWaiter = undefined;
      waiter();
    }
    if (data[0] === KIND_ECHO) {
      if (this.spec.role === "server") this.endpoint?.reply(data);
      else if (this.echoWaiter !== undefined) {
        const waiter = this.echoWaiter;
        this.echoWaiter = undefined;
        waiter();
      }
    }
  };

  private setEndpoint(endpoint: Endpoint): void {
    this.endpoint = endpoint;
    this.resolveEndpoint(endpoint);
  }

  /** Server: starts listening; returns the address to announce. */
  async listen(): Promise<string> {
    switch (this.spec.mode) {
      case "raw_net":
      case "sealed_net": {
        const { address } = await RawNetEndpoint.listen(this.deliver, (endpoint) => this.setEndpoint(endpoint), this.spec.mode === "sealed_net");
        return address;
      }
      case "raw_dgram": {
        const { endpoint, address } = await RawDgramEndpoint.listen(this.deliver);
        this.setEndpoint(endpoint);
        return address;
      }
      case "skein_tcp":
      case "skein_udp": {
        const { endpoint, address } = await SkeinEndpoint.listen(this.spec, this.deliver);
        this.setEndpoint(endpoint);
        return address;
      }
    }
  }

  private async pingOnce(prepared: Uint8Array): Promise<void> {
    const answered = new Promise<void>((resolve) => (this.echoWaiter = resolve));
    const sent = this.endpoint!.sendPrepared(prepared);
    if (sent !== undefined) await sent;
    await answered;
  }

  private async connect(address: string): Promise<{ ms: number }> {
    const payload = new Uint8Array(1024);
    payload[0] = KIND_ECHO;
    const skein = this.spec.mode === "skein_tcp" || this.spec.mode === "skein_udp" ? await SkeinEndpoint.load() : undefined;
    const start = performance.now();
    let endpoint: Endpoint;
    switch (this.spec.mode) {
      case "raw_net":
      case "sealed_net":
        endpoint = await RawNetEndpoint.connect(address, this.deliver, this.spec.mode === "sealed_net");
        break;
      case "raw_dgram":
        endpoint = await RawDgramEndpoint.connect(address, this.deliver);
        break;
      default:
        endpoint = await SkeinEndpoint.connect(skein!, this.spec, address, this.deliver);
    }
    this.setEndpoint(endpoint);
    await this.pingOnce(endpoint.prepare(payload));
    return { ms: performance.now() - start };
  }

  private async measure(warmupMs: number, durationMs: number): Promise<MeasureResult> {
    await withTimeout(new Promise<void>((resolve) => (this.firstWaiter = resolve)), 15_000, "waiting for the first message");
    await sleep(warmupMs);
    const start = performance.now();
    const bytes0 = this.receivedBytes;
    const messages0 = this.received;
    await sleep(durationMs);
    const seconds = (performance.now() - start) / 1000;
    return { bytes: this.receivedBytes - bytes0, messages: this.received - messages0, seconds };
  }

  private async stream(size: number, durationMs: number): Promise<StreamResult> {
    const endpoint = await this.endpointReady;
    const payload = new Uint8Array(size);
    const prepared = endpoint.prepare(payload);
    this.stopping = false;
    const start = performance.now();
    const deadline = start + durationMs;
    let count = 0;
    let sinceYield = 0;
    // What a program would write: send, and wait when the stack says so (raw_net: write() returned
    // false; raw_dgram: too many sends outstanding; skein: always await send()). A stack that
    // never pushes back (the kernel takes everything: usual on loopback) leaves such a loop running
    // on microtasks alone, which starves the event loop: no timers, no reads, no IPC. Every sender
    // therefore also yields once per YIELD_BYTES, unless `naiveSend`.
    while (!this.stopping && performance.now() < deadline) {
      const wait = endpoint.sendPrepared(prepared);
      count++;
      if (wait !== undefined) await wait;
      if (!this.spec.naiveSend && (sinceYield += size) >= YIELD_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    await endpoint.flushed();
    return { messages: count, bytes: count * size, seconds: (performance.now() - start) / 1000 };
  }

  private async waitReceived(messages: number, settleMs: number, timeoutMs: number): Promise<ReceivedResult> {
    const deadline = performance.now() + timeoutMs;
    let last = -1;
    let lastChange = performance.now();
    while (this.received < messages && performance.now() < deadline) {
      if (this.received !== last) {
        last = this.received;
        lastChange = performance.now();
      } else if (performance.now() - lastChange >= settleMs) {
        break;
      }
      await sleep(5);
    }
    return { messages: this.received, bytes: this.receivedBytes };
  }

  private async echo(size: number, count: number, warmupMs: number): Promise<EchoResult> {
    const endpoint = await this.endpointReady;
    const payload = new Uint8Array(size);
    payload[0] = KIND_ECHO;
    const prepared = endpoint.prepare(payload);
    const samples = new Float64Array(count);
    // Warm up for a while rather than a number of round trips: V8 keeps optimising the path for
    // the first ~second, and those slow early round trips would otherwise make up the p99.
    const warmupEnd = performance.now() + warmupMs;
    while (performance.now() < warmupEnd) await this.pingOnce(prepared);
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await this.pingOnce(prepared);
      samples[i] = (performance.now() - start) * 1000;
    }
    let sum = 0;
    for (const sample of samples) sum += sample;
    samples.sort();
    return {
      p50: percentile(samples, 50),
      p90: percentile(samples, 90),
      p99: percentile(samples, 99),
      min: samples[0] ?? NaN,
      max: samples[samples.length - 1] ?? NaN,
      mean: sum / Math.max(1, samples.length),
      count,
    };
  }

  private memory(): MemoryResult {
    return { rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024, heapUsed: process.memoryUsage().heapUsed };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopping = true;
    await this.endpoint?.close();
  }

  async run(command: PeerCommand): Promise<unknown> {
    switch (command.cmd) {
      case "connect":
        return this.connect(command.address);
      case "reset":
        this.received = 0;
        this.receivedBytes = 0;
        return {};
      case "measure":
        return this.measure(command.warmupMs, command.durationMs);
      case "stream":
        return this.stream(command.size, command.durationMs);
      case "stop":
        this.stopping = true;
        return {};
      case "wait_received":
        return this.waitReceived(command.messages, command.settleMs, command.timeoutMs);
      case "echo":
        return this.echo(command.size, command.count, command.warmupMs);
      case "memory":
        return this.memory();
      case "usage":
        return process.resourceUsage();
      case "diagnostics":
        return this.endpoint?.diagnostics() ?? {};
      case "accept_flood":
        return acceptFlood(this.spec, command.address, command.concurrency, command.durationMs, command.count);
      case "close":
        await this.close();
        return {};
    }
  }
}

// ─── accept workload ──────────────────────────────────────────────────────────────────────────

/** Loopback source addresses the accept workload cycles through (127.0.1.1 …): see accept_flood. */
const FLOOD_SOURCE_HOSTS = 250;

/**
 * One accept, timed from connect: skein, a Noise XX handshake as initiator (crypto/handshake.ts)
 * until the server's first record (its hello_ack: it accepted us); raw_net, a 1-byte echo.
 */
async function acceptOnce(spec: PeerSpec, port: number, sourceHost: string, handshake: (() => import("../src/crypto/handshake.js").LinkHandshake) | undefined): Promise<number> {
  const start = performance.now();
  const socket = net.connect({ host: "127.0.0.1", port, localAddress: sourceHost, noDelay: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.once("close", () => reject(new Error("closed by the server before it accepted")));
      if (spec.mode === "raw_net") {
        socket.once("connect", () => socket.write(Buffer.from([0, 0, 0, 1, KIND_ECHO])));
        socket.once("data", () => resolve());
        return;
      }
      const initiator = handshake!();
      socket.once("connect", () => {
        for (const unit of initiator.start(performance.now()).send) socket.write(unit);
      });
      let pending: Buffer = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        pending = pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk]);
        while (pending.byteLength >= 4) {
          const size = 4 + pending.readUIntBE(1, 3);
          if (pending.byteLength < size) return;
          const unit = pending.subarray(0, size);
          pending = pending.subarray(size);
          if (unit[0] === 0x20) {
            // A record: the handshake completed on the server's side too, and it said hello_ack.
            if (initiator.state.kind === "complete") resolve();
            else reject(new Error("a record before the handshake completed"));
            return;
          }
          const step = initiator.receive(performance.now(), unit);
          for (const out of step.send) socket.write(out);
          if (step.failure !== undefined) reject(new Error(`${step.failure.code}: ${step.failure.message}`));
        }
      });
    });
    return performance.now() - start;
  } finally {
    socket.destroy();
  }
}

async function acceptFlood(spec: PeerSpec, address: string, concurrency: number, durationMs: number, count: number | undefined): Promise<import("./link-protocol.js").AcceptFloodResult> {
  const port = Number(/(\d+)$/.exec(address)![1]);
  let handshake: (() => import("../src/crypto/handshake.js").LinkHandshake) | undefined;
  if (spec.mode !== "raw_net") {
    const [{ LinkHandshake }, { generateIdentity }, { systemEntropy }, { encodeHello }] = await Promise.all([
      import("../src/crypto/handshake.js"),
      import("../src/crypto/identity.js"),
      import("../src/core/entropy.js"),
      import("../src/node/secure-paths.js"),
    ]);
    // One identity per slot: a NodeId is never linked twice at once.
    const identities = Array.from({ length: concurrency }, () => generateIdentity(systemEntropy));
    let next = 0;
    const wallClockOffsetMs = Date.now() - performance.now();
    handshake = () => {
      const identity = identities[next++ % identities.length]!;
      return new LinkHandshake({
        role: "initiator",
        identity,
        nodeId: identity.derivedNodeId,
        trust: {},
        entropy: systemEntropy,
        wallClockOffsetMs,
        expectedPeer: SERVER_ID,
        extension: encodeHello({ session: next, addresses: [] }),
        transport: "stream",
      });
    };
  }
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let started = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  const more = (): boolean => (count !== undefined ? started < count : performance.now() < deadline);
  const worker = async (): Promise<void> => {
    while (more()) {
      const host = `127.0.1.${1 + (started++ % FLOOD_SOURCE_HOSTS)}`;
      try {
        latencies.push(await acceptOnce(spec, port, host, handshake));
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return { completed: latencies.length, failed, seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), firstError };
}

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (send === undefined) {
    process.stderr.write("link-peer runs under the link benchmark (npm run bench -- link), not on its own\n");
    process.exit(2);
  }
  const spec = JSON.parse(process.argv[2] ?? "{}") as PeerSpec;
  // Every peer, baseline or skein, runs under the malloc thresholds createNode sets for a skein
  // process (src/runtime/allocator.ts), so that the baselines stay the ceiling they are meant to
  // be. LINK_PEER_DEFAULT_MALLOC=1 leaves them all at glibc's defaults (skein still primes its own).
  if (process.env.LINK_PEER_DEFAULT_MALLOC !== "1") primeAllocator();
  const peer = new Peer(spec);

  const reply = (message: ReplyMessage): void => {
    // The orchestrator may be gone (it gave up on us): then nobody is listening.
    if (process.connected) send(message, undefined, undefined, () => {});
  };
  process.on("message", (message: RequestMessage) => {
    peer.run(message.command).then(
      (result) => reply({ type: "reply", id: message.id, ok: true, result }),
      (error: unknown) => reply({ type: "reply", id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on("disconnect", () => {
    // The orchestrator is done with us (or died): close, then let the event loop run dry.
    const timer = setTimeout(() => {
      process.stderr.write(`link-peer ${spec.mode}/${spec.role}: still running ${EXIT_GRACE_MS} ms after close; open handles: ${process.getActiveResourcesInfo().join(", ")}\n`);
      process.exit(1);
    }, EXIT_GRACE_MS);
    timer.unref();
    void peer.close().catch(() => {});
  });

  if (spec.role === "server") {
    const address = await peer.listen();
    send({ type: "ready", address });
  } else {
    send({ type: "ready", address: "" });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`link-peer failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

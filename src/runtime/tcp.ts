/**
 * The TCP transport: a server on `bind:tcpPort` for inbound paths and one outbound connection per
 * `open_path` with a tcp address. A stream is a plain sequence of frames; `FrameReassembler` cuts
 * it back into frames by the header's length field and hands runs of whole frames to the engine
 * (one `receive` can carry many frames back to back). A header that does not parse means the
 * stream cannot be resynchronised: the connection is closed and the path reported closed.
 *
 * Writes are corked between `transmit` and `flush`, so the frames of one drain of the engine
 * leave in one writev. `queuedBytes` is the socket's writableLength: the node waits on it
 * before queueing more user data.
 */
import net from "node:net";
import type { Address } from "../core/address.js";
import type { Logger } from "../core/log.js";
import type { PathId } from "../node/io.js";
import { UNIT_HEADER_BYTES, unitSizeAt } from "../crypto/units.js";
import { FRAME_HEADER_BYTES, frameSizeAt } from "../wire/frame.js";
import { bump, type Transport, type TransportSink } from "./transport.js";
import { bindError, errorCode } from "./udp.js";

/** An outbound connection that is not established by then is given up. */
export const TCP_CONNECT_TIMEOUT_MS = 10_000;

/**
 * How a stream is cut: `units` (secured paths: 4-byte unit headers, crypto/units.ts, whose length
 * limit is the maximum frame size plus the record overhead, and 2 KiB for handshake units) or
 * `frames` (insecure mode: plaintext frame headers).
 */
export interface StreamFraming {
  headerBytes: number;
  /** Size of the element at `offset`, 0 when more bytes are needed, or an error text. */
  sizeAt(bytes: Uint8Array, offset: number): number | string;
}

export const UNIT_FRAMING: StreamFraming = { headerBytes: UNIT_HEADER_BYTES, sizeAt: unitSizeAt };
export const FRAME_FRAMING: StreamFraming = {
  headerBytes: FRAME_HEADER_BYTES,
  sizeAt: (bytes, offset) => {
    const size = frameSizeAt(bytes, offset);
    return typeof size === "number" ? size : size.ok ? "invalid frame header" : size.error;
  },
};

/**
 * Cuts a byte stream into runs of whole frames (or units: `framing`). Holds at most one incomplete frame (bounded by the
 * header's payload limit, MAX_FRAME_PAYLOAD_BYTES), as the chunks it came in until it is whole, so
 * that a large frame is copied once. Frames that lie whole inside one chunk are never copied.
 */
export class FrameReassembler {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Size of the incomplete frame at the head, 0 while its header is incomplete. */
  private need = 0;
  private failed: string | undefined;

  constructor(private readonly framing: StreamFraming = FRAME_FRAMING) {}

  /** Bytes held back waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Feeds one chunk. Calls `deliver` with each run of whole frames, in order (at most two calls per
   * chunk: the frame that straddled the previous chunk boundary, then the frames inside this one);
   * `deliver` returns false to stop (the connection went away). Returns an error text when the
   * stream holds an invalid header; frames before it have been delivered, and every later push
   * returns the same error.
   */
  push(chunk: Uint8Array, deliver: (packet: Uint8Array) => boolean): string | undefined {
    if (this.failed !== undefined) return this.failed;
    let offset = 0;
    const length = chunk.byteLength;
    if (this.pendingBytes > 0) {
      if (this.need === 0) {
        // Complete the header first (it is small: copying it is cheap).
        const headerBytes = this.framing.headerBytes;
        const take = Math.min(headerBytes - this.pendingBytes, length);
        this.pending.push(chunk.subarray(0, take));
        this.pendingBytes += take;
        offset = take;
        if (this.pendingBytes < headerBytes) return undefined;
        const header = concat(this.pending, this.pendingBytes);
        this.pending = [header];
        const size = this.framing.sizeAt(header, 0);
        if (typeof size !== "number") return this.fail(size);
        this.need = size;
      }
      const want = this.need - this.pendingBytes;
      const available = length - offset;
      if (available < want) {
        if (available > 0) {
          this.pending.push(offset === 0 ? chunk : chunk.subarray(offset));
          this.pendingBytes += available;
        }
        return undefined;
      }
      this.pending.push(chunk.subarray(offset, offset + want));
      offset += want;
      const frame = concat(this.pending, this.need);
      this.pending = [];
      this.pendingBytes = 0;
      this.need = 0;
      if (!deliver(frame)) return undefined;
    }
    let end = offset;
    let error: string | undefined;
    let incomplete = 0;
    while (end < length) {
      const size = this.framing.sizeAt(chunk, end);
      if (typeof size !== "number") {
        error = size;
        break;
      }
      if (size === 0 || end + size > length) {
        incomplete = size;
        break;
      }
      end += size;
    }
    if (end > offset && !deliver(chunk.subarray(offset, end))) return undefined;
    if (error !== undefined) return this.fail(error);
    if (end < length) {
      this.pending = [chunk.subarray(end)];
      this.pendingBytes = length - end;
      this.need = incomplete;
    }
    return undefined;
  }

  private fail(error: string): string {
    this.failed = error;
    this.pending = [];
    this.pendingBytes = 0;
    this.need = 0;
    return error;
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.byteLength === total) return parts[0]!;
  // Not zero-filled: every byte is copied over below. Every large record passes through here, and
  // zeroing it first cost the receiver as much CPU as the copy itself.
  const unfilled = Buffer.allocUnsafe(total);
  const out = new Uint8Array(unfilled.buffer, unfilled.byteOffset, total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

class Connection {
  readonly reassembler: FrameReassembler;
  /** The engine closed the path: no `pathClosed` for it, and inbound data is ignored. */
  closedByEngine = false;
  /** `pathClosed` was reported (or must not be). */
  reported = false;
  connecting: boolean;
  corked = false;
  reason: string | undefined;
  readonly deliver: (packet: Uint8Array) => boolean;
  readonly onData: (chunk: Buffer) => void;

  constructor(
    readonly transport: TcpTransport,
    readonly pathId: PathId,
    readonly socket: net.Socket,
    outbound: boolean,
  ) {
    this.connecting = outbound;
    this.reassembler = new FrameReassembler(transport.framing);
    this.deliver = (packet) => {
      if (this.closedByEngine || this.reported) return false;
      transport.deliver(this.pathId, packet);
      return !this.closedByEngine && !this.reported;
    };
    this.onData = (chunk) => {
      if (this.closedByEngine || this.reported) return;
      // A plain Uint8Array view: messages reach the program as Uint8Array whatever the transport.
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const error = this.reassembler.push(bytes, this.deliver);
      if (error !== undefined) transport.fail(this, `invalid unit on tcp stream: ${error}`);
    };
  }
}

export interface TcpListenOptions {
  host: string;
  port: number;
  logger: Logger;
  connectTimeoutMs?: number;
  /** `units` for secured engines (default), `frames` for an insecure engine. */
  framing?: StreamFraming;
}

export class TcpTransport implements Transport {
  readonly kind = "tcp" as const;
  readonly counters = new Map<string, number>();
  private sink: TransportSink | undefined;
  private readonly connections = new Map<PathId, Connection>();
  /** Every socket still open, including ones closing after the engine let go of them. */
  private readonly sockets = new Set<net.Socket>();
  private corked: Connection[] = [];
  private closed = false;
  private readonly connectTimeoutMs: number;

  private constructor(
    private readonly server: net.Server,
    readonly localAddress: Address,
    private readonly logger: Logger,
    connectTimeoutMs: number,
    readonly framing: StreamFraming,
  ) {
    this.connectTimeoutMs = connectTimeoutMs;
    server.on("connection", (socket) => this.onConnection(socket));
    server.on("error", (error) => {
      bump(this.counters, `server_error_${errorCode(error)}`);
      this.logger.warn({ err: error.message }, "tcp server error");
    });
  }

  /** Starts the server. Throws SkeinError PORT_IN_USE or BAD_OPTION (address not on this host). */
  static async listen(options: TcpListenOptions): Promise<TcpTransport> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        server.close();
        reject(bindError(error, "TCP", options.host, options.port, "--tcp-port"));
      };
      server.once("error", onError);
      server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
        server.off("error", onError);
        resolve();
      });
    });
    const bound = server.address() as net.AddressInfo;
    return new TcpTransport(
      server,
      { transport: "tcp", host: options.host, port: bound.port },
      options.logger,
      options.connectTimeoutMs ?? TCP_CONNECT_TIMEOUT_MS,
      options.framing ?? UNIT_FRAMING,
    );
  }

  setSink(sink: TransportSink): void {
    this.sink = sink;
  }

  private onConnection(socket: net.Socket): void {
    const host = socket.remoteAddress;
    const port = socket.remotePort;
    const sink = this.sink;
    if (this.closed || sink === undefined || host === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    const pathId = sink.acceptPath({ transport: "tcp", host: stripV4Mapped(host), port });
    if (pathId === undefined) {
      bump(this.counters, "refused_connection");
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.attach(new Connection(this, pathId, socket, false));
  }

  open(pathId: PathId, address: Address): void {
    if (this.closed) {
      this.sink?.pathClosed(pathId, "node is closing");
      return;
    }
    const socket = net.connect({ host: address.host, port: address.port, noDelay: true });
    const connection = new Connection(this, pathId, socket, true);
    socket.setTimeout(this.connectTimeoutMs);
    socket.once("timeout", () => {
      if (connection.connecting) {
        connection.reason = `connect to ${address.host}:${address.port} timed out after ${this.connectTimeoutMs} ms`;
        socket.destroy();
      }
    });
    socket.once("connect", () => {
      connection.connecting = false;
      socket.setTimeout(0);
      if (connection.closedByEngine || connection.reported) return;
      this.sink?.pathOpened(pathId);
    });
    this.attach(connection);
  }

  private attach(connection: Connection): void {
    const { socket, pathId } = connection;
    this.connections.set(pathId, connection);
    this.sockets.add(socket);
    socket.on("data", connection.onData);
    socket.on("drain", () => {
      if (!connection.closedByEngine) this.sink?.writable(pathId);
    });
    socket.on("error", (error) => {
      connection.reason ??= connection.connecting ? `connect failed: ${errorCode(error)}` : `tcp error: ${errorCode(error)}`;
      bump(this.counters, `socket_error_${errorCode(error)}`);
    });
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (this.connections.get(pathId) === connection) this.connections.delete(pathId);
      this.report(connection, connection.reason ?? "connection closed by the remote");
    });
  }

  /** Called by a connection's reassembler with whole frames. */
  deliver(pathId: PathId, packet: Uint8Array): void {
    this.sink?.receive(pathId, packet);
  }

  /** Closes a connection on a protocol error and reports the path closed. */
  fail(connection: Connection, reason: string): void {
    bump(this.counters, "invalid_frame");
    this.logger.warn({ path: connection.pathId, reason }, "closing tcp connection");
    connection.reason = reason;
    connection.socket.destroy();
    this.report(connection, reason);
  }

  private report(connection: Connection, reason: string): void {
    if (connection.reported || connection.closedByEngine) return;
    connection.reported = true;
    if (this.connections.get(connection.pathId) === connection) this.connections.delete(connection.pathId);
    if (!this.closed) this.sink?.pathClosed(connection.pathId, reason);
  }

  transmit(pathId: PathId, packet: Uint8Array): void {
    const connection = this.connections.get(pathId);
    if (connection === undefined || connection.closedByEngine) {
      bump(this.counters, "transmit_on_unknown_path");
      return;
    }
    if (!connection.corked) {
      connection.corked = true;
      connection.socket.cork();
      this.corked.push(connection);
    }
    connection.socket.write(packet);
  }

  flush(): void {
    if (this.corked.length === 0) return;
    const corked = this.corked;
    this.corked = [];
    for (const connection of corked) {
      connection.corked = false;
      connection.socket.uncork();
    }
  }

  close(pathId: PathId): void {
    const connection = this.connections.get(pathId);
    if (connection === undefined) return;
    connection.closedByEngine = true;
    this.connections.delete(pathId);
    if (connection.corked) {
      connection.corked = false;
      connection.socket.uncork();
    }
    if (connection.connecting) connection.socket.destroy();
    else connection.socket.end();
  }

  queuedBytes(pathId: PathId): number {
    return this.connections.get(pathId)?.socket.writableLength ?? 0;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async shutdown(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections.values()) {
      connection.closedByEngine = true;
      if (connection.connecting) connection.socket.destroy();
      else connection.socket.end();
    }
    this.connections.clear();
    if (this.sockets.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const socket of this.sockets) socket.destroy();
          resolve();
        }, graceMs);
        let left = this.sockets.size;
        for (const socket of this.sockets) {
          socket.once("close", () => {
            if (--left === 0) {
              clearTimeout(timer);
              resolve();
            }
          });
        }
      });
    }
    await serverClosed;
  }
}

function stripV4Mapped(host: string): string {
  return host.startsWith("::ffff:") ? host.slice(7) : host;
}

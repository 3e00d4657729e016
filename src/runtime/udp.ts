/**
 * The UDP transport: one udp4 socket for every UDP path of the node. A path is a remote
 * `host:port`; the engine names it either in an `open_path` output or, for the first datagram
 * from an unknown sender, through `acceptPath` (which may refuse: the datagram is then dropped).
 * Each `transmit` is exactly one datagram. Send errors (EMSGSIZE, ECONNREFUSED, …) are counted
 * and logged, never thrown.
 */
import dgram from "node:dgram";
import type { Address } from "../core/address.js";
import { SkeinError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import type { PathId } from "../node/io.js";
import { bump, type Transport, type TransportSink } from "./transport.js";

/** Kernel socket buffers asked for (the kernel may cap them, e.g. at net.core.rmem_max). */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

interface Remote {
  host: string;
  port: number;
  key: string;
}

export interface UdpBindOptions {
  host: string;
  port: number;
  logger: Logger;
  /** Kernel send and receive buffer sizes (default UDP_SOCKET_BUFFER_BYTES). */
  socketBufferBytes?: number;
}

export class UdpTransport implements Transport {
  readonly kind = "udp" as const;
  readonly counters = new Map<string, number>();
  private sink: TransportSink | undefined;
  private readonly byKey = new Map<string, PathId>();
  private readonly byPath = new Map<PathId, Remote>();
  /** Datagrams handed to the socket whose send callback has not run yet. */
  private outstanding = 0;
  private closed = false;
  private onIdle: (() => void) | undefined;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly localAddress: Address,
    private readonly logger: Logger,
  ) {
    socket.on("message", this.onMessage);
    socket.on("error", (error) => {
      bump(this.counters, `socket_error_${errorCode(error)}`);
      this.logger.warn({ err: error.message }, "udp socket error");
    });
  }

  /** Binds a socket. Throws SkeinError PORT_IN_USE or BAD_OPTION (address not on this host). */
  static async bind(options: UdpBindOptions): Promise<UdpTransport> {
    const buffer = options.socketBufferBytes ?? UDP_SOCKET_BUFFER_BYTES;
    // Every address here is an IPv4 literal: answer the per-datagram lookup at once instead of
    // through dns.lookup and a nextTick.
    const socket = dgram.createSocket({ type: "udp4", recvBufferSize: buffer, sendBufferSize: buffer, lookup: literalLookup });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        socket.close();
        reject(bindError(error, "UDP", options.host, options.port, "--udp-port"));
      };
      socket.once("error", onError);
      socket.bind({ address: options.host, port: options.port, exclusive: true }, () => {
        socket.off("error", onError);
        resolve();
      });
    });
    const bound = socket.address();
    return new UdpTransport(socket, { transport: "udp", host: options.host, port: bound.port }, options.logger);
  }

  setSink(sink: TransportSink): void {
    this.sink = sink;
  }

  /** The kernel buffer sizes actually granted (Linux reports twice the asked size, capped). */
  socketBufferSizes(): { send: number; recv: number } {
    return { send: this.socket.getSendBufferSize(), recv: this.socket.getRecvBufferSize() };
  }

  private readonly onMessage = (message: Buffer, rinfo: dgram.RemoteInfo): void => {
    const sink = this.sink;
    if (sink === undefined || this.closed) return;
    const key = rinfo.address + ":" + rinfo.port;
    let pathId = this.byKey.get(key);
    if (pathId === undefined) {
      pathId = sink.acceptPath({ transport: "udp", host: rinfo.address, port: rinfo.port });
      if (pathId === undefined) {
        bump(this.counters, "refused_sender");
        return;
      }
      this.remember(pathId, rinfo.address, rinfo.port);
    }
    if (message.byteLength === 0) {
      bump(this.counters, "empty_datagram");
      return;
    }
    // A plain Uint8Array view: messages reach the program as Uint8Array whatever the transport.
    sink.receive(pathId, new Uint8Array(message.buffer, message.byteOffset, message.byteLength));
  };

  private remember(pathId: PathId, host: string, port: number): void {
    const key = host + ":" + port;
    this.byKey.set(key, pathId);
    this.byPath.set(pathId, { host, port, key });
  }

  open(pathId: PathId, address: Address): void {
    this.remember(pathId, address.host, address.port);
    this.sink?.pathOpened(pathId);
  }

  transmit(pathId: PathId, packet: Uint8Array): void {
    const remote = this.byPath.get(pathId);
    if (remote === undefined || this.closed) {
      bump(this.counters, "transmit_on_unknown_path");
      return;
    }
    this.outstanding++;
    this.socket.send(packet, remote.port, remote.host, this.afterSend);
  }

  private readonly afterSend = (error: Error | null): void => {
    this.outstanding--;
    if (error) {
      bump(this.counters, `send_error_${errorCode(error)}`);
      this.logger.debug({ err: error.message }, "udp send failed");
    }
    if (this.outstanding === 0 && this.onIdle !== undefined) this.onIdle();
  };

  close(pathId: PathId): void {
    const remote = this.byPath.get(pathId);
    if (remote === undefined) return;
    this.byPath.delete(pathId);
    if (this.byKey.get(remote.key) === pathId) this.byKey.delete(remote.key);
  }

  queuedBytes(_pathId: PathId): number {
    // The kernel send queue is shared by every UDP path.
    return this.closed ? 0 : this.socket.getSendQueueSize();
  }

  flush(): void {}

  get pathCount(): number {
    return this.byPath.size;
  }

  async shutdown(graceMs: number): Promise<void> {
    if (this.closed) return;
    if (this.outstanding > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.closed = true;
    this.byKey.clear();
    this.byPath.clear();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

function literalLookup(
  hostname: string,
  _options: unknown,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, hostname, 4);
}

export function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : "unknown";
}

/** Turns a bind/listen failure into an error that says what to do. */
export function bindError(error: unknown, what: string, host: string, port: number, flag: string): SkeinError {
  const code = errorCode(error);
  if (code === "EADDRINUSE") {
    return new SkeinError(
      "PORT_IN_USE",
      `${what} port ${port} on ${host} is already in use; pick another with ${flag} or use 0 for any free port`,
      { cause: error },
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new SkeinError("BAD_OPTION", `cannot bind ${what} to ${host}: it is not an address of this host; use --bind with a local IPv4 address such as 127.0.0.1 or 0.0.0.0`, { cause: error });
  }
  if (code === "EACCES" || code === "EPERM") {
    return new SkeinError("PORT_IN_USE", `${what} port ${port} on ${host} needs privileges this process lacks; use a port above 1023 with ${flag}, or 0 for any free port`, { cause: error });
  }
  return new SkeinError("BIND_FAILED", `cannot bind ${what} port ${port} on ${host}: ${(error as Error).message}`, { cause: error });
}

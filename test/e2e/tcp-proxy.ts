/**
 * A TCP proxy (node:net) for security tests: it sits between two nodes, records every byte in both
 * directions, and can refuse connections, flip one byte of a record, or replay a record. It cuts
 * the stream into units (4-byte header: type, u24 length; docs/protocol.md "Units") so that it
 * tampers with whole records, as an attacker on the path would aim.
 */
import net from "node:net";
import { once } from "node:events";

export const UNIT_RECORD = 0x20;

export type Direction = "to_target" | "to_client";

/** What to do with one unit on its way: pass it, or send other bytes in its place. */
export type UnitTamper = (direction: Direction, unit: Buffer) => Buffer | undefined;

export class TcpProxy {
  /** Every byte that went through, both directions, in arrival order. */
  readonly captured: Buffer[] = [];
  /** Connections are closed at once while false (a node's dial fails). */
  forwarding = true;
  tamper: UnitTamper | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
    const server = net.createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    server.on("connection", (client) => proxy.accept(client, targetPort, targetHost));
    return proxy;
  }

  /** All bytes captured so far, as one buffer. */
  capture(): Buffer {
    return Buffer.concat(this.captured);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, targetPort: number, targetHost: string): void {
    if (!this.forwarding) {
      client.destroy();
      return;
    }
    const target = net.connect(targetPort, targetHost);
    for (const socket of [client, target]) {
      this.sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        target.destroy();
      });
    }
    this.pipe(client, target, "to_target");
    this.pipe(target, client, "to_client");
  }

  /** Copies `from` to `to` unit by unit, recording and (maybe) tampering. */
  private pipe(from: net.Socket, to: net.Socket, direction: Direction): void {
    let pending: Buffer = Buffer.alloc(0);
    from.on("data", (chunk: Buffer) => {
      this.captured.push(Buffer.from(chunk));
      pending = pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.byteLength >= 4) {
        const size = 4 + pending.readUIntBE(1, 3);
        if (pending.byteLength < size) break;
        const unit = pending.subarray(0, size);
        pending = pending.subarray(size);
        const sent = this.tamper?.(direction, Buffer.from(unit)) ?? unit;
        to.write(sent);
      }
    });
  }
}

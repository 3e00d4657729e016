/**
 * What the driver needs from a transport (UDP, TCP), and what a transport reports back. A
 * transport never calls the engine directly: it calls its sink (the driver), which stamps `now`,
 * calls the engine and drains its outputs.
 */
import type { Address, TransportKind } from "../core/address.js";
import type { PathId } from "../node/io.js";

export interface TransportSink {
  /** A packet or connection from an unknown remote: the engine says which path, or refuses. */
  acceptPath(address: Address): PathId | undefined;
  /** An outbound path is ready (TCP connected). */
  pathOpened(pathId: PathId): void;
  /** A path died on its own (error, remote close, connect failure); not for engine-closed paths. */
  pathClosed(pathId: PathId, reason: string): void;
  /** One packet: a datagram, or one or more whole frames cut from a stream. */
  receive(pathId: PathId, packet: Uint8Array): void;
  /** A path's write queue drained: senders waiting on congestion may go on. */
  writable(pathId: PathId): void;
}

export interface Transport {
  readonly kind: TransportKind;
  /** The bound local address (real port when 0 was asked). */
  readonly localAddress: Address;
  setSink(sink: TransportSink): void;
  /** Engine `open_path`: connect (TCP) or remember the remote (UDP); answers through the sink. */
  open(pathId: PathId, address: Address): void;
  /** Engine `transmit`. Never throws: errors are counted. */
  transmit(pathId: PathId, packet: Uint8Array): void;
  /** Engine `close_path`: written data is flushed first where the transport can. */
  close(pathId: PathId): void;
  /** Bytes accepted by `transmit` and not yet handed to the kernel. */
  queuedBytes(pathId: PathId): number;
  /** Ends a batch of transmits (uncorks the sockets written since the last flush). */
  flush(): void;
  /** Counters of runtime-level drops and errors, by reason. */
  readonly counters: Map<string, number>;
  /** Closes everything; waits up to `graceMs` for written data to leave. */
  shutdown(graceMs: number): Promise<void>;
}

export function bump(counters: Map<string, number>, reason: string, by = 1): void {
  counters.set(reason, (counters.get(reason) ?? 0) + by);
}

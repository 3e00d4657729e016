/** The public face of a running node, as `createNode()` returns it. */
import type { NodeId } from "../core/node-id.js";
import type { EngineStats } from "./engine.js";
import type { NeighbourInfo, NodeEvent, NodeEventKind } from "./io.js";

export interface ReceivedMessage {
  from: NodeId;
  data: Uint8Array;
  reliable: boolean;
}

export type NodeEventOf<K extends NodeEventKind> = Extract<NodeEvent, { kind: K }>;

export interface SkeinNode {
  readonly id: NodeId;
  /** Listening addresses, e.g. `/ip4/127.0.0.1/udp/40123`. */
  readonly addresses: string[];
  /** `http://HOST:PORT` of the HTTP API when `webAddr` was given. */
  readonly webUrl: string | undefined;
  neighbours(): NeighbourInfo[];
  /** Subscribes to engine events; returns a function that unsubscribes. */
  on<K extends NodeEventKind>(kind: K, listener: (event: NodeEventOf<K>) => void): () => void;
  /**
   * Sends bytes to another node's data service. Resolves once the bytes are queued; waits while
   * the link is congested. Rejects with SkeinError (NO_ROUTE, TOO_LARGE, CLOSED). Large messages
   * are written to the socket without a copy, as `socket.write` does: do not modify `data` after
   * calling send().
   */
  send(destination: NodeId, data: Uint8Array, options?: { reliable?: boolean }): Promise<void>;
  /** Messages other nodes sent to this one, as an async iterable (bounded buffer). */
  messages(): AsyncIterable<ReceivedMessage>;
  stats(): EngineStats;
  /** Says goodbye to neighbours, closes sockets and the HTTP server. Idempotent. */
  close(): Promise<void>;
}

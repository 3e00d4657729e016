/**
 * What the `link` benchmark's orchestrator (link.ts) and its peer processes (link-peer.ts) say to
 * each other over the IPC channel of the child process. The orchestrator never touches the
 * network itself: each measured configuration runs in two fresh peer processes, a server (the
 * far side: sink and echo) and a client (the near side: connects, sends, pings).
 */

/** Which stack a peer process runs. */
export type PeerMode = "raw_net" | "sealed_net" | "raw_dgram" | "skein_tcp" | "skein_udp";
export type PeerRole = "server" | "client";

export interface PeerSpec {
  mode: PeerMode;
  role: PeerRole;
  /** skein_udp only: the node's udpMtu. */
  udpMtu?: number;
  /** The sender only waits when its stack pushes back, never yields otherwise (see link-peer.ts). */
  naiveSend?: boolean;
  /** skein modes: plaintext links (EngineConfig.insecure), the baseline of the encrypted ones. */
  insecure?: boolean;
}

/** First byte of every payload: what the receiver does with it. */
export const KIND_SINK = 0;
export const KIND_ECHO = 1;

export type PeerCommand =
  /** Client: connect to the server and time it until the first 1 KiB echo returns. */
  | { cmd: "connect"; address: string }
  /** Zero the receive counters. */
  | { cmd: "reset" }
  /** Server: after the first message, let `warmupMs` pass, then count for `durationMs`. */
  | { cmd: "measure"; warmupMs: number; durationMs: number }
  /** Client: send `size`-byte sink messages until `durationMs` passed or `stop` arrives. */
  | { cmd: "stream"; size: number; durationMs: number }
  | { cmd: "stop" }
  /** Server: wait until `messages` were received, or nothing arrived for `settleMs`. */
  | { cmd: "wait_received"; messages: number; settleMs: number; timeoutMs: number }
  /** Client: ping-pongs of `size` bytes, one outstanding, for `warmupMs`, then `count` timed ones. */
  | { cmd: "echo"; size: number; count: number; warmupMs: number }
  | { cmd: "memory" }
  /** process.resourceUsage() now (CPU µs, page faults, context switches). */
  | { cmd: "usage" }
  | { cmd: "diagnostics" }
  /**
   * Client: opens connections to the server's address, `concurrency` at a time, for `durationMs`
   * (or `count` connections): each one a full accept (skein: Noise handshake until the server's
   * first record, its hello_ack, arrives; raw_net: a 1-byte echo), then closed. From many
   * loopback source addresses, so that the server's per-address handshake rate limit stays out
   * of the figure.
   */
  | { cmd: "accept_flood"; address: string; concurrency: number; durationMs: number; count?: number }
  | { cmd: "close" };

export interface AcceptFloodResult {
  completed: number;
  failed: number;
  seconds: number;
  /** Connect-to-accepted latency of completed connections, ms. */
  p50Ms: number;
  p99Ms: number;
  /** The first failure's reason, if any. */
  firstError?: string | undefined;
}

export interface ReadyMessage {
  type: "ready";
  /** Server: the address a client connects to (a skein address or HOST:PORT). */
  address: string;
}

export interface ReplyMessage {
  type: "reply";
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export interface RequestMessage {
  id: number;
  command: PeerCommand;
}

export interface MeasureResult {
  bytes: number;
  messages: number;
  seconds: number;
}

export interface StreamResult {
  messages: number;
  bytes: number;
  seconds: number;
}

export interface ReceivedResult {
  messages: number;
  bytes: number;
}

export interface EchoResult {
  /** Round-trip times in microseconds. */
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
  count: number;
}

export interface MemoryResult {
  /** Bytes, now. */
  rss: number;
  /** Bytes, the process's peak (process.resourceUsage().maxRSS). */
  maxRss: number;
  heapUsed: number;
}

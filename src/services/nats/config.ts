/**
 * The NATS port's configuration as the server (src/runtime/nats/server.ts) takes it: resolved from
 * flags and the configuration file by options.ts, or filled in by the runtime for `--nats-port`.
 * Types only.
 */
import type { AuthorizationSpec } from "./auth.js";
import type { ConnectionConfig } from "./connection.js";

export interface ClusterConfig {
  name?: string;
  host?: string;
  port?: number;
  routes: string[];
}

export interface NatsServerConfig {
  /** Interface to listen on (nats-server's default is 0.0.0.0). */
  host: string;
  /** 0 = any free port. */
  port: number;
  serverName?: string;
  connection: ConnectionConfig;
  authorization?: AuthorizationSpec;
  maxConnections: number;
  /** Monitoring HTTP endpoints; port 0 = any free port. */
  monitor?: { host: string; port: number };
  /** `skein nats-server` runs a skein node for it (cluster.ts: listen → link listener, routes → seeds). */
  cluster?: ClusterConfig;
  lameDuckDurationMs: number;
  lameDuckGracePeriodMs: number;
  /** Log every protocol operation at debug level (-V). */
  trace?: boolean;
  /** skein's version, reported as `skein` in INFO and /varz. */
  skeinVersion: string;
}


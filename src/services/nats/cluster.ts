/**
 * `cluster { name, listen, routes [ ] }` as skein links (issue 5): `skein nats-server` with a
 * cluster runs a skein node whose TCP link listener is the cluster `listen` address and whose
 * seeds are the `routes`. Pure: no I/O.
 *
 * NATS routes name an address only, while a skein seed names a node id too (the handshake checks
 * it). So a clustered `skein nats-server` takes the node id derived from its cluster listen
 * address (`clusterNodeId`), and a route to HOST:PORT becomes the seed
 * `clusterNodeId(HOST, PORT)@/ip4/HOST/tcp/PORT`. The rule this implies: a route must name its
 * peer by the address that peer listens on (as NATS configurations do). A wildcard listen
 * (0.0.0.0) and `localhost` count as 127.0.0.1: for clusters across hosts, listen on the address
 * the others route to. A route to the node itself (configurations often list every member) is
 * skipped.
 */
import type { NodeId } from "../../core/node-id.js";
import type { ClusterConfig } from "./config.js";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The host as node ids are derived from it: 0.0.0.0, "" and localhost are 127.0.0.1. */
export function canonicalClusterHost(host: string | undefined): string {
  if (host === undefined || host === "" || host === "0.0.0.0" || host === "localhost" || host === "::") return "127.0.0.1";
  return host;
}

/** FNV-1a (32 bits) of "HOST:PORT" with the canonical host; never 0. */
export function clusterNodeId(host: string | undefined, port: number): NodeId {
  const text = `${canonicalClusterHost(host)}:${port}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash === 0 ? 1 : hash;
}

/** `nats-route://[user:pass@]HOST:PORT` (or nats://, or bare HOST:PORT) → host and port; an error text otherwise. */
export function parseRouteUrl(url: string): { host: string; port: number } | string {
  const match = /^(?:[a-z-]+:\/\/)?(?:[^@/]*@)?([^:/@\s]+):(\d{1,5})\/?$/i.exec(url.trim());
  if (match === null) return `bad route ${JSON.stringify(url)}: expected nats-route://HOST:PORT`;
  const host = match[1] === "localhost" ? "127.0.0.1" : match[1]!;
  if (!IPV4.test(host)) return `bad route ${JSON.stringify(url)}: skein links need an IPv4 address (or localhost), not ${JSON.stringify(host)}`;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return `bad route ${JSON.stringify(url)}: port ${port} is not in 1..65535`;
  return { host, port };
}

export interface ClusterPlan {
  /** Derived from the listen address; undefined for a random port (-1): the key's own id then. */
  nodeId: NodeId | undefined;
  /** Link listener: interface and TCP port (0: any free port). */
  bind: string;
  tcpPort: number;
  /** Seeds as `NODEID@/ip4/HOST/tcp/PORT`. */
  seeds: string[];
  /** Routes left out, with why. */
  warnings: string[];
}

/** What `skein nats-server` runs for a cluster configuration. */
export function planCluster(cluster: ClusterConfig): ClusterPlan {
  const bind = cluster.host === undefined || cluster.host === "" || cluster.host === "localhost" ? (cluster.host === "localhost" ? "127.0.0.1" : "0.0.0.0") : cluster.host;
  const tcpPort = cluster.port ?? 6222;
  const nodeId = tcpPort === 0 ? undefined : clusterNodeId(bind, tcpPort);
  const seeds: string[] = [];
  const warnings: string[] = [];
  if (!IPV4.test(bind)) warnings.push(`cluster listen host ${JSON.stringify(bind)} is not an IPv4 address: skein links listen on IPv4`);
  for (const route of cluster.routes) {
    const parsed = parseRouteUrl(route);
    if (typeof parsed === "string") {
      warnings.push(`${parsed}: route ignored`);
      continue;
    }
    const id = clusterNodeId(parsed.host, parsed.port);
    if (id === nodeId) continue;
    seeds.push(`${id}@/ip4/${parsed.host}/tcp/${parsed.port}`);
  }
  return { nodeId, bind, tcpPort, seeds, warnings };
}

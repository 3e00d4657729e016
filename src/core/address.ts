/**
 * Transport addresses in multiaddr-like text form: `/ip4/127.0.0.1/udp/10001`, `/ip4/HOST/tcp/PORT`.
 * Seeds are `NODEID@ADDRESS`.
 */
import { type Decoded, decodeError, decoded } from "./errors.js";
import { type NodeId, parseNodeId } from "./node-id.js";

export type TransportKind = "udp" | "tcp";

export interface Address {
  transport: TransportKind;
  host: string;
  port: number;
}

export interface Seed {
  nodeId: NodeId;
  address: Address;
}

const ADDRESS_HELP = "expected /ip4/HOST/udp/PORT or /ip4/HOST/tcp/PORT, e.g. /ip4/127.0.0.1/udp/10001";

export function isIpv4(host: string): boolean {
  const parts = host.split(".");
  return parts.length === 4 && parts.every((part) => /^[0-9]{1,3}$/.test(part) && Number(part) <= 255);
}

export function parseAddress(text: string): Decoded<Address> {
  const parts = text.split("/");
  if (parts.length !== 5 || parts[0] !== "" || parts[1] !== "ip4") return decodeError(`bad address "${text}": ${ADDRESS_HELP}`);
  const host = parts[2]!;
  const transport = parts[3]!;
  const portText = parts[4]!;
  if (!isIpv4(host)) return decodeError(`bad address "${text}": "${host}" is not an IPv4 address; ${ADDRESS_HELP}`);
  if (transport !== "udp" && transport !== "tcp") return decodeError(`bad address "${text}": transport "${transport}" is not udp or tcp; ${ADDRESS_HELP}`);
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return decodeError(`bad address "${text}": port "${portText}" is not in 1..65535; ${ADDRESS_HELP}`);
  return decoded({ transport, host, port });
}

export function formatAddress(address: Address): string {
  return `/ip4/${address.host}/${address.transport}/${address.port}`;
}

export function parseSeed(text: string): Decoded<Seed> {
  const at = text.indexOf("@");
  if (at < 0) return decodeError(`bad seed "${text}": expected NODEID@ADDRESS, e.g. 1@/ip4/127.0.0.1/udp/10001`);
  const nodeId = parseNodeId(text.slice(0, at));
  if (nodeId === undefined) return decodeError(`bad seed "${text}": node id "${text.slice(0, at)}" is not an integer in 1..4294967295`);
  const address = parseAddress(text.slice(at + 1));
  if (!address.ok) return decodeError(`bad seed "${text}": ${address.error}`);
  return decoded({ nodeId, address: address.value });
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.transport === b.transport && a.host === b.host && a.port === b.port;
}

/**
 * `--web-addr HOST:PORT` parsing, apart from http.ts so that validating options does not load the
 * HTTP server and prom-client (about 12 MB of a node's memory) when no API is wanted.
 */
import { isIpv4 } from "../core/address.js";
import { SkeinError } from "../core/errors.js";

export interface WebAddr {
  host: string;
  port: number;
}

const WEB_ADDR_HELP = "expected HOST:PORT with an IPv4 host (or localhost) and a port in 0..65535, e.g. 127.0.0.1:8080";

/** Parses `HOST:PORT`; throws SkeinError BAD_OPTION naming the value. */
export function parseWebAddr(text: string): WebAddr {
  if (typeof text !== "string") throw new SkeinError("BAD_OPTION", `bad webAddr ${JSON.stringify(text)}: ${WEB_ADDR_HELP}`);
  const colon = text.lastIndexOf(":");
  const host = colon < 0 ? "" : text.slice(0, colon);
  const portText = colon < 0 ? "" : text.slice(colon + 1);
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(host === "localhost" || isIpv4(host)) || !(port >= 0 && port <= 65535)) {
    throw new SkeinError("BAD_OPTION", `bad webAddr "${text}": ${WEB_ADDR_HELP}`);
  }
  return { host, port };
}


/**
 * Fuzzing a live node: a real `skein node` process takes mutated captures on its UDP port and on
 * TCP connections (some opened and left idle, some cut mid-frame) while two honest nodes keep links
 * to it, one over each transport. Afterwards the victim must still run, still serve both honest
 * links (they never went down), accept a new node, and not have grown its memory without bound.
 */
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { SeededRng } from "../src/core/rng.js";
import { createNode } from "../src/runtime/node.js";
import type { SkeinNode } from "../src/node/api.js";
import { captureTraffic } from "./corpus.js";
import { mutate } from "./mutate.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const VICTIM_ID = 1;
const UDP_SOURCES = 16;
const TCP_CONNECTIONS = 8;

export interface LiveReport {
  seconds: number;
  udp_packets_sent: number;
  tcp_chunks_sent: number;
  tcp_connections_opened: number;
  victim_alive: boolean;
  honest_links_up: boolean;
  honest_link_downs: number;
  /** Why honest links went down, as the honest side saw it. */
  honest_link_down_reasons: string[];
  newcomer_joined: boolean;
  victim_dropped: Record<string, number>;
  /**
   * Heap in use after warm-up and at the end. A single reading depends on where the garbage
   * collector happens to be, so each figure is the lowest of the readings taken in that window
   * (just after a collection the reading is close to the live set): the first third of the fuzzing
   * after warm-up, and the last third plus the settled state after the traffic stopped.
   */
  heap_used_mb: { after_warmup: number; end: number };
  rss_mb: { after_warmup: number; end: number };
}

interface Listening {
  id: number;
  addresses: string[];
  web: string;
}

async function metric(web: string, name: string): Promise<number> {
  const text = await (await fetch(`${web}/metrics`)).text();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(" ")[1]);
}

async function dropped(web: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${web}/metrics`)).text();
  const result: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^skein_frames_dropped_total\{reason="([a-z_]+)"\} (\d+)/.exec(line);
    if (match) result[match[1]!] = Number(match[2]);
  }
  return result;
}

async function upPeers(web: string): Promise<number[]> {
  const body = (await (await fetch(`${web}/api/node`)).json()) as { neighbours: { id: number; state: string }[] };
  return body.neighbours.filter((neighbour) => neighbour.state === "up").map((neighbour) => neighbour.id).sort((a, b) => a - b);
}

async function until(what: string, check: () => Promise<boolean>, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function fuzzLiveNode(options: { seconds: number; seed: number }): Promise<LiveReport> {
  const rng = new SeededRng(options.seed);
  const corpus = [...captureTraffic("udp"), ...captureTraffic("tcp")].map((capture) => capture.packet);
  const victim = spawn(process.execPath, [CLI, "node", "--node-id", String(VICTIM_ID), "--udp-port", "0", "--tcp-port", "0", "--web-addr", "127.0.0.1:0", "--log-level", "error"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const honest: SkeinNode[] = [];
  const sockets: dgram.Socket[] = [];
  const connections = new Set<net.Socket>();
  try {
    const info = await new Promise<Listening>((resolve, reject) => {
      let text = "";
      victim.stdout!.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        const line = text.split("\n").find((candidate) => candidate.startsWith('{"event":"listening"'));
        if (line) resolve(JSON.parse(line) as Listening);
      });
      victim.once("exit", (code) => reject(new Error(`victim exited with ${code} before listening`)));
    });
    const udpAddress = info.addresses.find((address) => address.includes("/udp/"))!;
    const tcpAddress = info.addresses.find((address) => address.includes("/tcp/"))!;
    const udpPort = Number(udpAddress.split("/")[4]);
    const tcpPort = Number(tcpAddress.split("/")[4]);

    const downReasons: string[] = [];
    for (const [id, transport, address] of [[10, "udp", udpAddress], [11, "tcp", tcpAddress]] as const) {
      const node = await createNode({ nodeId: id, [transport === "udp" ? "udpPort" : "tcpPort"]: 0, seeds: [`${VICTIM_ID}@${address}`], logLevel: "silent", probeIntervalMs: 200, linkTimeoutMs: 3000 });
      node.on("link_down", (event) => {
        if (event.peer === VICTIM_ID) downReasons.push(`node ${id}: ${event.reason}`);
      });
      honest.push(node);
    }
    await until("honest links up", async () => JSON.stringify(await upPeers(info.web)) === "[10,11]");

    for (let index = 0; index < UDP_SOURCES; index += 1) {
      const socket = dgram.createSocket("udp4");
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
      sockets.push(socket);
    }
    let udpSent = 0;
    let tcpSent = 0;
    let tcpOpened = 0;
    const pick = (): Uint8Array => mutate(rng, corpus[rng.nextInt(corpus.length)]!, corpus[rng.nextInt(corpus.length)]);
    const openConnection = (): void => {
      const socket = net.connect(tcpPort, "127.0.0.1");
      tcpOpened += 1;
      socket.on("error", () => {});
      socket.on("close", () => connections.delete(socket));
      connections.add(socket);
    };

    const start = Date.now();
    const warmupEnd = start + (options.seconds * 1000) / 3;
    const fuzzMs = options.seconds * 1000;
    const heapEarly: number[] = [];
    const heapLate: number[] = [];
    let nextHeapReading = warmupEnd;
    let rssWarm = NaN;
    while (Date.now() - start < fuzzMs) {
      for (let burst = 0; burst < 64; burst += 1) {
        const socket = sockets[rng.nextInt(sockets.length)]!;
        socket.send(pick(), udpPort, "127.0.0.1");
        udpSent += 1;
      }
      while (connections.size < TCP_CONNECTIONS) openConnection();
      for (const socket of connections) {
        const roll = rng.nextInt(10);
        if (roll === 0) socket.destroy(); // cut, possibly mid-frame
        else if (roll < 8 && socket.writable) {
          socket.write(pick());
          tcpSent += 1;
        } // else: leave it idle (half-open until the victim expires it)
      }
      if (Date.now() >= nextHeapReading) {
        const elapsed = Date.now() - start;
        const reading = await metric(info.web, "nodejs_heap_size_used_bytes");
        if (elapsed < (fuzzMs * 5) / 9) heapEarly.push(reading);
        else if (elapsed >= (fuzzMs * 7) / 9) heapLate.push(reading);
        if (Number.isNaN(rssWarm)) rssWarm = await metric(info.web, "process_resident_memory_bytes");
        nextHeapReading = Date.now() + 100;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (const socket of connections) socket.destroy();

    const alive = victim.exitCode === null && victim.signalCode === null;
    await until("honest links still up on the victim", async () => JSON.stringify(await upPeers(info.web)) === "[10,11]", 10_000).catch(() => {});
    const linksUp = alive && JSON.stringify(await upPeers(info.web)) === "[10,11]" && honest.every((node) => node.neighbours().some((n) => n.id === VICTIM_ID && n.state === "up"));
    const newcomer = await createNode({ nodeId: 12, udpPort: 0, seeds: [`${VICTIM_ID}@${udpAddress}`], logLevel: "silent" });
    honest.push(newcomer);
    let joined = false;
    try {
      await until("a newcomer joins", async () => newcomer.neighbours().some((n) => n.id === VICTIM_ID && n.state === "up"), 10_000);
      joined = true;
    } catch {
      joined = false;
    }
    return {
      seconds: options.seconds,
      udp_packets_sent: udpSent,
      tcp_chunks_sent: tcpSent,
      tcp_connections_opened: tcpOpened,
      victim_alive: alive,
      honest_links_up: linksUp,
      honest_link_downs: downReasons.length,
      honest_link_down_reasons: downReasons,
      newcomer_joined: joined,
      victim_dropped: alive ? await dropped(info.web) : {},
      heap_used_mb: { after_warmup: round(Math.min(...heapEarly) / 2 ** 20), end: round(Math.min(...heapLate, ...(await settledHeap(info.web))) / 2 ** 20) },
      rss_mb: { after_warmup: round(rssWarm / 2 ** 20), end: round((await metric(info.web, "process_resident_memory_bytes")) / 2 ** 20) },
    };
  } finally {
    for (const socket of sockets) socket.close();
    for (const socket of connections) socket.destroy();
    await Promise.all(honest.map((node) => node.close()));
    if (victim.exitCode === null && victim.signalCode === null) {
      victim.kill("SIGKILL");
      await once(victim, "exit");
    }
  }
}

/** Readings over a second after the traffic stopped, when only the honest links are active. */
async function settledHeap(web: string): Promise<number[]> {
  const readings: number[] = [];
  for (let index = 0; index < 10; index += 1) {
    readings.push(await metric(web, "nodejs_heap_size_used_bytes"));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return readings;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * The node engine: composes the modules of one node (links, the raw data service) behind the pure
 * driver contract of io.ts. It never touches a socket, a clock or Math.random: the runtime and the
 * simulator drive the very same code.
 */
import { type Address, type Seed, formatAddress, sameAddress } from "../core/address.js";
import { SkeinError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { type EngineModule, type InboundFrame, type ModuleHost, ModuleId } from "../core/module.js";
import type { NodeId } from "../core/node-id.js";
import { ArqChannel, DEFAULT_ARQ_CONFIG } from "../link/arq.js";
import {
  CONNECT_TIMEOUT_MS,
  HELLO_RETRY_MS,
  MAX_HALF_OPEN_PATHS,
  MAX_KNOWN_PEERS,
  MAX_PARALLEL_CONNECTS,
  PEER_EXCHANGE_INTERVAL_MS,
  PEER_FORGET_MS,
  RECONNECT_BACKOFF_MAX_MS,
  RECONNECT_BACKOFF_MIN_MS,
  STREAM_PACKET_MAX_BYTES,
} from "../link/constants.js";
import { type KnownPeer, LinkMeasurement, type LinkState } from "../link/link.js";
import { type LinkMessage, MAX_PEERS_PER_MESSAGE, type PeerEntry, RejectReason, decodeLinkMessage, encodeLinkMessage } from "../link/messages.js";
import { DEFAULT_TTL, FRAME_HEADER_BYTES, FrameFlag, FrameKind, MAX_FRAME_PAYLOAD_BYTES, type FrameHeader, encodeFrame, forEachFrame, writeFrameHeader } from "../wire/frame.js";
import { DataService, type DataEvent } from "./data-service.js";
import type { EngineConfig } from "./engine-config.js";
import type { EngineIo, EngineOutput, NeighbourInfo, NodeEvent, PathId } from "./io.js";

/** How often the engine re-checks whether it should open more links (also run on demand). */
const MAINTAIN_INTERVAL_MS = 250;
/** Payloads at least this large go to a stream transport without being copied into the frame. */
const ZERO_COPY_MIN_PAYLOAD_BYTES = 4096;
/** ARQ segment header: u32 seq + u8 flags. */
const ARQ_SEGMENT_HEADER_BYTES = 5;

export interface LinkStats {
  peer: NodeId;
  srttMs: number | undefined;
  rttvarMs: number | undefined;
  loss: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
}

export interface EngineStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Frames dropped, by reason (a short snake_case word such as "malformed", "no_route", "queue_full"). */
  dropped: Record<string, number>;
  links: LinkStats[];
}

interface Path {
  id: PathId;
  address: Address;
  inbound: boolean;
  opened: boolean;
  /** When the path appeared: an inbound path with no link by CONNECT_TIMEOUT_MS later is closed. */
  createdAt: number;
  link: Link | undefined;
  /** Frames waiting to be packed into packets at the next flush. */
  pending: Uint8Array[];
  /**
   * For large frames on stream transports, `pending[i]` holds only the header and `tails[i]` the
   * caller's payload, written after it without a copy. Undefined while no frame has a tail.
   */
  tails: (Uint8Array | undefined)[] | undefined;
  pendingBytes: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
}

interface Link {
  peer: NodeId;
  path: Path;
  state: LinkState;
  /** The peer's hello session: a different one later means the peer restarted. */
  peerSession: number | undefined;
  peerAddresses: Address[];
  measurement: LinkMeasurement;
  /** The UDP reliable class; undefined over TCP, where the stream is reliable already. */
  arq: ArqChannel | undefined;
  nextPeerExchangeAt: number;
}

export class NodeEngine implements EngineIo {
  readonly id: NodeId;
  private readonly config: EngineConfig;
  private readonly log: Logger;
  private readonly session: number;
  private readonly paths = new Map<PathId, Path>();
  private readonly udpPathByAddress = new Map<string, Path>();
  /** Inbound paths that have not (yet) carried a hello, oldest first. */
  private readonly halfOpen = new Set<Path>();
  /** Links by peer: at most one per peer (duplicates are resolved at hello time). */
  private readonly links = new Map<NodeId, Link>();
  private readonly known = new Map<NodeId, KnownPeer>();
  private readonly outputs: EngineOutput[] = [];
  private outputHead = 0;
  private readonly dirtyPaths: Path[] = [];
  private nextPathId = 1;
  private maintainAt = 0;
  private started = false;
  private closed = false;
  private readonly dataService: DataService;
  private readonly modules = new Map<number, EngineModule<unknown, unknown>>();
  private readonly counters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  private readonly dropped: Record<string, number> = {};
  private now = 0;
  /** The path of the packet `receive` is taking apart. */
  private receivingPath: Path | undefined;

  constructor(config: EngineConfig) {
    this.id = config.nodeId;
    this.config = config;
    this.log = config.logger.child({ module: "link", node: config.nodeId });
    this.session = config.rng.nextU32();
    const host: ModuleHost = {
      localId: config.nodeId,
      rng: config.rng,
      logger: config.logger,
      send: (destination, module, payload, options) => this.sendRouted(destination, module, payload, options.reliable),
    };
    this.dataService = new DataService(host);
    this.modules.set(this.dataService.id, this.dataService as EngineModule<unknown, unknown>);
    for (const seed of config.seeds) this.rememberSeed(seed);
  }

  // ─── Public controls ──────────────────────────────────────────────────────────────────────────

  /** Begins joining: connects to the seeds. */
  start(now: number): void {
    this.now = now;
    this.started = true;
    this.maintainAt = now;
    this.maintain(now);
  }

  addSeed(now: number, seed: Seed): void {
    this.now = now;
    this.rememberSeed(seed);
    this.maintainAt = now;
  }

  neighbours(): NeighbourInfo[] {
    const result: NeighbourInfo[] = [];
    for (const link of this.links.values()) {
      result.push({
        id: link.peer,
        address: formatAddress(link.path.address),
        transport: link.path.address.transport,
        inbound: link.path.inbound,
        state: link.state.kind === "up" ? "up" : "connecting",
        srttMs: link.measurement.rtt.srttMs,
        rttvarMs: link.measurement.rtt.rttvarMs,
        loss: link.measurement.loss.ratio,
        upSinceMs: link.state.kind === "up" ? link.state.since : undefined,
      });
    }
    return result.sort((a, b) => a.id - b.id);
  }

  /**
   * Sends `data` to `destination` (a neighbour for now; routing comes later) on the data service.
   * Throws SkeinError with code NO_ROUTE, TOO_LARGE or BACKPRESSURE (reliable queue full: wait and retry).
   */
  send(now: number, destination: NodeId, data: Uint8Array, options: { reliable: boolean }): void {
    this.now = now;
    const error = this.dataService.send(destination, data, options.reliable);
    if (error !== undefined) throw error;
  }

  /** Bytes queued inside the engine for `peer` (UDP reliable class); 0 over TCP. */
  backlogBytes(peer: NodeId): number {
    const link = this.links.get(peer);
    return link?.arq?.queuedBytes ?? 0;
  }

  /** Says goodbye to every neighbour and closes every path. */
  shutdown(now: number): void {
    if (this.closed) return;
    this.now = now;
    for (const link of this.links.values()) {
      if (link.state.kind === "up") this.sendLink(link.path, link.peer, { type: "goodbye", detail: "node shutting down" });
    }
    this.flush();
    for (const path of [...this.paths.values()]) this.closePath(path);
    this.links.clear();
    this.closed = true;
  }

  stats(): EngineStats {
    const links: LinkStats[] = [];
    for (const link of this.links.values()) {
      links.push({
        peer: link.peer,
        srttMs: link.measurement.rtt.srttMs,
        rttvarMs: link.measurement.rtt.rttvarMs,
        loss: link.measurement.loss.ratio,
        framesIn: link.path.framesIn,
        framesOut: link.path.framesOut,
        bytesIn: link.path.bytesIn,
        bytesOut: link.path.bytesOut,
      });
    }
    return { ...this.counters, dropped: { ...this.dropped }, links };
  }

  // ─── Driver inputs (io.ts) ────────────────────────────────────────────────────────────────────

  acceptPath(now: number, address: Address): PathId | undefined {
    this.now = now;
    if (this.closed) return undefined;
    if (address.transport === "udp") {
      const existing = this.udpPathByAddress.get(formatAddress(address));
      if (existing) return existing.id;
    }
    this.expireHalfOpen(now);
    if (this.halfOpen.size >= MAX_HALF_OPEN_PATHS) {
      this.drop("half_open_limit");
      return undefined;
    }
    const path = this.newPath(address, true);
    path.opened = true;
    this.halfOpen.add(path);
    return path.id;
  }

  pathOpened(now: number, pathId: PathId): void {
    this.now = now;
    const path = this.paths.get(pathId);
    if (!path || path.opened) return;
    path.opened = true;
    const link = path.link;
    if (link && link.state.kind === "opening") {
      // The secure handshake of the next version runs here, before any other frame.
      link.state = { kind: "handshaking", since: now };
      this.sendHello(link, now);
    }
  }

  pathClosed(now: number, pathId: PathId, reason: string): void {
    this.now = now;
    const path = this.paths.get(pathId);
    if (!path) return;
    this.forgetPath(path);
    const link = path.link;
    if (!link || this.links.get(link.peer) !== link) return;
    if (link.state.kind === "up") this.linkDown(link, `transport closed: ${reason}`, now);
    else this.connectFailed(link, `could not connect to ${formatAddress(path.address)}: ${reason}`, now);
  }

  receive(now: number, pathId: PathId, packet: Uint8Array): void {
    this.now = now;
    const path = this.paths.get(pathId);
    if (!path || this.closed) {
      this.drop("no_path");
      return;
    }
    path.bytesIn += packet.byteLength;
    this.counters.bytesIn += packet.byteLength;
    this.receivingPath = path;
    const error = forEachFrame(packet, this.onReceivedFrame);
    if (error !== undefined) {
      this.drop("malformed");
      this.log.debug({ path: formatAddress(path.address), error }, "malformed packet dropped");
    }
    const link = path.link;
    if (link?.arq && this.links.get(link.peer) === link) this.pumpArq(link);
  }

  tick(now: number): void {
    this.now = now;
    if (this.closed) return;
    for (const link of [...this.links.values()]) this.tickLink(link, now);
    this.expireHalfOpen(now);
    if (now >= this.maintainAt) this.maintain(now);
  }

  nextDeadline(): number {
    if (this.closed) return Infinity;
    let deadline = this.started ? this.maintainAt : Infinity;
    if (this.halfOpen.size > 0) deadline = Math.min(deadline, this.halfOpen.values().next().value!.createdAt + CONNECT_TIMEOUT_MS);
    for (const link of this.links.values()) {
      const state = link.state;
      if (state.kind === "up") {
        deadline = Math.min(deadline, link.measurement.nextDeadline(), link.nextPeerExchangeAt);
        if (link.arq) deadline = Math.min(deadline, link.arq.nextDeadline(), link.arq.ackDeadline());
      } else if (state.kind === "hello_sent") {
        deadline = Math.min(deadline, state.lastHelloAt + HELLO_RETRY_MS, state.since + CONNECT_TIMEOUT_MS);
      } else {
        deadline = Math.min(deadline, state.since + CONNECT_TIMEOUT_MS);
      }
    }
    return deadline;
  }

  pollOutput(): EngineOutput | undefined {
    if (this.outputHead >= this.outputs.length) {
      this.outputs.length = 0;
      this.outputHead = 0;
      this.flush();
      if (this.outputs.length === 0) return undefined;
    }
    const output = this.outputs[this.outputHead]!;
    this.outputs[this.outputHead] = undefined as unknown as EngineOutput;
    this.outputHead += 1;
    return output;
  }

  // ─── Frames in ────────────────────────────────────────────────────────────────────────────────

  /** Bound once: `receive` runs for every packet, and a closure per packet is garbage. */
  private readonly onReceivedFrame = (header: FrameHeader, payload: Uint8Array): void => {
    const path = this.receivingPath!;
    path.framesIn += 1;
    this.counters.framesIn += 1;
    this.onFrame(path, header, payload, false);
  };

  private onFrame(path: Path, header: FrameHeader, payload: Uint8Array, viaArq: boolean): void {
    switch (header.kind) {
      case FrameKind.Link:
        this.onLinkFrame(path, header, payload);
        return;
      case FrameKind.Routed:
        this.onRoutedFrame(path, header, payload, viaArq || (header.flags & FrameFlag.Reliable) !== 0);
        return;
      case FrameKind.ArqSegment:
      case FrameKind.ArqAck:
        this.onArqFrame(path, header, payload);
        return;
      default:
        this.drop("unsupported_kind");
    }
  }

  private linkOf(path: Path, header: FrameHeader): Link | undefined {
    const link = path.link;
    if (!link || link.state.kind !== "up" || this.links.get(link.peer) !== link) return undefined;
    if (header.source !== link.peer) return undefined;
    return link;
  }

  private onLinkFrame(path: Path, header: FrameHeader, payload: Uint8Array): void {
    const decodedMessage = decodeLinkMessage(payload);
    if (!decodedMessage.ok) {
      this.drop("malformed");
      this.log.debug({ path: formatAddress(path.address), error: decodedMessage.error }, "malformed link message dropped");
      return;
    }
    const message = decodedMessage.value;
    if (header.destination !== 0 && header.destination !== this.id) {
      this.drop("wrong_destination");
      if (message.type === "hello") {
        this.sendLink(path, header.source, { type: "hello_reject", reason: RejectReason.WrongId, detail: `this is node ${this.id}, not ${header.destination}` });
      }
      return;
    }
    switch (message.type) {
      case "hello":
        this.onHello(path, header.source, message.session, message.addresses);
        return;
      case "hello_ack":
        this.onHelloAck(path, header.source, message.session, message.addresses);
        return;
      case "hello_reject":
        this.onHelloReject(path, header.source, message.reason, message.detail);
        return;
      case "reset": {
        const link = path.link;
        if (link && header.source === link.peer && this.links.get(link.peer) === link && link.state.kind === "up") {
          // The peer lost the link (it restarted, or timed us out): what was in flight is gone, so
          // this is a real link_down; reconnect at once.
          this.linkDown(link, "peer has no link with us (it restarted or timed us out)", this.now);
          const known = this.known.get(link.peer);
          if (known) known.retryAt = this.now;
        }
        return;
      }
      default:
        break;
    }
    const link = this.linkOf(path, header);
    if (!link) {
      this.drop("no_link");
      // The sender believes in a link we do not have (we restarted, or timed it out): tell it. Not
      // while our own hello to it is pending: the hello exchange settles that case.
      const pending = path.link !== undefined && path.link.peer === header.source && this.links.get(header.source) === path.link;
      if (header.source !== 0 && message.type !== "goodbye" && !pending) this.sendLink(path, header.source, { type: "reset" });
      return;
    }
    link.measurement.lastReceivedAt = this.now;
    switch (message.type) {
      case "probe":
        this.sendLink(path, link.peer, { type: "probe_ack", seq: message.seq });
        return;
      case "probe_ack":
        if (link.measurement.onProbeAck(this.now, message.seq)) {
          const rtt = link.measurement.rtt;
          this.emit({ kind: "rtt", peer: link.peer, srttMs: rtt.srttMs!, rttvarMs: rtt.rttvarMs!, loss: link.measurement.loss.ratio });
        }
        return;
      case "peers":
        this.onPeers(link, message.peers);
        return;
      case "goodbye":
        this.linkDown(link, `peer left: ${message.detail}`, this.now);
        this.deferPeer(link.peer, this.now + RECONNECT_BACKOFF_MAX_MS);
        return;
    }
  }

  private onRoutedFrame(path: Path, header: FrameHeader, payload: Uint8Array, reliable: boolean): void {
    const link = this.linkOf(path, header);
    if (!link) {
      this.drop("no_link");
      return;
    }
    link.measurement.lastReceivedAt = this.now;
    if (header.ttl === 0) {
      this.drop("ttl_expired");
      return;
    }
    if (header.destination !== this.id) {
      // Relaying arrives with the routing layer; until then a frame for another node has no route.
      this.drop("no_route");
      return;
    }
    const module = this.modules.get(header.module);
    if (!module) {
      this.drop("unknown_module");
      return;
    }
    const frame: InboundFrame = { neighbour: link.peer, source: header.source, reliable, payload };
    module.onFrame(this.now, frame);
    this.drainModuleEvents();
  }

  private onArqFrame(path: Path, header: FrameHeader, payload: Uint8Array): void {
    const link = this.linkOf(path, header);
    if (!link || !link.arq) {
      this.drop("no_link");
      return;
    }
    link.measurement.lastReceivedAt = this.now;
    const error = header.kind === FrameKind.ArqSegment ? link.arq.onSegment(this.now, payload) : link.arq.onAck(this.now, payload);
    if (error !== undefined) {
      this.drop("malformed");
      this.log.debug({ peer: link.peer, error }, "malformed ARQ frame dropped");
    }
  }

  // ─── Hello exchange ───────────────────────────────────────────────────────────────────────────

  private onHello(path: Path, peer: NodeId, session: number, addresses: Address[]): void {
    if (peer === this.id || peer === 0) {
      this.sendLink(path, peer, { type: "hello_reject", reason: RejectReason.IdConflict, detail: `node id ${peer} is this node's own id` });
      this.log.warn({ address: formatAddress(path.address) }, `a node at ${formatAddress(path.address)} claims this node's id ${this.id}; refused`);
      return;
    }
    const onPath = path.link;
    if (onPath && this.links.get(onPath.peer) === onPath) {
      if (onPath.peer !== peer) {
        this.sendLink(path, peer, { type: "hello_reject", reason: RejectReason.WrongId, detail: `this path belongs to node ${onPath.peer}` });
        return;
      }
      if (onPath.state.kind === "up" && onPath.peerSession === session) {
        this.sendHelloAck(onPath); // our earlier ack was lost
        return;
      }
      if (onPath.state.kind === "up") {
        this.linkDown(onPath, "peer restarted", this.now);
        this.acceptLink(path, peer, session, addresses);
        return;
      }
      // Both sides opened at once over the same UDP path: the hello answers ours.
      onPath.peerSession = session;
      onPath.peerAddresses = addresses;
      this.sendHelloAck(onPath);
      this.linkUp(onPath);
      return;
    }
    const existing = this.links.get(peer);
    if (existing) {
      if (existing.state.kind === "up" && existing.peerSession === session) {
        // The peer opened a new transport (it saw the old one die first): move the link over.
        this.log.debug({ peer }, "peer reconnected; moving the link to the new path");
        const old = existing.path;
        old.link = undefined;
        this.closePath(old);
        existing.path = path;
        path.link = existing;
        existing.measurement.lastReceivedAt = this.now;
        this.sendHelloAck(existing);
        return;
      }
      if (existing.state.kind === "up") {
        this.linkDown(existing, "peer restarted", this.now);
      } else if (peer > this.id) {
        // Simultaneous open over two TCP connections: the one the lower id opened wins, here ours.
        return;
      } else {
        this.abandon(existing);
      }
    }
    if (this.upLinkCount() >= this.config.maxNeighbours) {
      this.sendLink(path, peer, { type: "hello_reject", reason: RejectReason.Full, detail: `node ${this.id} has its ${this.config.maxNeighbours} neighbours` });
      this.flush();
      if (path.address.transport === "tcp") this.closePath(path);
      return;
    }
    this.acceptLink(path, peer, session, addresses);
  }

  private acceptLink(path: Path, peer: NodeId, session: number, addresses: Address[]): void {
    const link = this.newLink(path, peer, { kind: "hello_sent", since: this.now, lastHelloAt: this.now });
    link.peerSession = session;
    link.peerAddresses = addresses;
    this.sendHelloAck(link);
    this.linkUp(link);
  }

  private onHelloAck(path: Path, peer: NodeId, session: number, addresses: Address[]): void {
    const link = path.link;
    if (!link || this.links.get(link.peer) !== link) {
      this.drop("no_link");
      return;
    }
    if (peer !== link.peer) {
      this.log.error(
        { expected: link.peer, answered: peer, address: formatAddress(path.address) },
        `node at ${formatAddress(path.address)} answered as node ${peer}, expected ${link.peer}: check the seed's NODEID@ADDRESS`,
      );
      this.connectFailed(link, `wrong node id ${peer} at ${formatAddress(path.address)}`, this.now);
      return;
    }
    if (link.state.kind === "up") {
      if (link.peerSession !== session) {
        this.linkDown(link, "peer restarted", this.now);
      }
      return;
    }
    link.peerSession = session;
    link.peerAddresses = addresses;
    this.linkUp(link);
  }

  private onHelloReject(path: Path, peer: NodeId, reason: RejectReason, detail: string): void {
    const link = path.link;
    if (!link || this.links.get(link.peer) !== link || link.state.kind === "up") return;
    const why = `node ${peer} refused the link: ${detail}`;
    if (reason === RejectReason.Full) this.log.info({ peer }, why);
    else this.log.error({ peer }, why);
    this.connectFailed(link, why, this.now);
  }

  private sendHello(link: Link, now: number): void {
    link.state = { kind: "hello_sent", since: link.state.kind === "hello_sent" ? link.state.since : now, lastHelloAt: now };
    this.sendLink(link.path, link.peer, { type: "hello", session: this.session, addresses: this.config.listenAddresses });
  }

  private sendHelloAck(link: Link): void {
    this.sendLink(link.path, link.peer, { type: "hello_ack", session: this.session, addresses: this.config.listenAddresses });
  }

  private linkUp(link: Link): void {
    const now = this.now;
    link.state = { kind: "up", since: now };
    link.measurement = new LinkMeasurement(now, this.config, this.config.rng);
    if (link.path.address.transport === "udp") {
      link.arq = new ArqChannel({ ...DEFAULT_ARQ_CONFIG, maxSegmentBytes: this.config.udpMtu - FRAME_HEADER_BYTES - ARQ_SEGMENT_HEADER_BYTES });
    }
    link.nextPeerExchangeAt = now;
    const known = this.known.get(link.peer);
    if (known) {
      known.failures = 0;
      known.retryAt = now;
      if (link.peerAddresses.length > 0) known.addresses = link.peerAddresses;
    } else {
      this.rememberPeer(link.peer, link.peerAddresses, now);
    }
    this.log.info({ peer: link.peer, address: formatAddress(link.path.address), inbound: link.path.inbound }, "link up");
    this.emit({
      kind: "link_up",
      peer: link.peer,
      address: formatAddress(link.path.address),
      transport: link.path.address.transport,
      inbound: link.path.inbound,
    });
  }

  private linkDown(link: Link, reason: string, now: number): void {
    if (this.links.get(link.peer) !== link) return;
    this.links.delete(link.peer);
    if (link.path.link === link) link.path.link = undefined;
    this.closePath(link.path);
    this.log.info({ peer: link.peer, reason }, "link down");
    this.emit({ kind: "link_down", peer: link.peer, reason });
    this.deferPeer(link.peer, now + RECONNECT_BACKOFF_MIN_MS);
    this.maintainAt = Math.min(this.maintainAt, now);
  }

  /** An outbound attempt that did not become a link. */
  private connectFailed(link: Link, reason: string, now: number): void {
    const known = this.known.get(link.peer);
    this.abandon(link);
    if (!known) return;
    known.failures += 1;
    const backoff = Math.min(RECONNECT_BACKOFF_MAX_MS, RECONNECT_BACKOFF_MIN_MS * 2 ** Math.min(known.failures - 1, 16));
    known.retryAt = now + backoff;
    if (known.isSeed) {
      this.log.warn(
        { seed: known.nodeId, reason, retryInMs: backoff },
        `seed ${known.nodeId}@${known.addresses.map(formatAddress).join(",")} unreachable (${reason}); retrying in ${(backoff / 1000).toFixed(1)} s`,
      );
    } else {
      this.log.debug({ peer: known.nodeId, reason, retryInMs: backoff }, "connection attempt failed");
    }
  }

  /** Drops a link that is not up, without events. */
  private abandon(link: Link): void {
    if (this.links.get(link.peer) === link) this.links.delete(link.peer);
    if (link.path.link === link) link.path.link = undefined;
    this.closePath(link.path);
  }

  // ─── Timers ───────────────────────────────────────────────────────────────────────────────────

  private tickLink(link: Link, now: number): void {
    const state = link.state;
    if (state.kind === "opening" || state.kind === "handshaking") {
      if (now >= state.since + CONNECT_TIMEOUT_MS) this.connectFailed(link, `no answer within ${CONNECT_TIMEOUT_MS} ms`, now);
      return;
    }
    if (state.kind === "hello_sent") {
      if (now >= state.since + CONNECT_TIMEOUT_MS) this.connectFailed(link, `no answer to hello within ${CONNECT_TIMEOUT_MS} ms`, now);
      else if (now >= state.lastHelloAt + HELLO_RETRY_MS) this.sendHello(link, now);
      return;
    }
    const measurement = link.measurement;
    if (measurement.isDead(now)) {
      this.linkDown(link, `timeout: nothing received for ${this.config.linkTimeoutMs} ms`, now);
      return;
    }
    measurement.expireProbes(now);
    const seq = measurement.takeProbe(now);
    if (seq !== undefined) this.sendLink(link.path, link.peer, { type: "probe", seq });
    if (now >= link.nextPeerExchangeAt) {
      link.nextPeerExchangeAt = now + PEER_EXCHANGE_INTERVAL_MS * (0.9 + 0.2 * this.config.rng.nextFloat());
      this.sendPeerList(link);
    }
    if (link.arq) {
      link.arq.tick(now);
      this.pumpArq(link);
    }
  }

  // ─── Joining and the neighbour set ────────────────────────────────────────────────────────────

  private rememberSeed(seed: Seed): void {
    const known = this.known.get(seed.nodeId);
    if (known) {
      known.isSeed = true;
      if (!known.addresses.some((address) => sameAddress(address, seed.address))) known.addresses.unshift(seed.address);
      return;
    }
    this.known.set(seed.nodeId, { nodeId: seed.nodeId, addresses: [seed.address], lastMentionedAt: this.now, failures: 0, retryAt: 0, isSeed: true });
  }

  private rememberPeer(nodeId: NodeId, addresses: Address[], now: number): void {
    if (nodeId === this.id || nodeId === 0) return;
    const known = this.known.get(nodeId);
    if (known) {
      known.lastMentionedAt = now;
      if (addresses.length > 0 && !this.links.has(nodeId) && !known.isSeed) known.addresses = addresses;
      return;
    }
    if (this.known.size >= MAX_KNOWN_PEERS || addresses.length === 0) return;
    this.known.set(nodeId, { nodeId, addresses, lastMentionedAt: now, failures: 0, retryAt: now, isSeed: false });
    this.maintainAt = Math.min(this.maintainAt, now);
  }

  private deferPeer(nodeId: NodeId, until: number): void {
    const known = this.known.get(nodeId);
    if (known) known.retryAt = Math.max(known.retryAt, until);
  }

  private onPeers(from: Link, peers: PeerEntry[]): void {
    for (const peer of peers) this.rememberPeer(peer.nodeId, peer.addresses, this.now);
    void from;
  }

  private sendPeerList(link: Link): void {
    const entries: PeerEntry[] = [];
    for (const other of this.links.values()) {
      if (other === link || other.state.kind !== "up" || other.peerAddresses.length === 0) continue;
      entries.push({ nodeId: other.peer, addresses: other.peerAddresses });
    }
    for (let start = 0; start < entries.length; start += MAX_PEERS_PER_MESSAGE) {
      this.sendLink(link.path, link.peer, { type: "peers", peers: entries.slice(start, start + MAX_PEERS_PER_MESSAGE) });
    }
  }

  private upLinkCount(): number {
    let count = 0;
    for (const link of this.links.values()) if (link.state.kind === "up") count += 1;
    return count;
  }

  /** Opens links to known peers while there is room (full mesh up to maxNeighbours). */
  private maintain(now: number): void {
    this.maintainAt = now + MAINTAIN_INTERVAL_MS;
    if (!this.started || this.closed) return;
    let linked = this.links.size;
    let connecting = 0;
    for (const link of this.links.values()) if (link.state.kind !== "up") connecting += 1;
    const candidates: KnownPeer[] = [];
    for (const known of this.known.values()) {
      if (this.links.has(known.nodeId)) continue;
      if (!known.isSeed && now - known.lastMentionedAt > PEER_FORGET_MS && known.failures > 0) {
        this.known.delete(known.nodeId);
        continue;
      }
      if (known.retryAt <= now) candidates.push(known);
    }
    // Seeds first (they are how a node gets in), then the rest in random order.
    for (let index = candidates.length - 1; index > 0; index -= 1) {
      const other = this.config.rng.nextInt(index + 1);
      [candidates[index], candidates[other]] = [candidates[other]!, candidates[index]!];
    }
    candidates.sort((a, b) => Number(b.isSeed) - Number(a.isSeed));
    for (const known of candidates) {
      if (linked >= this.config.maxNeighbours || connecting >= MAX_PARALLEL_CONNECTS) break;
      const address = this.pickAddress(known.addresses);
      if (!address) continue;
      this.connect(known.nodeId, address, now);
      linked += 1;
      connecting += 1;
    }
  }

  private pickAddress(addresses: Address[]): Address | undefined {
    const ours = new Set(this.config.listenAddresses.map((address) => address.transport));
    return addresses.find((address) => address.transport === "udp" && ours.has("udp")) ?? addresses.find((address) => ours.has(address.transport));
  }

  private connect(peer: NodeId, address: Address, now: number): void {
    let path = address.transport === "udp" ? this.udpPathByAddress.get(formatAddress(address)) : undefined;
    if (path?.link && this.links.get(path.link.peer) === path.link) return;
    const reuse = path !== undefined;
    path ??= this.newPath(address, false);
    const link = this.newLink(path, peer, { kind: "opening", since: now });
    if (reuse) {
      link.state = { kind: "handshaking", since: now };
      this.sendHello(link, now);
    } else {
      this.output({ kind: "open_path", pathId: path.id, address });
    }
  }

  // ─── Paths and frames out ─────────────────────────────────────────────────────────────────────

  /** Closes inbound paths that never said hello (idle connections, one-off garbage senders). */
  private expireHalfOpen(now: number): void {
    for (const path of this.halfOpen) {
      if (path.link !== undefined || !this.paths.has(path.id)) {
        this.halfOpen.delete(path);
        continue;
      }
      if (now < path.createdAt + CONNECT_TIMEOUT_MS) break;
      this.halfOpen.delete(path);
      this.closePath(path);
    }
  }

  private newPath(address: Address, inbound: boolean): Path {
    const path: Path = {
      id: this.nextPathId++,
      address,
      inbound,
      opened: false,
      createdAt: this.now,
      link: undefined,
      pending: [],
      tails: undefined,
      pendingBytes: 0,
      framesIn: 0,
      framesOut: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.paths.set(path.id, path);
    if (address.transport === "udp") this.udpPathByAddress.set(formatAddress(address), path);
    return path;
  }

  private newLink(path: Path, peer: NodeId, state: LinkState): Link {
    this.halfOpen.delete(path);
    const link: Link = {
      peer,
      path,
      state,
      peerSession: undefined,
      peerAddresses: [],
      measurement: new LinkMeasurement(this.now, this.config, this.config.rng),
      arq: undefined,
      nextPeerExchangeAt: Infinity,
    };
    path.link = link;
    this.links.set(peer, link);
    return link;
  }

  private forgetPath(path: Path): void {
    this.paths.delete(path.id);
    this.halfOpen.delete(path);
    const key = formatAddress(path.address);
    if (path.address.transport === "udp" && this.udpPathByAddress.get(key) === path) this.udpPathByAddress.delete(key);
  }

  private closePath(path: Path): void {
    if (!this.paths.has(path.id)) return;
    this.flushPath(path);
    this.forgetPath(path);
    this.output({ kind: "close_path", pathId: path.id });
  }

  private sendLink(path: Path, peer: NodeId, message: LinkMessage): void {
    const frame = encodeFrame(
      { kind: FrameKind.Link, flags: 0, ttl: 1, source: this.id, destination: peer, module: ModuleId.Link },
      encodeLinkMessage(message),
    );
    this.queueFrame(path, frame);
  }

  /** The send primitive modules use (ModuleHost.send). Returns a SkeinError instead of throwing. */
  private sendRouted(destination: NodeId, module: number, payload: Uint8Array, reliable: boolean): SkeinError | undefined {
    if (this.closed) return new SkeinError("CLOSED", "the node is closed");
    if (payload.byteLength > MAX_FRAME_PAYLOAD_BYTES) {
      return new SkeinError("TOO_LARGE", `message of ${payload.byteLength} bytes exceeds the ${MAX_FRAME_PAYLOAD_BYTES}-byte limit; split it`);
    }
    const link = this.links.get(destination);
    if (!link || link.state.kind !== "up") {
      this.drop("no_route");
      return new SkeinError("NO_ROUTE", `no route to node ${destination}: it is not a neighbour of node ${this.id} (yet)`);
    }
    const header = { kind: FrameKind.Routed, flags: reliable ? FrameFlag.Reliable : 0, ttl: DEFAULT_TTL, source: this.id, destination, module };
    if (link.path.address.transport === "tcp" && payload.byteLength >= ZERO_COPY_MIN_PAYLOAD_BYTES) {
      const headerBytes = new Uint8Array(FRAME_HEADER_BYTES);
      writeFrameHeader(headerBytes, 0, { ...header, length: payload.byteLength });
      this.queueFrame(link.path, headerBytes, payload);
      return undefined;
    }
    const frame = encodeFrame(header, payload);
    if (link.arq && reliable) {
      if (!link.arq.send(this.now, frame)) {
        this.drop("queue_full");
        return new SkeinError("BACKPRESSURE", `the reliable queue to node ${destination} is full; wait for it to drain and retry`);
      }
      this.pumpArq(link);
      return undefined;
    }
    if (link.path.address.transport === "udp" && frame.byteLength > this.config.udpMtu) {
      return new SkeinError(
        "TOO_LARGE",
        `datagram of ${frame.byteLength} bytes exceeds the UDP MTU of ${this.config.udpMtu} bytes; send it reliable (it is then fragmented) or raise --udp-mtu`,
      );
    }
    this.queueFrame(link.path, frame);
    return undefined;
  }

  /** Moves ARQ output (segments, acks) and delivered messages along. */
  private pumpArq(link: Link): void {
    const arq = link.arq!;
    for (let delivered = arq.pollDelivered(); delivered !== undefined; delivered = arq.pollDelivered()) {
      const error = forEachFrame(delivered, (header, payload) => this.onFrame(link.path, header, payload, true));
      if (error !== undefined) this.drop("malformed");
      if (this.links.get(link.peer) !== link) return;
    }
    // An ack is owed after segments arrive, and also after draining reopened the receive window;
    // in-order data is acked in batches (arq.ts, ACK_EVERY_SEGMENTS).
    if (arq.ackDue(this.now)) {
      const ack = arq.pollAck();
      if (ack) this.queueArq(link, FrameKind.ArqAck, ack);
    }
    for (let segment = arq.pollSegment(this.now); segment !== undefined; segment = arq.pollSegment(this.now)) {
      this.queueArq(link, FrameKind.ArqSegment, segment);
    }
  }

  private queueArq(link: Link, kind: FrameKind, payload: Uint8Array): void {
    this.queueFrame(link.path, encodeFrame({ kind, flags: 0, ttl: 1, source: this.id, destination: link.peer, module: ModuleId.Link }, payload));
  }

  private queueFrame(path: Path, frame: Uint8Array, tail?: Uint8Array): void {
    if (!this.paths.has(path.id)) return;
    if (path.pending.length === 0) this.dirtyPaths.push(path);
    if (tail !== undefined) {
      path.tails ??= [];
      path.tails[path.pending.length] = tail;
      path.pendingBytes += tail.byteLength;
    }
    path.pending.push(frame);
    path.pendingBytes += frame.byteLength;
    path.framesOut += 1;
    this.counters.framesOut += 1;
  }

  /** Packs each path's pending frames into as few packets as its transport allows. */
  private flush(): void {
    for (const path of this.dirtyPaths) this.flushPath(path);
    this.dirtyPaths.length = 0;
  }

  private flushPath(path: Path): void {
    const frames = path.pending;
    if (frames.length === 0) return;
    const tails = path.tails;
    const limit = path.address.transport === "udp" ? this.config.udpMtu : STREAM_PACKET_MAX_BYTES;
    const peer = path.link?.peer;
    let start = 0;
    while (start < frames.length) {
      let end = start;
      let size = 0;
      let tail: Uint8Array | undefined;
      while (end < frames.length && (end === start || size + frames[end]!.byteLength <= limit)) {
        size += frames[end]!.byteLength;
        tail = tails?.[end];
        end += 1;
        if (tail !== undefined) break; // a packet ends with the frame whose payload rides as its tail
      }
      let packet: Uint8Array;
      if (end - start === 1) {
        packet = frames[start]!;
      } else {
        packet = new Uint8Array(size);
        let offset = 0;
        for (let index = start; index < end; index += 1) {
          packet.set(frames[index]!, offset);
          offset += frames[index]!.byteLength;
        }
      }
      const bytes = packet.byteLength + (tail?.byteLength ?? 0);
      path.bytesOut += bytes;
      this.counters.bytesOut += bytes;
      this.output({ kind: "transmit", pathId: path.id, packet, tail, peer });
      start = end;
    }
    frames.length = 0;
    path.tails = undefined;
    path.pendingBytes = 0;
  }

  // ─── Events ───────────────────────────────────────────────────────────────────────────────────

  private drainModuleEvents(): void {
    for (let event = this.dataService.pollEvent(); event !== undefined; event = this.dataService.pollEvent()) {
      this.emitData(event);
    }
  }

  private emitData(event: DataEvent): void {
    this.emit(event);
  }

  private emit(event: NodeEvent): void {
    this.output({ kind: "event", event });
  }

  private output(output: EngineOutput): void {
    this.outputs.push(output);
  }

  private drop(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }
}

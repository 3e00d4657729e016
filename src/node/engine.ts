/**
 * The node engine: composes the modules of one node (links, routing, the raw data service) behind
 * the pure driver contract of io.ts. It never touches a socket, a clock or Math.random: the runtime
 * and the simulator drive the very same code.
 *
 * Routing (src/routing) plugs in at five places, each marked "Routing:" below:
 *  1. link events: link up / down and link cost changes (from the smoothed RTT, RTTVAR and loss,
 *     and suspicion of an active link that went silent) go to the router;
 *  2. LINK frames are dispatched by module: 1 = link messages, 3 = route messages;
 *  3. ROUTED frames for other nodes are forwarded on the header alone (TTL, next hop) on the same
 *     class; unknown destinations are dropped, counted and reported to the source;
 *  4. `sendRouted` picks the router's next hop (a direct link only while no route is known);
 *  5. `maintain()` runs the neighbour policy once the node knows more peers than maxNeighbours.
 */
import { type Address, type Seed, formatAddress, parseSeed, sameAddress } from "../core/address.js";
import { SkeinError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { type EngineModule, type InboundFrame, ModuleId, type RouteAwareHost } from "../core/module.js";
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
  STREAM_RECORD_MAX_BYTES,
} from "../link/constants.js";
import { type KnownPeer, LinkMeasurement, type LinkState } from "../link/link.js";
import { type LinkMessage, MAX_PEERS_PER_MESSAGE, MAX_REFERRALS, type PeerEntry, type PeerSelf, RejectReason, decodeLinkMessage, encodeLinkMessage, peerEntryBytes, peersHeaderBytes } from "../link/messages.js";
import { MAX_RELAYED_TAGGED_PEERS, TAG_ENTRY_MAX_AGE_MS, carriesAny, tagsAllowedByCertificate } from "../link/tags.js";
import {
  LINK_COST_REFRESH_MS,
  METRIC_INFINITY,
  NEIGHBOUR_POLICY_INTERVAL_MS,
  TRIAL_BACKOFF_MAX_MS,
  TRIAL_EVALUATE_MS,
  TRIAL_RETRY_MS,
  TRIAL_SUCCESS_AFTER_MS,
} from "../routing/constants.js";
import { DEFAULT_METRIC_CONFIG, type MetricConfig, costChangedSignificantly, linkCostUs, metricLoss, metricMs } from "../routing/metric.js";
import { type PolicyLink, choosePrune } from "../routing/neighbour-policy.js";
import { type RouteInfo, Router, type RouterEvent, type RouterStats } from "../routing/router.js";
import { DEFAULT_TTL, FRAME_HEADER_BYTES, FrameFlag, FrameKind, MAX_FRAME_PAYLOAD_BYTES, type FrameHeader, encodeFrame, forEachFrame, writeFrameHeader } from "../wire/frame.js";
import type { SecureChannel } from "../crypto/channel.js";
import { type HandshakeFailure, type HandshakePeer, REJECT_FULL_DETAIL_MAX_BYTES } from "../crypto/handshake.js";
import { RECORD_OVERHEAD_BYTES, UnitType, forEachUnit } from "../crypto/units.js";
import { fingerprint } from "../crypto/certificate.js";
import { concatBytes } from "../crypto/primitives.js";
import { DataService, type DataEvent } from "./data-service.js";
// Pub/sub (issue 5, phase 2): the overlay module (interest propagation, multi-destination data).
import { PubSubOverlay } from "../features/pubsub/overlay.js";
import { SeededRng } from "../core/rng.js";
// Collector (issue 6): snapshots to collectors, the collector's model (module 5).
import { CollectorModule } from "../features/collector/collector.js";
import { PathSecurity, type SecurityInfo, decodeHello } from "./secure-paths.js";
// End-to-end protection of routed unicast frames (e2e-paths.ts).
import { EndToEndPaths, type EndToEndStats, SEALED_OVERHEAD_BYTES } from "./e2e-paths.js";
import type { EngineConfig } from "./engine-config.js";
import type { EngineIo, EngineOutput, NeighbourInfo, NodeEvent, PathId, RouteView } from "./io.js";

/**
 * Routing: the neighbour policy (trial links, pruning) runs from this many neighbours up; with
 * fewer, a node simply keeps the first maxNeighbours links it gets.
 */
const POLICY_MIN_NEIGHBOURS = 8;
/** How often the engine re-checks whether it should open more links (also run on demand). */
const MAINTAIN_INTERVAL_MS = 250;
/** A hello claiming a linked peer's id from elsewhere is refused while that link was heard within this many probe intervals. */
const ALIVE_CLAIM_WINDOW_PROBES = 2;
/** Payloads at least this large go to a stream transport without being copied into the frame. */
const ZERO_COPY_MIN_PAYLOAD_BYTES = 4096;
/** ARQ segment header: u32 seq + u8 flags. */
const ARQ_SEGMENT_HEADER_BYTES = 5;
/** Discovery by tags: a known peer before anything was heard of its tags. */
const NO_TAGS = { tags: [] as string[], selective: false, tagsSeenAt: -Infinity, certificateTags: undefined };

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
  /** ROUTED frames relayed for other nodes (counted in framesIn and framesOut too). */
  framesForwarded: number;
  /** Frames dropped, by reason (a short snake_case word such as "malformed", "no_route", "queue_full"). */
  dropped: Record<string, number>;
  links: LinkStats[];
  /** End-to-end sealing: frames sealed, opened, relayed opaque or in clear, key exchange (e2e-paths.ts). */
  endToEnd: EndToEndStats;
}

interface Path {
  id: PathId;
  address: Address;
  inbound: boolean;
  opened: boolean;
  /** When the path appeared: an inbound path with no link by CONNECT_TIMEOUT_MS later is closed. */
  createdAt: number;
  link: Link | undefined;
  /**
   * The path's secure channel (secure-paths.ts): handshake, then records sealing whole packets.
   * Outbound: created when the path opens; inbound: at the first HS_INIT. Undefined in insecure mode.
   */
  channel: SecureChannel | undefined;
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
  /** Routing: the cost last handed to the router (µs; undefined before the first), and when. */
  routeCostUs: number | undefined;
  routeCostAt: number;
  /** Routing: opened by the neighbour policy's exploration, not judged yet. */
  trial: boolean;
  /** Routing: a new link in a network run by the neighbour policy; its routes are not used yet. */
  probation: boolean;
  /** Discovery by tags: the peer's tags as it said itself (checked against its certificate); undefined until it did. */
  peerTags: string[] | undefined;
  /** Discovery by tags: the refused tag claims last logged (logged once per change). */
  refusedTagClaim: string | undefined;
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
  /** Stream paths where sealing a record failed: closed after the flush. */
  private readonly sealFailedPaths: Path[] = [];
  private nextPathId = 1;
  private maintainAt = 0;
  private started = false;
  private closed = false;
  private readonly dataService: DataService;
  /** Pub/sub (module 4): the overlay and its broker (the runtime's library API and NATS port use `pubsub.broker`). */
  readonly pubsub: PubSubOverlay;
  /** Collector (module 5): reports this node to the collectors; on a collector, `collector.model`. */
  readonly collector: CollectorModule;
  private readonly modules = new Map<number, EngineModule<unknown, unknown>>();
  /** Routing (module 3): route exchange, the forwarding table, unreachable reports, ping and trace. */
  private readonly router: Router;
  private readonly metricConfig: MetricConfig;
  /** Neighbour policy: when it next runs, and the pause between trial links (grows while they fail). */
  private nextPolicyAt = 0;
  private trialIntervalMs = NEIGHBOUR_POLICY_INTERVAL_MS;
  private nextTrialAt = 0;
  private readonly counters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, framesForwarded: 0 };
  private readonly dropped: Record<string, number> = {};
  private now = 0;
  /** The path of the packet `receive` is taking apart. */
  private receivingPath: Path | undefined;
  /** Paths whose channel has a handshake running (its timers count): pruned at tick. */
  private readonly handshaking = new Set<Path>();
  /** Keys, admission, limits (secure-paths.ts). */
  private readonly security: PathSecurity;
  /** End-to-end sealing of routed unicast frames and the key exchange behind it (e2e-paths.ts). */
  private readonly e2e: EndToEndPaths;
  /** Plaintext frames, no handshake (benchmarks and unit tests only: EngineConfig.insecure). */
  private readonly insecure: boolean;
  /** The largest packet of frames one UDP datagram carries (the MTU less the record overhead). */
  private readonly udpPacketBytes: number;

  constructor(config: EngineConfig) {
    this.id = config.nodeId;
    this.config = config;
    this.log = config.logger.child({ module: "link", node: config.nodeId });
    this.session = config.rng.nextU32();
    this.insecure = config.insecure === true;
    this.security = new PathSecurity(config.nodeId, config, config.logger.child({ module: "security", node: config.nodeId }));
    this.udpPacketBytes = config.udpMtu - (this.insecure ? 0 : RECORD_OVERHEAD_BYTES);
    this.e2e = new EndToEndPaths({
      nodeId: config.nodeId,
      identity: this.security.identity,
      entropy: this.security.entropy,
      certificate: this.security.certificate,
      trust: this.security.trust,
      wallClock: (now) => this.security.wallClock(now),
      log: config.logger.child({ module: "e2e", node: config.nodeId }),
    });
    const host: RouteAwareHost = {
      localId: config.nodeId,
      rng: config.rng,
      logger: config.logger,
      send: (destination, module, payload, options) => this.sendRouted(destination, module, payload, options.reliable),
      // Pub/sub: the routing view modules may read (module.ts, RouteAwareHost).
      neighbours: () => this.upNeighbourIds(),
      nextHop: (destination) => this.nextHop(destination),
      routeMetricMs: (destination) => {
        const metric = this.router.metricTo(destination);
        if (metric < METRIC_INFINITY) return metric / 1000;
        const direct = this.links.get(destination);
        return direct?.state.kind === "up" ? (direct.measurement.rtt.srttMs ?? 0) / 2 : Infinity;
      },
      sendToNeighbour: (neighbour, module, payload, options) => this.sendRouted(neighbour, module, payload, options.reliable, DEFAULT_TTL, true),
      linkBacklogBytes: (neighbour) => {
        const link = this.links.get(neighbour);
        return link === undefined ? 0 : link.path.pendingBytes + (link.arq?.queuedBytes ?? 0);
      },
    };
    this.dataService = new DataService(host);
    this.modules.set(this.dataService.id, this.dataService as EngineModule<unknown, unknown>);
    // Pub/sub (module 4): registered like any module; ticked and asked for deadlines below.
    // Its own PRNG stream (derived from the session, drawn above), so that pub/sub never shifts the
    // draws the link layer and the router make from config.rng.
    this.pubsub = new PubSubOverlay({ ...host, rng: new SeededRng((this.session ^ 0x9e3779b9) >>> 0) });
    this.modules.set(this.pubsub.id, this.pubsub as EngineModule<unknown, unknown>);
    // Collector (module 5): registered the same way, on its own PRNG stream; it reads the node's
    // neighbours, routes and counters once per report.
    this.collector = new CollectorModule(
      { ...host, rng: new SeededRng((this.session ^ 0x85ebca6b) >>> 0) },
      { collector: config.collector === true, tags: config.localTags ?? [], version: config.softwareVersion ?? "", intervalMs: config.collectorIntervalMs },
      {
        neighbours: () => this.neighbours(),
        routes: () => this.routes(),
        counters: () => {
          let framesDropped = 0;
          for (const count of Object.values(this.dropped)) framesDropped += count;
          return { ...this.counters, framesDropped };
        },
      },
    );
    this.modules.set(this.collector.id, this.collector as EngineModule<unknown, unknown>);
    this.metricConfig = { ...DEFAULT_METRIC_CONFIG, ...(config.routeHopCostMs !== undefined ? { hopCostMs: config.routeHopCostMs } : {}) };
    this.router = new Router({ localId: config.nodeId, rng: config.rng, logger: config.logger.child({ module: "routing", node: config.nodeId }) }, 0);
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
        tags: link.peerTags ?? this.known.get(link.peer)?.tags ?? [],
        ...this.neighbourSecurity(link),
      });
    }
    return result.sort((a, b) => a.id - b.id);
  }

  /**
   * Sends `data` to `destination` on the data service, over the router's next hop (relayed when
   * that is faster). Throws SkeinError with code NO_ROUTE, TOO_LARGE or BACKPRESSURE (reliable
   * queue full: wait and retry).
   */
  send(now: number, destination: NodeId, data: Uint8Array, options: { reliable: boolean }): void {
    this.now = now;
    const error = this.dataService.send(destination, data, options.reliable);
    if (error !== undefined) throw error;
  }

  /** Bytes queued inside the engine toward `destination` (its next hop's UDP reliable class); 0 over TCP. */
  backlogBytes(destination: NodeId): number {
    const link = this.links.get(this.nextHop(destination) ?? destination);
    return link?.arq?.queuedBytes ?? 0;
  }

  // ─── Routing views and diagnostics ────────────────────────────────────────────────────────────

  /** The neighbour frames to `destination` leave through now (a direct link while no route is known). */
  nextHop(destination: NodeId): NodeId | undefined {
    const hop = this.router.nextHop(destination);
    if (hop !== undefined) return hop;
    return this.links.get(destination)?.state.kind === "up" ? destination : undefined;
  }

  /** Every loop-free next hop toward `destination` that is usable now, best first. */
  nextHops(destination: NodeId): NodeId[] {
    return this.router.nextHops(destination);
  }

  /** The route table: one entry per known destination, by NodeId. */
  routes(): RouteView[] {
    return this.router.routes().map(routeView);
  }

  route(destination: NodeId): RouteView | undefined {
    const info = this.router.route(destination);
    return info === undefined ? undefined : routeView(info);
  }

  routerStats(): RouterStats {
    return this.router.stats();
  }

  /** Sends one echo request; a `probe` event carries the answer. Returns the probe id. */
  ping(now: number, destination: NodeId): number {
    this.now = now;
    return this.router.ping(now, destination);
  }

  /** Traces the path frames to `destination` take, hop by hop; a `probe` event carries the result. */
  trace(now: number, destination: NodeId): number {
    this.now = now;
    return this.router.trace(now, destination);
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

  /** The node's security settings and keys (GET /api/node). */
  securityInfo(): SecurityInfo {
    return this.security.info(this.insecure);
  }

  private neighbourSecurity(link: Link): Pick<NeighbourInfo, "binding" | "keyFingerprint"> {
    const peer = link.path.channel?.peer;
    return peer === undefined ? {} : { binding: peer.binding, keyFingerprint: fingerprint(peer.signingKey) };
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
    return { ...this.counters, dropped: { ...this.dropped }, links, endToEnd: { ...this.e2e.stats } };
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
      // The secure handshake runs here, before any other frame.
      link.state = { kind: "handshaking", since: now };
      this.startHandshake(link, now);
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
    if (this.insecure) {
      this.receiveFrames(path, packet);
    } else if (path.address.transport === "udp") {
      this.receiveUnit(path, packet);
    } else {
      const error = forEachUnit(packet, (unit) => {
        if (this.paths.has(path.id)) this.receiveUnit(path, unit);
      });
      if (error !== undefined) {
        this.drop("malformed_unit");
        this.log.debug({ path: formatAddress(path.address), error }, "malformed stream unit: closing the path");
        this.failPath(path, `malformed unit: ${error}`);
        return;
      }
    }
    const link = path.link;
    if (link?.arq && this.links.get(link.peer) === link) this.pumpArq(link);
  }

  tick(now: number): void {
    this.now = now;
    if (this.closed) return;
    for (const path of [...this.handshaking]) {
      const channel = path.channel;
      if (channel === undefined || !this.paths.has(path.id)) {
        this.handshaking.delete(path);
        continue;
      }
      if (now >= channel.nextDeadline()) {
        channel.tick(now);
        this.drainChannel(path);
      }
      if (channel.nextDeadline() === Infinity) this.handshaking.delete(path);
    }
    // Router and modules first: what they send can mark links active (probe due now), and the
    // links' own timers below must see that in this same tick, or the deadline would stay at now.
    if (now >= this.router.nextDeadline()) this.router.tick(now);
    if (now >= this.e2e.nextDeadline()) {
      this.e2e.tick(now);
      this.drainEndToEnd();
    }
    // Modules with timers (pub/sub digests and interest expiry).
    if (this.started) for (const module of this.modules.values()) if (now >= module.nextDeadline()) module.tick(now);
    for (const link of [...this.links.values()]) this.tickLink(link, now);
    this.expireHalfOpen(now);
    if (now >= this.maintainAt) this.maintain(now);
  }

  /**
   * Pub/sub: sets the engine's clock before an API call that reaches a module directly (a publish
   * through `pubsub.broker` from the library or the NATS port), so that what it sends is stamped
   * with the right time. Never moves the clock backwards.
   */
  touch(now: number): void {
    if (now > this.now) this.now = now;
  }

  private upNeighbourIds(): NodeId[] {
    const ids: NodeId[] = [];
    for (const link of this.links.values()) if (link.state.kind === "up") ids.push(link.peer);
    return ids;
  }

  nextDeadline(): number {
    if (this.closed) return Infinity;
    let deadline = this.started ? Math.min(this.maintainAt, this.router.nextDeadline()) : Infinity;
    if (this.started) for (const module of this.modules.values()) deadline = Math.min(deadline, module.nextDeadline());
    if (this.halfOpen.size > 0) deadline = Math.min(deadline, this.halfOpen.values().next().value!.createdAt + CONNECT_TIMEOUT_MS);
    deadline = Math.min(deadline, this.e2e.nextDeadline());
    for (const path of this.handshaking) if (path.channel !== undefined) deadline = Math.min(deadline, path.channel.nextDeadline());
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
    if (header.kind !== FrameKind.Routed && !this.insecure && header.source !== path.channel?.peerNodeId) {
      // Link-local frames come from the authenticated peer of the path, and from nobody else.
      this.drop("source_mismatch");
      return;
    }
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

  /** Anything arrived on the link: it is alive (and, if it was suspected, usable for routing again). */
  private heard(link: Link): void {
    if (link.measurement.heard(this.now)) this.updateRouteCost(link, this.now);
  }

  /**
   * Routing: hands the link's cost to the router when it moved by more than
   * LINK_COST_CHANGE_RATIO, or moved at all and LINK_COST_REFRESH_MS passed (input hysteresis: the
   * table is not recomputed on every probe, yet ends up exact). Suspected links cost infinity.
   */
  private updateRouteCost(link: Link, now: number): void {
    if (link.state.kind !== "up") return;
    const measurement = link.measurement;
    const rtt = measurement.rtt;
    const loss = metricLoss(measurement.loss.lostSamples, measurement.loss.samples);
    const cost = measurement.suspected ? METRIC_INFINITY : linkCostUs(rtt.srttMs, rtt.mdevMs, loss, this.metricConfig);
    const previous = link.routeCostUs;
    if (!costChangedSignificantly(previous, cost) && (cost === previous || now - link.routeCostAt < LINK_COST_REFRESH_MS)) return;
    link.routeCostUs = cost;
    link.routeCostAt = now;
    this.router.linkCost(now, link.peer, cost, rtt.srttMs === undefined ? undefined : rtt.srttMs * 1000);
  }

  private linkOf(path: Path, header: FrameHeader): Link | undefined {
    const link = path.link;
    if (!link || link.state.kind !== "up" || this.links.get(link.peer) !== link) return undefined;
    if (header.source !== link.peer) return undefined;
    return link;
  }

  private onLinkFrame(path: Path, header: FrameHeader, payload: Uint8Array): void {
    if (header.module !== ModuleId.Link) {
      this.onModuleLinkFrame(path, header, payload);
      return;
    }
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
        this.onHelloReject(path, header.source, message.reason, message.detail, message.referrals);
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
    this.heard(link);
    switch (message.type) {
      case "probe":
        this.sendLink(path, link.peer, { type: "probe_ack", seq: message.seq });
        return;
      case "probe_ack":
        if (link.measurement.onProbeAck(this.now, message.seq)) {
          const rtt = link.measurement.rtt;
          this.emit({ kind: "rtt", peer: link.peer, srttMs: rtt.srttMs!, rttvarMs: rtt.rttvarMs!, loss: link.measurement.loss.ratio });
        }
        this.updateRouteCost(link, this.now);
        return;
      case "peers":
        this.onPeers(link, message.peers, message.self);
        return;
      case "goodbye": {
        this.linkDown(link, `peer left: ${message.detail}`, this.now);
        this.deferPeer(link.peer, this.now + RECONNECT_BACKOFF_MAX_MS);
        // Neighbour policy: a peer that left or dropped us is not a trial candidate for a while.
        const known = this.known.get(link.peer);
        if (known) known.lastTrialAt = this.now;
        return;
      }
    }
  }

  /** Routing: LINK frames of other modules than the link layer (module 3: route messages). */
  private onModuleLinkFrame(path: Path, header: FrameHeader, payload: Uint8Array): void {
    if (header.module !== ModuleId.Routing) {
      this.drop("unknown_module");
      return;
    }
    const link = this.linkOf(path, header);
    if (!link || (header.destination !== 0 && header.destination !== this.id)) {
      this.drop(link ? "wrong_destination" : "no_link");
      return;
    }
    this.heard(link);
    const error = this.router.onLinkMessage(this.now, link.peer, payload);
    if (error !== undefined) {
      this.drop("malformed");
      this.log.debug({ peer: link.peer, error }, "malformed route message dropped");
    }
  }

  private onRoutedFrame(path: Path, header: FrameHeader, payload: Uint8Array, reliable: boolean): void {
    // A routed frame comes from any source through the neighbour at the other end of the path (the
    // source is only that neighbour when the frame was not relayed).
    const link = path.link;
    if (!link || link.state.kind !== "up" || this.links.get(link.peer) !== link) {
      this.drop("no_link");
      return;
    }
    this.heard(link);
    if (header.ttl === 0) {
      this.drop("ttl_expired");
      return;
    }
    if (header.destination !== this.id) {
      this.forward(link, header, payload, reliable);
      return;
    }
    // End to end: a sealed payload is opened here (or the frame dropped); see openRouted.
    const opened = this.openRouted(link, header, payload);
    if (opened === undefined) return;
    payload = opened;
    if (header.module === ModuleId.Link) {
      this.onKeyMessage(header, payload);
      return;
    }
    if (header.module === ModuleId.Routing) {
      const error = this.router.onRoutedMessage(this.now, header.source, link.peer, payload);
      if (error !== undefined) {
        this.drop("malformed");
        this.log.debug({ source: header.source, error }, "malformed routed route message dropped");
      }
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

  /**
   * Routing: relays a ROUTED frame toward its destination, deciding on the header alone. The TTL
   * is decremented in place (the received buffer is ours: drivers never reuse it) and the frame goes
   * out as it came, a view of the received bytes: no copy, no payload decode. A frame that would
   * leave with TTL 0 is dropped (`ttl_expired`); one with no next hop is dropped (`no_route`) and
   * reported to its source (rate limited). Reliable frames take the next link's reliable class.
   */
  private forward(from: Link, header: FrameHeader, payload: Uint8Array, reliable: boolean): void {
    if (header.ttl <= 1) {
      this.drop("ttl_expired");
      // A ping/trace probe dies here: it gets an ICMP-like answer (the router decodes its own probe).
      if (header.module === ModuleId.Routing) this.router.onTtlExpired(this.now, header.source, from.peer, payload);
      return;
    }
    const hop = this.router.nextHop(header.destination);
    const out = hop === undefined ? undefined : this.links.get(hop);
    if (out === undefined || out.state.kind !== "up") {
      this.drop("no_route");
      this.router.reportUnreachable(this.now, header.source, header.destination);
      return;
    }
    const frame = new Uint8Array(payload.buffer, payload.byteOffset - FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + payload.byteLength);
    frame[3] = header.ttl - 1;
    out.measurement.markActive(this.now);
    const arq = reliable ? this.arqOf(out) : undefined;
    if (arq) {
      if (!arq.send(this.now, frame)) {
        this.drop("queue_full");
        return;
      }
      this.pumpArqOut(out);
    } else {
      if (!reliable && out.path.address.transport === "udp" && frame.byteLength > this.udpPacketBytes) {
        this.drop("too_large");
        return;
      }
      this.queueFrame(out.path, frame);
    }
    this.counters.framesForwarded += 1;
    this.e2e.countForwarded((header.flags & FrameFlag.Sealed) !== 0);
  }

  private onArqFrame(path: Path, header: FrameHeader, payload: Uint8Array): void {
    const link = this.linkOf(path, header);
    const arq = link ? this.arqOf(link) : undefined;
    if (!link || !arq) {
      this.drop("no_link");
      return;
    }
    this.heard(link);
    const error = header.kind === FrameKind.ArqSegment ? arq.onSegment(this.now, payload) : arq.onAck(this.now, payload);
    if (error !== undefined) {
      this.drop("malformed");
      this.log.debug({ peer: link.peer, error }, "malformed ARQ frame dropped");
    }
  }

  // ─── Secure channels (one per path; secure-paths.ts) ────────────────────────────────────────────

  private receiveFrames(path: Path, packet: Uint8Array): void {
    this.receivingPath = path;
    const error = forEachFrame(packet, this.onReceivedFrame);
    if (error !== undefined) {
      this.drop("malformed");
      this.log.debug({ path: formatAddress(path.address), error }, "malformed packet dropped");
    }
  }

  /** One unit (a datagram, or one unit cut from a stream) on a secured path. */
  private receiveUnit(path: Path, unit: Uint8Array): void {
    let channel = path.channel;
    const type = unit[0];
    if (channel !== undefined && channel.state.kind === "failed" && type === UnitType.HandshakeInit && path.inbound && path.link === undefined) {
      channel = undefined; // a UDP peer starting over after a failed attempt
    }
    if (channel === undefined) {
      if (type !== UnitType.HandshakeInit || !path.inbound) {
        this.drop(type === UnitType.Record ? "record_no_session" : "unit_before_handshake");
        if (path.address.transport !== "udp") this.failPath(path, "the first unit was not a handshake");
        return;
      }
      const refused = this.security.admit(this.now, path.address);
      if (refused !== undefined) {
        this.drop(refused);
        if (path.address.transport !== "udp") this.failPath(path, refused);
        return;
      }
      channel = this.newChannel(path, "responder", undefined);
    }
    const received = channel.receive(this.now, unit);
    if (type !== UnitType.Record) this.handshaking.add(path);
    if (received.kind === "packet") {
      // A plain Uint8Array view (the session opens into a Buffer): what reaches the API is a Uint8Array.
      const packet = received.packet;
      this.receiveFrames(path, new Uint8Array(packet.buffer, packet.byteOffset, packet.byteLength));
    } else if (received.kind === "dropped") {
      this.drop(type === UnitType.Record ? `record_${received.code}` : `handshake_${received.code}`);
      if (received.fatal) {
        this.drainChannel(path);
        this.failPath(path, `${received.code}: ${received.error}`);
        return;
      }
    }
    this.drainChannel(path);
  }

  private newChannel(path: Path, role: "initiator" | "responder", expectedPeer: NodeId | undefined): SecureChannel {
    const channel = this.security.channel(
      this.now,
      role,
      path.address.transport,
      { session: this.session, addresses: this.config.listenAddresses },
      expectedPeer,
      (peer) => this.vetPeer(path, peer),
      role === "responder" ? () => this.admitInbound(path) : undefined,
    );
    path.channel = channel;
    this.handshaking.add(path);
    return channel;
  }

  /** The engine's last word on a verified peer (HandshakeConfig.acceptPeer): a refusal reason, or undefined. */
  private vetPeer(path: Path, peer: HandshakePeer): string | undefined {
    const refusal = this.security.checkKey(this.now, peer);
    if (refusal !== undefined) {
      this.drop("key_conflict");
      return refusal;
    }
    const link = path.link;
    if (link !== undefined && this.links.get(link.peer) === link && link.state.kind === "up" && link.peer !== peer.nodeId) {
      return `this path belongs to node ${link.peer}`;
    }
    return undefined;
  }

  /**
   * Max neighbours, enforced at handshake time: a full node refuses a new inbound handshake as soon
   * as its first message checks out, before any DH (HS_REJECT `full`, counted as handshake_full),
   * naming some of its neighbours to try instead (as hello_reject does). A path that already
   * carries a link (a UDP peer renewing its session) is never refused here.
   */
  private admitInbound(path: Path): { reason: "full"; detail: string } | undefined {
    if (path.link !== undefined || this.upLinkCount() < this.config.maxNeighbours) return undefined;
    return { reason: "full", detail: formatFullDetail(this.id, this.config.maxNeighbours, this.referrals(0)) };
  }

  /** Opens the secure channel of an outbound link (or says hello on an already secured UDP path). */
  private startHandshake(link: Link, now: number): void {
    const path = link.path;
    if (this.insecure || path.channel?.established === true) {
      this.sendHello(link, now);
      return;
    }
    // An inbound handshake running on this UDP path decides (the channel resolves simultaneous opens).
    if (path.channel?.state.kind === "handshaking") return;
    const channel = this.newChannel(path, "initiator", link.peer);
    channel.start(now);
    this.drainChannel(path);
  }

  /** Carries out what a channel produced: handshake units to send, established, failed. */
  private drainChannel(path: Path): void {
    const channel = path.channel;
    if (channel === undefined) return;
    for (let output = channel.poll(); output !== undefined; output = channel.poll()) {
      if (path.channel !== channel || !this.paths.has(path.id)) continue;
      switch (output.kind) {
        case "transmit":
          path.bytesOut += output.unit.byteLength;
          this.counters.bytesOut += output.unit.byteLength;
          this.output({ kind: "transmit", pathId: path.id, packet: output.unit, peer: path.link?.peer });
          break;
        case "established":
          this.onEstablished(path, output.peer, output.renewed);
          break;
        case "failed":
          this.onChannelFailed(path, output.failure);
          break;
      }
    }
  }

  /**
   * A handshake completed: the peer is authenticated and its hello (session, listen addresses)
   * came in the handshake extension. The responder answers it as a hello (hello_ack, or
   * hello_reject with referrals when full), inside the first record; the initiator waits for that
   * answer, which also proves the peer accepted our identity.
   */
  private onEstablished(path: Path, peer: HandshakePeer, renewed: boolean): void {
    const hello = decodeHello(peer.extension);
    if (hello === undefined) {
      this.drop("malformed_hello");
      this.failPath(path, `node ${peer.nodeId} sent a malformed hello in its handshake`);
      return;
    }
    this.security.bindKey(this.now, peer.nodeId, peer.signingKey);
    this.security.succeeded(path.address);
    this.onPeerAuthenticated(peer);
    const channel = path.channel!;
    if (channel.role === "initiator") {
      const link = path.link;
      if (link === undefined || this.links.get(link.peer) !== link) {
        this.closePath(path);
        return;
      }
      link.peerSession = hello.session;
      link.peerAddresses = hello.addresses;
      if (link.state.kind !== "up") link.state = { kind: "hello_sent", since: link.state.since, lastHelloAt: this.now };
      return;
    }
    if (renewed) {
      // UDP: the peer ran a new handshake on a live path (it restarted, or lost its session).
      const link = path.link;
      if (link !== undefined && this.links.get(link.peer) === link && link.state.kind === "up" && link.peerSession !== hello.session) {
        this.linkDown(link, "peer restarted", this.now, true);
      }
    }
    this.onHello(path, peer.nodeId, hello.session, hello.addresses);
  }

  /** Hook for end-to-end keys: a neighbour authenticated with its static key. */
  private onPeerAuthenticated(peer: HandshakePeer): void {
    this.e2e.learnFromHandshake(this.now, peer);
    this.drainEndToEnd();
  }

  private onChannelFailed(path: Path, failure: HandshakeFailure): void {
    const where = formatAddress(path.address);
    this.drop(`handshake_${failure.code}`);
    if (failure.code === "full" || failure.peerReason === "full") {
      this.onFullRefusal(path, failure);
      return;
    }
    const link = path.link;
    if (link !== undefined && this.links.get(link.peer) === link) {
      const reason = `secure handshake with node ${link.peer} at ${where} failed: ${failure.message}`;
      if (failure.code !== "timeout" && this.security.failed(this.now, path.address, false)) {
        this.log.error({ peer: link.peer, address: where, code: failure.code, peerReason: failure.peerReason }, reason);
      }
      if (link.state.kind === "up") this.linkDown(link, reason, this.now);
      else this.connectFailed(link, reason, this.now);
      return;
    }
    if (this.security.failed(this.now, path.address, path.inbound) && failure.code !== "timeout") {
      this.log.warn({ address: where, code: failure.code }, `refused a secure handshake from ${where}: ${failure.message}`);
    }
    this.closePath(path);
  }

  /**
   * A handshake refused because a node had its maximum of neighbours: routine, not an attack, so
   * no back-off of the address. The refused side tries the referrals instead.
   */
  private onFullRefusal(path: Path, failure: HandshakeFailure): void {
    const link = path.link;
    if (failure.code === "full" || link === undefined || this.links.get(link.peer) !== link) {
      this.log.debug({ address: formatAddress(path.address) }, `refused a handshake from ${formatAddress(path.address)}: this node has its ${this.config.maxNeighbours} neighbours`);
      this.closePath(path);
      return;
    }
    for (const referral of parseFullDetail(failure.peerDetail ?? "")) this.rememberPeer(referral.nodeId, [referral.address], this.now);
    const why = `node ${link.peer} refused the link: ${failure.message}`;
    this.log.info({ peer: link.peer }, why);
    this.connectFailed(link, why, this.now);
  }

  /** A protocol error on a path: its link (if any) goes down or fails, and the path closes. */
  private failPath(path: Path, reason: string): void {
    const link = path.link;
    if (link !== undefined && this.links.get(link.peer) === link) {
      if (link.state.kind === "up") this.linkDown(link, reason, this.now);
      else this.connectFailed(link, reason, this.now);
      return;
    }
    this.closePath(path);
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
        this.heard(existing);
        this.sendHelloAck(existing);
        return;
      }
      if (existing.state.kind === "up") {
        // A new session from another address: a restart, or someone claiming the peer's id. While
        // the old link is still alive the claim is refused; a peer that really restarted went silent
        // on its old path, which then times out, and its next hello is accepted.
        // (On secured paths the peer proved its key, bound to its NodeId: a new session is a restart.)
        if (this.insecure && this.now - existing.measurement.lastReceivedAt < ALIVE_CLAIM_WINDOW_PROBES * this.config.probeIntervalMs) {
          this.drop("id_conflict");
          this.log.warn(
            { peer, address: formatAddress(path.address), linkedAt: formatAddress(existing.path.address) },
            `a hello from ${formatAddress(path.address)} claims node ${peer}, which is linked and alive at ${formatAddress(existing.path.address)}; refused`,
          );
          this.sendLink(path, peer, { type: "hello_reject", reason: RejectReason.IdConflict, detail: `node ${peer} is linked and alive at another address` });
          return;
        }
        this.linkDown(existing, "peer restarted", this.now);
      } else if (peer > this.id) {
        // Simultaneous open over two TCP connections: the one the lower id opened wins, here ours.
        return;
      } else {
        this.abandon(existing);
      }
    }
    if (this.upLinkCount() >= this.config.maxNeighbours) {
      this.sendLink(path, peer, {
        type: "hello_reject",
        reason: RejectReason.Full,
        detail: `node ${this.id} has its ${this.config.maxNeighbours} neighbours`,
        referrals: this.referrals(peer),
      });
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
    if (this.upLinkCount() >= this.config.maxNeighbours) {
      // Links came up meanwhile (the handshake takes a round trip more than the hello did).
      this.sendLink(path, peer, { type: "goodbye", detail: `node ${this.id} has its ${this.config.maxNeighbours} neighbours` });
      this.flushPath(path);
      this.connectFailed(link, `node ${this.id} got its ${this.config.maxNeighbours} neighbours meanwhile`, this.now);
      return;
    }
    link.peerSession = session;
    link.peerAddresses = addresses;
    this.linkUp(link);
  }

  private onHelloReject(path: Path, peer: NodeId, reason: RejectReason, detail: string, referrals: PeerEntry[] | undefined): void {
    // A full node names some of its neighbours to try instead (how a large network is joined).
    if (reason === RejectReason.Full && referrals !== undefined) for (const referral of referrals) this.rememberPeer(referral.nodeId, referral.addresses, this.now);
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
    // The UDP reliable class starts fresh with the link, created on first use (arqOf).
    link.arq = undefined;
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
    // Routing: a new neighbour (its routes count once the first RTT sample gives the link a cost).
    link.routeCostUs = undefined;
    this.router.linkUp(now, link.peer);
    if (this.policyMode()) {
      // Judged by the neighbour policy before its routes are used (see runNeighbourPolicy).
      link.probation = true;
      this.router.linkProbation(now, link.peer, true);
    }
    this.emit({
      kind: "link_up",
      peer: link.peer,
      address: formatAddress(link.path.address),
      transport: link.path.address.transport,
      inbound: link.path.inbound,
    });
  }

  private linkDown(link: Link, reason: string, now: number, keepPath = false): void {
    if (this.links.get(link.peer) !== link) return;
    this.trialFailed(link);
    this.links.delete(link.peer);
    if (link.path.link === link) link.path.link = undefined;
    if (!keepPath) this.closePath(link.path);
    this.log.info({ peer: link.peer, reason }, "link down");
    // Routing: every destination through this neighbour fails over to its next feasible route now.
    this.router.linkDown(now, link.peer);
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
    this.trialFailed(link);
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
    if (!measurement.suspected && now >= measurement.suspectDeadline()) {
      // Routing: an active link went silent. Stop routing over it at once (failover), long before
      // the link timeout; anything heard from the peer clears it (`heard`).
      measurement.suspected = true;
      this.log.debug({ peer: link.peer, silentMs: now - measurement.lastReceivedAt }, "active link suspected");
    }
    this.updateRouteCost(link, now);
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
    this.known.set(seed.nodeId, { nodeId: seed.nodeId, addresses: [seed.address], lastMentionedAt: this.now, failures: 0, retryAt: 0, isSeed: true, lastTrialAt: -Infinity, ...NO_TAGS });
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
    this.known.set(nodeId, { nodeId, addresses, lastMentionedAt: now, failures: 0, retryAt: now, isSeed: false, lastTrialAt: -Infinity, ...NO_TAGS });
    this.maintainAt = Math.min(this.maintainAt, now);
  }

  private deferPeer(nodeId: NodeId, until: number): void {
    const known = this.known.get(nodeId);
    if (known) known.retryAt = Math.max(known.retryAt, until);
  }

  private onPeers(from: Link, peers: PeerEntry[], self: PeerSelf | undefined): void {
    if (self !== undefined) this.onPeerSelf(from, self);
    for (const peer of peers) {
      this.rememberPeer(peer.nodeId, peer.addresses, this.now);
      if (peer.tags !== undefined) this.learnTags(peer, this.now);
    }
  }

  // Discovery by tags (link/tags.ts; docs/architecture.md, "Discovery by tags"). Tags travel in
  // peer exchange (`peers` version 2): each node says its own tags, entries of its neighbours carry
  // theirs, and tagged peers heard of through others are relayed on with their age, so tags cross
  // any number of hops; an entry nobody linked to the peer has vouched for in TAG_ENTRY_MAX_AGE_MS
  // is no longer relayed. A node with connect tags is selective: it links to its seeds and to the
  // known nodes carrying a connect tag, and others do not mesh with it.

  /** This node's advertised tags. */
  private ownTags(): string[] {
    return this.config.localTags ?? [];
  }

  private ownConnectTags(): string[] {
    return this.config.connectTags ?? [];
  }

  /** Discovery by tags: this node's tags and connect tags (GET /api/node). */
  tags(): { local: string[]; connect: string[] } {
    return { local: [...this.ownTags()], connect: [...this.ownConnectTags()] };
  }

  /**
   * Discovery by tags: the tagged peers this node knows of and still relays (vouched for within
   * TAG_ENTRY_MAX_AGE_MS, or linked now), by NodeId, with the age of what it knows in ms.
   */
  taggedPeers(now: number): { id: NodeId; tags: string[]; selective: boolean; ageMs: number; linked: boolean }[] {
    const result: { id: NodeId; tags: string[]; selective: boolean; ageMs: number; linked: boolean }[] = [];
    for (const known of this.known.values()) {
      const linked = this.links.get(known.nodeId)?.state.kind === "up";
      if (known.tags.length === 0 || (!linked && now - known.tagsSeenAt > TAG_ENTRY_MAX_AGE_MS)) continue;
      result.push({ id: known.nodeId, tags: [...known.tags], selective: known.selective, ageMs: now - known.tagsSeenAt, linked });
    }
    return result.sort((a, b) => a.id - b.id);
  }

  /**
   * Does this node want a link to `known`? Seeds always; a selective node the peers carrying one of
   * its connect tags; any other node every peer that is not selective (today's full mesh).
   */
  private wantsLink(known: KnownPeer): boolean {
    if (known.isSeed) return true;
    const connect = this.ownConnectTags();
    if (connect.length > 0) return carriesAny(known.tags, connect);
    return !known.selective;
  }

  /** What a neighbour says of itself. In CA mode, only the tags its certificate carries count. */
  private onPeerSelf(link: Link, self: PeerSelf): void {
    const certificate = link.path.channel?.peer?.certificate;
    let tags = self.tags;
    if (certificate !== undefined) {
      const { kept, refused } = tagsAllowedByCertificate(self.tags, certificate.tags);
      const key = refused.join(",");
      if (refused.length > 0 && link.refusedTagClaim !== key) {
        this.log.warn(
          { peer: link.peer, refused, certificateTags: certificate.tags },
          `node ${link.peer} advertises tags its certificate does not carry (${key}); ignoring them`,
        );
      }
      link.refusedTagClaim = key;
      tags = kept;
    }
    link.peerTags = tags;
    const known = this.known.get(link.peer);
    if (known === undefined) return;
    const wanted = this.wantsLink(known);
    known.tags = tags;
    known.selective = self.selective;
    known.tagsSeenAt = this.now;
    if (certificate !== undefined) known.certificateTags = [...certificate.tags];
    if (wanted !== this.wantsLink(known)) this.maintainAt = Math.min(this.maintainAt, this.now);
  }

  /**
   * A peer's tags as an entry relays them: the freshest word wins (ages only grow along relays, so
   * a stale entry never comes back fresh), and a linked peer's own word beats any relay.
   */
  private learnTags(entry: PeerEntry, now: number): void {
    const known = this.known.get(entry.nodeId);
    if (known === undefined) return;
    if (this.links.get(entry.nodeId)?.peerTags !== undefined) return;
    const seenAt = now - (entry.ageS ?? 0) * 1000;
    if (seenAt <= known.tagsSeenAt) return;
    let tags = entry.tags ?? [];
    if (known.certificateTags !== undefined) tags = tagsAllowedByCertificate(tags, known.certificateTags).kept;
    const wanted = this.wantsLink(known);
    known.tags = tags;
    known.selective = entry.selective === true;
    known.tagsSeenAt = seenAt;
    if (!wanted && this.wantsLink(known)) this.maintainAt = Math.min(this.maintainAt, now);
  }

  /**
   * Drops the links this node opened to peers it turned out not to want, once they said what they
   * are (their own word, checked against their certificate): a selective node's links to peers
   * without any of its connect tags, an untagged plain node's links to selective peers. Seeds excepted.
   */
  private dropUnwantedLinks(now: number): void {
    const connect = this.ownConnectTags();
    // A tagged node keeps its links to selective peers: they may want its tags (their connect tags
    // are not advertised), and a goodbye would keep them away for RECONNECT_BACKOFF_MAX_MS.
    if (connect.length === 0 && this.ownTags().length > 0) return;
    for (const link of [...this.links.values()]) {
      if (link.state.kind !== "up" || link.path.inbound || link.peerTags === undefined) continue;
      const known = this.known.get(link.peer);
      if (known === undefined || this.wantsLink(known)) continue;
      const reason =
        connect.length > 0
          ? `discovery by tags: node ${link.peer} carries none of the connect tags ${connect.join(",")}`
          : `discovery by tags: node ${link.peer} links only by its connect tags`;
      this.log.info({ peer: link.peer, tags: link.peerTags }, reason);
      this.sendLink(link.path, link.peer, { type: "goodbye", detail: reason });
      this.flushPath(link.path);
      known.lastTrialAt = now;
      this.linkDown(link, reason, now);
    }
  }

  /**
   * Our up neighbours (with the tags they said), then tagged peers heard of through others and
   * still fresh (at most MAX_RELAYED_TAGGED_PEERS, freshest first), in `peers` messages (version 2)
   * that each fit one datagram. Always at least one message: it carries this node's own tags.
   */
  private sendPeerList(link: Link): void {
    const now = this.now;
    const self: PeerSelf = { tags: this.ownTags(), selective: this.ownConnectTags().length > 0 };
    const entries: PeerEntry[] = [];
    for (const other of this.links.values()) {
      // A neighbour is announced once it said what it is (its tags, whether it is selective).
      if (other === link || other.state.kind !== "up" || other.peerAddresses.length === 0 || other.peerTags === undefined) continue;
      const known = this.known.get(other.peer);
      entries.push({ nodeId: other.peer, addresses: other.peerAddresses, tags: other.peerTags, selective: known?.selective ?? false, ageS: 0 });
    }
    const relayed: KnownPeer[] = [];
    for (const known of this.known.values()) {
      if (known.nodeId === link.peer || known.tags.length === 0 || known.addresses.length === 0 || now - known.tagsSeenAt > TAG_ENTRY_MAX_AGE_MS) continue;
      if (this.links.get(known.nodeId)?.state.kind === "up") continue;
      relayed.push(known);
    }
    relayed.sort((a, b) => b.tagsSeenAt - a.tagsSeenAt || a.nodeId - b.nodeId);
    for (const known of relayed.slice(0, MAX_RELAYED_TAGGED_PEERS)) {
      // Rounded up: an entry never gets younger on its way.
      entries.push({ nodeId: known.nodeId, addresses: known.addresses, tags: known.tags, selective: known.selective, ageS: Math.ceil((now - known.tagsSeenAt) / 1000) });
    }
    const budget = this.udpPacketBytes - FRAME_HEADER_BYTES - peersHeaderBytes(self);
    let batch: PeerEntry[] = [];
    let size = 0;
    for (const entry of entries) {
      const bytes = peerEntryBytes(entry);
      if (batch.length > 0 && (batch.length >= MAX_PEERS_PER_MESSAGE || size + bytes > budget)) {
        this.sendLink(link.path, link.peer, { type: "peers", self, peers: batch });
        batch = [];
        size = 0;
      }
      batch.push(entry);
      size += bytes;
    }
    this.sendLink(link.path, link.peer, { type: "peers", self, peers: batch });
  }

  /** Up to MAX_REFERRALS random up neighbours (with addresses), for a hello we refuse because we are full. */
  private referrals(except: NodeId): PeerEntry[] {
    const entries: PeerEntry[] = [];
    for (const link of this.links.values()) {
      if (link.peer !== except && link.state.kind === "up" && link.peerAddresses.length > 0) entries.push({ nodeId: link.peer, addresses: link.peerAddresses });
    }
    for (let index = entries.length - 1; index > 0; index -= 1) {
      const other = this.config.rng.nextInt(index + 1);
      [entries[index], entries[other]] = [entries[other]!, entries[index]!];
    }
    return entries.slice(0, MAX_REFERRALS);
  }

  private upLinkCount(): number {
    let count = 0;
    for (const link of this.links.values()) if (link.state.kind === "up") count += 1;
    return count;
  }

  /**
   * Opens links to known peers while there is room: a full mesh up to maxNeighbours. Routing: once
   * the node knows more peers than that, one slot stays free for the neighbour policy's trial links
   * and others' (see runNeighbourPolicy).
   */
  private maintain(now: number): void {
    this.maintainAt = now + MAINTAIN_INTERVAL_MS;
    if (!this.started || this.closed) return;
    const policy = this.policyMode();
    const fillTarget = policy ? Math.max(1, this.config.maxNeighbours - 1) : this.config.maxNeighbours;
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
      if (known.retryAt <= now && this.wantsLink(known)) candidates.push(known);
    }
    this.dropUnwantedLinks(now);
    // Seeds first (they are how a node gets in), then the rest in random order.
    for (let index = candidates.length - 1; index > 0; index -= 1) {
      const other = this.config.rng.nextInt(index + 1);
      [candidates[index], candidates[other]] = [candidates[other]!, candidates[index]!];
    }
    // Peers the policy dropped (or that dropped us) lately come last.
    const recent = (known: KnownPeer): number => Number(now - known.lastTrialAt < TRIAL_RETRY_MS);
    candidates.sort((a, b) => Number(b.isSeed) - Number(a.isSeed) || recent(a) - recent(b));
    for (const known of candidates) {
      if (linked >= fillTarget || connecting >= MAX_PARALLEL_CONNECTS) break;
      const address = this.pickAddress(known.addresses);
      if (!address) continue;
      this.connect(known.nodeId, address, now);
      linked += 1;
      connecting += 1;
    }
    if (policy && now >= this.nextPolicyAt) this.runNeighbourPolicy(now, candidates);
    if (!policy) for (const link of this.links.values()) this.endProbation(link, now);
  }

  /** The network is larger than maxNeighbours: the neighbour policy chooses the links. */
  private policyMode(): boolean {
    return this.known.size > this.config.maxNeighbours && this.config.maxNeighbours >= POLICY_MIN_NEIGHBOURS;
  }

  private endProbation(link: Link, now: number): void {
    if (!link.probation) return;
    link.probation = false;
    this.router.linkProbation(now, link.peer, false);
  }

  /**
   * Routing: the neighbour policy (routing/neighbour-policy.ts) for networks larger than
   * maxNeighbours. At the limit, drop the least useful link (hysteresis inside `choosePrune`);
   * below it, explore: open one trial link to a random known peer, judged TRIAL_EVALUATE_MS later.
   * Trials that do not pay off slow exploration down (up to TRIAL_BACKOFF_MAX_MS).
   */
  private runNeighbourPolicy(now: number, candidates: KnownPeer[]): void {
    this.nextPolicyAt = now + NEIGHBOUR_POLICY_INTERVAL_MS * (0.9 + 0.2 * this.config.rng.nextFloat());
    const up: PolicyLink[] = [];
    for (const link of this.links.values()) {
      if (link.state.kind !== "up") continue;
      up.push({ peer: link.peer, srttMs: link.measurement.rtt.srttMs, upSince: link.state.since, trial: link.trial || link.probation });
    }
    // Usefulness costs a pass over the table: only computed when the node is at its limit.
    const full = up.length >= this.config.maxNeighbours;
    const decision = full ? choosePrune({ now, maxNeighbours: this.config.maxNeighbours, links: up, utilities: this.router.neighbourUtilities() }) : { kind: "keep" as const };
    if (decision.kind === "drop") {
      const link = this.links.get(decision.peer)!;
      this.log.debug({ peer: decision.peer }, decision.reason);
      this.sendLink(link.path, link.peer, { type: "goodbye", detail: decision.reason });
      this.flushPath(link.path);
      const known = this.known.get(link.peer);
      if (known) known.lastTrialAt = now;
      this.linkDown(link, decision.reason, now);
    }
    // Links that survived their evaluation period are kept: their routes count from now on, and a
    // trial among them paid off.
    let trialPending = false;
    for (const link of this.links.values()) {
      const age = link.state.kind === "up" ? now - link.state.since : 0;
      if (age >= TRIAL_EVALUATE_MS) this.endProbation(link, now);
      if (!link.trial) continue;
      if (age >= TRIAL_SUCCESS_AFTER_MS) {
        link.trial = false;
        this.trialIntervalMs = NEIGHBOUR_POLICY_INTERVAL_MS;
      } else {
        trialPending = true;
      }
    }
    if (trialPending || now < this.nextTrialAt || this.links.size >= this.config.maxNeighbours) return;
    const fresh = candidates.filter((known) => !this.links.has(known.nodeId) && now - known.lastTrialAt >= TRIAL_RETRY_MS);
    if (fresh.length === 0) return;
    const chosen = this.pickTrialCandidate(fresh);
    const address = this.pickAddress(chosen.addresses);
    if (!address) return;
    chosen.lastTrialAt = now;
    this.nextTrialAt = now + this.trialIntervalMs;
    this.connect(chosen.nodeId, address, now);
    const link = this.links.get(chosen.nodeId);
    if (link) link.trial = true;
  }

  /**
   * Half the trials go to a peer drawn with probability inversely proportional to the overlay
   * metric toward it (peers the overlay already sees as near are the likeliest to be near, and
   * nearness is what the policy keeps), half to a uniformly random peer (the random long links).
   * In a model of 200 generated nodes with 16 links this reaches 0.9 of the optimum in about 75
   * trials per node, against about 95 with uniform draws alone.
   */
  private pickTrialCandidate(fresh: KnownPeer[]): KnownPeer {
    const rng = this.config.rng;
    if (rng.nextFloat() < 0.5) {
      let total = 0;
      const weights = fresh.map((known) => {
        const metric = this.router.metricTo(known.nodeId);
        const weight = metric === METRIC_INFINITY ? 0 : 1 / Math.max(metric, 1000);
        total += weight;
        return weight;
      });
      if (total > 0) {
        let draw = rng.nextFloat() * total;
        for (let index = 0; index < fresh.length; index += 1) {
          draw -= weights[index]!;
          if (draw <= 0) return fresh[index]!;
        }
      }
    }
    return fresh[rng.nextInt(fresh.length)]!;
  }

  /** A trial link ended before it was judged a success: explore more slowly. */
  private trialFailed(link: Link): void {
    if (!link.trial) return;
    link.trial = false;
    this.trialIntervalMs = Math.min(TRIAL_BACKOFF_MAX_MS, this.trialIntervalMs * 2);
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
      this.startHandshake(link, now);
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
      channel: undefined,
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
      routeCostUs: undefined,
      routeCostAt: -Infinity,
      trial: false,
      probation: false,
      peerTags: undefined,
      refusedTagClaim: undefined,
    };
    path.link = link;
    this.links.set(peer, link);
    return link;
  }

  private forgetPath(path: Path): void {
    this.paths.delete(path.id);
    this.handshaking.delete(path);
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

  /**
   * The send primitive modules use (ModuleHost.send). Returns a SkeinError instead of throwing.
   * Routing: the frame leaves through the router's next hop (a direct link while the router has
   * no route yet, e.g. in the first milliseconds of a link).
   */
  private sendRouted(destination: NodeId, module: number, payload: Uint8Array, reliable: boolean, ttl = DEFAULT_TTL, direct = false): SkeinError | undefined {
    if (this.closed) return new SkeinError("CLOSED", "the node is closed");
    if (payload.byteLength > MAX_FRAME_PAYLOAD_BYTES) {
      return new SkeinError("TOO_LARGE", `message of ${payload.byteLength} bytes exceeds the ${MAX_FRAME_PAYLOAD_BYTES}-byte limit; split it`);
    }
    // `direct` (pub/sub, RouteAwareHost.sendToNeighbour): on the link to `destination` itself.
    const hop = direct ? destination : this.nextHop(destination);
    const link = hop === undefined ? undefined : this.links.get(hop);
    if (!link || link.state.kind !== "up") {
      this.drop("no_route");
      return new SkeinError(
        "NO_ROUTE",
        destination === this.id
          ? `node ${this.id} cannot send to itself`
          : `no route to node ${destination} from node ${this.id}: it is not a neighbour and no neighbour advertised a route to it (yet)`,
      );
    }
    link.measurement.markActive(this.now);
    let flags: number = reliable ? FrameFlag.Reliable : 0;
    if (this.sealsFor(hop!, destination, module)) {
      // End to end: the frame leaves through a relay, so its payload is sealed for the destination.
      const sealed = this.sealRouted(destination, module, payload, reliable, ttl, flags | FrameFlag.Sealed);
      if (!(sealed instanceof Uint8Array)) return sealed;
      payload = sealed;
      flags |= FrameFlag.Sealed;
    }
    const header = { kind: FrameKind.Routed, flags, ttl, source: this.id, destination, module };
    if (link.path.address.transport === "tcp" && payload.byteLength >= ZERO_COPY_MIN_PAYLOAD_BYTES) {
      const headerBytes = new Uint8Array(FRAME_HEADER_BYTES);
      writeFrameHeader(headerBytes, 0, header, ttl, payload.byteLength);
      this.queueFrame(link.path, headerBytes, payload);
      return undefined;
    }
    const frame = encodeFrame(header, payload);
    const arq = reliable ? this.arqOf(link) : undefined;
    if (arq) {
      if (!arq.send(this.now, frame)) {
        this.drop("queue_full");
        return new SkeinError("BACKPRESSURE", `the reliable queue to node ${destination} is full; wait for it to drain and retry`);
      }
      this.pumpArqOut(link);
      return undefined;
    }
    if (link.path.address.transport === "udp" && frame.byteLength > this.udpPacketBytes) {
      return new SkeinError(
        "TOO_LARGE",
        `datagram of ${frame.byteLength} bytes exceeds the ${this.udpPacketBytes} bytes one UDP datagram carries (MTU ${this.config.udpMtu} less the record overhead); send it reliable (it is then fragmented) or raise --udp-mtu`,
      );
    }
    this.queueFrame(link.path, frame);
    return undefined;
  }

  /**
   * The UDP reliable class of an up link, created on first use: most links never carry a reliable
   * frame, and an idle channel still holds its windows. Both ends start from the same sequence
   * number whenever they create it, so creating it late changes nothing on the wire.
   */
  private arqOf(link: Link): ArqChannel | undefined {
    if (link.arq === undefined && link.path.address.transport === "udp" && link.state.kind === "up") {
      link.arq = new ArqChannel({ ...DEFAULT_ARQ_CONFIG, maxSegmentBytes: this.udpPacketBytes - FRAME_HEADER_BYTES - ARQ_SEGMENT_HEADER_BYTES });
    }
    return link.arq;
  }

  /** Moves ARQ output (segments, acks) and delivered messages along. */
  private pumpArq(link: Link): void {
    const arq = link.arq!;
    for (let delivered = arq.pollDelivered(); delivered !== undefined; delivered = arq.pollDelivered()) {
      const error = forEachFrame(delivered, (header, payload) => this.onFrame(link.path, header, payload, true));
      if (error !== undefined) this.drop("malformed");
      if (this.links.get(link.peer) !== link) return;
    }
    this.pumpArqOut(link);
  }

  /** Moves ARQ output (acks, segments) of one link to its path, without delivering anything. */
  private pumpArqOut(link: Link): void {
    const arq = link.arq!;
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
    this.pubsub.flushBatches();
    this.drainRouter();
    this.drainEndToEnd();
    for (const path of this.dirtyPaths) this.flushPath(path);
    this.dirtyPaths.length = 0;
    if (this.sealFailedPaths.length > 0) {
      const failed = this.sealFailedPaths.splice(0);
      for (const path of failed) this.failPath(path, "a record could not be sealed");
    }
  }

  private flushPath(path: Path): void {
    const frames = path.pending;
    if (frames.length === 0) return;
    const tails = path.tails;
    const udp = path.address.transport === "udp";
    const limit = udp ? this.udpPacketBytes : STREAM_PACKET_MAX_BYTES;
    if (!this.insecure && path.channel?.established !== true) {
      // Nothing leaves a path before its handshake completed.
      this.drop("not_established", frames.length);
      frames.length = 0;
      path.tails = undefined;
      path.pendingBytes = 0;
      return;
    }
    // Consecutive large frames share one record up to STREAM_RECORD_MAX_BYTES: one cipher, one tag
    // and one writev for several large messages, which is what bulk throughput is made of
    // (docs/benchmarks.md). A packet of small frames closes its record: a receiver opens a record
    // only once it is whole, and small messages (requests, acks, probes) must not wait for large
    // ones queued after them. UDP packets never have tails, so each datagram is one record.
    let parts: Uint8Array[] = [];
    let recordBytes = 0;
    let recordFirstFrame = 0;
    let start = 0;
    /** Sends the record being built; false when sealing failed (the rest of the flush is dropped). */
    const closeRecord = (): boolean => {
      const sent = this.transmitRecord(path, parts, recordBytes, frames.length - recordFirstFrame);
      parts = [];
      recordBytes = 0;
      recordFirstFrame = start;
      return sent;
    };
    while (start < frames.length) {
      let end = start;
      let size = 0;
      let tail: Uint8Array | undefined;
      while (end < frames.length && (end === start || size + frames[end]!.byteLength <= limit)) {
        // A frame whose payload rides as a tail starts its own packet and ends it, so a packet is
        // either small frames (at most `limit`) or one frame (at most RECORD_MAX_PLAINTEXT_BYTES).
        if (end > start && tails?.[end] !== undefined) break;
        size += frames[end]!.byteLength;
        tail = tails?.[end];
        end += 1;
        if (tail !== undefined) break;
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
      if (parts.length > 0 && recordBytes + bytes > STREAM_RECORD_MAX_BYTES && !closeRecord()) break;
      parts.push(packet);
      if (tail !== undefined) parts.push(tail);
      recordBytes += bytes;
      start = end;
      if (tail === undefined && !closeRecord()) break;
    }
    if (parts.length > 0) closeRecord();
    frames.length = 0;
    path.tails = undefined;
    path.pendingBytes = 0;
  }

  /**
   * Sends `parts` (whole frames, in order; one part on UDP) as one record: sealed, or as they are
   * on an insecure node. False when sealing failed: the path is then closed after the flush, and
   * `unsent` frames are counted dropped.
   */
  private transmitRecord(path: Path, parts: Uint8Array[], bytes: number, unsent: number): boolean {
    const peer = path.link?.peer;
    const channel = path.channel;
    // The simulator's frame tracing reads the frames a record carries.
    const plaintext = this.config.exposePlaintext === true ? (parts.length === 1 ? parts[0] : concatBytes(...parts)) : undefined;
    let pieces = parts;
    if (channel !== undefined && !this.insecure) {
      const udp = path.address.transport === "udp";
      try {
        pieces = udp ? [channel.seal(this.now, parts[0]!)] : channel.sealParts(this.now, parts);
      } catch (error) {
        this.drop("seal_failed", unsent);
        this.log.warn({ path: formatAddress(path.address), err: String(error) }, "could not seal a packet; closing the path");
        // A record never written breaks a stream's counter sequence: the stream must go.
        if (!udp) this.sealFailedPaths.push(path);
        return false;
      }
    }
    path.bytesOut += bytes;
    this.counters.bytesOut += bytes;
    this.output({ kind: "transmit", pathId: path.id, packet: pieces[0]!, rest: pieces.length > 1 ? pieces.slice(1) : undefined, peer, plaintext });
    return true;
  }

  // ─── End-to-end sealing (e2e-paths.ts) ─────────────────────────────────────────────────────────

  /**
   * Whether a frame to `destination` leaving through neighbour `hop` is sealed end to end: when a
   * relay will hold it (hop ≠ destination). Straight to the destination, the link record already
   * authenticates exactly that pair. Routing reports and probes (relays read trace probes) and the
   * key exchange (module 1, which makes sealing possible) stay unsealed.
   */
  private sealsFor(hop: NodeId, destination: NodeId, module: number): boolean {
    return !this.insecure && hop !== destination && module !== ModuleId.Routing && module !== ModuleId.Link;
  }

  /**
   * The sealed payload; or undefined when the frame waits for the destination's key (it leaves
   * when the key arrives: drainEndToEnd); or the error to return from send.
   */
  private sealRouted(destination: NodeId, module: number, payload: Uint8Array, reliable: boolean, ttl: number, flags: number): Uint8Array | SkeinError | undefined {
    if (payload.byteLength + SEALED_OVERHEAD_BYTES > MAX_FRAME_PAYLOAD_BYTES) {
      return new SkeinError("TOO_LARGE", `message of ${payload.byteLength} bytes exceeds the ${MAX_FRAME_PAYLOAD_BYTES - SEALED_OVERHEAD_BYTES}-byte limit of a relayed (sealed) message; split it`);
    }
    if (!this.e2e.hasKey(destination)) {
      if (this.e2e.hold(this.now, destination, { module, payload, reliable, ttl })) return undefined;
      this.drop("e2e_pending_full");
      return new SkeinError("BACKPRESSURE", `too many messages wait for node ${destination}'s end-to-end key; wait and retry`);
    }
    const sealed = this.e2e.seal(this.now, { kind: FrameKind.Routed, flags, source: this.id, destination, module }, payload);
    if (sealed === undefined) {
      this.drop("e2e_unknown_key");
      return new SkeinError("NO_ROUTE", `no end-to-end key for node ${destination}`);
    }
    return sealed;
  }

  /**
   * The payload of a ROUTED frame for this node, opened when sealed; undefined when it is dropped:
   * it does not authenticate (altered, forged source, replayed: counted as e2e_<reason>), or it
   * was relayed without a seal though it should have been (`e2e_unsealed`).
   */
  private openRouted(link: Link, header: FrameHeader, payload: Uint8Array): Uint8Array | undefined {
    if ((header.flags & FrameFlag.Sealed) !== 0) {
      const opened = this.e2e.open(this.now, header, payload);
      if (!opened.ok) {
        this.drop(`e2e_${opened.code}`);
        this.log.debug({ source: header.source, via: link.peer, code: opened.code }, `sealed frame dropped: ${opened.error}`);
        return undefined;
      }
      return opened.payload;
    }
    if (this.insecure || header.source === link.peer || header.module === ModuleId.Routing || header.module === ModuleId.Link) return payload;
    this.drop("e2e_unsealed");
    this.log.debug({ source: header.source, via: link.peer, module: header.module }, "unsealed frame relayed from another source dropped: relayed frames must be sealed end to end");
    return undefined;
  }

  /** Key exchange (ROUTED frames of module 1): learn the sender's key, answer a request. */
  private onKeyMessage(header: FrameHeader, payload: Uint8Array): void {
    if (this.insecure) {
      this.drop("unknown_module");
      return;
    }
    const error = this.e2e.onKeyMessage(this.now, header.source, payload);
    if (error !== undefined) {
      this.drop("e2e_bad_key_message");
      this.log.debug({ source: header.source, error }, "key exchange message refused");
    }
    this.drainEndToEnd();
  }

  /** Carries out what the end-to-end layer produced: key messages, frames whose key arrived. */
  private drainEndToEnd(): void {
    for (let output = this.e2e.poll(); output !== undefined; output = this.e2e.poll()) {
      switch (output.kind) {
        case "send_key":
          // Datagram class: e2e-paths repeats an unanswered request.
          this.sendRouted(output.destination, ModuleId.Link, output.payload, false);
          break;
        case "release":
          // In order, now sealed (or straight, if the destination became a neighbour meanwhile).
          for (const frame of output.frames) this.sendRouted(output.destination, frame.module, frame.payload, frame.reliable, frame.ttl);
          break;
        case "dropped":
          this.drop(output.reason, output.count);
          break;
      }
    }
  }

  /** Routing: carries out what the router produced (route messages, reports, probes, events). */
  private drainRouter(): void {
    for (let output = this.router.pollOutput(); output !== undefined; output = this.router.pollOutput()) {
      switch (output.kind) {
        case "link_send": {
          const link = this.links.get(output.to);
          if (link && link.state.kind === "up") {
            this.queueFrame(link.path, encodeFrame({ kind: FrameKind.Link, flags: 0, ttl: 1, source: this.id, destination: link.peer, module: ModuleId.Routing }, output.payload));
          }
          break;
        }
        case "routed_send":
          // Best effort (datagram class); a failure is already counted (`no_route`).
          this.sendRouted(output.to, ModuleId.Routing, output.payload, false, output.ttl);
          break;
        case "event":
          this.emitRouterEvent(output.event);
          break;
      }
    }
  }

  private emitRouterEvent(event: RouterEvent): void {
    switch (event.kind) {
      case "route":
        this.emit({
          kind: "route",
          destination: event.destination,
          nextHop: event.nextHop,
          previousNextHop: event.previousNextHop,
          metricMs: metricMs(event.metricUs),
          hops: event.hops,
        });
        return;
      case "unreachable":
        this.emit({ kind: "unreachable", destination: event.destination, reportedBy: event.reportedBy });
        return;
      case "probe":
        this.emit({ kind: "probe", result: event.result });
        return;
    }
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

  private drop(reason: string, count = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + count;
  }
}

/** The detail of a `full` HS_REJECT: "node N has its M neighbours; try ID@ADDRESS …", as many as fit. */
function formatFullDetail(self: NodeId, maxNeighbours: number, referrals: PeerEntry[]): string {
  let detail = `node ${self} has its ${maxNeighbours} neighbours; try`;
  for (const referral of referrals) {
    for (const address of referral.addresses.slice(0, 1)) {
      const entry = ` ${referral.nodeId}@${formatAddress(address)}`;
      if (detail.length + entry.length <= REJECT_FULL_DETAIL_MAX_BYTES) detail += entry;
    }
  }
  return detail;
}

/** The referrals (NODEID@ADDRESS words) of a `full` HS_REJECT's detail; anything else is ignored. */
function parseFullDetail(detail: string): Seed[] {
  const seeds: Seed[] = [];
  for (const word of detail.split(" ")) {
    if (!word.includes("@")) continue;
    const seed = parseSeed(word);
    if (seed.ok) seeds.push(seed.value);
  }
  return seeds;
}

function routeView(info: RouteInfo): RouteView {
  return {
    destination: info.destination,
    state: info.state,
    nextHop: info.nextHop,
    metricMs: metricMs(info.metricUs),
    hops: info.hops,
    seqno: info.seqno,
    alternates: info.alternates.map((alternate) => ({
      via: alternate.via,
      metricMs: metricMs(alternate.metricUs),
      hops: alternate.hops,
      feasible: alternate.feasible,
      usable: alternate.usable,
    })),
  };
}

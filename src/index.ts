/**
 * skein: a decentralized, path-aware overlay network for Node.js.
 *
 *   import { createNode } from "skein";
 *   const node = await createNode({ udpPort: 0, seeds: ["1@/ip4/127.0.0.1/udp/10001"] });
 *   for await (const message of node.messages()) console.log(message.from, message.data);
 */
export { createNode } from "./runtime/node.js";
export type { SkeinNode, ReceivedMessage, NodeEventOf } from "./node/api.js";
export type { NodeOptions } from "./node/options.js";
export { NODE_OPTION_DEFAULTS } from "./node/options.js";
export type { NodeEvent, NodeEventKind, NeighbourInfo, RouteView, ProbeResult, ProbeHop } from "./node/io.js";
export type { EngineStats, LinkStats } from "./node/engine.js";
export { SkeinError } from "./core/errors.js";
// pub/sub (issue 5)
export type { Msg, PubSubSubscription, SubscribeOptions, PublishOptions, Payload } from "./features/pubsub/client.js";
export { MsgHeaders } from "./features/pubsub/headers.js";
export type { NodeId } from "./core/node-id.js";
export type { Address, Seed, TransportKind } from "./core/address.js";
export type { LogLevel } from "./core/log.js";

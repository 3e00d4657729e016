/** A node's identity on the overlay: an unsigned 32-bit integer (see DESIGN.md, "NodeId"). */
export type NodeId = number;

export const NODE_ID_MAX = 0xffff_ffff;

/** Reserved: "no node" / broadcast-to-neighbour destination in link-local frames. */
export const NODE_ID_NONE = 0;

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= NODE_ID_MAX;
}

/** Parses a decimal NodeId; returns undefined when the text is not an integer in 1..2^32-1. */
export function parseNodeId(text: string): NodeId | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return isNodeId(value) ? value : undefined;
}

/** Shared helpers of the runtime tests. */
import type { SkeinNode } from "../../src/node/api.js";
import type { NodeEventKind } from "../../src/node/io.js";
import type { NodeEventOf } from "../../src/node/api.js";

/** Polls `condition` until it holds; fails after `timeoutMs` with `what`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The first event of `kind` that satisfies `match`, or a timeout error. */
export function nextEvent<K extends NodeEventKind>(
  node: SkeinNode,
  kind: K,
  match: (event: NodeEventOf<K>) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<NodeEventOf<K>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a ${kind} event on node ${node.id}`));
    }, timeoutMs);
    const off = node.on(kind, (event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** Closes every node given, ignoring undefined ones. */
export async function closeAll(nodes: (SkeinNode | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((node) => node?.close()));
}

/**
 * The raw data service (module id 2): opaque bytes from one node to another, on either link class.
 * It is what `node.send()` and the node's message stream use, and what benchmarks drive. The
 * payload of a data frame is the user's bytes, unchanged.
 */
import type { SkeinError } from "../core/errors.js";
import { type EngineModule, type InboundFrame, type ModuleHost, ModuleId } from "../core/module.js";
import type { NodeId } from "../core/node-id.js";

export type DataControl = { kind: "send"; destination: NodeId; data: Uint8Array; reliable: boolean };
export type DataEvent = { kind: "message"; from: NodeId; data: Uint8Array; reliable: boolean };

export class DataService implements EngineModule<DataControl, DataEvent> {
  readonly id = ModuleId.Data;
  readonly name = "data";
  private readonly events: DataEvent[] = [];
  private eventHead = 0;

  constructor(private readonly host: ModuleHost) {}

  send(destination: NodeId, data: Uint8Array, reliable: boolean): SkeinError | undefined {
    return this.host.send(destination, this.id, data, { reliable }) as SkeinError | undefined;
  }

  onFrame(_now: number, frame: InboundFrame): void {
    this.events.push({ kind: "message", from: frame.source, data: frame.payload, reliable: frame.reliable });
  }

  control(_now: number, control: DataControl): void {
    this.send(control.destination, control.data, control.reliable);
  }

  tick(): void {}

  nextDeadline(): number {
    return Infinity;
  }

  pollEvent(): DataEvent | undefined {
    if (this.eventHead >= this.events.length) {
      this.events.length = 0;
      this.eventHead = 0;
      return undefined;
    }
    const event = this.events[this.eventHead]!;
    this.eventHead += 1;
    return event;
  }
}

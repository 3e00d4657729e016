/**
 * The bounded buffer behind `node.messages()`: messages wait here until an iterator takes them.
 * When it holds INBOX_LIMIT_MESSAGES messages or INBOX_LIMIT_BYTES bytes, newer messages are
 * dropped and counted (`dropped`); the engine has already acknowledged them, so a consumer that
 * falls this far behind loses data rather than stalling the node's links.
 *
 * Iterators share the one buffer: two loops over `messages()` each get every other message.
 */
export const INBOX_LIMIT_MESSAGES = 65_536;
export const INBOX_LIMIT_BYTES = 64 * 1024 * 1024;

type Waiter<T> = (result: IteratorResult<T, undefined>) => void;

const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

export class Inbox<T> {
  private items: T[] = [];
  private head = 0;
  private bytes = 0;
  private readonly sizes: number[] = [];
  private waiters: Waiter<T>[] = [];
  private ended = false;
  dropped = 0;

  constructor(
    readonly limitMessages = INBOX_LIMIT_MESSAGES,
    readonly limitBytes = INBOX_LIMIT_BYTES,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  /** Adds one item of `size` bytes; returns false (and counts it) when the buffer is full. */
  push(item: T, size: number): boolean {
    if (this.ended) return false;
    const waiter = this.waiters.length > 0 ? this.waiters.shift() : undefined;
    if (waiter !== undefined) {
      waiter({ done: false, value: item });
      return true;
    }
    if (this.length >= this.limitMessages || this.bytes + size > this.limitBytes) {
      this.dropped++;
      return false;
    }
    this.items.push(item);
    this.sizes.push(size);
    this.bytes += size;
    return true;
  }

  private take(): T {
    const item = this.items[this.head]!;
    this.bytes -= this.sizes[this.head]!;
    (this.items as (T | undefined)[])[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.sizes.length = 0;
      this.head = 0;
    } else if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  /** No more items: waiting and later `next()` calls finish once the buffer is empty. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter(DONE);
  }

  iterator(): AsyncIterableIterator<T> {
    let finished = false;
    const iterator: AsyncIterableIterator<T> = {
      next: (): Promise<IteratorResult<T, undefined>> => {
        if (finished) return Promise.resolve(DONE);
        if (this.length > 0) return Promise.resolve({ done: false, value: this.take() });
        if (this.ended) return Promise.resolve(DONE);
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: (): Promise<IteratorResult<T, undefined>> => {
        finished = true;
        return Promise.resolve(DONE);
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { Inbox } from "../../src/runtime/inbox.js";

test("inbox: bounded by count and by bytes; overflow is dropped and counted", async () => {
  const inbox = new Inbox<number>(3, 100);
  assert.ok(inbox.push(1, 10));
  assert.ok(inbox.push(2, 10));
  assert.ok(inbox.push(3, 10));
  assert.equal(inbox.push(4, 10), false);
  assert.equal(inbox.dropped, 1);
  const it = inbox.iterator();
  assert.deepEqual(await it.next(), { done: false, value: 1 });
  assert.ok(inbox.push(5, 70));
  assert.equal(inbox.push(6, 20), false, "over the byte bound");
  assert.equal(inbox.dropped, 2);
  assert.equal(inbox.bufferedBytes, 90);
});

test("inbox: a waiting iterator gets the next item; end() finishes iterators after the buffer empties", async () => {
  const inbox = new Inbox<string>();
  const it = inbox.iterator();
  const pending = it.next();
  inbox.push("a", 1);
  assert.deepEqual(await pending, { done: false, value: "a" });
  inbox.push("b", 1);
  const waiting = inbox.iterator().next();
  assert.deepEqual(await waiting, { done: false, value: "b" });
  const last = it.next();
  inbox.end();
  assert.equal((await last).done, true);
  assert.equal(inbox.push("c", 1), false);
  const seen: string[] = [];
  for await (const item of { [Symbol.asyncIterator]: () => inbox.iterator() }) seen.push(item);
  assert.deepEqual(seen, []);
});

test("inbox: for-await over many items keeps order", async () => {
  const inbox = new Inbox<number>();
  for (let i = 0; i < 10_000; i++) inbox.push(i, 1);
  inbox.end();
  let expected = 0;
  for await (const item of { [Symbol.asyncIterator]: () => inbox.iterator() }) assert.equal(item, expected++);
  assert.equal(expected, 10_000);
});

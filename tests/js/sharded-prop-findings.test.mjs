// Regressions found by sharded-props.test.mjs, each reduced to the few calls that show it. Handlers:
// fixtures/prop-handlers.mjs (`t.>` does what the payload's `act` says, `t.*.fan` only counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShardedBus } from 'edgebus';
import { throwsCode } from './support/helpers.mjs';

const handlers = new URL('./fixtures/prop-handlers.mjs', import.meta.url);

function shared() {
  const mem = { calls: new SharedArrayBuffer(4 * 64), shards: new SharedArrayBuffer(4 * 32), lanes: new SharedArrayBuffer(4 * 8 * 33), stride: 33 };
  return { data: mem, calls: new Int32Array(mem.calls) };
}

test('a message waiting behind a blocked handler is sent again, not given up, when one of its subscriptions had run it', async () => {
  const s = shared();
  const seen = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: s.data, timeoutMs: 100, maxRedeliveries: 0,
    onError: (e, m) => seen.push([m.payload.n, e.code, e.redelivered]),
  });
  await bus.ready;
  // 0 keeps `t.>` busy while 2 arrives: `t.*.fan` runs 2 at once, its `t.>` delivery waits behind
  // 1, which blocks the worker. 2 was not running when the worker was replaced.
  bus.publish('t.a', { n: 0, l: 0, act: 'slow', ms: 20 });
  bus.publish('t.a', { n: 1, l: 0, act: 'loop', j: 1 });
  bus.publish('t.b.fan', { n: 2, l: 1, act: 'ok' });
  await bus.drain();
  assert.deepEqual(seen, [[1, 'HANDLER_TIMEOUT', false]]);
  assert.equal(s.calls[2 * 2], 1, 'the `t.>` handler of message 2 ran, on the replacement');
  assert.ok(s.calls[2 * 2 + 1] >= 1, 'its fan handler ran (again, at least once)');
  const st = bus.stats();
  assert.deepEqual([st.done, st.failed, st.timedOut, st.restarts], [2, 1, 1, 1]);
  await bus.close();
});

test('a publishBatch refused with QUEUE_FULL counts no duplicates, as Bus does', async () => {
  const s = shared();
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 1, maxQueue: 0, overflow: 'reject', dedupe: true });
  await bus.ready;
  bus.publish('t.a', { n: 0, l: 0, act: 'slow', ms: 30 }, { id: 'a' });
  throwsCode(() => bus.publishBatch('t.a', [{ n: 1, l: 0 }, { n: 2, l: 0 }], { ids: ['a', 'b'] }), 'QUEUE_FULL');
  assert.equal(bus.stats().duplicates, 0);
  assert.equal(bus.stats().published, 1);
  await bus.drain();
  // Nothing of the refused call was kept: 'b' is still new, 'a' a duplicate once.
  assert.equal(bus.publishBatch('t.a', [{ n: 1, l: 0 }, { n: 2, l: 0 }], { ids: ['a', 'b'] }), 1);
  await bus.drain();
  assert.deepEqual([bus.stats().duplicates, bus.stats().published, s.calls[2 * 2]], [1, 2, 1]);
  await bus.close();
});

test('a payload found uncloneable when its batch is sent frees its credit for the messages queued behind it', async () => {
  const s = shared();
  const seen = [];
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 1, onError: (e, m) => seen.push([m.payload.n, e.code]) });
  await bus.ready;
  bus.publish('t.a', { n: 0, l: 0, act: 'slow', ms: 10 });
  const changed = { n: 1, l: 0, act: 'ok' };
  bus.publish('t.a', changed);
  changed.f = () => 1; // sent once 0 is finished: refused then, alone
  bus.publish('t.a', { n: 2, l: 0, act: 'ok' });
  let timer;
  const drained = await Promise.race([
    bus.drain().then(() => true),
    new Promise((r) => { timer = setTimeout(() => r(false), 5000); }),
  ]);
  clearTimeout(timer);
  const left = bus.stats().queued;
  if (!drained) bus.terminate(); // nothing left to keep the process alive
  assert.equal(drained, true, `drain() settles (${left} queued)`);
  assert.deepEqual(seen, [[1, 'DATA_CLONE']]);
  assert.deepEqual([s.calls[0], s.calls[2], s.calls[4]], [1, 0, 1]);
  const st = bus.stats();
  assert.deepEqual([st.done, st.failed, st.queued, st.inFlight], [2, 1, 0, 0]);
  await bus.close();
});

test('a failure whose report had not left the worker when a loop blocked it is reported, not lost with the worker', async () => {
  const s = shared();
  const seen = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: s.data, timeoutMs: 100, maxRedeliveries: 2,
    onError: (e, m) => seen.push([m.payload.n, e.message]),
  });
  await bus.ready;
  // One batch to the worker: 0 finishes and is reported at once (the worker had been quiet), 1
  // throws and its report waits for the end of the turn, where 2 loops first. The worker is
  // replaced; 1 had finished (failed) there.
  bus.publish('t.a', { n: 0, l: 0, act: 'ok' });
  bus.publish('t.a', { n: 1, l: 0, act: 'throw' });
  bus.publish('t.a', { n: 2, l: 0, act: 'loop', j: 1 });
  await bus.drain();
  const failures = seen.filter(([n]) => n === 1);
  assert.ok(failures.length >= 1, `1's failure reached onError (${JSON.stringify(seen)})`);
  assert.ok(failures.every(([, message]) => message === 'm1 throws'), JSON.stringify(seen));
  assert.equal(seen.filter(([n]) => n === 2).length, 1, JSON.stringify(seen));
  const st = bus.stats();
  // 2 timed out once, then ran on the replacement: a redelivery, not a failure. All three finished.
  assert.deepEqual([st.failed, st.timedOut, st.restarts, st.done], [failures.length, 1, 1, 3]);
  await bus.close();
});

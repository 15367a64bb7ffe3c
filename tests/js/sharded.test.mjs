// ShardedBus in Node (worker_threads): per-key order under concurrency, redelivery after crashes
// (nothing lost, nothing completed twice), backpressure, clone errors, failures, drain/close/terminate,
// and bad input. Handlers live in fixtures/order-handlers.mjs and report through shared memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ShardedBus, EdgebusError, shardOf } from 'edgebus';
import { throwsCode, rejectsCode } from './support/helpers.mjs';

const handlers = new URL('./fixtures/order-handlers.mjs', import.meta.url);
const KEYS = 16;
const STRIDE = 2001;

function shared(n) {
  const counts = new SharedArrayBuffer(4 * n);
  const order = new SharedArrayBuffer(4 * KEYS * STRIDE);
  const shards = new SharedArrayBuffer(4 * KEYS);
  const gate = new SharedArrayBuffer(4 * 4);
  return {
    data: { counts, order, shards, gate, stride: STRIDE },
    counts: new Int32Array(counts),
    order: new Int32Array(order),
    shards: new Int32Array(shards),
    gate: new Int32Array(gate),
  };
}

async function until(pred, what, ms = 20_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function release(gate) {
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
}

function assertEachOnce(counts, n, what) {
  const wrong = [];
  for (let i = 0; i < n; i++) if (counts[i] !== 1) wrong.push(`${i}:${counts[i]}`);
  assert.deepEqual(wrong, [], `${what}: every message completes exactly once (n:count)`);
}

test('the test keys cover every shard', () => {
  const seen = new Set();
  for (let k = 0; k < KEYS; k++) seen.add(shardOf(`key-${k}`, 2));
  assert.deepEqual([...seen].sort(), [0, 1]);
});

test('per-key order under concurrency: every key on one worker, handled in publish order', async () => {
  const N = 2000;
  const s = shared(N);
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 64, maxQueue: Infinity });
  for (let n = 0; n < N; n++) {
    const k = n % KEYS;
    bus.publish(`ordered.t${n % 3}`, { n, k }, { key: `key-${k}` });
  }
  await bus.drain();
  assertEachOnce(s.counts, N, 'ordered');
  for (let k = 0; k < KEYS; k++) {
    const count = s.order[k * STRIDE];
    const got = Array.from(s.order.subarray(k * STRIDE + 1, k * STRIDE + 1 + count));
    const want = [];
    for (let n = k; n < N; n += KEYS) want.push(n);
    assert.deepEqual(got, want, `key-${k} in publish order`);
    assert.equal(s.shards[k] - 1, shardOf(`key-${k}`, 2), `key-${k} handled by its shard only`);
  }
  const st = bus.stats();
  assert.equal(st.published, N);
  assert.equal(st.done, N);
  assert.equal(st.perShard.length, 2);
  assert.ok(st.perShard.every((p) => p.done > 0), 'both workers did work');
  assert.equal(st.perShard[0].done + st.perShard[1].done, N);
  assert.equal(st.latency.count, N);
  assert.ok(st.latency.p99Ms >= st.latency.p50Ms && st.latency.p50Ms > 0);
  await bus.close();
});

test('a message a work queue inside the worker takes is done once its one member handled it (and a subscription its signal ended is not waited for)', async () => {
  const counts = new SharedArrayBuffer(8);
  const bus = new ShardedBus({ workers: 1, handlers: new URL('./fixtures/group-handlers.mjs', import.meta.url), data: { counts }, maxQueue: Infinity });
  await bus.ready;
  const N = 50;
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n });
  await bus.drain();
  const c = new Int32Array(counts);
  assert.deepEqual([c[0], c[1]], [N, N], 'one group member and the plain subscription each had every message');
  const st = bus.stats();
  assert.deepEqual([st.perShard[0].done, st.dropped, st.failed], [N, 0, 0], 'every message done, none taken for dropped');
  await bus.close();
});

test('a long burst of publishes is sent in batches as it goes, not only after the burst', async () => {
  const s = shared(300);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxQueue: Infinity });
  await bus.ready;
  for (let n = 0; n < 300; n++) bus.publish('jobs.work', { n });
  // Still inside the same synchronous run: one full batch of 256 is already with the worker.
  const st = bus.stats();
  assert.equal(st.inFlight, 256);
  assert.equal(st.queued, 44);
  await bus.drain();
  assertEachOnce(s.counts, 300, 'burst');
  await bus.close();
});

test('a worker terminated from outside mid-stream: replaced, unfinished messages redelivered in order, none twice', async () => {
  const N = 400;
  const BLOCK = 150;
  const s = shared(N);
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 1000, maxQueue: Infinity });
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, block: n === BLOCK }, { key: 'key-0' });
  const shard = shardOf('key-0', 2);
  await until(() => Atomics.load(s.gate, 0) === 1, 'the blocking message to start');
  // Everything before it finished on this worker; nothing after it started.
  for (let n = 0; n < BLOCK; n++) assert.equal(s.counts[n], 1);
  for (let n = BLOCK; n < N; n++) assert.equal(s.counts[n], 0);
  await bus._shards[shard].worker.thread.terminate();
  await bus.drain();
  assertEachOnce(s.counts, N, 'after terminate()');
  const st = bus.stats().perShard[shard];
  assert.equal(st.restarts, 1);
  assert.equal(st.done, N);
  assert.equal(st.failed, 0);
  // Redelivered: the blocked message and all sent after it (at most the whole tail).
  assert.ok(st.redelivered >= 1 && st.redelivered <= N - BLOCK, `redelivered ${st.redelivered}`);
  await bus.close();
});

test('a handler calling process.exit: the worker is replaced and nothing is lost or run twice', async () => {
  const N = 300;
  const s = shared(N);
  const errors = [];
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data, onError: (e) => errors.push(e) });
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, exit: n === 120 }, { key: `key-${n % KEYS}` });
  await bus.drain();
  // The exiting message itself exited before counting, and runs (once, to completion) on the new worker.
  assertEachOnce(s.counts, N, 'after process.exit');
  const st = bus.stats();
  assert.equal(st.restarts, 1);
  assert.equal(st.done, N);
  assert.equal(st.failed, 0);
  assert.deepEqual(errors, []);
  await bus.close();
});

test('an uncaught asynchronous error crashes the worker: replaced, nothing lost or twice', async () => {
  const N = 300;
  const s = shared(2 * N);
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 32 });
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, throwLater: n === 40, spin: 0.05 }, { key: `key-${n % KEYS}` });
  await until(() => bus.stats().restarts === 1, 'the crash');
  for (let n = N; n < 2 * N; n++) bus.publish('jobs.work', { n, spin: 0.05 }, { key: `key-${n % KEYS}` });
  await bus.drain();
  assertEachOnce(s.counts, 2 * N, 'after an uncaught error');
  assert.equal(bus.stats().restarts, 1);
  assert.equal(bus.stats().done, 2 * N);
  await bus.close();
});

test('a message that kills its worker every time fails with WORKER_CRASHED after maxRedeliveries; the rest run once', async () => {
  const N = 50;
  const s = shared(N);
  const failures = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: s.data, maxRedeliveries: 2,
    onError: (e, msg, info) => failures.push({ code: e.code, id: msg.id, n: msg.payload.n, shard: info.shard }),
  });
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, exitAlways: n === 10 }, { id: `job-${n}` });
  await bus.drain();
  assert.deepEqual(failures, [{ code: 'WORKER_CRASHED', id: 'job-10', n: 10, shard: 0 }]);
  for (let n = 0; n < N; n++) assert.equal(s.counts[n], n === 10 ? 0 : 1, `job ${n}`);
  const st = bus.stats();
  assert.equal(st.restarts, 3); // first run and two redeliveries
  assert.equal(st.failed, 1);
  assert.equal(st.done, N - 1);
  await bus.close();
});

test('handler errors reach onError and $errors with message id, topic and shard; delivery goes on', async () => {
  const N = 20;
  const s = shared(N);
  const seen = [];
  const events = [];
  const bus = new ShardedBus({
    workers: 2, handlers, data: s.data,
    onError: (e, msg, info) => seen.push({ e, msg, info }),
  });
  bus.subscribe('$errors', (ev) => events.push(ev));
  for (let n = 0; n < N; n++) bus.publish('jobs.bad', { n, fail: n === 7 }, { id: `m-${n}`, key: `key-${n % KEYS}` });
  await bus.drain();
  assert.equal(seen.length, 1);
  const { e, msg, info } = seen[0];
  assert.ok(e instanceof Error);
  assert.equal(e.message, 'job 7 failed on purpose');
  assert.equal(msg.id, 'm-7');
  assert.equal(msg.topic, 'jobs.bad');
  assert.equal(msg.key, 'key-7');
  assert.deepEqual(msg.payload, { n: 7, fail: true });
  assert.equal(info.shard, shardOf('key-7', 2));
  assert.deepEqual(info.subscription, { id: 1, pattern: 'jobs.>' });
  assert.equal(events.length, 1);
  assert.equal(events[0].error, e);
  assert.equal(events[0].message.id, 'm-7');
  assert.equal(events[0].shard, info.shard);
  assert.deepEqual(events[0].subscription, { id: 1, pattern: 'jobs.>' });
  for (let n = 0; n < N; n++) assert.equal(s.counts[n], n === 7 ? 0 : 1);
  const st = bus.stats();
  assert.equal(st.failed, 1);
  assert.equal(st.done, N);
  await bus.close();
});

test('a handlers module may subscribe to its worker\'s own $errors; failures still reach the main thread', async () => {
  const s = shared(10);
  const local = new Int32Array(new SharedArrayBuffer(4));
  const seen = [];
  const bus = new ShardedBus({ workers: 1, handlers, data: { ...s.data, localErrors: local.buffer }, onError: (e, m) => seen.push(m.payload.n) });
  for (let n = 0; n < 3; n++) bus.publish('jobs.bad', { n, fail: true });
  bus.publish('jobs.bad', { n: 3 });
  await bus.drain();
  assert.equal(Atomics.load(local, 0), 3);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(s.counts[3], 1);
  const st = bus.stats();
  assert.deepEqual([st.done, st.failed], [4, 3]);
  await bus.close();
});

test('an async $errors subscriber on the main thread gets every failure, in order', async () => {
  const s = shared(50);
  const got = [];
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data });
  bus.subscribe('$errors', async (ev) => {
    await new Promise((r) => setTimeout(r, 1));
    got.push(ev.message.payload.n);
  });
  for (let n = 0; n < 30; n++) bus.publish('jobs.bad', { n, fail: true });
  await bus.drain(); // includes the $errors subscribers
  assert.deepEqual(got, Array.from({ length: 30 }, (_, n) => n));
  assert.equal(bus.stats().failed, 30);
  await bus.close();
});

test('backpressure: credits bound what is in flight; reject throws QUEUE_FULL beyond maxQueue', async () => {
  const s = shared(100);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 4, maxQueue: 3, overflow: 'reject' });
  await bus.ready;
  bus.publish('jobs.work', { n: 0, hold: true });
  for (let n = 1; n < 7; n++) bus.publish('jobs.work', { n });
  throwsCode(() => bus.publish('jobs.work', { n: 7 }), 'QUEUE_FULL', /shard 0 is full/);
  await until(() => bus.stats().inFlight === 4, 'the flush');
  let st = bus.stats();
  assert.equal(st.queued, 3);
  assert.equal(st.perShard[0].inFlight, 4);
  throwsCode(() => bus.publish('jobs.work', { n: 7 }), 'QUEUE_FULL');
  // publishBatch under reject is all or nothing.
  throwsCode(() => bus.publishBatch('jobs.work', [{ n: 8 }]), 'QUEUE_FULL');
  release(s.gate);
  await bus.drain();
  for (let n = 0; n < 7; n++) assert.equal(s.counts[n], 1);
  assert.equal(s.counts[7], 0);
  st = bus.stats();
  assert.equal(st.published, 7);
  assert.equal(st.done, 7);
  assert.equal(st.dropped, 0);
  assert.equal(bus.publishBatch('jobs.work', [{ n: 8 }, { n: 9 }]), 2);
  await bus.drain();
  assert.equal(s.counts[8] + s.counts[9], 2);
  await bus.close();
});

test('backpressure: wait makes publishAsync wait in call order; publish throws QUEUE_FULL', async () => {
  const s = shared(100);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 2, maxQueue: 1, overflow: 'wait' });
  await bus.ready;
  bus.publish('jobs.work', { n: 0, hold: true });
  bus.publish('jobs.work', { n: 1 });
  bus.publish('jobs.work', { n: 2 });
  throwsCode(() => bus.publish('jobs.work', { n: 3 }), 'QUEUE_FULL', /publishAsync/);
  const resolved = [];
  const waits = [3, 4, 5].map((n) => bus.publishAsync('jobs.work', { n }).then((r) => resolved.push([n, r])));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(resolved, []);
  assert.equal(bus.stats().waiting, 3);
  release(s.gate);
  await Promise.all(waits);
  assert.deepEqual(resolved, [[3, true], [4, true], [5, true]]);
  await bus.drain();
  for (let n = 0; n < 6; n++) assert.equal(s.counts[n], 1);
  await bus.close();
});

test('backpressure: dropOldest and dropNewest drop what waits, counted', async () => {
  for (const [overflow, kept] of [['dropOldest', [0, 1, 4, 5]], ['dropNewest', [0, 1, 2, 3]]]) {
    const s = shared(100);
    const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 2, maxQueue: 2, overflow });
    await bus.ready;
    bus.publish('jobs.work', { n: 0, hold: true });
    bus.publish('jobs.work', { n: 1 });
    await until(() => bus.stats().inFlight === 2, 'the flush');
    const results = [2, 3, 4, 5].map((n) => bus.publish('jobs.work', { n }));
    assert.deepEqual(results, overflow === 'dropNewest' ? [true, true, false, false] : [true, true, true, true]);
    release(s.gate);
    await bus.drain();
    const done = [];
    for (let n = 0; n < 6; n++) if (s.counts[n] === 1) done.push(n);
    assert.deepEqual(done, kept, overflow);
    const st = bus.stats();
    assert.equal(st.dropped, 2, overflow);
    assert.equal(st.done, 4, overflow);
    await bus.close();
  }
});

test('a payload that cannot be cloned throws DATA_CLONE at publish; nothing else is affected', async () => {
  const s = shared(10);
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data });
  bus.publish('jobs.work', { n: 0 });
  throwsCode(() => bus.publish('jobs.work', { n: 1, f: () => 1 }), 'DATA_CLONE', /function/);
  throwsCode(() => bus.publish('jobs.work', () => 1), 'DATA_CLONE', /jobs\.work/);
  throwsCode(() => bus.publish('jobs.work', { n: 1, deep: [{ s: Symbol('x') }] }), 'DATA_CLONE', /symbol/);
  throwsCode(() => bus.publish('jobs.work', { n: 1, w: new WeakMap() }), 'DATA_CLONE');
  throwsCode(() => bus.publishBatch('jobs.work', [{ n: 1 }, { n: 2, f() {} }]), 'DATA_CLONE');
  await rejectsCode(bus.publishAsync('jobs.work', { n: 1, p: Promise.resolve() }), 'DATA_CLONE');
  // Cloneable shapes beyond plain objects still go through (Map, class instance, cycles).
  class Point { constructor() { this.x = 1; } }
  const cyclic = { n: 2 };
  cyclic.self = cyclic;
  bus.publish('jobs.work', cyclic);
  bus.publish('jobs.work', { n: 3, m: new Map([[1, 2]]), p: new Point() });
  bus.publish('jobs.work', { n: 1 });
  await bus.drain();
  assert.deepEqual(Array.from(s.counts.subarray(0, 4)), [1, 1, 1, 1]);
  const st = bus.stats();
  assert.equal(st.published, 4);
  assert.equal(st.done, 4);
  assert.equal(st.failed, 0);
  await bus.close();
});

test('a message whose ttlMs ends while it waits for credits expires, counted, and is not sent', async () => {
  const s = shared(10);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 1 });
  await bus.ready;
  bus.publish('jobs.work', { n: 0, hold: true });
  bus.publish('jobs.work', { n: 1 }, { ttlMs: 1 });
  bus.publish('jobs.work', { n: 2 }, { ttlMs: 60_000 });
  await new Promise((r) => setTimeout(r, 30));
  release(s.gate);
  await bus.drain();
  assert.deepEqual(Array.from(s.counts.subarray(0, 3)), [1, 0, 1]);
  const st = bus.stats();
  assert.equal(st.expired, 1);
  assert.equal(st.done, 2);
  await bus.close();
});

test('messages a worker subscription drops (its own maxQueue) are finished and counted as dropped', async () => {
  const s = shared(10);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data });
  await bus.ready;
  for (let n = 0; n < 5; n++) bus.publish('small.q', { n });
  await bus.drain();
  // One runs, one waits in the worker subscription's queue of 1, three are dropped there.
  assert.deepEqual(Array.from(s.counts.subarray(0, 5)), [1, 1, 0, 0, 0]);
  const st = bus.stats();
  assert.equal(st.done, 5);
  assert.equal(st.dropped, 3);
  assert.equal(st.inFlight, 0);
  await bus.close();
});

test('timeoutMs applies in the workers: HANDLER_TIMEOUT comes back with its code, the message is done', async () => {
  const seen = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: shared(1).data, timeoutMs: 20,
    onError: (e, msg, info) => seen.push([e.code, e instanceof EdgebusError, msg.topic, info.shard, info.subscription.pattern]),
  });
  bus.publish('never.settles', 1);
  await bus.drain();
  assert.deepEqual(seen, [['HANDLER_TIMEOUT', true, 'never.settles', 0, 'never.>']]);
  assert.equal(bus.stats().done, 1);
  assert.equal(bus.stats().restarts, 0, 'a worker free to run its timers is not replaced');
  assert.equal(bus.stats().timedOut, 0);
  assert.equal(bus.stats().failed, 1);
  await bus.close();
});

test('transfer moves ArrayBuffers to the worker instead of copying them', async () => {
  const s = shared(1);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data });
  const buf = new Uint8Array([1, 2, 3, 250]).buffer;
  bus.publish('bytes', buf, { transfer: [buf] });
  await bus.drain();
  assert.equal(buf.byteLength, 0, 'detached on the main thread');
  assert.equal(s.counts[0], 1);
  assert.equal(Atomics.load(s.gate, 3), 256);
  throwsCode(() => bus.publish('bytes', buf, { transfer: [buf] }), 'INVALID_OPTION', /detached/);
  throwsCode(() => bus.publish('bytes', 1, { transfer: [new Uint8Array(2)] }), 'INVALID_OPTION', /ArrayBuffer/);
  await bus.close();
});

test('idempotence on the main thread: a repeated id is dropped before routing, counted', async () => {
  const s = shared(10);
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data, dedupe: { maxIds: 100 } });
  assert.equal(bus.publish('jobs.work', { n: 0 }, { id: 'a', key: 'key-0' }), true);
  assert.equal(bus.publish('jobs.work', { n: 0 }, { id: 'a', key: 'key-10' }), false);
  assert.equal(bus.publishBatch('jobs.work', [{ n: 1 }, { n: 1 }, { n: 2 }], { ids: ['b', 'b', 'a'] }), 1);
  assert.equal(await bus.publishAsync('jobs.work', { n: 3 }, { id: 'b' }), false);
  await bus.drain();
  assert.deepEqual(Array.from(s.counts.subarray(0, 3)), [1, 1, 0]);
  const st = bus.stats();
  assert.equal(st.duplicates, 4);
  assert.equal(st.published, 2);
  await bus.close();
});

test('drain and close: close waits for everything, then refuses publishes with CLOSED', async () => {
  const N = 200;
  const s = shared(N);
  const bus = new ShardedBus({ workers: 2, handlers, data: s.data });
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, spin: 0.02 }, { key: `key-${n % KEYS}` });
  await bus.close();
  assertEachOnce(s.counts, N, 'close');
  assert.equal(bus.closed, true);
  throwsCode(() => bus.publish('jobs.work', { n: 0 }), 'CLOSED');
  await rejectsCode(bus.publishAsync('jobs.work', { n: 0 }), 'CLOSED');
  await bus.close(); // twice is harmless
  assert.equal(bus.stats().done, N);
});

test('terminate stops at once and counts what it abandoned', async () => {
  const s = shared(20);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 4, maxQueue: 2, overflow: 'wait' });
  await bus.ready;
  for (let n = 0; n < 6; n++) bus.publish('jobs.work', { n, hold: n === 0 });
  const waiting = bus.publishAsync('jobs.work', { n: 6 });
  await until(() => bus.stats().inFlight === 4, 'the flush');
  const abandoned = bus.terminate();
  assert.equal(abandoned, 7); // 4 in flight, 2 queued, 1 waiting
  await rejectsCode(waiting, 'CLOSED');
  assert.equal(bus.stats().abandoned, 7);
  throwsCode(() => bus.publish('jobs.work', { n: 0 }), 'CLOSED');
  await bus.drain(); // nothing left to wait for
  release(s.gate);
});

test('a handlers module that fails to load stops the bus with WORKER_FAILED instead of restarting forever', async () => {
  const failures = [];
  const bus = new ShardedBus({
    workers: 2, handlers: new URL('./fixtures/broken-handlers.mjs', import.meta.url),
    onError: (e) => failures.push(e.code),
  });
  bus.publish('jobs.work', { n: 0 });
  await rejectsCode(bus.ready, 'WORKER_FAILED');
  await assert.rejects(bus.ready, /cannot set up the handlers/);
  assert.deepEqual(failures, ['WORKER_FAILED']);
  throwsCode(() => bus.publish('jobs.work', { n: 1 }), 'CLOSED', /cannot set up the handlers/);
  await bus.drain();
  assert.equal(bus.stats().failed, 1);
  const missing = new ShardedBus({ workers: 1, handlers: new URL('./fixtures/no-such-module.mjs', import.meta.url) });
  await rejectsCode(missing.ready, 'WORKER_FAILED');
});

test('workers defaults to the available parallelism minus one (at least 1)', async () => {
  const bus = new ShardedBus({ handlers });
  assert.equal(bus.workers, Math.max(1, availableParallelism() - 1));
  assert.equal(bus.stats().perShard.length, bus.workers);
  await bus.close();
});

test('bad options and arguments get typed errors naming the problem', async () => {
  throwsCode(() => new ShardedBus(), 'INVALID_OPTION', /handlers/);
  throwsCode(() => new ShardedBus({}), 'INVALID_OPTION', /handlers/);
  throwsCode(() => new ShardedBus({ handlers: 42 }), 'INVALID_OPTION', /handlers/);
  throwsCode(() => new ShardedBus({ handlers: 'relative/handlers.mjs', workers: 1, nope: 1 }), 'INVALID_OPTION', /nope/);
  for (const workers of [0, -1, 1.5, NaN, '2', Infinity, 5000]) {
    throwsCode(() => new ShardedBus({ handlers, workers }), 'INVALID_OPTION', /workers/);
  }
  throwsCode(() => new ShardedBus({ handlers, maxInFlight: 0 }), 'INVALID_OPTION', /maxInFlight/);
  throwsCode(() => new ShardedBus({ handlers, maxQueue: -1 }), 'INVALID_OPTION', /maxQueue/);
  throwsCode(() => new ShardedBus({ handlers, overflow: 'dropAll' }), 'INVALID_OPTION', /overflow/);
  throwsCode(() => new ShardedBus({ handlers, onError: 'x' }), 'INVALID_OPTION', /onError/);
  throwsCode(() => new ShardedBus({ handlers, dedupe: { maxIds: 0 } }), 'INVALID_OPTION', /maxIds/);
  throwsCode(() => new ShardedBus({ handlers, maxRedeliveries: -1 }), 'INVALID_OPTION', /maxRedeliveries/);
  throwsCode(() => new ShardedBus({ handlers, data: { f() {} } }), 'DATA_CLONE', /data/);

  const bus = new ShardedBus({ workers: 1, handlers, data: shared(1).data });
  throwsCode(() => bus.publish('a..b', 1), 'INVALID_TOPIC');
  throwsCode(() => bus.publish('orders.*', 1), 'INVALID_TOPIC');
  throwsCode(() => bus.publish(42, 1), 'INVALID_TOPIC');
  throwsCode(() => bus.publish('a', 1, { key: 7 }), 'INVALID_OPTION', /key/);
  throwsCode(() => bus.publish('a', 1, { id: {} }), 'INVALID_OPTION', /id/);
  throwsCode(() => bus.publish('a', 1, { ttlMs: -5 }), 'INVALID_OPTION', /ttlMs/);
  throwsCode(() => bus.publish('a', 1, { headers: { a: 1 } }), 'INVALID_OPTION', /header/);
  throwsCode(() => bus.publish('a', 1, { transfer: 'x' }), 'INVALID_OPTION', /transfer/);
  throwsCode(() => bus.publish('a', 1, { priority: 1 }), 'INVALID_OPTION', /priority/);
  throwsCode(() => bus.publishBatch('a', 'x'), 'INVALID_ARGUMENT', /array/);
  throwsCode(() => bus.publishBatch('a', [1, 2], { ids: ['x'] }), 'INVALID_OPTION', /ids/);
  throwsCode(() => bus.subscribe('orders.*', () => {}), 'INVALID_PATTERN', /handlers module/);
  throwsCode(() => bus.subscribe('$errors', 5), 'INVALID_HANDLER');
  await rejectsCode(bus.publishAsync('', 1), 'INVALID_TOPIC');
  const st = bus.stats();
  assert.equal(st.published, 0);
  await bus.close();
});

test('the WebAssembly module is compiled once in the main thread, for every worker and bus', async () => {
  // In a fresh process, count compilations: the workers receive the compiled module.
  const script = `
    let compiled = 0;
    const Original = WebAssembly.Module;
    WebAssembly.Module = new Proxy(Original, { construct(t, a) { compiled++; return Reflect.construct(t, a); } });
    const { ShardedBus } = await import('edgebus');
    const before = compiled;
    const a = new ShardedBus({ workers: 2, handlers: ${JSON.stringify(handlers.href)}, data: { counts: new SharedArrayBuffer(8) } });
    const b = new ShardedBus({ workers: 2, handlers: ${JSON.stringify(handlers.href)}, data: { counts: new SharedArrayBuffer(8) } });
    await Promise.all([a.ready, b.ready]);
    a.publish('jobs.x', { n: 0 });
    b.publish('jobs.x', { n: 1 });
    await Promise.all([a.close(), b.close()]);
    console.log(JSON.stringify({ forWorkers: compiled - before, done: a.stats().done + b.stats().done }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out.trim()), { forWorkers: 1, done: 2 });
});

test('the workerd entry refuses ShardedBus with UNSUPPORTED, pointing to the edge hub', () => {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('edgebus/package.json'));
  const loader = pathToFileURL(join(import.meta.dirname, 'support', 'wasm-module-loader.mjs')).href;
  const script = `
    import { ShardedBus, EdgebusError } from ${JSON.stringify(pathToFileURL(join(pkgDir, 'index.workerd.mjs')).href)};
    try { new ShardedBus({ handlers: 'https://example.com/h.mjs' }); console.log('constructed'); }
    catch (e) { console.log(JSON.stringify({ ok: e instanceof EdgebusError, code: e.code, message: e.message })); }
  `;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(loader)});`;
  const out = execFileSync(process.execPath, [
    '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script,
  ], { encoding: 'utf8' });
  const r = JSON.parse(out.trim());
  assert.equal(r.ok, true);
  assert.equal(r.code, 'UNSUPPORTED');
  assert.match(r.message, /no threads/);
  assert.match(r.message, /Durable Objects|edge hub/);
});

test('a ShardedBus never used does not keep Node running either', () => {
  const script = `
    const { ShardedBus } = await import('edgebus');
    const bus = new ShardedBus({ workers: 2, handlers: ${JSON.stringify(handlers.href)}, data: { counts: new SharedArrayBuffer(8) } });
    await bus.ready;
    console.log('ready', bus.stats().perShard.length);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8', timeout: 20_000,
  });
  assert.equal(out.trim(), 'ready 2');
});

test('publishBatch over a full shard drops the newest under dropNewest, the oldest under dropOldest', async () => {
  for (const [overflow, kept] of [['dropNewest', [10, 11]], ['dropOldest', [12, 13]]]) {
    const s = shared(20);
    const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 1, maxQueue: 1, overflow });
    await bus.ready;
    bus.publish('jobs.work', { n: 0, hold: true });
    await until(() => bus.stats().inFlight === 1, 'the flush');
    // Room for 1 more; four are offered.
    assert.equal(bus.publishBatch('jobs.work', [{ n: 10 }, { n: 11 }, { n: 12 }, { n: 13 }]), 1);
    release(s.gate);
    await bus.drain();
    const done = [];
    for (let n = 10; n < 14; n++) if (s.counts[n] === 1) done.push(n);
    assert.deepEqual(done, [overflow === 'dropNewest' ? kept[0] : kept[1]], overflow);
    assert.equal(bus.stats().dropped, 3, overflow);
    await bus.close();
  }
});

test('an idle ShardedBus does not keep Node running', () => {
  const script = `
    const { ShardedBus } = await import('edgebus');
    const bus = new ShardedBus({ workers: 2, handlers: ${JSON.stringify(handlers.href)}, data: { counts: new SharedArrayBuffer(8) } });
    bus.publish('jobs.x', { n: 1 });
    await bus.drain();
    console.log('done', bus.stats().done);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8', timeout: 20_000,
  });
  assert.equal(out.trim(), 'done 1');
});

void EdgebusError;

test('the npm package ships both worker entries', () => {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('edgebus/package.json'));
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', pkgDir], { encoding: 'utf8', timeout: 60_000 });
  const files = JSON.parse(out)[0].files.map((f) => f.path);
  for (const f of ['shard-worker.node.mjs', 'shard-worker.web.mjs', 'web/edgebus_bg.wasm']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
});

// ----- a handler stuck in a CPU loop (timeoutMs) ----------------------------------------------------

test('timeoutMs: a handler stuck in a CPU loop gets its worker replaced, HANDLER_TIMEOUT reported each time, given up after maxRedeliveries', async () => {
  const s = shared(10);
  const seen = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: s.data, timeoutMs: 100, maxRedeliveries: 1,
    onError: (e, msg, info) => seen.push([e.code, e instanceof EdgebusError, msg.topic, msg.payload.n, info.shard, e.redelivered]),
  });
  const errors = [];
  bus.subscribe('$errors', (ev) => { errors.push([ev.error.code, ev.message.payload.n]); });
  bus.publish('jobs.stuck', { n: 0, loop: true }, { key: 'k' });
  bus.publish('jobs.after', { n: 1 }, { key: 'k' });
  bus.publish('jobs.after', { n: 2 }, { key: 'k' });
  await bus.drain();
  assert.deepEqual(seen, [
    ['HANDLER_TIMEOUT', true, 'jobs.stuck', 0, 0, true],
    ['HANDLER_TIMEOUT', true, 'jobs.stuck', 0, 0, false],
  ]);
  assert.deepEqual(errors, [['HANDLER_TIMEOUT', 0], ['HANDLER_TIMEOUT', 0]]);
  assert.deepEqual(Array.from(s.counts.subarray(0, 3)), [0, 1, 1], 'the messages behind it are handled once');
  const st = bus.stats();
  assert.equal(st.timedOut, 2);
  assert.equal(st.failed, 1);
  assert.equal(st.done, 2);
  assert.equal(st.restarts, 2);
  assert.equal(st.inFlight, 0);
  assert.equal(st.perShard[0].timedOut, 2);
  await bus.close();
});

test('timeoutMs: a worker blocked once is replaced; its message and those behind it run once, in per-key order', async () => {
  const N = 40;
  const s = shared(N);
  const seen = [];
  const bus = new ShardedBus({
    workers: 2, handlers, data: s.data, timeoutMs: 100,
    onError: (e, msg, info) => seen.push([e.code, msg.payload.n, info.shard, e.redelivered]),
  });
  await bus.ready;
  bus.publish('jobs.work', { n: 0, loopOnce: true }, { key: 'key-0' });
  for (let n = 1; n < N; n++) bus.publish('jobs.work', { n }, { key: `key-${n % KEYS}` });
  await bus.drain();
  assertEachOnce(s.counts, N, 'after a blocked worker');
  assert.deepEqual(seen, [['HANDLER_TIMEOUT', 0, shardOf('key-0', 2), true]]);
  const st = bus.stats();
  assert.equal(st.timedOut, 1);
  assert.equal(st.failed, 0);
  assert.equal(st.done, N);
  assert.equal(st.restarts, 1);
  assert.ok(st.redelivered >= 1);
  await bus.close();
});

test('timeoutMs: an async handler that blocks its worker after an await is caught too', async () => {
  const s = shared(4);
  const seen = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: s.data, timeoutMs: 100,
    onError: (e, msg) => seen.push([e.code, msg.topic]),
  });
  bus.publish('later.x', { n: 0 });
  await bus.close(); // settles
  assert.equal(s.counts[0], 1, 'run again on the replacement, once');
  assert.deepEqual(seen, [['HANDLER_TIMEOUT', 'later.x']]);
  const st = bus.stats();
  assert.equal(st.timedOut, 1);
  assert.equal(st.restarts, 1);
  assert.equal(st.done, 1);
});

test('timeoutMs: a handler waiting longer (its own subscription timeout) does not get its worker replaced', async () => {
  const s = shared(4);
  const seen = [];
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, timeoutMs: 50, onError: (e) => seen.push(e.code) });
  bus.publish('slow.x', { n: 0, ms: 1000 });
  await bus.drain();
  assert.equal(s.counts[0], 1);
  assert.deepEqual(seen, []);
  const st = bus.stats();
  assert.deepEqual([st.restarts, st.timedOut, st.failed, st.done], [0, 0, 0, 1]);
  await bus.close();
});

test('timeoutMs: only the message whose handler blocks is reported; one waiting beside it is sent again silently', async () => {
  const s = shared(4);
  const seen = [];
  const bus = new ShardedBus({
    workers: 1, handlers, data: s.data, timeoutMs: 100,
    onError: (e, msg) => seen.push([e.code, msg.payload.n, e.redelivered]),
  });
  await bus.ready;
  bus.publish('slow.x', { n: 1, ms: 2000 });
  bus.publish('jobs.stuck', { n: 0, loopOnce: true });
  await bus.drain();
  assert.deepEqual(seen, [['HANDLER_TIMEOUT', 0, true]]);
  assert.deepEqual(Array.from(s.counts.subarray(0, 2)), [1, 1]);
  const st = bus.stats();
  assert.deepEqual([st.restarts, st.timedOut, st.failed, st.done, st.redelivered], [1, 1, 0, 2, 2]);
  await bus.close();
});

// ----- options and payloads read once, at the call ----------------------------------------------------

test('publishAsync keeps the options of its call: the caller may reuse and change its object while it waits', async () => {
  const s = shared(10);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 1, maxQueue: 0, overflow: 'wait', dedupe: true });
  bus.subscribe('$errors', () => {});
  await bus.ready;
  bus.publish('jobs.work', { n: 0, hold: true });
  await until(() => bus.stats().inFlight === 1, 'the flush');
  const o = { id: 'a', key: 'key-1' };
  const first = bus.publishAsync('jobs.work', { n: 1 }, o);
  o.id = 'b';
  const second = bus.publishAsync('jobs.work', { n: 2 }, o);
  o.id = 42; // would be refused; the waiting messages never see it
  o.key = {};
  assert.equal(bus.stats().waiting, 2);
  release(s.gate);
  assert.deepEqual(await Promise.all([first, second]), [true, true]);
  await bus.drain();
  assert.deepEqual(Array.from(s.counts.subarray(0, 3)), [1, 1, 1]);
  const st = bus.stats();
  assert.equal(st.duplicates, 0);
  assert.equal(st.published, 3);
  await bus.close();
});

test('options are read once: getters run once, and what they return the first time is what is used', async () => {
  let reads = 0;
  let overflowReads = 0;
  const options = {
    handlers, workers: 1, data: shared(4).data,
    get overflow() { overflowReads++; return overflowReads === 1 ? 'reject' : 'bogus'; },
  };
  const bus = new ShardedBus(options);
  assert.equal(overflowReads, 1);
  const s = new Int32Array(options.data.counts);
  const pub = { get id() { reads++; return reads === 1 ? 'x' : 42; }, get key() { return 'key-1'; } };
  assert.equal(bus.publish('jobs.work', { n: 0 }, pub), true);
  assert.equal(reads, 1);
  await bus.drain();
  assert.equal(s[0], 1);
  await bus.close();
});

test('a revoked Proxy as options is refused with INVALID_OPTION, everywhere', async () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  throwsCode(() => new ShardedBus(proxy), 'INVALID_OPTION', /options/);
  throwsCode(() => new ShardedBus({ handlers, dedupe: proxy }), 'INVALID_OPTION', /dedupe/);
  throwsCode(() => new ShardedBus({ handlers: proxy }), 'INVALID_OPTION', /handlers/);
  throwsCode(() => new ShardedBus({ handlers, dedupe: { get maxIds() { throw 5; } } }), 'INVALID_OPTION', /dedupe/);
  throwsCode(() => new ShardedBus({ handlers, data: proxy }), 'DATA_CLONE', /data/);
  const s = shared(4);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data });
  throwsCode(() => bus.publish('jobs.work', { n: 0 }, proxy), 'INVALID_OPTION', /options/);
  throwsCode(() => bus.publishBatch('jobs.work', [{ n: 0 }], proxy), 'INVALID_OPTION', /options/);
  await rejectsCode(bus.publishAsync('jobs.work', { n: 0 }, proxy), 'INVALID_OPTION', /options/);
  throwsCode(() => bus.publish('jobs.work', { n: 0 }, { headers: proxy }), 'INVALID_OPTION', /headers/);
  throwsCode(() => bus.publish('jobs.work', { n: 0 }, { get key() { throw new Error('no key'); } }), 'INVALID_OPTION', /no key/);
  bus.publish('jobs.work', { n: 1 });
  await bus.drain();
  assert.deepEqual(Array.from(s.counts.subarray(0, 2)), [0, 1]);
  assert.equal(bus.stats().published, 1);
  await bus.close();
});

test('payloads postMessage would refuse fail at publish with DATA_CLONE: a Proxy, a throwing getter, a revoked Proxy', async () => {
  const s = shared(4);
  const bus = new ShardedBus({ workers: 1, handlers, data: s.data });
  const reported = [];
  bus.subscribe('$errors', (ev) => reported.push(ev.error.code));
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke();
  throwsCode(() => bus.publish('jobs.work', new Proxy({ n: 0 }, {})), 'DATA_CLONE', /Proxy/);
  throwsCode(() => bus.publish('jobs.work', { n: 0, inner: new Proxy([1], {}) }), 'DATA_CLONE', /Proxy/);
  throwsCode(() => bus.publish('jobs.work', { n: 0, get x() { throw new Error('getter says no'); } }), 'DATA_CLONE', /getter says no/);
  throwsCode(() => bus.publish('jobs.work', revoked), 'DATA_CLONE');
  throwsCode(() => bus.publishBatch('jobs.work', [{ n: 0 }, new Proxy({ n: 1 }, {})]), 'DATA_CLONE', /Proxy/);
  await rejectsCode(bus.publishAsync('jobs.work', { n: 0, get x() { throw 7; } }), 'DATA_CLONE', /7/);
  bus.publish('jobs.work', { n: 1 });
  await bus.drain();
  assert.deepEqual(Array.from(s.counts.subarray(0, 2)), [0, 1]);
  const st = bus.stats();
  assert.equal(st.published, 1);
  assert.equal(st.failed, 0);
  assert.deepEqual(reported, []);
  await bus.close();
});

test('when the handlers module fails, each message is reported by its own worker, the cause kept', async () => {
  const failures = [];
  const bus = new ShardedBus({
    workers: 2, handlers: new URL('./fixtures/broken-handlers.mjs', import.meta.url),
    onError: (e, msg, info) => failures.push([e.code, info.shard, e.message, e.cause && e.cause.code]),
  });
  for (let k = 0; k < KEYS; k++) bus.publish('jobs.work', { n: k }, { key: `key-${k}` });
  await rejectsCode(bus.ready, 'WORKER_FAILED');
  assert.equal(failures.length, KEYS);
  assert.deepEqual(new Set(failures.map((f) => f[1])), new Set([0, 1]));
  for (const [code, shard, message, cause] of failures) {
    assert.equal(code, 'WORKER_FAILED');
    assert.equal(cause, 'WORKER_FAILED');
    assert.match(message, new RegExp(`^not handled by worker ${shard}: the bus stopped \\(the handlers module .* failed in worker \\d: cannot set up the handlers\\)$`));
  }
});

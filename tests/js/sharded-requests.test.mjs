// ShardedBus requests in Node (worker_threads): the worker handler's result comes back to the main
// thread, by key affinity; errors are typed; a crash mid-request redelivers it (or fails it with
// WORKER_CRASHED past maxRedeliveries); timeouts, aborts and stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShardedBus, shardOf } from 'edgebus';
import { rejectsCode } from './support/helpers.mjs';

const handlers = new URL('./fixtures/request-handlers.mjs', import.meta.url);

function bus(options = {}) {
  const crashes = new SharedArrayBuffer(4);
  return new ShardedBus({ workers: 2, handlers, data: { crashes }, onError: () => {}, ...options });
}

test('a request returns the worker handler\'s result: a value, a promise, message.reply', async () => {
  const b = bus();
  try {
    assert.equal(await b.request('math.square', 7), 49);
    assert.equal(await b.request('math.slow', 1), 2);
    assert.equal(await b.request('math.later', 3), 'later 3');
    const buf = new Uint8Array([1, 2, 3, 4]).buffer;
    assert.equal(await b.request('bytes.sum', buf, { transfer: [buf] }), 10);
    assert.equal(buf.byteLength, 0, 'the payload was moved, not copied');
    const r = b.stats().requests;
    assert.deepEqual([r.sent, r.replies, r.pending], [4, 4, 0]);
  } finally {
    await b.close();
  }
});

test('requests go to the worker of their key', async () => {
  const b = bus();
  try {
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const r = await b.request('who', null, { key });
      assert.deepEqual(r, { shard: shardOf(key, 2), key });
    }
  } finally {
    await b.close();
  }
});

test('a request sent alone and requests sent together reach the handler with the same message', async () => {
  const b = bus();
  const seen = (i) => ({
    topic: 'echo.message', payload: { i, list: [i, 'x'] }, key: `k${i % 3}`, headers: { trace: `t${i}` },
    id: undefined, ttlMs: undefined, at: 'number',
  });
  const ask = (i) => b.request('echo.message', { i, list: [i, 'x'] }, { key: `k${i % 3}`, headers: { trace: `t${i}` } });
  try {
    // One at a time: each crosses to its worker alone.
    for (let i = 0; i < 3; i++) assert.deepEqual(await ask(i), seen(i));
    // Together: they cross in batches.
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(i)));
    all.forEach((r, i) => assert.deepEqual(r, seen(i)));
    assert.deepEqual(await b.request('echo.message', 'plain'), {
      topic: 'echo.message', payload: 'plain', key: undefined, headers: undefined, id: undefined, ttlMs: undefined, at: 'number',
    });
  } finally {
    await b.close();
  }
});

test('worker errors come back typed: HANDLER_FAILED with the cause, NO_RESPONDERS, TIMEOUT, ABORTED', async () => {
  const b = bus();
  try {
    const e = await rejectsCode(b.request('math.fail', 1), 'HANDLER_FAILED');
    assert.match(e.message, /no such operation/);
    assert.equal(e.cause.name, 'TypeError');
    assert.equal(e.cause.message, 'no such operation');
    assert.equal(typeof e.shard, 'number');
    await rejectsCode(b.request('log.x', 1), 'NO_RESPONDERS');
    await rejectsCode(b.request('nothing.here', 1), 'NO_RESPONDERS');
    await rejectsCode(b.request('never', 1, { timeoutMs: 50 }), 'TIMEOUT');
    const ac = new AbortController();
    const p = b.request('never', 1, { signal: ac.signal, timeoutMs: 10_000 });
    ac.abort(new Error('gave up'));
    assert.equal((await rejectsCode(p, 'ABORTED')).cause.message, 'gave up');
    await rejectsCode(b.request('math.square', 1, { max: 2 }), 'INVALID_OPTION');
    await rejectsCode(b.request('math.square', () => 1), 'DATA_CLONE');
    // A reply that cannot be cloned back: DATA_CLONE, and the replies and acknowledgements sent
    // with it still arrive.
    const [bad, good] = await Promise.allSettled([b.request('bad.reply', 1), b.request('math.square', 5)]);
    assert.equal(bad.reason?.code, 'DATA_CLONE');
    assert.match(bad.reason.message, /reply could not be sent/);
    assert.equal(good.value, 25);
    // Every end counted once: HANDLER_FAILED and the reply DATA_CLONE are failures (the payload
    // that could not be cloned was refused before it was sent).
    const r = b.stats().requests;
    assert.equal(r.failed, 2);
    assert.equal(r.timedOut, 1);
    assert.equal(r.cancelled, 1);
    assert.equal(r.noResponders, 2);
    assert.equal(r.replies, 1);
    assert.equal(r.sent, r.replies + r.failed + r.timedOut + r.noResponders + r.cancelled + r.pending);
    assert.equal(r.pending, 0);
  } finally {
    b.terminate();
  }
});

test('a worker crash mid-request redelivers it to the replacement, whose reply comes back', async () => {
  const b = bus({ workers: 1 });
  try {
    assert.equal(await b.request('crash.once', 4, { timeoutMs: 20_000 }), 40);
    const st = b.stats();
    assert.equal(st.restarts, 1);
    assert.equal(st.redelivered, 1);
  } finally {
    await b.close();
  }
});

test('a request whose worker dies every time fails with WORKER_CRASHED after maxRedeliveries', async () => {
  const b = bus({ workers: 1, maxRedeliveries: 1 });
  try {
    const e = await rejectsCode(b.request('crash.always', 1, { timeoutMs: 20_000 }), 'WORKER_CRASHED');
    assert.match(e.message, /not redelivered/);
    assert.equal(b.stats().requests.pending, 0);
    assert.equal(b.stats().requests.failed, 1, 'a request given up with its message is counted failed');
    assert.equal(await b.request('math.square', 3), 9, 'the replacement still answers');
  } finally {
    await b.close();
  }
});

test('terminate() rejects requests still waiting with CLOSED; a closed bus refuses them', async () => {
  const b = bus({ workers: 1 });
  await b.ready;
  const p = b.request('never', 1, { timeoutMs: 10_000 });
  b.terminate();
  await rejectsCode(p, 'CLOSED');
  await rejectsCode(b.request('math.square', 1), 'CLOSED');
});

test('ShardedBus: once and stream on $errors, AbortSignal on publishAsync and drain', async () => {
  const b = bus({ workers: 1, onError: undefined, maxInFlight: 1, maxQueue: 0, overflow: 'wait' });
  try {
    const failure = b.once('$errors', { timeoutMs: 20_000 });
    b.publish('math.fail', 1);
    const m = await failure;
    assert.equal(m.topic, '$errors');
    assert.match(m.payload.error.message, /no such operation/);
    const errors = b.stream('$errors');
    b.publish('math.fail', 2);
    const { value } = await errors.next();
    assert.equal(value.payload.message.payload, 2);
    await errors.return();
    assert.throws(() => b.stream('jobs.*'), { code: 'INVALID_PATTERN' });
    await rejectsCode(b.once('jobs.*'), 'INVALID_PATTERN');
    // One in flight, no queue: the next publishAsync waits for room; aborted, it never gets in.
    const first = b.publishAsync('never', 1);
    await first;
    const ac = new AbortController();
    const waiting = b.publishAsync('math.square', 2, { signal: ac.signal });
    ac.abort(new Error('changed my mind'));
    assert.equal((await rejectsCode(waiting, 'ABORTED')).cause.message, 'changed my mind');
    const dac = new AbortController();
    const draining = b.drain({ signal: dac.signal });
    dac.abort();
    await rejectsCode(draining, 'ABORTED');
    await rejectsCode(b.drain({ signal: AbortSignal.abort() }), 'ABORTED');
    assert.equal(b.stats().waiting, 0);
  } finally {
    b.terminate();
  }
});

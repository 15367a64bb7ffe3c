// The ShardedBus scenarios of tests/js/sharded.test.mjs, in a page with module Web Workers. The
// runner (sharded.test.mjs in this folder) calls window.scenarios[name]() and checks it resolves.
import { init, ShardedBus, EdgebusError, shardOf } from '/pkg/index.web.mjs';

const handlers = new URL('/tests/js/fixtures/order-handlers.mjs', location.href);
const KEYS = 16;
const STRIDE = 2001;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function equal(a, b, what) {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  if (x !== y) throw new Error(`${what}: expected ${y}, got ${x}`);
}

function throwsCode(fn, code, what) {
  try {
    fn();
  } catch (e) {
    check(e instanceof EdgebusError && e.code === code, `${what}: ${code}, got ${e && e.code}: ${e && e.message}`);
    return;
  }
  throw new Error(`${what}: expected ${code} to be thrown`);
}

function shared(n) {
  const data = {
    counts: new SharedArrayBuffer(4 * n), order: new SharedArrayBuffer(4 * KEYS * STRIDE),
    shards: new SharedArrayBuffer(4 * KEYS), gate: new SharedArrayBuffer(16), stride: STRIDE,
  };
  return {
    data, counts: new Int32Array(data.counts), order: new Int32Array(data.order),
    shards: new Int32Array(data.shards), gate: new Int32Array(data.gate),
  };
}

async function until(pred, what, ms = 20_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function eachOnce(counts, n, what) {
  const wrong = [];
  for (let i = 0; i < n; i++) if (counts[i] !== 1) wrong.push(`${i}:${counts[i]}`);
  equal(wrong, [], `${what}: every message completes exactly once`);
}

function release(gate) {
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
}

await init();

window.scenarios = {
  async environment() {
    check(crossOriginIsolated === true, 'the page is cross-origin isolated');
    check(typeof SharedArrayBuffer === 'function', 'SharedArrayBuffer');
    const seen = new Set();
    for (let k = 0; k < KEYS; k++) seen.add(shardOf(`key-${k}`, 2));
    equal([...seen].sort(), [0, 1], 'the test keys cover both shards');
  },

  async perKeyOrder() {
    const N = 2000;
    const s = shared(N);
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 64, maxQueue: Infinity });
    for (let n = 0; n < N; n++) bus.publish(`ordered.t${n % 3}`, { n, k: n % KEYS }, { key: `key-${n % KEYS}` });
    await bus.drain();
    eachOnce(s.counts, N, 'ordered');
    for (let k = 0; k < KEYS; k++) {
      const count = s.order[k * STRIDE];
      const got = Array.from(s.order.subarray(k * STRIDE + 1, k * STRIDE + 1 + count));
      const want = [];
      for (let n = k; n < N; n += KEYS) want.push(n);
      equal(got, want, `key-${k} in publish order`);
      equal(s.shards[k] - 1, shardOf(`key-${k}`, 2), `key-${k} on its shard only`);
    }
    const st = bus.stats();
    equal([st.published, st.done, st.perShard[0].done + st.perShard[1].done], [N, N, N], 'counts');
    check(st.perShard.every((p) => p.done > 0), 'both workers did work');
    await bus.close();
  },

  async terminatedFromOutside() {
    const N = 400;
    const BLOCK = 150;
    const s = shared(N);
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 1000, maxQueue: Infinity });
    for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, block: n === BLOCK }, { key: 'key-0' });
    const shard = shardOf('key-0', 2);
    await until(() => Atomics.load(s.gate, 0) === 1, 'the blocking message');
    for (let n = 0; n < BLOCK; n++) check(s.counts[n] === 1, `${n} done before the kill`);
    // Web Workers give no event for this: the bus notices through the lock the worker held.
    bus._shards[shard].worker.worker.terminate();
    await bus.drain();
    eachOnce(s.counts, N, 'after terminate()');
    const st = bus.stats().perShard[shard];
    equal([st.restarts, st.done, st.failed], [1, N, 0], 'restarts, done, failed');
    check(st.redelivered >= 1 && st.redelivered <= N - BLOCK, `redelivered ${st.redelivered}`);
    await bus.close();
  },

  async closedFromInside() {
    const N = 300;
    const s = shared(N);
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 16 });
    for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, exit: n === 120 }, { key: `key-${n % KEYS}` });
    await bus.drain();
    eachOnce(s.counts, N, 'after self.close()');
    const st = bus.stats();
    equal([st.restarts, st.done, st.failed], [1, N, 0], 'restarts, done, failed');
    await bus.close();
  },

  async uncaughtError() {
    const N = 300;
    const s = shared(2 * N);
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data, maxInFlight: 32 });
    for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, throwLater: n === 40, spin: 0.05 }, { key: `key-${n % KEYS}` });
    await until(() => bus.stats().restarts === 1, 'the crash');
    for (let n = N; n < 2 * N; n++) bus.publish('jobs.work', { n }, { key: `key-${n % KEYS}` });
    await bus.drain();
    eachOnce(s.counts, 2 * N, 'after an uncaught error');
    equal([bus.stats().restarts, bus.stats().done], [1, 2 * N], 'restarts, done');
    await bus.close();
  },

  async handlerErrors() {
    const s = shared(20);
    const seen = [];
    const events = [];
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data, onError: (e, msg, info) => seen.push({ e, msg, info }) });
    bus.subscribe('$errors', (ev) => events.push(ev));
    for (let n = 0; n < 20; n++) bus.publish('jobs.bad', { n, fail: n === 7 }, { id: `m-${n}`, key: `key-${n % KEYS}` });
    await bus.drain();
    equal(seen.length, 1, 'one failure');
    const { e, msg, info } = seen[0];
    equal([e.message, msg.id, msg.topic, info.shard, info.subscription.pattern],
      ['job 7 failed on purpose', 'm-7', 'jobs.bad', shardOf('key-7', 2), 'jobs.>'], 'failure details');
    equal([events.length, events[0].message.id, events[0].shard], [1, 'm-7', info.shard], '$errors');
    equal([bus.stats().failed, bus.stats().done], [1, 20], 'counted');
    await bus.close();
  },

  async backpressure() {
    const s = shared(100);
    const bus = new ShardedBus({ workers: 1, handlers, data: s.data, maxInFlight: 4, maxQueue: 3, overflow: 'reject' });
    await bus.ready;
    bus.publish('jobs.work', { n: 0, hold: true });
    for (let n = 1; n < 7; n++) bus.publish('jobs.work', { n });
    throwsCode(() => bus.publish('jobs.work', { n: 7 }), 'QUEUE_FULL', 'reject');
    await until(() => bus.stats().inFlight === 4, 'the flush');
    equal(bus.stats().queued, 3, 'queued behind the credits');
    release(s.gate);
    await bus.drain();
    equal(Array.from(s.counts.subarray(0, 8)), [1, 1, 1, 1, 1, 1, 1, 0], 'handled');

    const w = shared(100);
    const waiting = new ShardedBus({ workers: 1, handlers, data: w.data, maxInFlight: 2, maxQueue: 1, overflow: 'wait' });
    await waiting.ready;
    for (let n = 0; n < 3; n++) waiting.publish('jobs.work', { n, hold: n === 0 });
    throwsCode(() => waiting.publish('jobs.work', { n: 3 }), 'QUEUE_FULL', 'wait, sync publish');
    const order = [];
    const all = [3, 4, 5].map((n) => waiting.publishAsync('jobs.work', { n }).then(() => order.push(n)));
    await new Promise((r) => setTimeout(r, 20));
    equal(order, [], 'still waiting');
    release(w.gate);
    await Promise.all(all);
    equal(order, [3, 4, 5], 'admitted in call order');
    await waiting.drain();
    equal(Array.from(w.counts.subarray(0, 6)), [1, 1, 1, 1, 1, 1], 'all handled');
    await bus.close();
    await waiting.close();
  },

  async cloneErrors() {
    const s = shared(10);
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data });
    bus.publish('jobs.work', { n: 0 });
    throwsCode(() => bus.publish('jobs.work', { n: 1, f: () => 1 }), 'DATA_CLONE', 'function');
    throwsCode(() => bus.publish('jobs.work', { n: 1, node: document.body }), 'DATA_CLONE', 'DOM node');
    throwsCode(() => bus.publish('jobs.work', { n: 1, s: Symbol('x') }), 'DATA_CLONE', 'symbol');
    bus.publish('jobs.work', { n: 1 });
    const buf = new Uint8Array([5, 6]).buffer;
    bus.publish('bytes', buf, { transfer: [buf] });
    await bus.drain();
    equal(buf.byteLength, 0, 'transferred, not copied');
    equal(Atomics.load(s.gate, 3), 11, 'bytes arrived');
    equal(Array.from(s.counts.subarray(0, 2)), [2, 1], 'handled (n=0 twice: once as a job, once as bytes)');
    equal([bus.stats().published, bus.stats().failed], [3, 0], 'counted');
    await bus.close();
  },

  async drainAndClose() {
    const N = 200;
    const s = shared(N);
    const bus = new ShardedBus({ workers: 2, handlers, data: s.data });
    for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, spin: 0.02 }, { key: `key-${n % KEYS}` });
    await bus.close();
    eachOnce(s.counts, N, 'close drains');
    throwsCode(() => bus.publish('jobs.work', { n: 0 }), 'CLOSED', 'after close');
    const t = shared(10);
    const doomed = new ShardedBus({ workers: 1, handlers, data: t.data });
    await doomed.ready;
    for (let n = 0; n < 5; n++) doomed.publish('jobs.work', { n, hold: n === 0 });
    await until(() => doomed.stats().inFlight === 5, 'the flush');
    equal(doomed.terminate(), 5, 'abandoned');
    equal(doomed.stats().abandoned, 5, 'abandoned in stats');
    release(t.gate);
  },

  // A handler stuck in a CPU loop: with timeoutMs the worker is terminated and replaced, the message
  // reported as HANDLER_TIMEOUT each time and given up after maxRedeliveries; drain settles.
  async stuckHandler() {
    const s = shared(10);
    const seen = [];
    const bus = new ShardedBus({
      workers: 1, handlers, data: s.data, timeoutMs: 100, maxRedeliveries: 1,
      onError: (e, msg, info) => seen.push([e.code, msg.payload.n, info.shard, e.redelivered]),
    });
    bus.publish('jobs.stuck', { n: 0, loop: true }, { key: 'k' });
    bus.publish('jobs.after', { n: 1 }, { key: 'k' });
    await bus.drain();
    equal(seen, [['HANDLER_TIMEOUT', 0, 0, true], ['HANDLER_TIMEOUT', 0, 0, false]], 'reported twice');
    equal(Array.from(s.counts.subarray(0, 2)), [0, 1], 'the message behind it is handled');
    const st = bus.stats();
    equal([st.timedOut, st.failed, st.done, st.restarts], [2, 1, 1, 2], 'timedOut, failed, done, restarts');
    await bus.close();
  },

  // Payloads postMessage refuses fail at publish (not later), unreadable options get INVALID_OPTION.
  async unreadableInput() {
    const s = shared(4);
    const bus = new ShardedBus({ workers: 1, handlers, data: s.data });
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    throwsCode(() => bus.publish('jobs.work', new Proxy({ n: 0 }, {})), 'DATA_CLONE', 'a Proxy');
    throwsCode(() => bus.publish('jobs.work', { n: 0, inner: new Proxy({}, {}) }), 'DATA_CLONE', 'a nested Proxy');
    throwsCode(() => bus.publish('jobs.work', { get x() { throw new Error('no'); } }), 'DATA_CLONE', 'a throwing getter');
    throwsCode(() => bus.publish('jobs.work', revoked), 'DATA_CLONE', 'a revoked Proxy payload');
    throwsCode(() => bus.publish('jobs.work', { n: 0 }, revoked), 'INVALID_OPTION', 'revoked Proxy options');
    throwsCode(() => new ShardedBus(revoked), 'INVALID_OPTION', 'revoked Proxy constructor options');
    bus.publish('jobs.work', { n: 1 });
    await bus.drain();
    equal(Array.from(s.counts.subarray(0, 2)), [0, 1], 'only the good one was handled');
    equal([bus.stats().published, bus.stats().failed], [1, 0], 'counted');
    await bus.close();
  },

  async requests() {
    const crashes = new SharedArrayBuffer(4);
    const reqHandlers = new URL('/tests/js/fixtures/request-handlers.mjs', location.href);
    const bus = new ShardedBus({ workers: 2, handlers: reqHandlers, data: { crashes }, onError: () => {} });
    equal(await bus.request('math.square', 7), 49, 'a handler\'s result');
    equal(await bus.request('math.later', 3), 'later 3', 'message.reply');
    for (const key of ['a', 'b', 'c', 'd']) {
      equal(await bus.request('who', null, { key }), { shard: shardOf(key, 2), key }, `the worker of key ${key}`);
    }
    const buf = new Uint8Array([5, 6]).buffer;
    equal(await bus.request('bytes.sum', buf, { transfer: [buf] }), 11, 'a transferred payload');
    let error;
    try {
      await bus.request('math.fail', 1);
    } catch (e) {
      error = e;
    }
    check(error instanceof EdgebusError && error.code === 'HANDLER_FAILED' && error.cause?.name === 'TypeError',
      `HANDLER_FAILED with the worker's TypeError, got ${error && error.code}: ${error && error.message}`);
    // The worker dies (self.close()) on the first try: the request goes to its replacement.
    equal(await bus.request('crash.once', 4, { key: 'a', timeoutMs: 20_000 }), 40, 'redelivered after a crash');
    equal(bus.stats().restarts, 1, 'one restart');
    equal(bus.stats().requests.pending, 0, 'nothing pending');
    await bus.close();
  },

  async defaultWorkers() {
    const bus = new ShardedBus({ handlers });
    equal(bus.workers, Math.max(1, navigator.hardwareConcurrency - 1), 'hardwareConcurrency - 1');
    await bus.close();
  },
};
window.scenariosReady = true;

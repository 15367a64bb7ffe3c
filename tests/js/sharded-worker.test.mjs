// ShardedBus on workers the app starts itself (the `worker` option, a script calling serveShard),
// in Node (worker_threads): the handlers and what they import run, per-key order holds, a worker
// that dies is replaced through the option as the default one is; bad options are refused with typed
// errors; serveShard refuses to run where it cannot; a missing default worker script says to use
// the `worker` option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { ShardedBus, serveShard } from 'edgebus';
import { throwsCode, rejectsCode } from './support/helpers.mjs';

/** What `fn` throws (failing when it throws nothing). */
function thrown(fn) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}

const ownShard = new URL('./fixtures/own-shard.mjs', import.meta.url);
const handlers = new URL('./fixtures/order-handlers.mjs', import.meta.url);
const KEYS = 16;
const STRIDE = 1025;

function shared(n) {
  const buffers = {
    counts: new SharedArrayBuffer(4 * n), order: new SharedArrayBuffer(4 * KEYS * STRIDE),
    shards: new SharedArrayBuffer(4 * KEYS), gate: new SharedArrayBuffer(16), squares: new SharedArrayBuffer(4 * n),
  };
  return {
    data: { ...buffers, stride: STRIDE },
    counts: new Int32Array(buffers.counts),
    order: new Int32Array(buffers.order),
    shards: new Int32Array(buffers.shards),
    squares: new Int32Array(buffers.squares),
  };
}

/** A `worker` option that counts its calls. */
function starter(url = ownShard) {
  const f = () => {
    f.calls++;
    return new Worker(url);
  };
  f.calls = 0;
  return f;
}

test('the `worker` option: the handlers and the modules they import run; per-key order holds', async () => {
  const N = 1024;
  const s = shared(N);
  const worker = starter();
  const bus = new ShardedBus({ workers: 2, worker, data: s.data, maxInFlight: 32, maxQueue: Infinity });
  assert.equal(worker.calls, 2, 'called once per shard');
  await bus.ready;
  for (let n = 0; n < N; n++) bus.publish('ordered.work', { n, k: n % KEYS }, { key: `key-${n % KEYS}` });
  for (let n = 0; n < N; n++) bus.publish('squares', n);
  await bus.drain();
  for (let k = 0; k < KEYS; k++) {
    const got = Array.from(s.order.subarray(k * STRIDE + 1, k * STRIDE + 1 + s.order[k * STRIDE]));
    assert.deepEqual(got, Array.from({ length: N / KEYS }, (_, i) => k + i * KEYS), `key ${k} in publish order`);
    assert.ok(s.shards[k] > 0, `key ${k} on one worker`);
  }
  const wrong = Array.from(s.squares).map((v, n) => (v === n * n + 1 ? null : n)).filter((n) => n !== null);
  assert.deepEqual(wrong, [], 'the imported module computed every square');
  assert.deepEqual(new Set(s.shards), new Set([1, 2]), 'both workers used');
  const st = bus.stats();
  assert.equal(st.done, 2 * N);
  assert.equal(st.failed, 0);
  await bus.close();
});

test('the `worker` option: a worker that dies is replaced through the option; nothing lost or run twice', async () => {
  const N = 400;
  const s = shared(N);
  const worker = starter();
  const bus = new ShardedBus({ workers: 2, worker, data: s.data, maxInFlight: 16 });
  for (let n = 0; n < N; n++) bus.publish('jobs.work', { n, exit: n === 100 }, { key: `key-${n % KEYS}` });
  await bus.drain();
  const wrong = [];
  for (let n = 0; n < N; n++) if (s.counts[n] !== 1) wrong.push(`${n}:${s.counts[n]}`);
  assert.deepEqual(wrong, [], 'every message completes exactly once');
  const st = bus.stats();
  assert.equal(st.restarts, 1);
  assert.equal(worker.calls, 3, 'two workers, then the replacement');
  await bus.close();
});

test('the `worker` option: a script whose setup throws stops the bus with WORKER_FAILED naming it', async () => {
  const bus = new ShardedBus({ workers: 2, worker: starter(new URL('./fixtures/own-broken-shard.mjs', import.meta.url)) });
  await rejectsCode(bus.ready, 'WORKER_FAILED');
  const e = await bus.ready.catch((err) => err);
  assert.match(e.message, /^the worker script the `worker` option started failed in worker \d: cannot set up the handlers$/);
  throwsCode(() => bus.publish('jobs.work', { n: 0 }), 'CLOSED');
});

test('the `worker` option: a script that cannot be loaded stops the bus after three tries, saying why', async () => {
  const worker = starter(new URL('./fixtures/no-such-shard.mjs', import.meta.url));
  const bus = new ShardedBus({ workers: 1, worker });
  await rejectsCode(bus.ready, 'WORKER_FAILED');
  const e = await bus.ready.catch((err) => err);
  assert.match(e.message, /^worker 0 died while loading the worker script the `worker` option started: uncaught error: Cannot find module .*no-such-shard\.mjs/);
  assert.equal(worker.calls, 3);
});

test('the `worker` option: bad values get typed errors from the constructor, no worker left running', async () => {
  throwsCode(() => new ShardedBus({ worker: 'shard.mjs' }), 'INVALID_OPTION', /option `worker` must be a function, got "shard.mjs"/);
  throwsCode(() => new ShardedBus({ worker: starter(), handlers }), 'INVALID_OPTION', /`handlers` and `worker` exclude each other/);
  throwsCode(() => new ShardedBus({}), 'INVALID_OPTION', /`handlers` is required/);
  throwsCode(() => new ShardedBus({ workers: 1, worker: () => ({ postMessage() {} }) }), 'INVALID_OPTION',
    /option `worker` must return a worker_threads Worker .*, got an object/);
  throwsCode(() => new ShardedBus({ workers: 1, worker: async () => undefined }), 'INVALID_OPTION',
    /got a promise \(the function must return the Worker itself, not be async\)/);
  const cause = new Error('no room for another thread');
  const make = () => new ShardedBus({ workers: 1, worker: () => { throw cause; } });
  throwsCode(make, 'WORKER_FAILED', /option `worker` threw when starting worker 0: no room for another thread/);
  assert.equal(thrown(make).cause, cause);
  // The second worker is refused: the first, already started, is stopped.
  const started = [];
  let calls = 0;
  throwsCode(() => new ShardedBus({
    workers: 2,
    worker: () => {
      if (++calls === 2) return undefined;
      const w = new Worker(ownShard);
      started.push(new Promise((resolve) => w.once('exit', resolve)));
      return w;
    },
  }), 'INVALID_OPTION', /got undefined/);
  assert.equal(started.length, 1);
  await started[0]; // it exits: terminated by the failed constructor
});

test('serveShard refuses what it cannot do: a non-function, the main thread, a second call in a worker', async () => {
  throwsCode(() => serveShard('setup'), 'INVALID_HANDLER', /setup function/);
  throwsCode(() => serveShard(() => {}), 'UNSUPPORTED', /runs inside a shard worker/);
  const entry = createRequire(import.meta.url).resolve('edgebus');
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const { serveShard } = require(${JSON.stringify(entry)});
    serveShard(() => {});
    try { serveShard(() => {}); } catch (e) { parentPort.postMessage({ code: e.code, message: e.message }); }
  `, { eval: true });
  const [reply] = await new Promise((resolve, reject) => {
    w.once('message', (m) => resolve([m]));
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(reply.code, 'INVALID_HANDLER');
  assert.match(reply.message, /already called in this worker/);
});

test('serveShard is exported by the Node (import and require) and web entries', async () => {
  const pkg = dirname(createRequire(import.meta.url).resolve('edgebus/package.json'));
  const cjs = createRequire(import.meta.url)('edgebus');
  assert.equal(typeof cjs.serveShard, 'function');
  assert.equal(cjs.serveShard, serveShard, 'import and require: one function');
  const web = await import(pathToFileURL(join(pkg, 'index.web.mjs')).href);
  assert.equal(typeof web.serveShard, 'function');
  assert.equal(typeof web.default.serveShard, 'function');
});

test('without its default worker script (a bundled app), ShardedBus says to use the `worker` option', async () => {
  const pkg = dirname(createRequire(import.meta.url).resolve('edgebus/package.json'));
  const dir = mkdtempSync(join(tmpdir(), 'edgebus-no-worker-'));
  try {
    cpSync(pkg, dir, { recursive: true, dereference: true, filter: (src) => !src.endsWith('shard-worker.node.mjs') });
    const copy = createRequire(join(dir, 'x.js'))(join(dir, 'index.node.cjs'));
    const e = thrown(() => new copy.ShardedBus({ workers: 1, handlers }));
    assert.ok(e instanceof copy.EdgebusError, `an EdgebusError: ${e}`);
    assert.equal(e.code, 'WORKER_FAILED');
    assert.match(e.message, /default worker script .*shard-worker\.node\.mjs is missing .*pass the `worker` option/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

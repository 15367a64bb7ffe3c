// Scenario 8: worker sharding. A CPU-bound handler of about 50 µs per message, on the page's main
// thread (`Bus`), in module Web Workers (`ShardedBus` with 1 worker and with N), and in
// `workerpool`'s Web Workers (1 and N) running the same function. The work function and its
// calibration are those of the sharding benchmark (benches/sharding/); each run publishes `count`
// messages (keyed, for ShardedBus) and waits until every one is handled. Each run returns how many
// messages the handler really ran, which the page checks is the same for every contender.
import { Bus, ShardedBus } from 'edgebus';
import workerpool from 'workerpool';
import '../../../benches/sharding/work.js';
import { calibrate } from '../../../benches/sharding/harness.mjs';
import { sink } from './common.js';
// workerpool's worker, bundled as a module worker; it registers the same work function.
import poolWorkerUrl from './sharding-pool-worker.js?worker&url';

const TARGET_US = 50;
/** The ShardedBus workers: sharding-shard.js, bundled by Vite with the handlers (the `worker` option). */
const startWorker = () => new Worker(new URL('./sharding-shard.js', import.meta.url), { type: 'module' });
/** N: the page's logical cores, at least 2 (as benches/sharding does). */
const workers = Math.max(2, navigator.hardwareConcurrency || 2);

let calibration;
/** Iterations of the work function taking about 50 µs here, measured once per page. */
function iterations() {
  calibration ??= calibrate(Bus, globalThis.benchWork, TARGET_US);
  return calibration.iters;
}

const keys = (count) => Array.from({ length: count }, (_, i) => `order-${i}`);

function onMainThread() {
  return {
    name: 'Bus (main thread)',
    code: "bus.subscribe('work', (p) => work(p.iters))",
    setup({ count }) {
      const payload = { iters: iterations() };
      const bus = new Bus();
      let handled = 0;
      bus.subscribe('work', (p) => { sink.value ^= globalThis.benchWork(p.iters); handled++; });
      return {
        work: count,
        async run() {
          const before = handled;
          for (let i = 0; i < count; i++) bus.publish('work', payload);
          await bus.drain();
          return handled - before;
        },
        teardown: () => bus.close(),
      };
    },
  };
}

function sharded(n) {
  return {
    name: `ShardedBus, ${n} worker${n === 1 ? '' : 's'}`,
    code: `new ShardedBus({ workers: ${n}, worker }).publish('work', p, { key })`,
    async setup({ count }) {
      const payload = { iters: iterations() };
      // The workers count the messages their handler ran (the handlers module adds to it).
      const handled = new Int32Array(new SharedArrayBuffer(4));
      const bus = new ShardedBus({ workers: n, worker: startWorker, data: { handled: handled.buffer }, maxQueue: Infinity });
      await bus.ready;
      const ks = keys(count);
      return {
        work: count,
        async run() {
          const before = Atomics.load(handled, 0);
          for (let i = 0; i < count; i++) bus.publish('work', payload, { key: ks[i] });
          await bus.drain();
          return Atomics.load(handled, 0) - before;
        },
        teardown: () => bus.close(),
      };
    },
  };
}

function pooled(n) {
  return {
    name: `workerpool, ${n} worker${n === 1 ? '' : 's'}`,
    code: "pool.exec('work', [iters])",
    async setup({ count }) {
      const iters = iterations();
      const pool = workerpool.pool(new URL(poolWorkerUrl, location.href).href, {
        minWorkers: n, maxWorkers: n, workerType: 'web', workerOpts: { type: 'module' },
      });
      // Starts the workers before the first timed run.
      await Promise.all(Array.from({ length: n }, () => pool.exec('work', [1])));
      return {
        work: count,
        async run() {
          const all = new Array(count);
          for (let i = 0; i < count; i++) all[i] = pool.exec('work', [iters]);
          const results = await Promise.all(all);
          for (const r of results) sink.value ^= r;
          return results.length;
        },
        teardown: () => pool.terminate(),
      };
    },
  };
}

export const sharding = {
  id: 'sharding',
  number: '8',
  title: 'Worker sharding: a CPU-bound handler of about 50 µs',
  unit: 'msg/s',
  note: `Each run publishes its messages (keys \`order-0\`, \`order-1\`, …) and waits until every one ` +
    `is handled. The handler runs the work function of benches/sharding/, calibrated here to about ` +
    `${TARGET_US} µs per call. N = ${workers} (the page's logical cores, at least 2). The ratio is ` +
    'Bus on the main thread ÷ this: below 1 is faster than one thread.',
  unavailable: () => {
    if (typeof Worker !== 'function') return 'needs Web Workers';
    if (!globalThis.crossOriginIsolated) return 'needs a cross-origin isolated page (SharedArrayBuffer counts the handled messages)';
    return undefined;
  },
  rounds: { full: 5 },
  sizes: { full: { count: 20_000 }, small: { count: 200 } },
  contenders: [onMainThread(), sharded(1), sharded(workers), pooled(1), pooled(workers)],
};

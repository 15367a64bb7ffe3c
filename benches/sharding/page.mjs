// The sharding benchmark in the browser: the same contenders and method as run.mjs, with module Web
// Workers for ShardedBus and workerpool's Web Workers. Run headless by browser.mjs, or open the page.
import { init, Bus, ShardedBus } from '/pkg/index.web.mjs';
import './work.js';
import { calibrate, contenders, measure, table } from './harness.mjs';

await init();

window.runBench = async ({ quick = false, rounds = quick ? 1 : 5 } = {}) => {
  const workers = Math.max(2, navigator.hardwareConcurrency);
  const env = {
    Bus, ShardedBus, work: globalThis.benchWork, workers,
    handlers: new URL('./handlers.mjs', import.meta.url),
    makePool: (n) => window.workerpool.pool(new URL('./workerpool-worker.web.js', import.meta.url).href, {
      minWorkers: n, maxWorkers: n, workerType: 'web',
    }),
  };
  const probe = new ShardedBus({ handlers: env.handlers });
  const defaultWorkers = probe.workers;
  await probe.close();
  const warmup = quick ? 0 : 1;
  const cal = calibrate(Bus, env.work, 50);
  const heavy = await measure(contenders(env, cal.iters).list, { count: quick ? 200 : 20_000, rounds, warmup, baseline: 'Bus (main thread)', settle: () => new Promise((r) => setTimeout(r, 100)) });
  const trivial = await measure(contenders(env, 0).list, { count: quick ? 2_000 : 50_000, rounds, warmup, baseline: 'Bus (main thread)', settle: () => new Promise((r) => setTimeout(r, 100)) });
  const result = {
    runtime: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency, defaultWorkers,
    crossOriginIsolated, calibration: cal, rounds, warmup, heavy, trivial,
  };
  document.getElementById('out').textContent = `${table('CPU-bound handler, ~50 µs per message', heavy)}\n\n${table('Trivial handler (transport cost)', trivial)}`;
  return result;
};
window.benchReady = true;

// A bundled app running a ShardedBus on workers it starts itself (the `worker` option).
/* global window, Worker, location */
import { init, ShardedBus } from 'edgebus';

const N = 400;
const WORKERS = 2;

window.run = async () => {
  await init();
  const results = new Int32Array(new SharedArrayBuffer(4 * N));
  const seen = new Int32Array(new SharedArrayBuffer(4 * WORKERS));
  const gate = new Int32Array(new SharedArrayBuffer(4));
  let started = 0;
  const bus = new ShardedBus({
    workers: WORKERS,
    worker: () => {
      started++;
      return new Worker(new URL('./shard.js', import.meta.url), { type: 'module' });
    },
    data: { results: results.buffer, seen: seen.buffer, gate: gate.buffer },
  });
  await bus.ready;
  for (let n = 0; n < N; n++) bus.publish('nums.square', n, { key: `key-${n % 16}` });
  await bus.drain();
  // The worker that closed itself had finished its messages: its death may be noticed after them.
  const until = performance.now() + 10_000;
  while (bus.stats().restarts === 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  const { done, failed, restarts } = bus.stats();
  await bus.close();

  // The package's default worker is not part of a bundled app: the error says what to do.
  let defaultWorker;
  try {
    const other = new ShardedBus({ workers: 1, handlers: new URL('./handlers.js', location.href) });
    await other.ready;
    defaultWorker = { code: 'none', message: 'the default worker started' };
  } catch (e) {
    defaultWorker = { code: e.code, message: e.message };
  }
  return { results: Array.from(results), seen: Array.from(seen), started, done, failed, restarts, defaultWorker };
};
window.appReady = true;

// ShardedBus in browsers: the runtime adapter of the web entry (module Web Workers).

import { workerErrorText } from './worker-errors.js';

/**
 * Browsers: module Web Workers running shard-worker.web.mjs, given the module `init()` compiled.
 * A worker that stops without an event (terminate() from outside, close() inside) releases a Web
 * Lock it holds, which is how its death is noticed.
 */
export function webPlatform(compiledModule, createWorker) {
  const hasWorker = typeof Worker === 'function';
  return {
    unsupported: hasWorker ? undefined
      : 'ShardedBus needs module Web Workers (or Node worker_threads through the node entry), and this runtime has neither',
    concurrency: () => (globalThis.navigator && navigator.hardwareConcurrency) || 2,
    module: compiledModule,
    sharedMemory: () => typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated === true,
    baseUrl: () => (globalThis.location ? location.href : undefined),
    spawn(cb) {
      const w = createWorker();
      const script = 'shard-worker.web.mjs (next to the edgebus entry the page imports)';
      const locks = globalThis.navigator && navigator.locks;
      const lock = locks ? `edgebus-shard-${Math.random().toString(36).slice(2)}-${Date.now()}` : null;
      let dead = false;
      let watched = false;
      let reason;
      const death = () => {
        if (dead) return;
        dead = true;
        cb.death(reason ?? 'stopped (terminated or closed)');
      };
      // An uncaught error does not stop a Web Worker: stop it, and report its death once it is
      // really gone (its lock released), so that it can no longer finish anything after that.
      const stop = (why) => {
        reason ??= why;
        w.terminate();
        if (!watched) death();
      };
      w.onmessage = (e) => {
        if (e.data && e.data.type === 'ready' && lock !== null) {
          watched = true;
          locks.request(lock, death).catch(() => {});
        }
        cb.message(e.data);
      };
      w.onerror = (e) => {
        e.preventDefault();
        stop(workerErrorText(e, script));
      };
      w.onmessageerror = () => stop('a message could not be deserialized');
      return {
        post: (m, transfer) => w.postMessage(m, transfer === undefined ? [] : transfer),
        terminate: () => { dead = true; w.terminate(); },
        lock,
        worker: w,
      };
    },
  };
}

// ShardedBus in browsers: the runtime adapter of the web entry (module Web Workers).

import { EdgebusError, errorText } from '../shared/errors.js';
import { workerErrorText } from './worker-errors.js';

// What an app whose bundler moved the package's files does instead of the default worker.
const BUNDLED = 'a bundled app starts its shard workers itself: pass the `worker` option, a function '
  + 'returning a module Worker of its own script (bundled with the app), which calls serveShard(setup); '
  + 'see the README, ShardedBus';

/**
 * Browsers: module Web Workers, given the module `init()` compiled (`compiledModule()`): the
 * default one, shard-worker.web.mjs at `defaultWorkerUrl()`, or the one the `worker` option starts.
 * A worker that stops without an event (terminate() from outside, close() inside) releases a Web
 * Lock it holds, which is how its death is noticed. `initSync` is the entry's, for `serveShard`.
 */
export function webPlatform(compiledModule, initSync, defaultWorkerUrl) {
  const hasWorker = typeof Worker === 'function';
  return {
    unsupported: hasWorker ? undefined
      : 'ShardedBus needs module Web Workers (or Node worker_threads through the node entry), and this runtime has neither',
    concurrency: () => (globalThis.navigator && navigator.hardwareConcurrency) || 2,
    module: compiledModule,
    sharedMemory: () => typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated === true,
    baseUrl: () => (globalThis.location ? location.href : undefined),
    initSync,
    workerKind: "module Web Worker (new Worker(url, { type: 'module' }))",
    isWorker: (w) => w !== null && typeof w === 'object' && typeof w.postMessage === 'function'
      && typeof w.terminate === 'function' && 'onmessage' in w,
    /** How serveShard talks to the main thread: this worker's own scope (undefined outside a worker). */
    port() {
      const scope = globalThis.WorkerGlobalScope;
      const inWorker = typeof scope === 'function' ? globalThis instanceof scope
        : typeof globalThis.postMessage === 'function' && typeof document === 'undefined';
      if (!inWorker) return undefined;
      return {
        post: (m, transfer) => globalThis.postMessage(m, transfer === undefined ? [] : transfer),
        onMessage: (fn) => globalThis.addEventListener('message', (e) => fn(e.data)),
      };
    },
    /** Starts a shard: `own`, the worker the `worker` option returned, or the default one. */
    spawn(cb, own) {
      let w = own;
      let script = 'that the `worker` option started';
      let hint;
      if (w === undefined) {
        let url;
        try {
          url = defaultWorkerUrl();
          w = new Worker(url, { type: 'module' });
        } catch (e) {
          throw new EdgebusError('WORKER_FAILED',
            `could not start the default worker script shard-worker.web.mjs${url === undefined ? '' : ` (${url})`}: ${errorText(e)}; ${BUNDLED}`, { cause: e });
        }
        script = `${url} (the default one, next to the edgebus entry the page imports)`;
        hint = BUNDLED;
      }
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
        stop(workerErrorText(e, script, hint));
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

// Runtime adapters of ShardedBus, one per package entry: how to start a worker, where the compiled
// WebAssembly.Module comes from, and how much parallelism there is. build.mjs puts the right one in
// each entry.

/* exported nodePlatform, webPlatform, noThreadsPlatform */

/**
 * Why a worker reported an error, as text. A thrown non-Error has no `message`; a worker script that
 * cannot be loaded (a 404, a wrong MIME type, a syntax error) gets an error event without one.
 */
function workerErrorText(e, script) {
  if (e !== null && typeof e === 'object' && typeof e.message === 'string' && e.message !== '') {
    return `uncaught error: ${e.message}`;
  }
  if (e !== null && typeof e === 'object' && typeof e.type === 'string' && !('error' in e && e.error !== undefined && e.error !== null)) {
    return `the worker script ${script} could not be loaded or run (check that it is served, as JavaScript)`;
  }
  let text;
  try { text = String(e && typeof e === 'object' && 'error' in e ? e.error : e); } catch { text = 'an unprintable value'; }
  return `uncaught error: ${text}`;
}

/** Node: worker_threads running shard-worker.node.mjs; the module is compiled once per process. */
function nodePlatform() {
  const { Worker } = require('node:worker_threads');
  const { join, isAbsolute } = require('node:path');
  const { pathToFileURL } = require('node:url');
  const { readFileSync } = require('node:fs');
  const os = require('node:os');
  const { types } = require('node:util');
  return {
    isProxy: types.isProxy,
    concurrency: () => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),
    module: () => new WebAssembly.Module(readFileSync(join(__dirname, 'web', 'edgebus_bg.wasm'))),
    sharedMemory: () => typeof SharedArrayBuffer === 'function',
    absolutePath: (h) => (isAbsolute(h) ? pathToFileURL(h).href : undefined),
    baseUrl: () => pathToFileURL(process.cwd() + '/').href,
    spawn(cb) {
      // Not the parent's --input-type / --eval: they would apply to the worker file.
      const execArgv = process.execArgv.filter((a) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(a));
      const file = pathToFileURL(join(__dirname, 'shard-worker.node.mjs'));
      let w;
      try {
        w = new Worker(file, { execArgv });
      } catch (e) {
        // Some flags (V8's, per-process ones) are refused in workers: start it without any.
        if (!e || e.code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
        w = new Worker(file, { execArgv: [] });
      }
      // Death is reported on 'exit', once the thread has stopped running: only then do the
      // completion marks it left in shared memory say everything it finished.
      let reason;
      w.on('message', cb.message);
      w.on('error', (e) => { reason ??= workerErrorText(e, file.href); });
      w.on('messageerror', () => {
        reason ??= 'a message could not be deserialized';
        w.terminate();
      });
      w.on('exit', (code) => cb.death(reason ?? `exited with code ${code}`));
      return {
        post: (m, transfer) => w.postMessage(m, transfer),
        terminate: () => w.terminate(),
        ref: () => w.ref(),
        unref: () => w.unref(),
        thread: w,
      };
    },
  };
}

/**
 * Browsers: module Web Workers running shard-worker.web.mjs, given the module `init()` compiled.
 * A worker that stops without an event (terminate() from outside, close() inside) releases a Web
 * Lock it holds, which is how its death is noticed.
 */
function webPlatform(compiledModule, createWorker) {
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

/** Runtimes without threads (Cloudflare Workers; the bundler entry): a clear error instead. */
function noThreadsPlatform(reason) {
  return { unsupported: reason };
}

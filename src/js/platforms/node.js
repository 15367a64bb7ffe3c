// ShardedBus on Node: the runtime adapter of the Node entry (worker_threads).

import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import { types } from 'node:util';
import { EdgebusError } from '../shared/errors.js';
import { workerErrorText } from './worker-errors.js';

/**
 * Node: worker_threads running shard-worker.node.mjs, or the worker the `worker` option starts; the
 * module is compiled once per process. `dir` is the package's directory (where the entry, its
 * `web/` wasm and the worker files are).
 */
export function nodePlatform(dir) {
  return {
    isProxy: types.isProxy,
    concurrency: () => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),
    module: () => new WebAssembly.Module(readFileSync(join(dir, 'web', 'edgebus_bg.wasm'))),
    sharedMemory: () => typeof SharedArrayBuffer === 'function',
    absolutePath: (h) => (isAbsolute(h) ? pathToFileURL(h).href : undefined),
    baseUrl: () => pathToFileURL(process.cwd() + '/').href,
    // This entry loaded its core when it was imported: nothing to do with the module posted.
    initSync() {},
    workerKind: "worker_threads Worker (new Worker(url) from 'node:worker_threads')",
    isWorker: (w) => w instanceof Worker,
    /** How serveShard talks to the main thread: this thread's parentPort (undefined on the main thread). */
    port() {
      if (isMainThread || parentPort === null) return undefined;
      return {
        post: (m, transfer) => parentPort.postMessage(m, transfer),
        onMessage: (fn) => parentPort.on('message', fn),
      };
    },
    /** Starts a shard: `own`, the worker the `worker` option returned, or the default one. */
    spawn(cb, own) {
      let w = own;
      let script = 'that the `worker` option started';
      if (w === undefined) {
        const file = pathToFileURL(join(dir, 'shard-worker.node.mjs'));
        if (!existsSync(file)) {
          throw new EdgebusError('WORKER_FAILED', `the default worker script ${file.href} is missing (is edgebus bundled into the app?): `
            + 'a bundled app starts its shard workers itself: pass the `worker` option, a function returning a '
            + "worker_threads Worker of its own script, which calls serveShard(setup); see the README, ShardedBus");
        }
        script = file.href;
        // Not the parent's --input-type / --eval: they would apply to the worker file.
        const execArgv = process.execArgv.filter((a) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(a));
        try {
          w = new Worker(file, { execArgv });
        } catch (e) {
          // Some flags (V8's, per-process ones) are refused in workers: start it without any.
          if (!e || e.code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
          w = new Worker(file, { execArgv: [] });
        }
      }
      // Death is reported on 'exit', once the thread has stopped running: only then do the
      // completion marks it left in shared memory say everything it finished.
      let reason;
      w.on('message', cb.message);
      w.on('error', (e) => { reason ??= workerErrorText(e, script); });
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

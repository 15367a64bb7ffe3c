// The default ShardedBus worker in browsers (pkg/shard-worker.web.mjs, a module Web Worker, for pages
// that serve the package's files as they are): the web entry, initialized from the
// WebAssembly.Module the main thread posts, running the handlers module the `handlers` option names.
// Bundled apps start their own workers instead (the `worker` option and `serveShard`).

import * as api from './index.web.mjs';
import { importHandlers, runShardWorker } from '../sharded/worker.js';

runShardWorker(api, {
  post: (m, transfer) => self.postMessage(m, transfer === undefined ? [] : transfer),
  onMessage: (fn) => { self.onmessage = (e) => fn(e.data); },
}, (m) => importHandlers(api, m.handlers));

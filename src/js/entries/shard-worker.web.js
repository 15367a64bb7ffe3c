// A ShardedBus worker in browsers (pkg/shard-worker.web.mjs, a module Web Worker): the web entry,
// initialized from the WebAssembly.Module the main thread posts.

import * as api from './index.web.mjs';
import { runShardWorker } from '../sharded/worker.js';

runShardWorker(api, {
  post: (m, transfer) => self.postMessage(m, transfer === undefined ? [] : transfer),
  onMessage: (fn) => { self.onmessage = (e) => fn(e.data); },
});

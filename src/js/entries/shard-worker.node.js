// The default ShardedBus worker in Node (pkg/shard-worker.node.mjs, worker_threads): the web entry,
// initialized from the WebAssembly.Module the main thread posts, running the handlers module the
// `handlers` option names.

import { parentPort } from 'node:worker_threads';
import * as api from './index.web.mjs';
import { importHandlers, runShardWorker } from '../sharded/worker.js';

runShardWorker(api, {
  post: (m, transfer) => parentPort.postMessage(m, transfer),
  onMessage: (fn) => parentPort.on('message', fn),
}, (m) => importHandlers(api, m.handlers));

// Node, CommonJS (pkg/index.node.cjs, bundled as CommonJS): wasm-bindgen's nodejs glue loads the
// module synchronously; ShardedBus runs on worker_threads. The ESM entry (node.mjs) re-exports this
// one, so that `import` and `require` share one instance.

import * as wasm from './node/edgebus.js';
import * as api from '../index.js';
import { useCore } from '../shared/core.js';
import { useShardPlatform } from '../sharded/sharded-bus.js';
import { nodePlatform } from '../platforms/node.js';
import { init, initSync } from './loaded.js';

useCore(wasm);
// This file becomes pkg/index.node.cjs: its directory is the package's.
useShardPlatform(nodePlatform(__dirname));

export default { ...api, init, initSync };

// Node, CommonJS (pkg/index.node.cjs, bundled as CommonJS): wasm-bindgen's web glue, initialized
// synchronously from the package's one .wasm (web/edgebus_bg.wasm, read from disk); ShardedBus runs
// on worker_threads. The ESM entry (node.mjs) re-exports this one, so that `import` and `require`
// share one instance.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as wasm from './web/edgebus.js';
import * as api from '../index.js';
import { useCore } from '../shared/core.js';
import { useShardPlatform } from '../sharded/sharded-bus.js';
import { nodePlatform } from '../platforms/node.js';
import { init, initSync } from './loaded.js';

// This file becomes pkg/index.node.cjs: its directory is the package's.
wasm.initSync({ module: new WebAssembly.Module(readFileSync(join(__dirname, 'web', 'edgebus_bg.wasm'))) });
useCore(wasm);
useShardPlatform(nodePlatform(__dirname));

const edgebus = { ...api, init, initSync };
// `require('edgebus').default` is the API too, as the types declare (`export default`) and as
// TypeScript's CommonJS output of `import edgebus from 'edgebus'` reads it. Not enumerable: the
// API's names are the object's keys.
Object.defineProperty(edgebus, 'default', { value: edgebus });
export default edgebus;

// Cloudflare Workers (pkg/index.workerd.mjs): the .wasm is imported as a compiled module (Workers
// forbid compiling from bytes at run time) and instantiated at once. No threads: no ShardedBus.

import * as wasm from './web/edgebus.js';
import wasmModule from './web/edgebus_bg.wasm';
import * as api from '../index.js';
import { useCore } from '../shared/core.js';
import { useShardPlatform } from '../sharded/sharded-bus.js';
import { noThreadsPlatform } from '../platforms/none.js';
import { init, initSync } from './loaded.js';

wasm.initSync({ module: wasmModule });
useCore(wasm);
useShardPlatform(noThreadsPlatform('Cloudflare Workers have no threads, so ShardedBus cannot run here: shard across Durable Objects with the edge hub instead'));

export * from '../index.js';
export { init, initSync };
export default /* @__PURE__ */ Object.assign({}, api, { init, initSync });

// Browsers and the default ESM entry (pkg/index.web.mjs): `await init()` fetches and compiles the
// .wasm once (or takes a URL, a Response, bytes or a compiled module); ShardedBus runs on module
// Web Workers that get the compiled module posted, never fetching it again.

import * as wasm from './web/edgebus.js';
import * as api from '../index.js';
import { EdgebusError } from '../shared/errors.js';
import { useCore } from '../shared/core.js';
import { useShardPlatform } from '../sharded/sharded-bus.js';
import { webPlatform } from '../platforms/web.js';

let initialized = false;
// The compiled module, kept so ShardedBus can post it to its workers (compiled once, here).
let compiledModule;

async function compileModule(input) {
  let source = input === undefined ? new URL('./web/edgebus_bg.wasm', import.meta.url) : input;
  if (typeof source === 'string' || source instanceof URL || (typeof Request === 'function' && source instanceof Request)) {
    source = fetch(source);
  }
  source = await source;
  if (typeof Response === 'function' && source instanceof Response) {
    if (typeof WebAssembly.compileStreaming === 'function') {
      try {
        return await WebAssembly.compileStreaming(source.clone());
      } catch (e) {
        if (source.headers.get('Content-Type') === 'application/wasm') throw e;
      }
    }
    return WebAssembly.compile(await source.arrayBuffer());
  }
  return WebAssembly.compile(source);
}

/** Loads the WebAssembly module once (browsers). `input`: URL, Response, bytes or WebAssembly.Module. */
export async function init(input) {
  if (initialized) return;
  const module = input instanceof WebAssembly.Module ? input : await compileModule(input);
  if (initialized) return;
  await wasm.default({ module_or_path: module });
  compiledModule = module;
  initialized = true;
}

/** Initializes synchronously from a compiled WebAssembly.Module (for example one posted to a Worker). */
export function initSync(module) {
  if (initialized) return;
  if (!(module instanceof WebAssembly.Module)) module = new WebAssembly.Module(module);
  wasm.initSync({ module });
  compiledModule = module;
  initialized = true;
}

useCore(wasm, () => {
  if (!initialized) {
    throw new EdgebusError('NOT_INITIALIZED', 'edgebus is not initialized: call `await init()` once before using it in a browser');
  }
});
// The default shard worker, for pages that serve the package's files as they are. Its URL is made
// from a constant, not written as a string literal beside import.meta.url in the Worker call:
// bundlers would recognize that pattern and emit the worker into every app importing the package,
// ShardedBus or not (and webpack, ignoring it, would otherwise bundle the package's whole folder as
// the possible targets of an expression). Bundled apps start their own workers (the `worker`
// option and serveShard).
const SHARD_WORKER = 'shard-worker.web.mjs';
useShardPlatform(webPlatform(() => compiledModule, initSync,
  () => new URL(/* webpackIgnore: true */ SHARD_WORKER, import.meta.url)));

export * from '../index.js';
export default { ...api, init, initSync };

// Browsers and the default ESM entry (pkg/index.web.mjs): `await init()` fetches and compiles the
// .wasm once (or takes a URL, a Response, bytes or a compiled module); ShardedBus runs on module
// Web Workers that get the compiled module posted, never fetching it again.

import * as wasm from './web/edgebus.js';
import * as api from '../index.js';
import { EdgebusError, errorText } from '../shared/errors.js';
import { useCore } from '../shared/core.js';
import { useShardPlatform } from '../sharded/sharded-bus.js';
import { webPlatform } from '../platforms/web.js';
import { defaultWasm } from './web-wasm.js';

let initialized = false;
// The compiled module, kept so ShardedBus can post it to its workers (compiled once, here).
let compiledModule;

/** `WASM_LOAD`: what was asked for, what answered, and what to do. */
function loadError(what, detail, cause) {
  return new EdgebusError('WASM_LOAD', `edgebus could not load its WebAssembly module from ${what}: ${detail}`,
    cause === undefined ? undefined : { cause });
}

/** What answered a request for the .wasm: the status and the content type. */
function answer(response) {
  const type = response.headers.get('Content-Type');
  return `HTTP ${response.status}${response.statusText ? ' ' + response.statusText : ''}, content type ${type === null ? 'none' : type}`;
}

async function compileModule(input) {
  let source = input === undefined ? defaultWasm() : input;
  // What the error names: the URL requested, or where the bytes came from.
  let what;
  if (typeof source === 'string' || source instanceof URL || (typeof Request === 'function' && source instanceof Request)) {
    what = typeof source === 'string' || source instanceof URL ? String(source) : source.url;
    try {
      source = await fetch(source);
    } catch (e) {
      throw loadError(what, `the request failed (${errorText(e)})`, e);
    }
  } else {
    source = await source;
  }
  if (typeof Response === 'function' && source instanceof Response) {
    what ??= source.url || 'the Response given to init()';
    if (!source.ok) throw loadError(what, answer(source));
    const type = source.headers.get('Content-Type');
    if (typeof WebAssembly.compileStreaming === 'function' && type !== null && type.startsWith('application/wasm')) {
      try {
        return await WebAssembly.compileStreaming(source);
      } catch (e) {
        throw loadError(what, `${answer(source)}, not a valid WebAssembly module (${errorText(e)})`, e);
      }
    }
    const bytes = await source.arrayBuffer();
    try {
      return await WebAssembly.compile(bytes);
    } catch (e) {
      const html = type !== null && type.startsWith('text/html');
      throw loadError(what, `${answer(source)}, ${bytes.byteLength} bytes that are not a WebAssembly module (${errorText(e)})`
        + (html ? '. An HTML page answered: no file is served at that URL. Serve web/edgebus_bg.wasm of the package there, or pass its URL to init() (edgebus/edgebus.wasm in the package\'s exports)' : ''), e);
    }
  }
  try {
    return await WebAssembly.compile(source);
  } catch (e) {
    throw loadError(input === undefined ? 'the bytes the package carries' : 'the bytes given to init()',
      `not a WebAssembly module (${errorText(e)})`, e);
  }
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
  if (!(module instanceof WebAssembly.Module)) {
    try {
      module = new WebAssembly.Module(module);
    } catch (e) {
      throw loadError('the bytes given to initSync()', `not a WebAssembly module (${errorText(e)})`, e);
    }
  }
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
export default /* @__PURE__ */ Object.assign({}, api, { init, initSync });

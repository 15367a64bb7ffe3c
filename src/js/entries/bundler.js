// Bundlers (pkg/index.bundler.mjs): the bundler imports the .wasm itself (wasm-bindgen's bundler
// target). ShardedBus is not offered here: its worker file comes with the web entry.

import * as wasm from './bundler/edgebus.js';
import * as api from '../index.js';
import { useCore } from '../shared/core.js';
import { useShardPlatform } from '../sharded/sharded-bus.js';
import { noThreadsPlatform } from '../platforms/none.js';
import { init, initSync } from './loaded.js';

useCore(wasm);
useShardPlatform(noThreadsPlatform('ShardedBus is not available from edgebus/bundler: import it from the default (web) entry, which bundlers resolve and whose worker file they emit'));

export * from '../index.js';
export { init, initSync };
export default /* @__PURE__ */ Object.assign({}, api, { init, initSync });

// Browsers in development (pkg/index.web.dev.mjs: the `development` condition of the package's
// browser export, which Vite's dev server and webpack's development mode resolve). Their dependency
// pre-bundlers copy the entry elsewhere (Vite 7: node_modules/.vite/deps/) without the .wasm beside
// it, so `new URL('./web/edgebus_bg.wasm', import.meta.url)` would answer their index.html. This
// entry is the web entry carrying the .wasm's bytes: `init()` needs no file and no configuration.
// Production builds resolve the web entry, which loads the .wasm as a file.

import { useDefaultWasm } from './web-wasm.js';
import { wasmBytes } from 'edgebus:inline-wasm';

useDefaultWasm(wasmBytes);

export * from './web.js';
export { default } from './web.js';

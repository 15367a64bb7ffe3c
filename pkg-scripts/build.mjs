// Builds the npm package `edgebus` into pkg/: wasm-pack for the web, bundler and nodejs targets,
// then one package whose `exports` serve Node (ESM and CommonJS), browsers, bundlers and workerd.
//
//   node pkg-scripts/build.mjs [--dev]
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dev = process.argv.includes('--dev');
// --js-only: reassemble from the last wasm-pack output (when only src/js changed).
const jsOnly = process.argv.includes('--js-only');
const out = join(root, 'pkg');
const stage = join(root, 'target', 'wasm-pack');
const cargo = readFileSync(join(root, 'Cargo.toml'), 'utf8');
const version = /^version = "([^"]+)"/m.exec(cargo)[1];

function run(cmd, args) {
  console.log(`[build] ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
}

for (const target of ['web', 'bundler', 'nodejs']) {
  if (jsOnly && existsSync(join(stage, target, 'edgebus_bg.wasm'))) continue;
  run('wasm-pack', [
    'build', '--target', target, '--out-dir', join(stage, target), '--out-name', 'edgebus',
    '--no-pack', dev ? '--dev' : '--release',
  ]);
}

// wasm-opt from the npm package `binaryen` (a current release; Debian's is too old for the
// reference-types output of this wasm-bindgen). wasm-pack's own wasm-opt step is off in Cargo.toml.
const wasmOpt = join(root, 'node_modules', '.bin', 'wasm-opt');
const WASM_FEATURES = ['--enable-reference-types', '--enable-bulk-memory', '--enable-nontrapping-float-to-int',
  '--enable-sign-ext', '--enable-multivalue', '--enable-mutable-globals'];
if (!dev) {
  for (const target of ['web', 'bundler', 'nodejs']) {
    const wasm = join(stage, target, 'edgebus_bg.wasm');
    const marker = wasm + '.optimized';
    if (existsSync(marker) && readFileSync(marker, 'utf8') === String(statSync(wasm).mtimeMs)) continue;
    run(wasmOpt, ['-O3', ...WASM_FEATURES, wasm, '-o', wasm]);
    writeFileSync(marker, String(statSync(wasm).mtimeMs));
  }
}

rmSync(out, { recursive: true, force: true });
const dirs = { web: 'web', bundler: 'bundler', nodejs: 'node' };
for (const [target, dir] of Object.entries(dirs)) {
  const dest = join(out, dir);
  mkdirSync(dest, { recursive: true });
  for (const f of ['edgebus.js', 'edgebus_bg.js', 'edgebus_bg.wasm', 'edgebus.d.ts', 'edgebus_bg.wasm.d.ts']) {
    if (existsSync(join(stage, target, f))) cpSync(join(stage, target, f), join(dest, f));
  }
  writeFileSync(join(dest, 'package.json'), JSON.stringify({ type: target === 'nodejs' ? 'commonjs' : 'module' }) + '\n');
}

// The remote client (src/js/remote.js, `connect`) is appended to the shared body and built on it.
const api = readFileSync(join(root, 'src', 'js', 'api.js'), 'utf8') + '\n'
  + readFileSync(join(root, 'src', 'js', 'remote.js'), 'utf8');
const names = ['Bus', 'Batcher', 'IdempotenceFilter', 'ManualClock', 'EdgebusError', 'Subscription', 'shardOf', 'matches', 'ShardedBus', 'connect'];
const withRemote = 'api.connect = makeRemote(api);\n';
// ShardedBus: the main-thread side, the runtime adapters, and the worker body (see src/js/sharded.js).
const shardedSrc = ['sharded-values.js', 'sharded.js', 'platforms.js']
  .map((f) => readFileSync(join(root, 'src', 'js', f), 'utf8')).join('\n');
const workerSrc = readFileSync(join(root, 'src', 'js', 'shard-worker.js'), 'utf8');
const withSharded = (platform) => `${shardedSrc}\nObject.assign(api, makeSharded(api, raw, ${platform}));\n`;
const NO_THREADS_WORKERD = 'Cloudflare Workers have no threads, so ShardedBus cannot run here: shard across Durable Objects with the edge hub instead';
const NO_THREADS_BUNDLER = 'ShardedBus is not available from edgebus/bundler: import it from the default (web) entry, which bundlers resolve and whose worker file they emit';
const exportAll = `export const { ${names.join(', ')}, init, initSync } = api;\nexport default api;\n`;
// Where the module is loaded by the entry itself, init() has nothing left to do.
const readyInit = 'Object.assign(api, { init: () => Promise.resolve(), initSync: () => {} });\n';

writeFileSync(join(out, 'index.node.cjs'),
  `'use strict';\nconst raw = require('./node/edgebus.js');\n${api}\nconst api = makeApi(raw);\n${withRemote}${readyInit}${withSharded('nodePlatform()')}module.exports = api;\n`);
// ESM re-exports the CommonJS build, so `import` and `require` share one instance.
writeFileSync(join(out, 'index.node.mjs'),
  `import api from './index.node.cjs';\n${exportAll}`);
writeFileSync(join(out, 'index.web.mjs'), `import initWasm, { initSync as initWasmSync } from './web/edgebus.js';
import * as raw from './web/edgebus.js';

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

/** Loads the WebAssembly module once (browsers). \`input\`: URL, Response, bytes or WebAssembly.Module. */
async function initModule(input) {
  if (initialized) return;
  const module = input instanceof WebAssembly.Module ? input : await compileModule(input);
  if (initialized) return;
  await initWasm({ module_or_path: module });
  compiledModule = module;
  initialized = true;
}

/** Initializes synchronously from a compiled WebAssembly.Module (for example one posted to a Worker). */
function initModuleSync(module) {
  if (initialized) return;
  if (!(module instanceof WebAssembly.Module)) module = new WebAssembly.Module(module);
  initWasmSync({ module });
  compiledModule = module;
  initialized = true;
}

${api}
const api = makeApi(raw, () => {
  if (!initialized) {
    throw new api.EdgebusError('NOT_INITIALIZED', 'edgebus is not initialized: call \`await init()\` once before using it in a browser');
  }
});
${withRemote}Object.assign(api, { init: initModule, initSync: initModuleSync });
${withSharded(`webPlatform(() => compiledModule,
  () => new Worker(new URL('./shard-worker.web.mjs', import.meta.url), { type: 'module' }))`)}
${exportAll}`);
// The ShardedBus workers: both import the web entry and initialize it from the posted module.
writeFileSync(join(out, 'shard-worker.web.mjs'),
  `import * as api from './index.web.mjs';\n${workerSrc}
runShardWorker(api, {
  post: (m, transfer) => self.postMessage(m, transfer === undefined ? [] : transfer),
  onMessage: (fn) => { self.onmessage = (e) => fn(e.data); },
});\n`);
writeFileSync(join(out, 'shard-worker.node.mjs'),
  `import { parentPort } from 'node:worker_threads';\nimport * as api from './index.web.mjs';\n${workerSrc}
runShardWorker(api, {
  post: (m, transfer) => parentPort.postMessage(m, transfer),
  onMessage: (fn) => parentPort.on('message', fn),
});\n`);
writeFileSync(join(out, 'index.bundler.mjs'),
  `import * as raw from './bundler/edgebus.js';\n${api}\nconst api = makeApi(raw);\n${withRemote}${readyInit}${withSharded(`noThreadsPlatform(${JSON.stringify(NO_THREADS_BUNDLER)})`)}${exportAll}`);
// workerd: the .wasm is imported as a compiled module (no compiling from bytes at run time).
writeFileSync(join(out, 'index.workerd.mjs'), `import { initSync as initWasmSync } from './web/edgebus.js';
import * as raw from './web/edgebus.js';
import wasmModule from './web/edgebus_bg.wasm';

initWasmSync({ module: wasmModule });
${api}
const api = makeApi(raw);
${withRemote}${readyInit}${withSharded(`noThreadsPlatform(${JSON.stringify(NO_THREADS_WORKERD)})`)}${exportAll}`);

cpSync(join(root, 'src', 'js', 'index.d.ts'), join(out, 'index.d.ts'));
cpSync(join(root, 'README.md'), join(out, 'README.md'));
const pkg = {
  name: 'edgebus',
  version,
  description: 'Publish/subscribe runtime in Rust + WebAssembly: wildcard topics, async handlers with per-key ordering, backpressure, dedupe, batching, statistics.',
  license: 'MIT OR Apache-2.0',
  sideEffects: false,
  types: './index.d.ts',
  main: './index.node.cjs',
  module: './index.web.mjs',
  exports: {
    '.': {
      types: './index.d.ts',
      workerd: './index.workerd.mjs',
      node: { import: './index.node.mjs', require: './index.node.cjs' },
      browser: './index.web.mjs',
      import: './index.web.mjs',
      require: './index.node.cjs',
      default: './index.web.mjs',
    },
    './web': { types: './index.d.ts', default: './index.web.mjs' },
    './bundler': { types: './index.d.ts', default: './index.bundler.mjs' },
    './workerd': { types: './index.d.ts', default: './index.workerd.mjs' },
    './node': { types: './index.d.ts', import: './index.node.mjs', require: './index.node.cjs' },
    './package.json': './package.json',
  },
  files: ['index.*', 'shard-worker.*', 'web/', 'bundler/', 'node/', 'README.md'],
  keywords: ['pubsub', 'event-bus', 'wasm', 'wildcard', 'nats', 'batching', 'dedupe'],
};
writeFileSync(join(out, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
console.log(`[build] edgebus ${version} assembled in pkg/`);

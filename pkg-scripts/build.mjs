// Builds the npm package `edgebus` into pkg/: wasm-pack for the web and bundler targets (one
// WebAssembly binary: the two targets differ only in their JavaScript glue), then one package whose
// `exports` serve Node (ESM and CommonJS), browsers, bundlers and workerd, each entry bundled by
// Rollup from the ES modules of src/js/.
//
//   node pkg-scripts/build.mjs [--dev] [--js-only]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dev = process.argv.includes('--dev');
// --js-only: reassemble from the last wasm-pack output (when only src/js changed).
const jsOnly = process.argv.includes('--js-only');
const out = join(root, 'pkg');
const stage = join(root, 'target', 'wasm-pack');
const cargo = readFileSync(join(root, 'Cargo.toml'), 'utf8');
const version = /^version = "([^"]+)"/m.exec(cargo)[1];
const TARGETS = ['web', 'bundler'];

/** Stops the build with a message (no stack trace): what is missing and what to run. */
function stop(message) {
  console.error(`[build] ${message}`);
  process.exit(1);
}

const SETUP = 'run `bash pkg-scripts/setup.sh` once first (it installs the Rust toolchain, wasm-pack and the npm packages)';
// The tools come from setup.sh: check them before anything starts, rather than fail half-way.
if (!existsSync(join(root, 'node_modules', 'rollup', 'package.json'))) {
  stop(`the npm packages are not installed (node_modules/rollup is missing): ${SETUP}`);
}
const needWasmPack = TARGETS.some((t) => !(jsOnly && existsSync(join(stage, t, 'edgebus_bg.wasm'))));
if (needWasmPack) {
  const probe = spawnSync('wasm-pack', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    const why = probe.error.code === 'ENOENT' ? 'wasm-pack is not on the PATH' : `wasm-pack does not run (${probe.error.message})`;
    stop(`${why}: ${SETUP}, and put ~/.cargo/bin on the PATH (export PATH=$HOME/.cargo/bin:$PATH)`);
  }
}
const { rollup } = await import('rollup');

// --- How the .wasm is compiled and optimized (sizes and speed figures behind these choices:
// BENCHMARKS.md, "WebAssembly size"; the budget is checked by pkg-scripts/size.mjs). ---
// Cargo profile `wasm-release` (Cargo.toml: opt-level 2 on top of `release`'s LTO and one
// codegen unit); `--dev` builds the unoptimized `dev` profile.
const WASM_PACK_PROFILE = (isDev) => (isDev ? ['--dev'] : ['--profile', 'wasm-release']);
// The build machine's paths (Cargo's registry, the checkout) are rewritten in what rustc embeds
// (panic locations), so the .wasm names no directory of the machine that built it.
function wasmPackEnv() {
  const cargoHome = process.env.CARGO_HOME || join(homedir(), '.cargo');
  const remap = [`--remap-path-prefix=${cargoHome}=/cargo`, `--remap-path-prefix=${root}=/edgebus`];
  return { ...process.env, RUSTFLAGS: [process.env.RUSTFLAGS, ...remap].filter(Boolean).join(' ') };
}
// wasm-opt after wasm-bindgen: optimize for size, then drop the name and producers sections.
const WASM_OPT_FLAGS = ['-Oz', '--converge', '--strip-debug', '--strip-producers'];

function run(cmd, args, env = process.env) {
  console.log(`[build] ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env });
}

for (const target of TARGETS) {
  if (jsOnly && existsSync(join(stage, target, 'edgebus_bg.wasm'))) continue;
  run('wasm-pack', [
    'build', '--target', target, '--out-dir', join(stage, target), '--out-name', 'edgebus',
    '--no-pack', ...WASM_PACK_PROFILE(dev),
  ], wasmPackEnv());
}

// One binary for every entry: the web target's. The bundler target's glue (wasm imports of
// `./edgebus_bg.js`) is shipped beside it, so it must import and export the very same names.
const shape = (file) => {
  const m = new WebAssembly.Module(readFileSync(file));
  return JSON.stringify([WebAssembly.Module.imports(m), WebAssembly.Module.exports(m)]);
};
if (shape(join(stage, 'web', 'edgebus_bg.wasm')) !== shape(join(stage, 'bundler', 'edgebus_bg.wasm'))) {
  stop('the web and bundler targets of wasm-pack built binaries with different imports or exports: one .wasm cannot serve both');
}

// wasm-opt from the npm package `binaryen` (a current release; Debian's is too old for the
// reference-types output of this wasm-bindgen). wasm-pack's own wasm-opt step is off in Cargo.toml.
const wasmOpt = join(root, 'node_modules', '.bin', 'wasm-opt');
const WASM_FEATURES = ['--enable-reference-types', '--enable-bulk-memory', '--enable-nontrapping-float-to-int',
  '--enable-sign-ext', '--enable-multivalue', '--enable-mutable-globals'];
const wasmFile = join(stage, 'web', 'edgebus_bg.wasm');
if (!dev) {
  const marker = wasmFile + '.optimized';
  if (!(existsSync(marker) && readFileSync(marker, 'utf8') === String(statSync(wasmFile).mtimeMs))) {
    run(wasmOpt, [...WASM_OPT_FLAGS, ...WASM_FEATURES, wasmFile, '-o', wasmFile]);
    writeFileSync(marker, String(statSync(wasmFile).mtimeMs));
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'web'), { recursive: true });
// The package's only .wasm, and the bundler target's glue beside it (the .wasm imports it by that
// path under WebAssembly ESM integration: the `edgebus/bundler` entry).
cpSync(wasmFile, join(out, 'web', 'edgebus_bg.wasm'));
cpSync(join(stage, 'bundler', 'edgebus_bg.js'), join(out, 'web', 'edgebus_bg.js'));

// wasm-bindgen's web glue is bundled into the entries. Its own loader, unused (the entries hand it a
// compiled module), would name a `.wasm` beside the glue: bundlers would emit it once more, or fail
// to find it. That one line becomes an error.
const GLUE_DEFAULT_URL = "module_or_path = new URL('edgebus_bg.wasm', import.meta.url);";
const glue = {
  web: join(stage, 'web', 'edgebus.js'),
  bundler: join(stage, 'bundler', 'edgebus.js'),
};
// The `development` browser entry carries the .wasm's bytes (see src/js/entries/web.dev.js).
const INLINE_WASM = '\0edgebus:inline-wasm';

// The JavaScript entries: src/js/entries/ holds one small module per entry, importing the real
// modules of src/js/ it needs. Rollup bundles them (scope-hoisted: the modules' functions stay plain
// top-level functions, no loader, no lookups added on any call): the ES module entries in one build,
// sharing one chunk of the API (edgebus.mjs); the CommonJS entry on its own (Node 18 cannot require
// an ES module). The .wasm, the bundler glue and the entries others import stay paths of pkg/.
const PACKAGE_FILES = /^\.\/(?:web\/edgebus_bg\.(?:js|wasm)|index\.web\.mjs|index\.node\.cjs)$/;
const packageFiles = {
  name: 'edgebus-package-files',
  resolveId(id, importer) {
    if (id === './web/edgebus.js') return glue.web;
    if (id === './bundler/edgebus.js') return glue.bundler;
    if (id === 'edgebus:inline-wasm') return INLINE_WASM;
    if (importer === glue.bundler) return { id: `./web/${id.slice(2)}`, external: 'relative' };
    return PACKAGE_FILES.test(id) ? { id, external: 'relative' } : null;
  },
  load(id) {
    if (id === INLINE_WASM) {
      const base64 = readFileSync(wasmFile).toString('base64');
      return `/** The bytes of web/edgebus_bg.wasm. */\nexport function wasmBytes() {\n  const text = atob('${base64}');\n`
        + '  const bytes = new Uint8Array(text.length);\n  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);\n'
        + '  return bytes;\n}\n';
    }
    return null;
  },
  transform(code, id) {
    if (id !== glue.web && id !== glue.bundler) return null;
    // Its `@ts-self-types` names wasm-bindgen's .d.ts, not shipped: the package declares its own types.
    code = code.replace(/^\/\* @ts-self-types="[^"]*" \*\/\n/m, '');
    if (id === glue.bundler) return code;
    const parts = code.split(GLUE_DEFAULT_URL);
    if (parts.length !== 2) throw new Error(`[build] wasm-bindgen's web glue changed: \`${GLUE_DEFAULT_URL}\` is not there once`);
    return parts.join("throw new Error('edgebus: the entry hands the glue a compiled module');");
  },
};
const bundleOptions = (input) => ({
  input,
  plugins: [packageFiles],
  external: (id) => id.startsWith('node:'),
  // Any warning (an unresolved import, a missing export, a circular import) fails the build.
  onwarn(warning) {
    throw new Error(`[build] rollup: ${warning.message}`);
  },
});
const outputOptions = (banner) => ({
  dir: out,
  // The externals are wasm-bindgen's glue and Node's built-ins: used as they are, no wrapper.
  interop: 'esModule',
  generatedCode: { constBindings: true },
  // The chunks' exports keep their names (Bus, not `c`): readable stack traces and imports.
  minifyInternalExports: false,
  banner,
});
const entry = (name) => join(root, 'src', 'js', 'entries', name);
const banner = `// edgebus ${version}, bundled by pkg-scripts/build.mjs from src/js/`;

/** The entry modules whose imports lead to module `id`. */
function reachedFrom(id, getModuleInfo, seen = new Set(), entries = new Set()) {
  if (seen.has(id)) return entries;
  seen.add(id);
  const info = getModuleInfo(id);
  if (info.isEntry) entries.add(id);
  for (const importer of [...info.importers, ...info.dynamicImporters]) reachedFrom(importer, getModuleInfo, seen, entries);
  return entries;
}
const BROWSER = [entry('web.js'), entry('web.dev.js')];

// [source in src/js/entries/, file in pkg/] of the ES module entries.
const ESM = [
  ['web.js', 'index.web.mjs'],
  ['web.dev.js', 'index.web.dev.mjs'],
  ['bundler.js', 'index.bundler.mjs'],
  ['workerd.js', 'index.workerd.mjs'],
];
{
  const bundle = await rollup(bundleOptions(Object.fromEntries(ESM.map(([s, f]) => [f.replace(/\.mjs$/, ''), entry(s)]))));
  await bundle.write({
    ...outputOptions(banner),
    format: 'es',
    entryFileNames: '[name].mjs',
    // The chunks the entries share: the API (edgebus.mjs), wasm-bindgen's web glue (edgebus.glue.mjs:
    // not the bundler entry's) and what only the browser entries use (edgebus.browser.mjs: the web
    // entry's loader and worker platform, shared with its development twin). They stay in pkg/
    // itself, beside the entries, so that `new URL('./…', import.meta.url)` means the same in any.
    chunkFileNames: '[name].mjs',
    manualChunks(id, { getModuleInfo }) {
      if (id === glue.web) return 'edgebus.glue';
      if (!id.startsWith(join(root, 'src', 'js'))) return undefined;
      const entries = reachedFrom(id, getModuleInfo);
      if (entries.size < 2) return undefined;
      return [...entries].every((e) => BROWSER.includes(e)) ? 'edgebus.browser' : 'edgebus';
    },
  });
  await bundle.close();
}
// The CommonJS entry, and the shard workers (each a file of its own: a worker's script).
for (const [source, file, format] of [
  ['node.js', 'index.node.cjs', 'cjs'],
  ['node.mjs', 'index.node.mjs', 'es'],
  ['shard-worker.web.js', 'shard-worker.web.mjs', 'es'],
  ['shard-worker.node.js', 'shard-worker.node.mjs', 'es'],
]) {
  const bundle = await rollup(bundleOptions(entry(source)));
  await bundle.write({
    ...outputOptions(banner),
    dir: undefined,
    file: join(out, file),
    format,
    // CommonJS: `module.exports` is the API object itself, as `require('edgebus')` always gave.
    exports: format === 'cjs' ? 'default' : 'auto',
  });
  await bundle.close();
}

// Types: the same declarations, as an ES module for `import` and as CommonJS for `require` (whose
// `exports.default` is the API object too).
const types = readFileSync(join(root, 'src', 'js', 'index.d.ts'), 'utf8');
writeFileSync(join(out, 'index.d.mts'), types);
writeFileSync(join(out, 'index.d.cts'), types);
writeFileSync(join(out, 'shard-worker.d.mts'), '// A ShardedBus worker script (started by ShardedBus, or by `new Worker(...)`): it exports nothing.\nexport {};\n');
cpSync(join(root, 'README.md'), join(out, 'README.md'));
for (const license of ['LICENSE-MIT', 'LICENSE-APACHE', 'LICENSE']) {
  if (existsSync(join(root, license))) cpSync(join(root, license), join(out, license));
}

const esm = (file) => ({ types: './index.d.mts', default: file });
const cjs = (file) => ({ types: './index.d.cts', default: file });
// A shard worker is a script to start, with nothing to import: its declarations say so.
const worker = (file) => ({ types: './shard-worker.d.mts', default: file });
const node = { import: esm('./index.node.mjs'), require: cjs('./index.node.cjs') };
const repository = /^repository = "([^"]+)"/m.exec(cargo);
const pkg = {
  name: 'edgebus',
  version,
  description: 'Publish/subscribe runtime in Rust + WebAssembly: wildcard topics, async handlers with per-key ordering, backpressure, dedupe, batching, statistics.',
  license: 'MIT OR Apache-2.0',
  ...(repository ? { repository: { type: 'git', url: `git+${repository[1].replace(/\.git$/, '')}.git` } } : {}),
  type: 'module',
  engines: { node: '>=18' },
  // What sets the package up when it loads (the WebAssembly core, the worker platform): the entries
  // and the browser loader they share. The API chunk and the glue only declare.
  sideEffects: ['./index.*', './shard-worker.*', './edgebus.browser.mjs'],
  types: './index.d.cts',
  main: './index.node.cjs',
  module: './index.web.mjs',
  exports: {
    '.': {
      workerd: esm('./index.workerd.mjs'),
      node,
      // `development`: Vite's dev server, webpack in development mode. Their dependency
      // pre-bundlers move the entry away from its .wasm: this one carries the bytes.
      browser: { development: esm('./index.web.dev.mjs'), default: esm('./index.web.mjs') },
      import: esm('./index.web.mjs'),
      require: cjs('./index.node.cjs'),
      default: esm('./index.web.mjs'),
    },
    './web': { development: esm('./index.web.dev.mjs'), default: esm('./index.web.mjs') },
    './bundler': esm('./index.bundler.mjs'),
    './workerd': esm('./index.workerd.mjs'),
    './node': node,
    // The files a build copies or serves itself: `edgebus/edgebus.wasm?url`, require.resolve().
    './edgebus.wasm': './web/edgebus_bg.wasm',
    './shard-worker': { node: worker('./shard-worker.node.mjs'), default: worker('./shard-worker.web.mjs') },
    './shard-worker.web.mjs': worker('./shard-worker.web.mjs'),
    './shard-worker.node.mjs': worker('./shard-worker.node.mjs'),
    './package.json': './package.json',
  },
  files: ['*.mjs', '*.cjs', '*.d.mts', '*.d.cts', 'web/'],
  keywords: ['pubsub', 'event-bus', 'wasm', 'wildcard', 'nats', 'batching', 'dedupe'],
};
// TypeScript's node10 resolution (`moduleResolution: node`) does not read `exports`: typesVersions
// gives it the subpaths' declarations, the CommonJS ones where there are (node10 is CommonJS). The
// .wasm has none: it is not a JavaScript module.
const declarations = (target) => [...JSON.stringify(target).matchAll(/"types":"([^"]+)"/g)].map((m) => m[1]);
pkg.typesVersions = {
  '*': Object.fromEntries(Object.entries(pkg.exports)
    .filter(([path]) => path !== '.' && !path.endsWith('.wasm') && !path.endsWith('.json'))
    .map(([path, target]) => {
      const types = declarations(target);
      return [path.slice(2), [types.find((t) => t.endsWith('.d.cts')) ?? types[0]]];
    })),
};
writeFileSync(join(out, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
// Every file the package names must be there (a renamed chunk or entry would otherwise ship broken).
const named = [];
const walk = (v) => (typeof v === 'string' ? named.push(v) : Object.values(v).forEach(walk));
walk(pkg.exports);
for (const f of [...named, pkg.main, pkg.module, pkg.types]) {
  if (!existsSync(join(out, f))) stop(`package.json names ${f}, which the build did not write`);
}
console.log(`[build] edgebus ${version} assembled in ${pathToFileURL(out).pathname}`);

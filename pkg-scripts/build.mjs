// Builds the npm package `edgebus` into pkg/: wasm-pack for the web, bundler and nodejs targets,
// then one package whose `exports` serve Node (ESM and CommonJS), browsers, bundlers and workerd,
// each entry bundled by Rollup from the ES modules of src/js/.
//
//   node pkg-scripts/build.mjs [--dev] [--js-only]
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rollup } from 'rollup';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dev = process.argv.includes('--dev');
// --js-only: reassemble from the last wasm-pack output (when only src/js changed).
const jsOnly = process.argv.includes('--js-only');
const out = join(root, 'pkg');
const stage = join(root, 'target', 'wasm-pack');
const cargo = readFileSync(join(root, 'Cargo.toml'), 'utf8');
const version = /^version = "([^"]+)"/m.exec(cargo)[1];

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

for (const target of ['web', 'bundler', 'nodejs']) {
  if (jsOnly && existsSync(join(stage, target, 'edgebus_bg.wasm'))) continue;
  run('wasm-pack', [
    'build', '--target', target, '--out-dir', join(stage, target), '--out-name', 'edgebus',
    '--no-pack', ...WASM_PACK_PROFILE(dev),
  ], wasmPackEnv());
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
    run(wasmOpt, [...WASM_OPT_FLAGS, ...WASM_FEATURES, wasm, '-o', wasm]);
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

// The JavaScript entries: src/js/entries/ holds one small module per entry, importing the real
// modules of src/js/ it needs; Rollup bundles each into one file of pkg/ (scope-hoisted: the
// modules' functions stay plain top-level functions, no loader, no lookups added on any call).
// The files wasm-bindgen wrote (`./web/edgebus.js`, the .wasm…) and the entries the others import
// (`./index.web.mjs`, `./index.node.cjs`) are paths inside pkg/, kept as they are.
const PACKAGE_FILES = /^\.\/(?:(?:web|node|bundler)\/edgebus(?:\.js|_bg\.wasm)|index\.web\.mjs|index\.node\.cjs)$/;
const packageFiles = {
  name: 'edgebus-package-files',
  resolveId(id) {
    return PACKAGE_FILES.test(id) ? { id, external: 'absolute' } : null;
  },
};
const ENTRIES = [
  // [source in src/js/entries/, file in pkg/, format]
  ['node.js', 'index.node.cjs', 'cjs'],
  ['node.mjs', 'index.node.mjs', 'es'],
  ['web.js', 'index.web.mjs', 'es'],
  ['bundler.js', 'index.bundler.mjs', 'es'],
  ['workerd.js', 'index.workerd.mjs', 'es'],
  ['shard-worker.web.js', 'shard-worker.web.mjs', 'es'],
  ['shard-worker.node.js', 'shard-worker.node.mjs', 'es'],
];
for (const [source, file, format] of ENTRIES) {
  const bundle = await rollup({
    input: join(root, 'src', 'js', 'entries', source),
    plugins: [packageFiles],
    external: (id) => id.startsWith('node:'),
    // Any warning (an unresolved import, a missing export, a circular import) fails the build.
    onwarn(warning) {
      throw new Error(`[build] rollup, ${source}: ${warning.message}`);
    },
  });
  await bundle.write({
    file: join(out, file),
    format,
    // CommonJS: `module.exports` is the API object itself, as `require('edgebus')` always gave.
    exports: format === 'cjs' ? 'default' : 'auto',
    // The externals are wasm-bindgen's glue and Node's built-ins: used as they are, no wrapper.
    interop: 'esModule',
    generatedCode: { constBindings: true },
    banner: `// edgebus ${version}: ${file}, bundled by pkg-scripts/build.mjs from src/js/entries/${source}`,
  });
  await bundle.close();
}

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

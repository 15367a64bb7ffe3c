// Size report of the built package (pkg/): raw, gzip and brotli bytes of every .wasm and every
// JavaScript file it ships; fails when a .wasm is over the budget below (gzip, level 9 — what a
// server precompressing the file sends). Run after `node pkg-scripts/build.mjs`.
//
//   node pkg-scripts/size.mjs [--json]
//
// The budget and what takes the space: BENCHMARKS.md, "WebAssembly size".
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** Gzip bytes one .wasm may take. */
const WASM_GZIP_BUDGET = 122_500;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'pkg');

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

function measure(path) {
  const bytes = readFileSync(path);
  return {
    file: relative(pkg, path),
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length,
  };
}

if (!existsSync(join(pkg, 'package.json'))) {
  console.error('[size] pkg/ is not built: run `node pkg-scripts/build.mjs` first');
  process.exit(1);
}
const all = [...files(pkg)].sort();
const wasm = all.filter((f) => f.endsWith('.wasm')).map(measure);
const js = all.filter((f) => /\.(?:m|c)?js$/.test(f)).map(measure);
if (wasm.length === 0) {
  console.error('[size] no .wasm in pkg/');
  process.exit(1);
}
const over = wasm.filter((w) => w.gzip > WASM_GZIP_BUDGET);

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ budget: { wasmGzip: WASM_GZIP_BUDGET }, wasm, js }, null, 2));
} else {
  const kb = (n) => (n / 1024).toFixed(1).padStart(7) + ' KiB';
  const row = (m) => `${m.file.padEnd(34)} ${String(m.raw).padStart(8)} ${kb(m.raw)} ${String(m.gzip).padStart(7)} ${kb(m.gzip)} ${String(m.brotli).padStart(7)}`;
  const head = `${'file'.padEnd(34)} ${'raw B'.padStart(8)} ${''.padStart(11)} ${'gzip B'.padStart(7)} ${''.padStart(11)} ${'br B'.padStart(7)}`;
  console.log('WebAssembly');
  console.log(head);
  for (const m of wasm) console.log(row(m));
  console.log('\nJavaScript');
  console.log(head);
  for (const m of js) console.log(row(m));
  console.log(`\nbudget: each .wasm at most ${WASM_GZIP_BUDGET} bytes gzip (level 9)`);
}
if (over.length > 0) {
  for (const w of over) {
    console.error(`[size] ${w.file}: ${w.gzip} bytes gzip, over the budget of ${WASM_GZIP_BUDGET}`);
  }
  process.exit(1);
}

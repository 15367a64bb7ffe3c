// The packaging test matrix: the npm package as users of each toolchain get it. `npm pack pkg`, then
// each case generates a tiny app in a temporary directory, installs the tarball into it, builds or
// runs it with the toolchain versions pinned in tests/pack/package.json, and checks the result; the
// app is removed afterwards. Browser pages run in headless Chromium (result and no console errors).
//
//   node tests/pack/run.mjs [--only case,...] [--pkg DIR] [--jobs N] [--keep]
//
//   --only  run these cases (names as printed; a prefix such as `ts-` or `node` selects a group)
//   --pkg   the package directory to pack (default: pkg/, built by pkg-scripts/build.mjs)
//   --jobs  cases run at once (default 3; browsers share one Chromium)
//   --keep  keep the temporary apps (their path is printed)
//
// Prints one line per case (pass/fail, seconds); exits 1 after printing each failed case's output.
import { mkdtempSync, mkdirSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CASES } from './cases.mjs';
import { Context } from './support.mjs';

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    pkg: { type: 'string' },
    jobs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});

const root = resolve(import.meta.dirname, '..', '..');
const pkgDir = resolve(opts.pkg ?? join(root, 'pkg'));
if (!existsSync(join(pkgDir, 'package.json'))) {
  console.error(`pack: ${pkgDir} has no package.json: build the package first (node pkg-scripts/build.mjs)`);
  process.exit(2);
}
if (!existsSync(join(import.meta.dirname, 'node_modules', '.package-lock.json'))) {
  console.error('pack: the toolchains are not installed: bash pkg-scripts/setup.sh (or npm ci --prefix tests/pack)');
  process.exit(2);
}

let selected = CASES;
if (opts.only) {
  const wanted = opts.only.split(',').map((s) => s.trim()).filter(Boolean);
  selected = CASES.filter((c) => wanted.some((w) => c.name === w || c.name.startsWith(w)));
  const unknown = wanted.filter((w) => !CASES.some((c) => c.name === w || c.name.startsWith(w)));
  if (unknown.length > 0 || selected.length === 0) {
    console.error(`pack: unknown case ${unknown.join(', ')}; cases: ${CASES.map((c) => c.name).join(', ')}`);
    process.exit(2);
  }
}

const work = mkdtempSync(join(tmpdir(), 'edgebus-pack-'));
const ctx = new Context({ root, pkgDir, work });
const started = Date.now();
const failures = [];
let exitCode = 0;
try {
  await ctx.pack();
  console.log(`pack: ${ctx.tarballName} (${ctx.tarballKiB} KiB), ${selected.length} cases, ${opts.jobs} at once, in ${work}`);
  const queue = [...selected];
  const runOne = async (c) => {
    const t0 = Date.now();
    const log = [];
    const dir = join(work, c.name);
    mkdirSync(dir);
    let error;
    try {
      await withTimeout(c.run({ ctx, dir, log: (s) => log.push(String(s)) }), c.timeoutMs ?? 240_000, c.name);
    } catch (e) {
      error = e;
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
    console.log(`${error ? 'FAIL' : 'pass'} ${c.name.padEnd(16)} ${secs} s${error ? `  ${firstLine(error)}` : ''}`);
    if (error) failures.push({ name: c.name, error, log });
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  };
  const jobs = Math.max(1, Number(opts.jobs) || 1);
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    while (queue.length > 0) await runOne(queue.shift());
  }));
} catch (e) {
  failures.push({ name: 'pack', error: e, log: [] });
} finally {
  await ctx.close();
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
}

for (const f of failures) {
  console.log(`\n--- ${f.name} failed ---\n${f.error?.message ?? f.error}`);
  if (f.log.length > 0) console.log(`--- ${f.name} output ---\n${f.log.join('\n')}`);
}
const total = ((Date.now() - started) / 1000).toFixed(0);
console.log(`\n${selected.length - failures.length} passed, ${failures.length} failed`);
console.log(`pack: ${total} s${opts.keep ? `; apps kept in ${work} (${readdirSync(work).length} entries)` : ''}`);
if (failures.length > 0) exitCode = 1;
process.exit(exitCode);

function firstLine(e) {
  const line = String(e?.message ?? e).split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 110 ? `${line.slice(0, 107)}...` : line;
}

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name} did not finish within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

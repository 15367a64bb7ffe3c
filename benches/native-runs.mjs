// Runs the native criterion benchmarks several times and prints, per benchmark, the median of the
// runs' medians with min and max (BENCH.md: median of at least 5 runs, with min and max).
//
//   node benches/native-runs.mjs [--bench core|work_queue] [--runs 5] [--json FILE]
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const runs = Number(opt('--runs', 5));
const bench = opt('--bench', 'core');
const criterion = join(root, 'target', 'criterion');

function estimates() {
  const out = {};
  const walk = (dir, id) => {
    const est = join(dir, 'new', 'estimates.json');
    if (existsSync(est)) out[id] = JSON.parse(readFileSync(est, 'utf8')).median.point_estimate;
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (d.isDirectory() && d.name !== 'new' && d.name !== 'base' && d.name !== 'change' && d.name !== 'report') {
        walk(join(dir, d.name), id ? `${id}/${d.name}` : d.name);
      }
    }
  };
  if (existsSync(criterion)) walk(criterion, '');
  return out;
}

const seen = {};
for (let r = 0; r < runs; r++) {
  console.error(`[native] run ${r + 1}/${runs}`);
  execFileSync('cargo', ['bench', '--bench', bench, '--', '--warm-up-time', '1', '--measurement-time', '3', '--noplot'],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const [id, ns] of Object.entries(estimates())) (seen[id] ??= []).push(ns);
}
const fmt = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(3)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(1)} ns`);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
console.log('| benchmark | median of run medians | min | max |');
console.log('| --- | ---: | ---: | ---: |');
const rows = [];
for (const id of Object.keys(seen).sort()) {
  const xs = seen[id];
  rows.push({ id, median: med(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs.length });
  console.log(`| ${id} | ${fmt(med(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} |`);
}
const json = opt('--json', undefined);
if (json) {
  mkdirSync(dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2));
}

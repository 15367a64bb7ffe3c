// Node benchmarks: the scenarios of the benchmark page that run in any runtime (bench-web/src/scenarios/
// portable.js: the same code and the same engine; worker sharding has its own, benches/sharding/), plus what only Node has (node:events, the work-queue scenario), side by side in one
// process per group.
//
//   node benches/node/run.mjs [--quick] [--only id,id] [--json FILE]
//
// Method (bench-web/src/engine.js): all contenders of a scenario in one process, warm-up rounds,
// then measured rounds whose order rotates; per contender the median, min and max of the rounds and
// the ratio against the first contender computed per round (median). Every contender's first run
// must do the same work (same deliveries, same duplicates) or the run fails. Emit and churn
// scenarios run in two child processes, isolated (each library sees one handler) and shared (each
// library first used with five other handler functions); the rest run in a third, with
// --expose-gc for memory.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const quick = args.includes('--quick');
const size = quick ? 'small' : 'full';
// Measured in both modes, each group in processes of its own: what they measure is the library's
// call sites, which the other scenarios of a shared process (most of them edgebus's alone) would
// make polymorphic for some contenders and not others.
const TWO_MODES = [['exact', 'fanout'], ['churn', 'churn-publish']];
const EMIT = TWO_MODES.flat();

if (args.includes('--child')) await child();
else await parent();

async function child() {
  const mode = arg('--mode', 'isolated');
  const only = arg('--only', '').split(',').filter(Boolean);
  // The Node entry instantiates its module at import: watch for it so the memory scenario can
  // count WebAssembly memory (the browser page does the same around init()).
  const { noteWasmMemory } = await import('../../bench-web/src/wasm-memory.js');
  const Instance = WebAssembly.Instance;
  WebAssembly.Instance = new Proxy(Instance, {
    construct(target, argv, newTarget) {
      const instance = Reflect.construct(target, argv, newTarget);
      noteWasmMemory(instance.exports.memory);
      return instance;
    },
  });
  const { portableScenarios: scenarios } = await import('../../bench-web/src/scenarios/portable.js');
  WebAssembly.Instance = Instance;
  const { runScenario } = await import('../../bench-web/src/engine.js');
  const { asyncThroughput, nodeContenders, workQueue } = await import('./node-only.mjs');
  const list = [...scenarios, asyncThroughput, workQueue]
    .filter((sc) => only.includes(sc.id))
    .map((sc) => (nodeContenders[sc.id] ? { ...sc, contenders: [...sc.contenders, ...nodeContenders[sc.id]] } : sc));
  const ordered = [...list.filter((s) => s.runFirst), ...list.filter((s) => !s.runFirst)];
  const results = [];
  for (const sc of ordered) {
    process.stderr.write(`[bench] ${mode}: ${sc.number} ${sc.title}\n`);
    const r = await runScenario(sc, size, () => {}, { shared: mode === 'shared' });
    results.push({ ...r, mode });
  }
  process.stdout.write(JSON.stringify(results));
}

function runChild(mode, only) {
  return new Promise((resolve, reject) => {
    const argv = ['--expose-gc', fileURLToPath(import.meta.url), '--child', '--mode', mode, '--only', only.join(',')];
    if (quick) argv.push('--quick');
    const p = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`benchmark child (${mode}: ${only.join(',')}) exited with ${code}`));
      else resolve(JSON.parse(out));
    });
  });
}

async function parent() {
  const { portableScenarios: scenarios } = await import('../../bench-web/src/scenarios/portable.js');
  const { formatRatio, formatValue } = await import('../../bench-web/src/format.js');
  const wanted = arg('--only', undefined)?.split(',');
  const ids = [...scenarios.map((s) => s.id), 'async-throughput', 'work-queue']
    .filter((id) => !wanted || wanted.includes(id));
  const rest = ids.filter((id) => !EMIT.includes(id));
  const results = [];
  for (const group of TWO_MODES) {
    const emit = ids.filter((id) => group.includes(id));
    if (emit.length === 0) continue;
    results.push(...await runChild('isolated', emit));
    results.push(...await runChild('shared', emit));
  }
  if (rest.length > 0) results.push(...await runChild('isolated', rest));

  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.type()} ${os.release()}, Node ${process.version}`;
  const lines = [`# edgebus Node benchmarks (${size}; same scenarios and engine as the browser page)`, `machine: ${machine}`, ''];
  for (const r of results) {
    const mode = EMIT.includes(r.id) ? `, ${r.mode}` : '';
    if (r.skipped) {
      lines.push(`## ${r.number} ${r.title}${mode}: not measured (${r.skipped})`, '');
      continue;
    }
    for (const t of r.tables) {
      lines.push(`## ${r.number} ${r.title}${mode} — ${t.label} (${t.unit}; ${r.rounds} rounds after ${r.warmup} warm-up)`);
      lines.push(`| contender | median | min | max | ${t.ratioLabel} |`, '| --- | ---: | ---: | ---: | ---: |');
      for (const row of t.rows) {
        lines.push(`| ${row.contender} | ${formatValue(row.median, t.unit)} | ${formatValue(row.min, t.unit)} | ` +
          `${formatValue(row.max, t.unit)} | ${formatRatio(row.ratio)} |`);
      }
      lines.push('');
    }
  }
  console.log(lines.join('\n'));
  const out = arg('--json', undefined);
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({ machine, date: new Date().toISOString(), size, results }, null, 2));
  }
}

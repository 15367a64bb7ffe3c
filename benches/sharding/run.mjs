// Worker sharding benchmark in Node: a CPU-bound handler (~50 µs) on the main thread's Bus, on a
// ShardedBus with 1 and N workers, and on workerpool with the same workers running the same
// function, side by side in one process; then a trivial handler for the transport's own cost.
//
//   node benches/sharding/run.mjs [--quick] [--rounds N] [--json FILE]
import { Bus, ShardedBus } from 'edgebus';
import workerpool from 'workerpool';
import { availableParallelism, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cliOptions, calibrate, contenders, measure, table } from './harness.mjs';
import benchWork from './work.js';

const { quick, rounds, warmup, json } = cliOptions(process.argv.slice(2));
const cpus = availableParallelism();
const env = {
  Bus, ShardedBus, work: benchWork,
  handlers: new URL('./handlers.mjs', import.meta.url),
  workers: Math.max(2, cpus),
  defaultWorkers: new ShardedBus({ handlers: new URL('./handlers.mjs', import.meta.url) }),
  makePool: (n) => workerpool.pool(join(import.meta.dirname, 'workerpool-worker.cjs'), {
    minWorkers: n, maxWorkers: n, workerType: 'thread',
  }),
};
const defaultWorkers = env.defaultWorkers.workers;
await env.defaultWorkers.close();

// The machine's load before and after: another busy process takes a core from the workers.
const loadBefore = loadavg()[0];
const cal = calibrate(Bus, benchWork, 50);
console.log(`# Worker sharding, Node ${process.version}, ${cpus} CPUs; ShardedBus default workers here: ${defaultWorkers}`);
console.log(`calibrated: ${cal.iters} iterations ≈ ${cal.measuredUs.toFixed(1)} µs per message\n`);

const heavy = contenders(env, cal.iters);
const heavyRows = await measure(heavy.list, { count: quick ? 200 : 20_000, rounds, warmup, baseline: 'Bus (main thread)', settle: () => { globalThis.gc?.(); return new Promise((r) => setTimeout(r, 100)); } });
console.log(table('CPU-bound handler, ~50 µs per message', heavyRows) + '\n');

const trivial = contenders(env, 0);
const trivialRows = await measure(trivial.list, { count: quick ? 2_000 : 50_000, rounds, warmup, baseline: 'Bus (main thread)', settle: () => { globalThis.gc?.(); return new Promise((r) => setTimeout(r, 100)); } });
console.log(table('Trivial handler (transport cost)', trivialRows));

const loadAfter = loadavg()[0];
console.log(`\n1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`);

if (json) {
  mkdirSync(dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify({
    runtime: `node ${process.version}`, cpus, defaultWorkers, loadBefore, loadAfter, calibration: cal, rounds, warmup,
    heavy: heavyRows, trivial: trivialRows,
  }, null, 2) + '\n');
}

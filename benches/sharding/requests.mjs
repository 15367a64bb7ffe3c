// Request benchmark in Node: the same ~50 µs function called on workers and its result awaited on
// the main thread — `ShardedBus.request` (one handler subscribed in every worker), `workerpool.exec`
// and Comlink (one proxy per worker, calls spread over them in turn), each with N workers, side by
// side in one process, rounds interleaved (the method of harness.mjs). A run makes `count` calls at
// once and awaits every result. Then one call at a time: the round trip's latency.
//
//   node benches/sharding/requests.mjs [--quick] [--rounds N] [--json FILE]
import { Bus, ShardedBus } from 'edgebus';
import workerpool from 'workerpool';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Worker } from 'node:worker_threads';
import { availableParallelism, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cliOptions, calibrate, measure, formatRate } from './harness.mjs';
import benchWork from './work.js';

const { quick, rounds, warmup, json } = cliOptions(process.argv.slice(2));
const cpus = availableParallelism();
const workers = Math.max(2, cpus);
const loadBefore = loadavg()[0];
const cal = calibrate(Bus, benchWork, 50);
const payload = { iters: cal.iters };
let sink = 0;

const sharded = async () => {
  const bus = new ShardedBus({ workers, handlers: new URL('./handlers.mjs', import.meta.url), maxQueue: Infinity });
  await bus.ready;
  return {
    call: (i) => bus.request('work.reply', payload, { key: `k${i}`, timeoutMs: 600_000 }),
    close: () => bus.close(),
  };
};
const pooled = async () => {
  const pool = workerpool.pool(join(import.meta.dirname, 'workerpool-worker.cjs'), { minWorkers: workers, maxWorkers: workers, workerType: 'thread' });
  return { call: () => pool.exec('work', [payload.iters]), close: () => pool.terminate() };
};
const comlinked = async () => {
  const ws = Array.from({ length: workers }, () => new Worker(new URL('./comlink-worker.mjs', import.meta.url)));
  const apis = ws.map((w) => Comlink.wrap(nodeEndpoint(w)));
  await Promise.all(apis.map((a) => a.work(1)));
  return { call: (i) => apis[i % apis.length].work(payload.iters), close: () => Promise.all(ws.map((w) => w.terminate())) };
};

const makers = {
  [`ShardedBus.request, ${workers} workers`]: sharded,
  [`workerpool.exec, ${workers} workers`]: pooled,
  [`Comlink, ${workers} workers`]: comlinked,
};

/** Throughput: `count` calls at once, every result awaited. */
function concurrent(make) {
  return async (count) => {
    const c = await make();
    const run = (n) => {
      const all = new Array(n);
      for (let i = 0; i < n; i++) all[i] = c.call(i);
      return Promise.all(all).then((rs) => { for (const r of rs) sink ^= r; });
    };
    return { warm: () => run(Math.min(count, 500)), run: () => run(count), close: c.close };
  };
}

/** Latency: one call at a time. */
function sequential(make) {
  return async (count) => {
    const c = await make();
    const run = async (n) => {
      for (let i = 0; i < n; i++) sink ^= await c.call(i);
    };
    return { warm: () => run(Math.min(count, 200)), run: () => run(count), close: c.close };
  };
}

const baseline = `workerpool.exec, ${workers} workers`;
const settle = () => { globalThis.gc?.(); return new Promise((r) => setTimeout(r, 100)); };
const many = await measure(Object.fromEntries(Object.entries(makers).map(([n, m]) => [n, concurrent(m)])),
  { count: quick ? 200 : 20_000, rounds, warmup, baseline, settle });
const one = await measure(Object.fromEntries(Object.entries(makers).map(([n, m]) => [n, sequential(m)])),
  { count: quick ? 50 : 2_000, rounds, warmup, baseline, settle });
const loadAfter = loadavg()[0];

function print(title, rows) {
  const lines = [`### ${title}`, '', `| contender | median calls/s | min | max | ÷ ${baseline} |`, '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) lines.push(`| ${r.name} | ${formatRate(r.median)} | ${formatRate(r.min)} | ${formatRate(r.max)} | ${r.ratio.toFixed(2)}x |`);
  return lines.join('\n');
}
console.log(`# Requests to workers, Node ${process.version}, ${cpus} CPUs; calibrated: ${cal.iters} iterations ≈ ${cal.measuredUs.toFixed(1)} µs per call\n`);
console.log(print(`${quick ? 200 : 20_000} calls at once, every result awaited`, many) + '\n');
console.log(print('one call at a time (round trip)', one));
console.log(`\n1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (sink ${sink & 1})`);

if (json) {
  mkdirSync(dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify({ runtime: `node ${process.version}`, cpus, workers, calibration: cal, rounds, warmup, loadBefore, loadAfter, many, one }, null, 2) + '\n');
}

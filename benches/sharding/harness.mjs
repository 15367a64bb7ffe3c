// The sharding benchmark's method, shared by Node (run.mjs) and the browser page (page.mjs).
// Every round runs each contender once on the same messages, in a rotating order, after warm-up
// rounds; we report the median, min and max messages/s and, per round, each contender's rate
// relative to the single-threaded Bus (median of the per-round ratios).

/**
 * The command line shared by the Node runners: `[--quick] [--rounds N] [--json FILE]` (a quick
 * run is one round without warm-up).
 */
export function cliOptions(argv) {
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  return { quick, rounds: Number(arg('--rounds') ?? (quick ? 1 : 5)), warmup: quick ? 0 : 1, json: arg('--json') };
}

/**
 * Iterations of the work function making one delivery through a main-thread Bus take about `us`
 * microseconds (after JIT warm-up): calibrated on the path the baseline measures, so "50 µs" means
 * the same thing in every runtime. Medians of 5 samples resist a moment of load on the machine.
 */
export function calibrate(Bus, work, us) {
  let x = 0;
  const bus = new Bus();
  bus.subscribe('calibrate', (p) => { x ^= work(p.iters); });
  const timeEach = (iters, calls) => {
    const payload = { iters };
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) bus.publish('calibrate', payload);
    return ((performance.now() - t0) * 1000) / calls;
  };
  const sample = (iters, calls) => median(Array.from({ length: 5 }, () => timeEach(iters, calls)));
  for (let i = 0; i < 3; i++) timeEach(20_000, 200); // warm-up
  let iters = 20_000;
  for (let i = 0; i < 8; i++) {
    const each = sample(iters, 100);
    iters = Math.max(1, Math.round((iters * us) / each));
    if (Math.abs(each - us) / us < 0.02) break;
  }
  return { iters, measuredUs: sample(iters, 400), sink: x };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * contenders: { name: async (count) => ({ run, warm, close }) } where run() publishes `count`
 * messages and resolves when all are handled. Every contender is set up once (workers started) and
 * warmed, then each round times one run of each, in a rotating order; before each timed run,
 * `settle()` lets the previous one's background work (garbage collection) finish, so contenders do
 * not pay for each other. `baseline` names the contender ratios are taken against.
 */
export async function measure(contenders, { count, rounds, warmup, baseline, settle }) {
  const names = Object.keys(contenders);
  const runs = {};
  for (const n of names) {
    runs[n] = await contenders[n](count);
    if (runs[n].warm) await runs[n].warm();
  }
  const rates = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < warmup + rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const n of order) {
      if (settle) await settle();
      const t0 = performance.now();
      await runs[n].run();
      const ms = performance.now() - t0;
      if (r >= warmup) rates[n].push((count / ms) * 1000);
    }
  }
  for (const n of names) if (runs[n].close) await runs[n].close();
  return names.map((n) => ({
    name: n,
    median: median(rates[n]),
    min: Math.min(...rates[n]),
    max: Math.max(...rates[n]),
    ratio: median(rates[n].map((x, i) => x / rates[baseline][i])),
    rounds: rates[n].length,
  }));
}

export function formatRate(x) {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

export function table(title, rows) {
  const lines = [`### ${title} (messages/s)`, '', '| contender | median | min | max | ÷ Bus (main thread) |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${formatRate(r.median)} | ${formatRate(r.min)} | ${formatRate(r.max)} | ${r.ratio.toFixed(2)}x |`);
  }
  return lines.join('\n');
}

/**
 * The contenders, the same in Node and in the browser. env: { Bus, ShardedBus, handlers (URL),
 * work, makePool(workers) → workerpool pool, workers (N), defaultWorkers }.
 */
export function contenders(env, iters) {
  const payload = { iters };
  let sink = 0;
  const keys = (count) => Array.from({ length: count }, (_, i) => `order-${i}`);
  const sharded = (workers) => async (count) => {
    const bus = new env.ShardedBus({ workers, handlers: env.handlers, maxQueue: Infinity });
    await bus.ready;
    const ks = keys(count);
    const run = (n) => {
      for (let i = 0; i < n; i++) bus.publish('work', payload, { key: ks[i] });
      return bus.drain();
    };
    return { warm: () => run(Math.min(count, 500)), run: () => run(count), close: () => bus.close() };
  };
  const pooled = (workers) => async (count) => {
    const pool = env.makePool(workers);
    const run = (n) => {
      const all = new Array(n);
      for (let i = 0; i < n; i++) all[i] = pool.exec('work', [iters]);
      return Promise.all(all).then((rs) => { for (const r of rs) sink ^= r; });
    };
    return { warm: () => run(Math.min(count, 500)), run: () => run(count), close: () => pool.terminate() };
  };
  const list = {
    'Bus (main thread)': async (count) => {
      const bus = new env.Bus();
      bus.subscribe('work', (p) => { sink ^= env.work(p.iters); });
      const run = (n) => {
        for (let i = 0; i < n; i++) bus.publish('work', payload);
        return Promise.resolve();
      };
      return { warm: () => run(Math.min(count, 500)), run: () => run(count), close: () => bus.close() };
    },
    'ShardedBus, 1 worker': sharded(1),
  };
  list[`ShardedBus, ${env.workers} workers`] = sharded(env.workers);
  list[`workerpool, ${env.workers} workers`] = pooled(env.workers);
  list['workerpool, 1 worker'] = pooled(1);
  return { list, sink: () => sink };
}

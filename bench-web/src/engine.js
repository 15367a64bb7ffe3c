// Runs scenarios the way ../shared/BENCH.md asks: all contenders of a scenario side by side in this
// page, warm-up rounds first, then measured rounds whose order rotates; per contender the median,
// min and max of the rounds, and the ratio against the first contender computed per round (median).

/** Rounds per size (a scenario may ask for other counts of measured rounds). */
export const SIZES = {
  full: { warmup: 2, rounds: 7, minMs: 25 },
  small: { warmup: 1, rounds: 2, minMs: 2 },
};

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Lets the page paint and handle input between runs. */
const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

/** The tables one scenario produces: one per metric (throughput scenarios have one, `rate`). */
export function metricsOf(sc) {
  return sc.metrics ?? [{ key: 'rate', label: sc.unit, unit: sc.unit, better: 'higher' }];
}

/**
 * Runs one scenario; `progress({ contender, round, rounds, warmup })` is called before each run.
 * `shared: true` asks the emit scenarios for their shared mode (each library first used with five
 * other handlers; see scenarios/common.js). Resolves with `{ id, number, title, note, tables:
 * [{ metric, unit, better, ratioLabel, rows }] }` or, when the runtime cannot measure it,
 * `{ ..., skipped: reason }`.
 */
export async function runScenario(sc, size, progress = () => {}, { shared = false } = {}) {
  const head = { id: sc.id, number: sc.number, title: sc.title, note: sc.note };
  const why = sc.unavailable?.();
  if (why) return { ...head, skipped: why, tables: [] };
  const plan = SIZES[size];
  const rounds = size === 'full' ? sc.rounds?.full ?? plan.rounds : plan.rounds;
  const params = { ...sc.sizes[size], shared };
  const metrics = metricsOf(sc);
  const timed = !sc.metrics;
  const names = sc.contenders.map((c) => c.name);
  const instances = [];
  try {
    for (const c of sc.contenders) instances.push(await c.setup(params));
    const samples = names.map(() => Object.fromEntries(metrics.map((m) => [m.key, []])));
    const details = names.map(() => ({}));
    const firstCount = new Map();
    for (let r = 0; r < plan.warmup + rounds; r++) {
      for (let k = 0; k < names.length; k++) {
        const i = (k + r) % names.length;
        progress({ contender: names[i], round: r, rounds: plan.warmup + rounds, warmup: plan.warmup });
        await breathe();
        const inst = instances[i];
        let values;
        if (timed) {
          let calls = 0;
          const t0 = performance.now();
          let elapsed = 0;
          do {
            const count = await inst.run();
            // The very first call of each contender is the one compared: later calls may see other
            // inputs (the unique-topic scenario moves on through its pool).
            if (!firstCount.has(i)) firstCount.set(i, count);
            calls++;
            elapsed = performance.now() - t0;
          } while (elapsed < plan.minMs);
          values = { rate: (inst.work * calls) / (elapsed / 1000) };
        } else {
          values = await inst.run();
        }
        if (r >= plan.warmup) {
          for (const m of metrics) samples[i][m.key].push(values[m.key]);
          for (const d of sc.details ?? []) (details[i][d.key] ??= []).push(values[d.key]);
        }
      }
    }
    if (timed) checkSameWork(sc, names, firstCount);
    const tables = metrics.map((m) => table(m, names, samples.map((s) => s[m.key]), sc));
    for (const d of sc.details ?? []) {
      tables[0].rows.forEach((row, i) => {
        if (details[i][d.key]?.some((x) => x > 0)) (row.details ??= []).push({ label: d.label, median: median(details[i][d.key]) });
      });
    }
    return { ...head, rounds, warmup: plan.warmup, params, tables };
  } finally {
    for (const inst of instances) await inst.teardown?.();
    // What the scenario kept for all its contenders (inputs made once) is let go, so that it does
    // not weigh on the garbage collector during the scenarios after it.
    await sc.done?.();
  }
}

/** Every contender must have done the same work on its first call (same deliveries, same duplicates). */
function checkSameWork(sc, names, firstCount) {
  const expected = firstCount.get(0);
  if (!(expected > 0)) throw new Error(`${sc.number} ${sc.title}: ${names[0]} counted ${expected} on its first run`);
  for (const [i, count] of firstCount) {
    if (count !== expected) {
      throw new Error(`${sc.number} ${sc.title}: ${names[i]} counted ${count} where ${names[0]} counted ` +
        `${expected}; the contenders did not do the same work`);
    }
  }
}

function table(metric, names, series, sc) {
  const base = series[0];
  const higher = metric.better === 'higher';
  const rows = names.map((name, i) => {
    const xs = series[i];
    const ratios = xs.map((x, r) => (higher ? base[r] / x : x / base[r]));
    return {
      contender: name,
      code: sc.contenders[i].code,
      median: median(xs),
      min: Math.min(...xs),
      max: Math.max(...xs),
      ratio: i === 0 ? 1 : median(ratios),
      samples: xs,
    };
  });
  return {
    metric: metric.key,
    label: metric.label,
    unit: metric.unit,
    better: metric.better,
    ratioLabel: higher ? `${names[0]} ÷ this` : `this ÷ ${names[0]}`,
    rows,
  };
}

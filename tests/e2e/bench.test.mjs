// The benchmark page at small size, used as a person would: choose the size, press Run, wait, and
// check that every scenario shows a table whose every row has a number, and a chart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser } from './support/browser.mjs';

const SCENARIOS = {
  exact: ['edgebus', 'EventEmitter3', 'mitt', 'nanoevents', 'tseep', 'PubSubJS'],
  fanout: ['edgebus', 'EventEmitter3', 'mitt', 'nanoevents', 'tseep', 'PubSubJS'],
  wildcards: ['edgebus', 'EventEmitter2', 'qlobber', 'qlobber + Map memo'],
  'wildcards-unique': ['edgebus', 'EventEmitter2', 'qlobber'],
  'wildcards-hierarchical': ['edgebus', 'EventEmitter2', 'PubSubJS'],
  dedupe: ['edgebus', 'lru-cache', 'Set + ring'],
  'dedupe-publish': ['edgebus', 'lru-cache + EventEmitter3'],
  batch: ['publishBatch', 'publish ×1000'],
  'batch-busy': ['publishBatch + drain', 'publish ×1000 + drain'],
  'async-latency': ['edgebus, concurrency 1', 'edgebus, concurrency 16'],
  memory: ['edgebus', 'EventEmitter3', 'mitt', 'nanoevents', 'PubSubJS', 'EventEmitter2'],
  'memory-100k': ['edgebus', 'EventEmitter3', 'mitt', 'nanoevents', 'PubSubJS', 'EventEmitter2'],
  // N: the page's logical cores, at least 2 (filled in once the page is open).
  sharding: (n) => ['Bus (main thread)', 'ShardedBus, 1 worker', `ShardedBus, ${n} workers`, 'workerpool, 1 worker', `workerpool, ${n} workers`],
  churn: ['edgebus', 'EventEmitter3', 'nanoevents'],
  'churn-publish': ['edgebus', 'EventEmitter3', 'nanoevents'],
};

let b, page, problems;
before(async () => {
  b = await startBrowser();
  ({ page, problems } = await b.open('/bench/'));
  const n = Math.max(2, await page.evaluate(() => navigator.hardwareConcurrency));
  SCENARIOS.sharding = SCENARIOS.sharding(n);
});
after(async () => { await b?.close(); });

test('runs every scenario at small size, showing progress, then a table and a chart each', async () => {
  await page.selectOption('#size', 'small');
  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state === 'running');
  // Progress is visible while it runs.
  await page.waitForFunction(() => /Scenario \d+ of \d+/.test(document.getElementById('status').textContent));
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout: 15 * 60_000 });
  const { state, error } = await page.evaluate(() => window.edgebusBench);
  assert.equal(state, 'done', error);
  assert.equal(await page.getAttribute('#progress-bar', 'aria-valuenow'), '100');

  const shown = await page.$$eval('section.scenario', (els) => els.map((e) => [e.dataset.scenario, e.dataset.state]));
  assert.deepEqual(shown, Object.keys(SCENARIOS).map((id) => [id, 'done']));

  for (const [id, contenders] of Object.entries(SCENARIOS)) {
    const tables = await page.$$eval(`section[data-scenario="${id}"] table.results`, (ts) => ts.map((t) =>
      [...t.querySelectorAll('tbody tr')].map((tr) => ({
        contender: tr.dataset.contender,
        median: tr.querySelector('[data-col="median"]').dataset.value,
        shown: tr.querySelector('[data-col="median"]').textContent,
        ratio: tr.querySelector('[data-col="ratio"]').textContent,
      }))));
    assert.ok(tables.length >= 1, `${id}: no table`);
    for (const rows of tables) {
      assert.deepEqual(rows.map((r) => r.contender), contenders, `${id}: contenders`);
      for (const r of rows) {
        const x = Number(r.median);
        assert.ok(Number.isFinite(x) && x >= 0, `${id} / ${r.contender}: median ${r.median}`);
        if (id !== 'async-latency') assert.ok(x > 0, `${id} / ${r.contender}: median ${r.median}`);
        assert.match(r.shown, /\d/, `${id} / ${r.contender}: shown ${r.shown}`);
      }
      assert.equal(rows[0].ratio, '1.00x');
    }
    const bars = await page.$$eval(`section[data-scenario="${id}"] svg.chart rect.bar`, (els) => els.length);
    assert.equal(bars, contenders.length * tables.length, `${id}: one bar per row`);
  }

  const env = await page.textContent('#env');
  assert.match(env, /Chrom\w* \d+/);
  assert.match(env, /\d+ logical cores/);
  assert.match(env, /\d{4}-\d{2}-\d{2}/);
  await b.screenshot(page, 'bench-small');
});

test('the results object carries the same scenarios for the headless runner', async () => {
  const results = await page.evaluate(() => window.edgebusBench.results);
  assert.deepEqual(results.scenarios.map((s) => s.id), Object.keys(SCENARIOS));
  assert.equal(results.environment.size, 'small');
  assert.equal(typeof results.environment.cores, 'number');
});

test('no console errors', () => {
  assert.deepEqual(problems, []);
});

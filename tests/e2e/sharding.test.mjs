// The worker-sharding demo, used as a person would: choose the workers and the load, press Start,
// watch the worker bars, and read the per-key rows the page shows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser } from './support/browser.mjs';

let b, page, problems;
before(async () => {
  b = await startBrowser();
  ({ page, problems } = await b.open('/#sharding'));
});
after(async () => { await b?.close(); });

const shards = () => page.$$eval('#shard-list [data-shard]', (els) => els.map((e) => ({
  shard: Number(e.dataset.shard), done: Number(e.dataset.done), total: Number(e.dataset.total),
  bar: Number(e.querySelector('[role="progressbar"]').getAttribute('aria-valuenow')),
})));

const keyRows = () => page.$$eval('#shard-keys-body tr', (rows) => rows.map((r) => ({
  key: r.dataset.key, seen: Number(r.dataset.seen), seqs: r.dataset.seqs, inOrder: r.dataset.inOrder,
  worker: r.dataset.worker, shownWorker: r.querySelector('[data-col="worker"]').textContent,
  order: r.querySelector('[data-col="order"]').textContent,
})));

async function startLoad({ workers, keys, perKey, workMs }) {
  await page.fill('#shard-workers', String(workers));
  await page.fill('#shard-keys', String(keys));
  await page.fill('#shard-per-key', String(perKey));
  await page.fill('#shard-work-ms', String(workMs));
  await page.click('#shard-start');
}

test('the page is cross-origin isolated, so the demo can run', async () => {
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.equal(await page.$('#shard-unavailable'), null);
});

test('two workers: every worker progresses to 100 %, and every key ran in order in one worker', async () => {
  const workers = 2, keys = 8, perKey = 30;
  await startLoad({ workers, keys, perKey, workMs: 4 });
  // While it runs: one bar per worker, and some messages already handled before the end.
  await page.waitForFunction(() => document.getElementById('shard-list').dataset.state === 'running');
  assert.equal((await shards()).length, workers);
  await page.waitForFunction(() => document.getElementById('shard-list').dataset.state === 'done', null, { timeout: 120_000 });

  const end = await shards();
  assert.equal(end.length, workers);
  for (const s of end) {
    assert.ok(s.done > 0, `worker ${s.shard} handled nothing`);
    assert.equal(s.done, s.total, `worker ${s.shard}: ${s.done} of ${s.total}`);
    assert.equal(s.bar, 100, `worker ${s.shard}: bar at ${s.bar} %`);
  }
  assert.equal(end.reduce((n, s) => n + s.done, 0), keys * perKey);

  const rows = await keyRows();
  assert.equal(rows.length, keys);
  const expected = Array.from({ length: perKey }, (_, i) => i).join(' ');
  const byWorker = new Map();
  for (const r of rows) {
    assert.equal(r.seen, perKey, `${r.key}: handled ${r.seen}`);
    assert.equal(r.seqs, expected, `${r.key}: ran as ${r.seqs}`);
    assert.equal(r.inOrder, 'true', r.key);
    assert.equal(r.order, '✓ all in order', r.key);
    assert.match(r.worker, /^\d+$/, `${r.key}: ran in ${r.worker}`);
    assert.equal(r.shownWorker, `worker ${r.worker}`);
    byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + r.seen);
  }
  // What the handlers recorded per worker agrees with what bus.stats() counted per worker.
  for (const s of end) assert.equal(byWorker.get(String(s.shard)) ?? 0, s.done, `worker ${s.shard}`);
  assert.match(await page.textContent('#shard-status'), new RegExp(`^Done: ${keys * perKey} messages`));
  await b.screenshot(page, 'www-sharding');
});

test('Stop terminates the workers and says how many messages were left', async () => {
  await startLoad({ workers: 2, keys: 4, perKey: 200, workMs: 10 });
  // This run's messages are out (the worker bars of the run before are replaced by then: a bar of
  // that run with its count above 0 would otherwise let Stop be pressed while this one starts).
  await page.waitForFunction(() => document.querySelector('#shard-status')?.textContent.startsWith('Published 800 messages'));
  await page.waitForFunction(() => Number(document.querySelector('#shard-list [data-shard]')?.dataset.done) > 0);
  await page.click('#shard-stop');
  const status = await page.textContent('#shard-status');
  const m = /terminated with (\d+) messages? not handled/.exec(status);
  assert.ok(m, status);
  const left = Number(m[1]);
  const handled = (await shards()).reduce((n, s) => n + s.done, 0);
  assert.ok(left > 0 && left + handled === 800, `handled ${handled}, left ${left}`);
  assert.equal(await page.isDisabled('#shard-start'), false);
  // What ran before the stop still ran in order.
  for (const r of await keyRows()) assert.equal(r.inOrder, 'true', `${r.key}: ${r.seqs}`);
});

test('no console errors', () => {
  assert.deepEqual(problems, []);
});

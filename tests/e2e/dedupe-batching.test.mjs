// The dedupe and batching view, used as a person would: send bursts, resend them, flush, and read
// the counters and the batch timeline the page shows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser } from './support/browser.mjs';

let b, page, problems;
before(async () => {
  b = await startBrowser();
  ({ page, problems } = await b.open('/#dedupe-batching'));
});
after(async () => { await b?.close(); });

const counts = () => page.$$eval('[data-count]', (els) => Object.fromEntries(els.map((e) => [e.dataset.count, Number(e.textContent)])));

/** Waits until the shown counters include `expected`. */
async function waitForCounts(expected) {
  await page.waitForFunction((exp) => Object.entries(exp).every(([k, v]) =>
    Number(document.querySelector(`[data-count="${k}"]`)?.textContent) === v), expected);
  return counts();
}

async function applyPolicy(maxSize, maxWaitMs) {
  await page.fill('#batch-max-size', String(maxSize));
  await page.fill('#batch-max-wait', String(maxWaitMs));
  await page.click('#apply-policy');
  await waitForCounts({ in: 0, batches: 0 });
}

test('a burst of new ids: all accepted, flushed as two full batches and one on time', async () => {
  await applyPolicy(10, 300);
  await page.click('#send-new');
  const now = await counts();
  assert.equal(now.in, 25);
  assert.equal(now.accepted, 25);
  assert.equal(now.duplicates, 0);
  const done = await waitForCounts({ batches: 3 });
  assert.equal(done.size, 2);
  assert.equal(done.time, 1);
  assert.equal(done.flush, 0);
  assert.equal(done.delivered, 25);
  assert.equal(done.waiting, 0);
  const bars = await page.$$eval('#batch-timeline .batch', (els) => els.map((e) => [Number(e.dataset.size), e.dataset.reason]));
  assert.deepEqual(bars, [[10, 'size'], [10, 'size'], [5, 'time']]);
});

test('resending the same ids: every one dropped as a duplicate, nothing new delivered', async () => {
  await page.click('#send-again');
  const now = await counts();
  assert.equal(now.in, 50);
  assert.equal(now.duplicates, 25);
  assert.equal(now.accepted, 25);
  assert.equal(now.waiting, 0);
  assert.equal(now.delivered, 25);
});

test('"Flush now" delivers a partial batch before its time', async () => {
  await applyPolicy(10, 10_000);
  await page.click('#send-one');
  await page.click('#send-one');
  await page.click('#send-one');
  const waiting = await counts();
  assert.equal(waiting.waiting, 3);
  assert.equal(waiting.batches, 0);
  await page.click('#flush');
  const done = await waitForCounts({ batches: 1 });
  assert.equal(done.flush, 1);
  assert.equal(done.delivered, 3);
  assert.equal(done.waiting, 0);
  const bars = await page.$$eval('#batch-timeline .batch', (els) => els.map((e) => [Number(e.dataset.size), e.dataset.reason]));
  assert.deepEqual(bars, [[3, 'flush']]);
});

test('the stream sends a mix of new and repeated ids, and every message is accounted for', async () => {
  await applyPolicy(10, 200);
  await page.click('#stream');
  await page.waitForFunction(() => Number(document.querySelector('[data-count="duplicates"]').textContent) > 0 &&
    Number(document.querySelector('[data-count="batches"]').textContent) > 0, null, { timeout: 120_000 });
  await page.click('#stream');
  assert.equal(await page.getAttribute('#stream', 'aria-pressed'), 'false');
  // Once the last partial batch has flushed, in = accepted + duplicates and delivered = accepted.
  await page.waitForFunction(() => document.querySelector('[data-count="waiting"]').textContent === '0', null, { timeout: 60_000 });
  const c = await counts();
  assert.equal(c.in, c.accepted + c.duplicates);
  assert.equal(c.delivered, c.accepted);
  assert.equal(c.batches, c.size + c.time);
  await b.screenshot(page, 'www-dedupe-batching');
});

test('no console errors', () => {
  assert.deepEqual(problems, []);
});

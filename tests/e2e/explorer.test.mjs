// The topic explorer, used as a person would: publish topics, add and remove subscriptions, and
// check which subscriptions the page says received each topic.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser } from './support/browser.mjs';

let b, page, problems;
before(async () => {
  b = await startBrowser();
  ({ page, problems } = await b.open('/'));
});
after(async () => { await b?.close(); });

async function publish(topic) {
  await page.fill('#topic-input', topic);
  await page.click('#publish');
}

async function receivedBy(topic) {
  await publish(topic);
  await page.waitForFunction((t) => document.querySelector('#match-summary code')?.textContent === t, topic);
  return page.$$eval('#match-results li.match[data-received="true"]', (els) => els.map((e) => e.dataset.pattern).sort());
}

const sorted = (xs) => [...xs].sort();

test('the preset subscriptions are listed', async () => {
  const patterns = await page.$$eval('.sub-list li', (els) => els.map((e) => e.dataset.pattern));
  assert.deepEqual(patterns, ['orders.eu.created', 'orders.*.created', 'orders.>', '*.eu.>', '>', '*.*', '$errors']);
});

test('a topic reaches exactly the subscriptions whose patterns match it', async () => {
  assert.deepEqual(await receivedBy('orders.eu.created'),
    sorted(['orders.eu.created', 'orders.*.created', 'orders.>', '*.eu.>', '>']));
  assert.deepEqual(await receivedBy('orders.us.west.created'), sorted(['orders.>', '>']));
  assert.deepEqual(await receivedBy('billing.eu'), sorted(['*.*', '>']));
  assert.deepEqual(await receivedBy('orders'), sorted(['>']));
});

test('$ topics: leading wildcards do not receive them, the literal pattern does', async () => {
  assert.deepEqual(await receivedBy('$errors'), ['$errors']);
  const why = await page.textContent('#match-results li.match[data-pattern=">"] .reason');
  assert.match(why, /reserved for the system/);
  assert.deepEqual(await receivedBy('$dead.jobs'), []);
  const starStar = await page.textContent('#match-results li.match[data-pattern="*.*"] .reason');
  assert.match(starStar, /starts with \$/);
});

test('each verdict comes with its token-by-token explanation', async () => {
  await receivedBy('orders.eu.created');
  const steps = await page.$$eval('#match-results li.match[data-pattern="orders.*.created"] .steps li',
    (els) => els.map((e) => [e.querySelector('.p').textContent, e.querySelector('.t').textContent, e.className]));
  assert.deepEqual(steps, [['orders', 'orders', 'ok'], ['*', 'eu', 'ok'], ['created', 'created', 'ok']]);
  await receivedBy('orders.us.west.created');
  const extra = await page.textContent('#match-results li.match[data-pattern="orders.*.created"] .reason');
  assert.match(extra, /Token 3: “created” is not “west”/);
  const gt = await page.$$eval('#match-results li.match[data-pattern="orders.>"] .steps li .t', (els) => els.map((e) => e.textContent));
  assert.deepEqual(gt, ['orders', 'us.west.created']);
});

test('an invalid topic shows the library\'s error code and message, and publishes nothing', async () => {
  await publish('orders..created');
  await page.waitForSelector('#topic-error:not([hidden])');
  assert.match(await page.textContent('#topic-error'), /^INVALID_TOPIC: .+/);
  assert.equal(await page.$$eval('#match-results li.match', (els) => els.length), 0);
  await publish('orders.*');
  assert.match(await page.textContent('#topic-error'), /^INVALID_TOPIC: .+/);
  await receivedBy('orders.eu.created');
  assert.equal(await page.isHidden('#topic-error'), true);
});

test('subscribing: an invalid pattern is refused with its code; a valid one starts receiving', async () => {
  await page.fill('#pattern-input', 'orders.>.eu');
  await page.click('#subscribe');
  await page.waitForSelector('#pattern-error:not([hidden])');
  assert.match(await page.textContent('#pattern-error'), /^INVALID_PATTERN: .+/);

  await page.fill('#pattern-input', 'orders.*.shipped');
  await page.click('#subscribe');
  await page.waitForSelector('.sub-list li[data-pattern="orders.*.shipped"]');
  assert.deepEqual(await receivedBy('orders.eu.shipped'), sorted(['orders.*.shipped', 'orders.>', '*.eu.>', '>']));
});

test('unsubscribing stops deliveries to that subscription', async () => {
  await page.click('.sub-list li[data-pattern=">"] button');
  await page.waitForSelector('.sub-list li[data-pattern=">"]', { state: 'detached' });
  assert.deepEqual(await receivedBy('billing.eu'), ['*.*']);
  assert.deepEqual(await receivedBy('orders'), []);
});

test('no console errors, and a screenshot', async () => {
  await receivedBy('orders.eu.created');
  await b.screenshot(page, 'www');
  const { page: narrow, problems: narrowProblems } = await b.open('/', { width: 390, height: 844 });
  await b.screenshot(narrow, 'www-narrow');
  assert.deepEqual([...problems, ...narrowProblems], []);
});

// The persistent outbox in headless Chromium: a page with `persist: 'indexeddb'` publishes while
// the deployment is killed (SIGKILL), is reloaded before the deployment is back, and the reloaded
// page (same `persistName`) sends what the earlier one left once the deployment restarts. A Node
// consumer on a work queue (durable) receives every message once, and the hub's counters show
// each stored and acknowledged once. No console errors, no uncaught page errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { connect } from 'edgebus';
import { recordProblems, serve, CHROMIUM } from '../browser/server.mjs';
import { EdgeServer } from './support/server.mjs';

const root = join(import.meta.dirname, '..', '..');
const server = new EdgeServer();
const until = async (cond) => { while (!(await cond())) await new Promise((r) => setTimeout(r, 20)); };
let files;
let browser;
let page;
const problems = [];

async function load() {
  await page.goto(`${files.url}/tests/edge/browser/outbox.html`);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: 30_000 });
}

before(async () => {
  await server.start();
  files = await serve(root);
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage();
  recordProblems(page, problems);
  await load();
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await files?.close();
  await server.dispose();
});

test('browser: publishes made while the deployment is down survive a page reload and are delivered once', { timeout: 240_000 }, async () => {
  const token = await server.token();
  const name = 'outbox-test-app';
  const jobs = [];
  const consumer = connect(server.url, { token, reconnect: { initialMs: 50, maxMs: 400 }, connectTimeoutMs: 2000 });
  const work = consumer.subscribe('pg.jobs', (payload, msg) => { jobs.push(msg.id); }, { group: 'pg' });
  await work.ready;

  // Online: stored, sent, acknowledged, deleted.
  await page.evaluate(({ url, t, n }) => window.outbox.connect(url, t, n), { url: server.url, t: token, n: name });
  await page.evaluate(() => window.outbox.ready());
  assert.deepEqual(await page.evaluate(() => window.outbox.publish(['on-0', 'on-1'])), [true, true]);
  await page.evaluate(() => window.outbox.flush());
  assert.deepEqual(await page.evaluate((n) => window.outbox.waitStored(n, 0), name), []);

  // The deployment crashes; the page publishes, and its outbox has them.
  await page.evaluate(() => window.outbox.networkDown());
  await server.kill();
  await page.evaluate(() => window.outbox.waitOffline());
  const offline = ['off-0', 'off-1', 'off-2', 'off-3', 'off-4'];
  assert.deepEqual(await page.evaluate((ids) => window.outbox.publish(ids), offline), offline.map(() => true));
  assert.deepEqual(await page.evaluate(({ n, k }) => window.outbox.waitStored(n, k), { n: name, k: 5 }), offline);

  // Reloaded before the deployment is back: the new page restores them, and publishes one more.
  await load();
  await page.evaluate(({ url, t, n }) => window.outbox.connect(url, t, n, { offline: true }), { url: server.url, t: token, n: name });
  await until(() => page.evaluate(() => window.outbox.stats().restored === 5));
  assert.deepEqual(await page.evaluate(() => window.outbox.publish(['after-reload'])), [true]);
  assert.deepEqual(await page.evaluate(({ n, k }) => window.outbox.waitStored(n, k), { n: name, k: 6 }), [...offline, 'after-reload']);

  await server.start();
  await page.evaluate(() => window.outbox.networkUp());
  await page.evaluate(() => window.outbox.flush());
  const stats = await page.evaluate(() => window.outbox.stats());
  assert.deepEqual([stats.restored, stats.acknowledged, stats.persistFailed, stats.buffered], [5, 6, 0, 0]);
  assert.deepEqual(await page.evaluate((n) => window.outbox.waitStored(n, 0), name), []);
  assert.equal(await page.evaluate(({ url, t }) => window.outbox.other(url, t), { url: server.url, t: token }), 0, 'another persistName shares nothing');
  assert.deepEqual(await page.evaluate(() => window.outbox.close()), []);
  // The closed client let its database go: another tab could upgrade or delete it at once.
  assert.equal(await page.evaluate((n) => window.outbox.deletable(n), name), 'deleted');

  const all = ['on-0', 'on-1', ...offline, 'after-reload'];
  await until(() => jobs.length >= all.length);
  assert.deepEqual([...jobs].sort(), [...all].sort());
  await until(() => consumer.stats().unacknowledged === 0);
  let g;
  do g = (await server.stats()).perHub.flatMap((h) => h.groups).find((x) => x.group === 'pg'); while (g.stored !== 0);
  assert.equal(g.done, all.length, 'each message stored and acknowledged once');
  assert.deepEqual(await consumer.close(), { remaining: [] });
});

test('browser: no client errors, no console errors, no uncaught page errors', async () => {
  assert.deepEqual(await page.evaluate(() => window.outbox.errors), []);
  assert.deepEqual(problems, []);
});

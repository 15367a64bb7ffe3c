// The package's client in headless Chromium: a page served on localhost imports the web entry,
// `await init()`, `connect()`s to the local edge server, subscribes, publishes and receives; then
// the server is stopped and started again (a forced disconnect) and what the page published while
// offline is delivered after it reconnects; and a plain subscription recovers, by replay, what was
// published while the deployment was SIGKILLed and restarted. No console errors, no uncaught page errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { recordProblems, serve, CHROMIUM } from '../browser/server.mjs';
import { EdgeServer } from './support/server.mjs';

const root = join(import.meta.dirname, '..', '..');
const server = new EdgeServer();
let files;
let browser;
let page;
const problems = [];

before(async () => {
  await server.start();
  files = await serve(root);
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage();
  recordProblems(page, problems);
  await page.goto(`${files.url}/tests/edge/browser/page.html`);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: 30_000 });
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await files?.close();
  await server.dispose();
});

test('browser: init(), connect(), subscribe, publish and receive through the edge', { timeout: 60_000 }, async () => {
  await page.evaluate(({ url, token }) => window.edge.start(url, token), { url: server.url, token: await server.token() });
  const r = await page.evaluate(() => window.edge.roundTrip());
  assert.equal(r.first, true);
  assert.equal(r.dup, false, 'the same id again is a duplicate');
  assert.deepEqual(r.heard, [['page.1.said', 'hello from the page']]);
  // A message from outside the page (HTTP) reaches it too.
  await server.post('/publish', { topic: 'page.2.said', payload: { from: 'http' } }, await server.token());
  assert.deepEqual((await page.evaluate(() => window.edge.waitHeard(2)))[1], ['page.2.said', { from: 'http' }]);
});

test('browser: a forced disconnect; publishes made while offline are delivered after reconnecting', { timeout: 180_000 }, async () => {
  await page.evaluate(() => window.edge.networkDown());
  await server.stop();
  await page.evaluate(() => window.edge.waitOffline());
  const offline = await page.evaluate(() => window.edge.publishOffline());
  assert.deepEqual(offline.accepted, Array(13).fill(true));
  assert.deepEqual(offline.buffered, [10, 3]);
  await server.start();
  await page.evaluate(() => window.edge.networkUp());

  const r = await page.evaluate(() => window.edge.waitJobs(10));
  assert.deepEqual([...r.jobs].sort(), Array.from({ length: 10 }, (_, i) => `job-${i}`).sort(), 'each job once');
  // `b` subscribes again before sending what it held, in one frame: it hears its own offline publishes.
  const heard = await page.evaluate(() => window.edge.waitHeard(5));
  assert.deepEqual(heard.slice(2), [0, 1, 2].map((i) => ['page.9.said', `offline-${i}`]));
  assert.ok(r.reconnects.every((n) => n >= 1), `reconnects ${r.reconnects}`);
  const stats = await server.stats();
  const g = stats.perHub.flatMap((h) => h.groups).find((x) => x.group === 'page-workers');
  assert.equal(g.stored, 0, 'every job acknowledged');
  assert.deepEqual(await page.evaluate(() => window.edge.close()), [{ remaining: [] }, { remaining: [] }]);
});

test('browser: a plain subscription recovers what was published while the deployment was SIGKILLed and restarted, each message once, no gap', { timeout: 180_000 }, async () => {
  const token = await server.token();
  await page.evaluate(({ url, t }) => window.edge.startRecovery(url, t), { url: server.url, t: token });
  const publish = async (from, to) => {
    const rows = [];
    for (let i = from; i < to; i++) rows.push({ topic: `pr.${i % 3}`, payload: i, id: `r-${i}` });
    const res = await server.post('/publish', rows, token);
    assert.ok(res.body.results.every((x) => x.accepted));
    return rows.map((x) => x.id);
  };
  const ids = await publish(0, 10);
  await page.evaluate((x) => window.edge.waitRecovered(x), ids);
  await page.evaluate(() => window.edge.networkDown());
  await server.crash();
  await page.evaluate(() => window.edge.waitOfflineRecovery());
  ids.push(...await publish(10, 30)); // nobody subscribed to them at the hubs now: kept as history
  await page.evaluate(() => window.edge.networkUp());
  const r = await page.evaluate((x) => window.edge.waitRecovered(x), ids);
  assert.deepEqual(Object.keys(r.recovered).sort(), [...ids].sort());
  assert.ok(Object.values(r.recovered).every((n) => n === 1), 'each message once');
  assert.deepEqual(r.gaps, []);
  assert.equal(r.stats.gaps, 0);
  assert.ok(r.stats.reconnects >= 1);
  assert.deepEqual(await page.evaluate(() => window.edge.closeRecovery()), { remaining: [] });
});

test('browser: no client errors, no console errors, no uncaught page errors', async () => {
  assert.deepEqual(await page.evaluate(() => window.edge.state.errors), []);
  assert.deepEqual(problems, []);
});

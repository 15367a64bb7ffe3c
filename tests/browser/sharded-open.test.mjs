// ShardedBus in headless Chromium from a page that is not cross-origin isolated (no shared memory):
// the scenarios of sharded-open.page.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { serve, CHROMIUM } from './server.mjs';

const root = join(import.meta.dirname, '..', '..');
let server;
let browser;
let page;
const problems = [];
let expectMissingScript = false;

before(async () => {
  server = await serve(root);
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // The 404 this runner causes on purpose (workerScriptFails).
    if (expectMissingScript && /404|Failed to load/.test(m.text())) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${server.url}/tests/browser/sharded-open.html?open`);
  await page.waitForFunction(() => window.scenariosReady === true, null, { timeout: 30_000 });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await server?.close();
});

for (const name of ['environment', 'stuckHandler']) {
  test(`browser, not isolated: ${name}`, { timeout: 60_000 }, async () => {
    await page.evaluate((n) => window.scenarios[n](), name);
  });
}

test('browser, not isolated: a worker script that cannot be loaded is reported as such', { timeout: 60_000 }, async () => {
  const missing = (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
  expectMissingScript = true;
  await page.route('**/shard-worker.web.mjs', missing);
  try {
    await page.evaluate(() => window.scenarios.workerScriptFails());
  } finally {
    await page.unroute('**/shard-worker.web.mjs', missing);
    expectMissingScript = false;
  }
});

test('browser, not isolated: no console errors and no uncaught page errors', () => {
  assert.deepEqual(problems, []);
});

// ShardedBus in headless Chromium with module Web Workers: the scenarios of sharded.page.mjs, from a
// page served on localhost (cross-origin isolated, so workers share memory with the page).
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

before(async () => {
  server = await serve(root);
  browser = await chromium.launch(CHROMIUM);
  page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${server.url}/tests/browser/sharded.html`);
  await page.waitForFunction(() => window.scenariosReady === true, null, { timeout: 30_000 });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await server?.close();
});

const scenarios = ['environment', 'perKeyOrder', 'terminatedFromOutside', 'closedFromInside', 'uncaughtError',
  'handlerErrors', 'backpressure', 'cloneErrors', 'drainAndClose', 'stuckHandler', 'unreadableInput', 'requests', 'defaultWorkers'];

for (const name of scenarios) {
  test(`browser: ${name}`, { timeout: 60_000 }, async () => {
    await page.evaluate((n) => window.scenarios[n](), name);
  });
}

test('browser: the page fetched the .wasm once; workers got the compiled module', () => {
  const wasm = [...server.requests].filter(([p]) => p.endsWith('.wasm'));
  assert.deepEqual(wasm, [['/pkg/web/edgebus_bg.wasm', 1]]);
  assert.ok((server.requests.get('/pkg/shard-worker.web.mjs') ?? 0) >= 1, 'workers were started from the package');
});

test('browser: no console errors and no uncaught page errors', () => {
  assert.deepEqual(problems, []);
});

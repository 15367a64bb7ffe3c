// Runs the sharding benchmark page in headless Chromium (served on localhost, cross-origin isolated)
// and prints its tables.
//
//   node benches/sharding/browser.mjs [--quick] [--rounds N] [--json FILE]
import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { serve, CHROMIUM } from '../../tests/browser/server.mjs';
import { cliOptions, table } from './harness.mjs';

const { quick, rounds, json } = cliOptions(process.argv.slice(2));

const server = await serve(join(import.meta.dirname, '..', '..'));
const browser = await chromium.launch(CHROMIUM);
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${server.url}/benches/sharding/page.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
  const loadBefore = loadavg()[0];
  const r = await page.evaluate((o) => window.runBench(o), { quick, rounds });
  const loadAfter = loadavg()[0];
  if (errors.length > 0) throw new Error(`the page reported errors: ${errors.join('; ')}`);
  console.log(`# Worker sharding, Chromium ${browser.version()}, hardwareConcurrency ${r.hardwareConcurrency}; ShardedBus default workers here: ${r.defaultWorkers}`);
  console.log(`calibrated: ${r.calibration.iters} iterations ≈ ${r.calibration.measuredUs.toFixed(1)} µs per message\n`);
  console.log(table('CPU-bound handler, ~50 µs per message', r.heavy) + '\n');
  console.log(table('Trivial handler (transport cost)', r.trivial));
  console.log(`\n1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`);
  if (json) {
    mkdirSync(dirname(json), { recursive: true });
    writeFileSync(json, JSON.stringify({ chromium: browser.version(), loadBefore, loadAfter, ...r }, null, 2) + '\n');
  }
} finally {
  await browser.close();
  await server.close();
}

// Headless Chromium for the benchmark runner and the end-to-end tests: Debian's /usr/bin/chromium
// driven by playwright-core. Memory figures need precise heap sizes and a callable GC, hence the
// two extra flags.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

export function chromiumPath() {
  const found = CANDIDATES.find((p) => p && existsSync(p));
  if (!found) throw new Error('Chromium not found (install Debian\'s chromium, or set CHROMIUM_PATH)');
  return found;
}

export function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--enable-precise-memory-info', '--js-flags=--expose-gc',
    ],
    // Slow to start on a small, busy machine.
    timeout: 120_000,
  });
}

/** Collects console errors and uncaught page errors; `problems` is checked at the end. */
export function watchPage(page) {
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  return problems;
}

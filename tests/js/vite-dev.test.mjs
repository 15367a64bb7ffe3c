// The README's browser quick start in a Vite 7 app made from the packed tarball, with no Vite
// configuration at all: under the dev server (whose dependency pre-bundler moves the entry into
// node_modules/.vite/deps/, away from the .wasm) and as a production build, run in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createServer, preview } from 'vite';
import { launchChromium } from '../../pkg-scripts/chromium.mjs';

const pkgSource = join(import.meta.dirname, '..', '..', 'pkg');
const vite = join(createRequire(import.meta.url).resolve('vite/package.json'), '..', 'bin', 'vite.js');
let dir;
let app;
let browser;

// The quick start (README, "In a browser"), reporting what it got on the page.
const MAIN = `
import { init, Bus } from 'edgebus';
import * as web from 'edgebus/web';
try {
  await init();
  const bus = new Bus();
  const got = [];
  bus.subscribe('orders.*', (p, m) => got.push(m.topic + '=' + p.n));
  bus.publish('orders.eu', { n: 1 });
  await web.init();
  window.result = { got, sameEntry: web.Bus === Bus };
} catch (e) {
  window.result = { error: (e && e.code) + ': ' + (e && e.message) };
}
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgebus-vite-'));
  execFileSync('npm', ['pack', pkgSource, '--pack-destination', dir, '--silent'], { cwd: dir, stdio: 'ignore' });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync('npm', ['install', join(dir, tarball), '--no-audit', '--no-fund', '--no-package-lock'], { cwd: app, stdio: 'ignore' });
  writeFileSync(join(app, 'index.html'), '<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script type="module" src="/main.js"></script></body></html>\n');
  writeFileSync(join(app, 'main.js'), MAIN);
  browser = await launchChromium();
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens `url` in Chromium; returns the page's result and every response it got. */
async function run(url) {
  const page = await browser.newPage();
  const responses = [];
  const problems = [];
  page.on('response', (r) => responses.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] ?? '' }));
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(url);
    await page.waitForFunction(() => globalThis.result !== undefined, null, { timeout: 60_000 });
    return { result: await page.evaluate(() => globalThis.result), responses, problems };
  } finally {
    await page.close();
  }
}

test('vite dev: the quick start runs with no configuration (the entry carries the .wasm)', { timeout: 180_000 }, async () => {
  const server = await createServer({
    root: app, configFile: false, logLevel: 'silent', server: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  try {
    await server.listen();
    const { result, responses, problems } = await run(server.resolvedUrls.local[0]);
    assert.deepEqual(result, { got: ['orders.eu=1'], sameEntry: true });
    assert.deepEqual(problems, []);
    // The pre-bundler did move the package (the situation this guards against), and nothing asked
    // for a .wasm and got a page instead.
    assert.ok(responses.some((r) => r.url.includes('/node_modules/.vite/deps/edgebus')), JSON.stringify(responses));
    assert.deepEqual(responses.filter((r) => r.status >= 400 || (/\.wasm(\?|$)/.test(r.url) && !r.type.startsWith('application/wasm'))), []);
  } finally {
    await server.close();
  }
});

test('vite build: the production build loads the .wasm as a file, without the bytes in its JavaScript', { timeout: 180_000 }, async () => {
  const outDir = join(dir, 'dist');
  // As `npx vite build` runs: its own process, in production mode (the dev server above set this
  // process's NODE_ENV to development, which Vite's resolve conditions follow).
  const env = { ...process.env };
  delete env.NODE_ENV;
  execFileSync(process.execPath, [vite, 'build', '--logLevel', 'silent', '--outDir', outDir, '--emptyOutDir'], { cwd: app, env, stdio: 'pipe' });
  const assets = readdirSync(join(outDir, 'assets'));
  const wasm = assets.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, assets.join());
  const base64 = readFileSync(join(pkgSource, 'web', 'edgebus_bg.wasm')).toString('base64').slice(0, 64);
  for (const f of assets.filter((a) => a.endsWith('.js'))) {
    assert.equal(readFileSync(join(outDir, 'assets', f), 'utf8').includes(base64), false, `${f} carries the .wasm's bytes`);
  }
  const server = await preview({ root: app, configFile: false, logLevel: 'silent', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
  try {
    const { result, responses, problems } = await run(server.resolvedUrls.local[0]);
    assert.deepEqual(result, { got: ['orders.eu=1'], sameEntry: true });
    assert.deepEqual(problems, []);
    const fetched = responses.filter((r) => r.url.endsWith('.wasm'));
    assert.equal(fetched.length, 1, JSON.stringify(responses));
    assert.equal(fetched[0].status, 200);
    assert.match(fetched[0].type, /^application\/wasm/);
  } finally {
    await new Promise((r) => server.httpServer.close(r));
  }
});

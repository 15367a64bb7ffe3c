// The npm package in bundled apps, built as users build them: the packed tarball installed in a
// fresh directory, a Vite 7 build (the repository's pinned vite) and a webpack 5 build (webpack and
// webpack-cli installed there with npm), each run in headless Chromium.
//
//   - ShardedBus on the app's own workers (the `worker` option, a script calling serveShard): the
//     handlers import another module of the app, the bundler bundles them; a worker that stops is
//     replaced through the option; the .wasm is fetched once, by the page (the workers get the
//     compiled module); webpack reports no warning (no "Critical dependency" from the package).
//   - The package's default worker is not emitted into a bundled app: asking for it (`handlers`)
//     fails with WORKER_FAILED naming the `worker` option.
//   - An app importing only IdempotenceFilter, or only Bus, gets no worker chunk at all.
// App sources: bundled/ in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { serve, CHROMIUM } from './server.mjs';

const root = join(import.meta.dirname, '..', '..');
const WEBPACK = 'webpack@5.113.0';
const WEBPACK_CLI = 'webpack-cli@7.3.1';
const APPS = { sharded: 'main.js', filter: 'filter-only.js', bus: 'bus-only.js' };

let dir;
let server;
let browser;
const warnings = { vite: [], webpack: '' };

function jsFiles(d) {
  const out = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) out.push(...jsFiles(p));
    else if (/\.m?js$/.test(e.name)) out.push({ path: relative(d, p), size: statSync(p).size });
  }
  return out;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgebus-bundlers-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', join(root, 'pkg'), '--json', '--pack-destination', dir],
    { cwd: dir, encoding: 'utf8' }))[0].filename;
  const app = join(dir, 'app');
  cpSync(join(import.meta.dirname, 'bundled'), join(app, 'src'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'bundled-app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(dir, packed), WEBPACK, WEBPACK_CLI],
    { cwd: app, stdio: 'inherit' });

  // Vite: one page per app, as `npm create vite` sets it up (an index.html with a module script).
  for (const [name, file] of Object.entries(APPS)) {
    writeFileSync(join(app, `${name}.html`), `<!doctype html><link rel="icon" href="data:,"><script type="module" src="./src/${file}"></script>\n`);
    await build({
      root: app,
      base: './',
      configFile: false,
      logLevel: 'warn',
      customLogger: {
        info() {}, warnOnce(m) { warnings.vite.push(m); }, warn(m) { warnings.vite.push(m); },
        error(m) { warnings.vite.push(m); }, clearScreen() {}, hasWarned: false, hasErrorLogged: () => false,
      },
      build: { outDir: join(dir, 'vite', name), emptyOutDir: true, rollupOptions: { input: join(app, `${name}.html`) } },
    });
    cpSync(join(dir, 'vite', name, `${name}.html`), join(dir, 'vite', name, 'index.html'));
  }

  // webpack: its defaults, one build per app; without the size hints (about any app with a
  // 250 KB .wasm, not about how the package is built).
  writeFileSync(join(app, 'webpack.config.cjs'), `module.exports = ${JSON.stringify(Object.entries(APPS).map(([name, file]) => ({
    name, mode: 'production', entry: `./src/${file}`, output: { path: join(dir, 'webpack', name), filename: 'main.js', clean: true },
    performance: { hints: false },
  })))};\n`);
  warnings.webpack = execFileSync(process.execPath, [join(app, 'node_modules', 'webpack-cli', 'bin', 'cli.js'), '--config', 'webpack.config.cjs'],
    { cwd: app, encoding: 'utf8' });
  for (const name of Object.keys(APPS)) {
    writeFileSync(join(dir, 'webpack', name, 'index.html'), '<!doctype html><link rel="icon" href="data:,"><script src="./main.js"></script>\n');
  }

  server = await serve(dir);
  browser = await chromium.launch(CHROMIUM);
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Opens a built app, runs window.run(); returns its result and what the console said. */
async function runApp(path) {
  const page = await browser.newPage();
  const problems = [];
  const expected = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/Failed to load resource: .* 404/.test(m.text())) expected.push(m.text());
    else problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const before = new Map(server.requests);
  const missingBefore = server.missing.length;
  await page.goto(`${server.url}/${path}/index.html`);
  await page.waitForFunction(() => window.appReady === true, null, { timeout: 30_000 });
  const result = await page.evaluate(() => window.run());
  await page.close();
  // A 404 is expected only for the default worker the app asks for on purpose (not in a bundled app).
  const missing = server.missing.slice(missingBefore);
  if (missing.some((p) => !p.endsWith('/shard-worker.web.mjs')) || expected.length > missing.length) {
    problems.push(...expected.map((t) => `console: ${t}`), ...missing.map((p) => `404: ${p}`));
  }
  const wasm = [...server.requests].filter(([p, n]) => p.startsWith(`/${path}/`) && p.endsWith('.wasm') && n > (before.get(p) ?? 0));
  return { result, problems, wasmFetches: wasm.reduce((a, [p, n]) => a + n - (before.get(p) ?? 0), 0) };
}

for (const bundler of ['vite', 'webpack']) {
  test(`${bundler}: ShardedBus on the app's own workers; handlers and their imports bundled; restart through the option`, { timeout: 60_000 }, async () => {
    const { result, problems, wasmFetches } = await runApp(`${bundler}/sharded`);
    assert.deepEqual(problems, []);
    const wrong = result.results.map((v, n) => (v === n * n + 1 ? null : `${n}:${v}`)).filter((x) => x !== null);
    assert.deepEqual(wrong, [], 'each message handled exactly once, by the bundled handlers');
    assert.ok(result.seen.every((c) => c > 0), `both workers handled messages: ${result.seen}`);
    assert.equal(result.done, result.results.length);
    assert.equal(result.failed, 0);
    assert.equal(result.restarts, 1, 'the worker that closed itself was replaced');
    assert.equal(result.started, 3, 'the `worker` option started two workers, then the replacement');
    assert.equal(wasmFetches, 1, 'the .wasm is fetched once, by the page; the workers get the compiled module');
    assert.equal(result.defaultWorker.code, 'WORKER_FAILED');
    assert.match(result.defaultWorker.message, /`worker` option/);
    assert.doesNotMatch(result.defaultWorker.message, /undefined/);
  });

  for (const name of ['filter', 'bus']) {
    test(`${bundler}: an app using only ${name === 'bus' ? 'Bus' : 'IdempotenceFilter'} gets no shard worker chunk, and runs`, { timeout: 60_000 }, async () => {
      const files = jsFiles(join(dir, bundler, name));
      const sharded = jsFiles(join(dir, bundler, 'sharded'));
      assert.equal(files.length, 1, `one script, no worker: ${JSON.stringify(files)}`);
      assert.ok(sharded.length >= 2, `the ShardedBus app: its page and its shard worker: ${JSON.stringify(sharded)}`);
      const { result, problems } = await runApp(`${bundler}/${name}`);
      assert.deepEqual(problems, []);
      assert.deepEqual(result, name === 'bus' ? ['orders.created:1', 'orders.shipped:1'] : [true, false, true]);
    });
  }
}

test('vite and webpack build the package without a warning', () => {
  assert.deepEqual(warnings.vite, []);
  assert.doesNotMatch(warnings.webpack, /WARNING|Critical dependency|ERROR/);
});

// The package's entry points, as pkg-scripts/build.mjs bundles them from src/js/entries/: the same
// public names from each, one instance for Node's import and require, only its own platform's code
// in each entry (no Node code in those for browsers, bundlers and workerd), one .wasm for all, and
// the core's topic and pattern checks exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esm from 'edgebus';
import { Bus, EdgebusError, checkPattern, checkTopic } from 'edgebus';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('edgebus/package.json'));
const loader = pathToFileURL(join(import.meta.dirname, 'support', 'wasm-module-loader.mjs')).href;
const source = (file) => readFileSync(join(pkgDir, file), 'utf8');
const fileUrl = (file) => JSON.stringify(pathToFileURL(join(pkgDir, file)).href);

// The public names: what src/js/index.js exports, and each entry's init and initSync.
const NAMES = [...Object.keys(await import('../../src/js/index.js')), 'init', 'initSync'].sort();

/** Runs an ES module script in a child Node process; returns what it printed, parsed. */
function runModule(script, nodeArgs = []) {
  const out = execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out);
}
const workerdLoader = ['--import', `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(loader)});`)}`];
// Node's WebAssembly ESM integration: the bundler entry's `import * as wasm from './web/edgebus_bg.wasm'`.
const wasmModules = ['--experimental-wasm-modules', '--no-warnings'];

/** The files of pkg/ an entry loads: its static imports, followed (paths inside the package only). */
function graph(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  if (!file.endsWith('.mjs') && !file.endsWith('.js')) return seen;
  for (const m of source(file).matchAll(/^(?:import|export)\b[^'\n]*?'(\.[^']+)';$/gm)) {
    graph(join(dirname(file), m[1]).replace(/^\.\//, ''), seen);
  }
  return seen;
}

test('every entry exports the same public names, and a default object holding them', async () => {
  assert.ok(NAMES.includes('Bus') && NAMES.includes('init'), NAMES.join());
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), NAMES);
  assert.deepEqual(Object.keys(esm.default).sort(), NAMES);
  const cjs = require('edgebus');
  assert.deepEqual(Object.keys(cjs).sort(), NAMES);
  const names = `console.log(JSON.stringify([Object.keys(m).filter((k) => k !== 'default').sort(), Object.keys(m.default).sort()]));`;
  for (const file of ['index.web.mjs', 'index.web.dev.mjs']) {
    assert.deepEqual(runModule(`const m = await import(${fileUrl(file)}); ${names}`), [NAMES, NAMES], file);
  }
  // The workerd entry, loaded as workerd loads it (.wasm imports are compiled modules); the bundler
  // entry, as bundlers with WebAssembly ESM integration load it.
  assert.deepEqual(runModule(`const m = await import(${fileUrl('index.workerd.mjs')}); ${names}`, workerdLoader), [NAMES, NAMES]);
  assert.deepEqual(runModule(`const m = await import(${fileUrl('index.bundler.mjs')}); ${names}`, wasmModules), [NAMES, NAMES]);
});

test('import and require of the Node entry share one instance, every export included', () => {
  const cjs = require('edgebus');
  for (const name of NAMES) assert.equal(esm[name], cjs[name], name);
  assert.equal(esm.default, cjs);
  // `require('edgebus').default` is the API too (the types declare a default export), and is not
  // one of its names.
  assert.equal(cjs.default, cjs);
  assert.equal(Object.keys(cjs).includes('default'), false);
});

test('each entry carries only its own platform: no Node code for browsers, bundlers and workerd', () => {
  const entries = ['index.web.mjs', 'index.web.dev.mjs', 'index.bundler.mjs', 'index.workerd.mjs', 'shard-worker.web.mjs'];
  for (const entry of entries) {
    const files = graph(entry);
    for (const file of files) {
      if (file.endsWith('.wasm')) continue;
      assert.doesNotMatch(source(file), /from 'node:|import\('node:|\brequire\(|__dirname|function nodePlatform/, `${entry} loads ${file}`);
    }
  }
  // The browser entries do not start Node's workers, and the workerd and bundler entries no
  // workers at all: no Web Worker, no shard-worker file.
  for (const entry of ['index.workerd.mjs', 'index.bundler.mjs']) {
    for (const file of graph(entry)) {
      if (!file.endsWith('.wasm')) assert.doesNotMatch(source(file), /new Worker\(|['"`]\.\/shard-worker/, `${entry} loads ${file}`);
    }
  }
  assert.match(source('index.node.cjs'), /require\('node:worker_threads'\)/);
  assert.match(source('index.node.cjs'), /function nodePlatform/);
  assert.match(source('shard-worker.node.mjs'), /from 'node:worker_threads'/);
});

test('one .wasm for every entry: the entries that load it name web/edgebus_bg.wasm, the only one shipped', () => {
  const wasm = [];
  const walk = (dir) => {
    for (const e of readdirSync(join(pkgDir, dir), { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.wasm')) wasm.push(join(dir, e.name));
    }
  };
  walk('.');
  assert.deepEqual(wasm, ['web/edgebus_bg.wasm']);
  assert.match(source('index.workerd.mjs'), /^import [\w$]+ from '\.\/web\/edgebus_bg\.wasm';$/m);
  assert.match(source('index.bundler.mjs'), /^import \* as [\w$]+ from '\.\/web\/edgebus_bg\.wasm';$/m);
  assert.match(source('index.node.cjs'), /join\(__dirname, 'web', 'edgebus_bg\.wasm'\)/);
  const browser = [...graph('index.web.mjs')].map(source.bind(null)).filter((t) => t.includes('edgebus_bg.wasm'));
  assert.equal(browser.length, 1);
  assert.match(browser[0], /new URL\('\.\/web\/edgebus_bg\.wasm', import\.meta\.url\)/);
  // wasm-bindgen's own loader, which would name a .wasm beside the glue, is gone from the glue.
  for (const file of graph('index.web.mjs')) {
    if (file.endsWith('.mjs')) assert.doesNotMatch(source(file), /new URL\('edgebus_bg\.wasm'/, file);
  }
});

test('the API is bundled once for the ES module entries (a shared chunk) and once for CommonJS', () => {
  const withBus = readdirSync(pkgDir).filter((f) => /\.(mjs|cjs|js)$/.test(f) && /^class Bus \{$/m.test(source(f)));
  assert.deepEqual(withBus.sort(), ['edgebus.mjs', 'index.node.cjs']);
  for (const entry of ['index.web.mjs', 'index.web.dev.mjs', 'index.bundler.mjs', 'index.workerd.mjs']) {
    assert.ok(graph(entry).has('edgebus.mjs'), `${entry} loads the shared API chunk`);
  }
});

test('the development entry carries the .wasm\'s bytes: init() needs no file', () => {
  const text = source('index.web.dev.mjs');
  const bytes = readFileSync(join(pkgDir, 'web', 'edgebus_bg.wasm'));
  assert.ok(text.includes(bytes.toString('base64')), 'the base64 of web/edgebus_bg.wasm');
  // In Node, where fetch() cannot read file: URLs, the development entry initializes from its
  // bytes, while the web entry reports what its default URL answered.
  const script = (file) => `
    const { init, Bus } = await import(${fileUrl(file)});
    try {
      await init();
      const bus = new Bus(); const got = [];
      bus.subscribe('a.*', (p) => got.push(p)); bus.publish('a.b', 7);
      console.log(JSON.stringify({ got }));
    } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  assert.deepEqual(runModule(script('index.web.dev.mjs')), { got: [7] });
  const failed = runModule(script('index.web.mjs'));
  assert.equal(failed.code, 'WASM_LOAD');
  assert.ok(failed.message.includes(pathToFileURL(join(pkgDir, 'web', 'edgebus_bg.wasm')).href), failed.message);
});

test('the package.json maps the development condition of the browser export to the development entry only', () => {
  const pkg = JSON.parse(source('package.json'));
  const browser = pkg.exports['.'].browser;
  assert.equal(browser.development.default, './index.web.dev.mjs');
  assert.equal(browser.default.default, './index.web.mjs');
  assert.deepEqual(Object.keys(browser), ['development', 'default']);
  // Nothing else resolves to it: production builds, Node, workerd never carry the bytes.
  const targets = JSON.stringify({ ...pkg.exports, '.': { ...pkg.exports['.'], browser: undefined }, './web': undefined });
  assert.equal(targets.includes('index.web.dev.mjs'), false);
  assert.ok(existsSync(join(pkgDir, 'index.web.dev.mjs')));
});

test('checkTopic and checkPattern: the core\'s rules and wording, as publish and subscribe apply them', () => {
  const bus = new Bus();
  const refusal = (fn) => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    assert.fail('expected a refusal');
  };
  for (const topic of ['a..b', 'a.*', 'a.>', '', ' ', 'x\u0001y', 42, null, 'a\uD800']) {
    const e = refusal(() => checkTopic(topic));
    assert.ok(e instanceof EdgebusError, String(topic));
    assert.equal(e.code, 'INVALID_TOPIC');
    assert.equal(e.message, refusal(() => bus.publish(topic, 1)).message);
  }
  for (const pattern of ['a..b', 'a.>.b', 'a*', '', 42, undefined, 'a\uDC00']) {
    const e = refusal(() => checkPattern(pattern));
    assert.ok(e instanceof EdgebusError, String(pattern));
    assert.equal(e.code, 'INVALID_PATTERN');
    assert.equal(e.message, refusal(() => bus.subscribe(pattern, () => {})).message);
  }
  for (const topic of ['a', 'orders.eu.created', '$errors', 'ключ.значение']) assert.equal(checkTopic(topic), undefined);
  for (const pattern of ['a', 'orders.*', 'orders.>', '*.b.>', '$dead.>']) assert.equal(checkPattern(pattern), undefined);
  // Nothing is left behind by a check: no subscription, no published message.
  const stats = bus.stats();
  assert.equal(stats.subscriptions, 0);
  assert.equal(stats.published, 0);
});

test('the bundles keep the modules\' code at top level: no factory around the Bus, no lookups added to publish', () => {
  const busSource = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'js', 'bus', 'bus.js'), 'utf8');
  const publish = /^ {2}publish\(topic, payload, options\) \{\n[\s\S]*?\n {2}\}\n/m.exec(busSource)[0];
  for (const file of ['edgebus.mjs', 'index.node.cjs']) {
    const text = source(file);
    assert.match(text, /^class Bus \{$/m, `${file}: Bus is a top-level class`);
    assert.ok(text.includes(publish), `${file}: publish() is the source's, unchanged`);
  }
});

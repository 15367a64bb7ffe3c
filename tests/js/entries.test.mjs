// The package's entry points, as pkg-scripts/build.mjs bundles them from src/js/entries/: the same
// public names from each, one instance for Node's import and require, no Node code in the entries
// for browsers, bundlers and workerd, and the core's topic and pattern checks exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esm from 'edgebus';
import { Bus, EdgebusError, checkPattern, checkTopic } from 'edgebus';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('edgebus/package.json'));
const loader = pathToFileURL(join(import.meta.dirname, 'support', 'wasm-module-loader.mjs')).href;
const source = (file) => readFileSync(join(pkgDir, file), 'utf8');

const NAMES = [
  'Batcher', 'Bus', 'EdgebusError', 'IdempotenceFilter', 'ManualClock', 'ShardedBus', 'Subscription', 'checkPattern',
  'checkTopic', 'connect', 'init', 'initSync', 'matches', 'serveShard', 'shardOf',
];

/** The names an ES module bundle exports, read from its final `export { … }` statement. */
function exportedNames(file) {
  const m = /export \{([^}]*)\};\s*$/.exec(source(file));
  assert.ok(m, `${file} ends with one export statement`);
  return m[1].split(',').map((s) => s.trim().split(/\s+as\s+/).pop()).filter((n) => n !== 'default').sort();
}

test('every entry exports the same public names, and a default object holding them', async () => {
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), NAMES);
  assert.deepEqual(Object.keys(esm.default).sort(), NAMES);
  const cjs = require('edgebus');
  assert.deepEqual(Object.keys(cjs).sort(), NAMES);
  const web = await import(pathToFileURL(join(pkgDir, 'index.web.mjs')).href);
  assert.deepEqual(Object.keys(web).filter((k) => k !== 'default').sort(), NAMES);
  assert.deepEqual(Object.keys(web.default).sort(), NAMES);
  for (const file of ['index.bundler.mjs', 'index.workerd.mjs']) assert.deepEqual(exportedNames(file), NAMES, file);
  // The workerd entry, loaded as workerd loads it (.wasm imports are compiled modules).
  const register = `import { register } from 'node:module'; register(${JSON.stringify(loader)});`;
  const out = execFileSync(process.execPath, [
    '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e',
    `const m = await import(${JSON.stringify(pathToFileURL(join(pkgDir, 'index.workerd.mjs')).href)});
     console.log(JSON.stringify([Object.keys(m).filter((k) => k !== 'default').sort(), Object.keys(m.default).sort()]));`,
  ], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), [NAMES, NAMES]);
});

test('import and require of the Node entry share one instance, every export included', () => {
  const cjs = require('edgebus');
  for (const name of NAMES) assert.equal(esm[name], cjs[name], name);
  assert.equal(esm.default, cjs);
});

test('the entries for browsers, bundlers and workerd carry no Node code; the Node entry does', () => {
  for (const file of ['index.web.mjs', 'index.bundler.mjs', 'index.workerd.mjs', 'shard-worker.web.mjs']) {
    const text = source(file);
    assert.doesNotMatch(text, /from 'node:|\brequire\(|__dirname|function nodePlatform/, file);
  }
  assert.match(source('index.node.cjs'), /require\('node:worker_threads'\)/);
  assert.match(source('index.node.cjs'), /function nodePlatform/);
  assert.match(source('shard-worker.node.mjs'), /from 'node:worker_threads'/);
  // Each is one bundle of real modules: it imports only wasm-bindgen's glue (and the shard
  // workers, the web entry they initialize), nothing from src/.
  for (const file of ['index.web.mjs', 'index.bundler.mjs', 'index.workerd.mjs', 'shard-worker.web.mjs', 'shard-worker.node.mjs']) {
    const imports = [...source(file).matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    for (const i of imports) assert.match(i, /^(\.\/(web|bundler)\/edgebus(\.js|_bg\.wasm)|\.\/index\.web\.mjs|node:worker_threads)$/, `${file} imports ${i}`);
  }
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
  for (const file of ['index.web.mjs', 'index.bundler.mjs', 'index.workerd.mjs', 'index.node.cjs']) {
    const text = source(file);
    assert.match(text, /^class Bus \{$/m, `${file}: Bus is a top-level class`);
    assert.ok(text.includes(publish), `${file}: publish() is the source's, unchanged`);
  }
});


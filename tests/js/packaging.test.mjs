// The npm package as a consumer gets it: packed, installed from the tarball, used by import and require.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pkgSource = join(import.meta.dirname, '..', '..', 'pkg');
let dir;
let consumer;
let installed;

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgebus-pack-'));
  run('npm', ['pack', pkgSource, '--pack-destination', dir, '--silent'], dir);
  const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
  assert.equal(tarballs.length, 1, `one tarball, got ${tarballs}`);
  consumer = join(dir, 'consumer');
  execFileSync('mkdir', ['-p', consumer]);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', join(dir, tarballs[0]), '--no-audit', '--no-fund', '--no-package-lock'], consumer);
  installed = join(consumer, 'node_modules', 'edgebus');
}, { timeout: 120_000 });

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the installed package.json exports workerd, browser, node.import and node.require', () => {
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'edgebus');
  const root = pkg.exports['.'];
  assert.equal(typeof root.workerd, 'string');
  assert.equal(typeof root.browser, 'string');
  assert.equal(typeof root.node.import, 'string');
  assert.equal(typeof root.node.require, 'string');
});

test('every file referenced by the exports (and main/module/types) exists in the installed package', () => {
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  const targets = [];
  const walk = (v) => {
    if (typeof v === 'string') targets.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(pkg.exports);
  for (const k of ['main', 'module', 'types']) if (pkg[k]) targets.push(pkg[k]);
  assert.ok(targets.length >= 8);
  for (const t of targets) {
    assert.ok(t.startsWith('./'), `${t} is relative`);
    assert.ok(existsSync(join(installed, t)), `${t} exists in the installed package`);
  }
  // the wasm binaries the entries load are shipped too
  const wasm = ['node', 'web'].flatMap((d) => existsSync(join(installed, d))
    ? readdirSync(join(installed, d)).filter((f) => f.endsWith('.wasm')) : []);
  assert.ok(wasm.length >= 2, `wasm files shipped: ${wasm}`);
});

const script = (load) => `
  ${load}
  const bus = new Bus();
  const got = [];
  bus.subscribe('orders.*', (p, m) => got.push(m.topic + '=' + p.n));
  bus.publish('orders.eu', { n: 1 });
  let code;
  try { bus.publish('', 1); } catch (e) { code = (e instanceof EdgebusError) + ':' + e.code; }
  console.log(JSON.stringify({ got, code }));
`;

test('import("edgebus") works in a consumer project', () => {
  const out = run(process.execPath, ['--input-type=module', '-e',
    script("const { Bus, EdgebusError } = await import('edgebus');")], consumer);
  assert.deepEqual(JSON.parse(out.trim()), { got: ['orders.eu=1'], code: 'true:INVALID_TOPIC' });
});

test('require("edgebus") works in a consumer project', () => {
  const out = run(process.execPath, ['--input-type=commonjs', '-e',
    script("const { Bus, EdgebusError } = require('edgebus');")], consumer);
  assert.deepEqual(JSON.parse(out.trim()), { got: ['orders.eu=1'], code: 'true:INVALID_TOPIC' });
});

test('import and require in the consumer resolve to the same classes', () => {
  const out = run(process.execPath, ['--input-type=module', '-e', `
    import { createRequire } from 'node:module';
    const require = createRequire(process.cwd() + '/');
    const esm = await import('edgebus');
    const cjs = require('edgebus');
    console.log(esm.Bus === cjs.Bus && esm.EdgebusError === cjs.EdgebusError);
  `], consumer);
  assert.equal(out.trim(), 'true');
});

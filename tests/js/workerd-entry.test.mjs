// The workerd entry imports the .wasm as a compiled module and initializes synchronously (Cloudflare
// Workers forbid compiling from bytes at run time and eval). Run it in a child Node process whose
// module hooks hand `.wasm` imports over as WebAssembly.Module, as wrangler does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('edgebus/package.json'));
const loader = pathToFileURL(join(import.meta.dirname, 'support', 'wasm-module-loader.mjs')).href;

test('the workerd condition resolves to an entry that imports the .wasm as a module', () => {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const entry = pkg.exports['.'].workerd.default;
  assert.equal(entry, './index.workerd.mjs');
  assert.equal(pkg.exports['.'].workerd.types, './index.d.mts');
  const source = readFileSync(join(pkgDir, entry), 'utf8');
  const imported = /^import ([\w$]+) from '\.\/web\/edgebus_bg\.wasm';$/m.exec(source);
  assert.ok(imported, 'the entry imports the .wasm');
  assert.match(source, new RegExp(`\\binitSync\\(\\{ module: ${imported[1].replace('$', '\\$')} \\}\\)`));
  // No run-time compilation from bytes and no eval in the entry or the chunks it loads.
  const files = [entry, ...[...source.matchAll(/^import .*'\.\/([\w.]+\.mjs)';$/gm)].map((m) => m[1])];
  assert.ok(files.includes('edgebus.glue.mjs'), files.join());
  for (const file of files) {
    assert.doesNotMatch(readFileSync(join(pkgDir, file), 'utf8'), /\beval\(|new Function\(/, file);
  }
  assert.doesNotMatch(source, /WebAssembly\.(compile|instantiate)|new WebAssembly\.Module/);
});

test('the workerd entry works without any init call', () => {
  const script = `
    import { Bus, init } from ${JSON.stringify(pathToFileURL(join(pkgDir, 'index.workerd.mjs')).href)};
    await init();
    const bus = new Bus();
    const got = [];
    bus.subscribe('edge.*', (p, m) => got.push(m.topic + '=' + p));
    bus.publish('edge.hub', 42);
    try { bus.publish('edge.*', 1); } catch (e) { got.push(e.code); }
    console.log(JSON.stringify(got));
  `;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(loader)});`;
  const out = execFileSync(process.execPath, [
    '--import', `data:text/javascript,${encodeURIComponent(register)}`,
    '--input-type=module', '-e', script,
  ], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim()), ['edge.hub=42', 'INVALID_TOPIC']);
});

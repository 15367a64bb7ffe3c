// Builds the demo site (www/) and the benchmark page (bench-web/) with Vite, and serves the built
// pages on localhost: the demo at `/`, the benchmark page at `/bench/`.
//
//   node pkg-scripts/web.mjs build            build both into dist/www and dist/bench-web
//   node pkg-scripts/web.mjs serve [--port N] build, then serve on 127.0.0.1 until stopped
//
// The package must be built first (`node pkg-scripts/build.mjs`; node_modules/edgebus → ../pkg).
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const dist = join(root, 'dist');

/** Where each built page lives under the server's root URL. */
export const SITES = [
  { name: 'bench-web', base: '/bench/', dir: join(dist, 'bench-web') },
  { name: 'www', base: '/', dir: join(dist, 'www') },
];

/** Builds both pages with their own Vite configs (www/vite.config.mjs, bench-web/vite.config.mjs). */
export async function buildPages({ quiet = false } = {}) {
  const { build } = await import('vite');
  for (const site of SITES) {
    await build({
      configFile: join(root, site.name, 'vite.config.mjs'),
      logLevel: quiet ? 'warn' : 'info',
    });
  }
}

/** Whether both pages have been built. */
export function pagesBuilt() {
  return SITES.every((s) => existsSync(join(s.dir, 'index.html')));
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

function resolveFile(urlPath) {
  for (const site of SITES) {
    const bare = site.base.slice(0, -1);
    if (urlPath === bare && bare !== '') return { redirect: site.base };
    if (!urlPath.startsWith(site.base)) continue;
    const rel = normalize(decodeURIComponent(urlPath.slice(site.base.length)));
    if (rel.startsWith('..') || rel.includes(`${sep}..`)) return null;
    let file = join(site.dir, rel);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    return existsSync(file) ? { file } : null;
  }
  return null;
}

/** Serves the built pages; resolves with `{ url, close() }` once listening (port 0: any free port). */
export function servePages({ port = 0, host = '127.0.0.1' } = {}) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    const found = resolveFile(path);
    if (found?.redirect) {
      res.writeHead(301, { location: found.redirect });
      res.end();
      return;
    }
    if (!found) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(found.file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      // Cross-origin isolation: finer performance.now() (5 µs instead of 100 µs) for the benchmarks.
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    createReadStream(found.file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ url: `http://${host}:${p}/`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd = 'serve', ...rest] = process.argv.slice(2);
  const i = rest.indexOf('--port');
  const port = Number(i >= 0 ? rest[i + 1] : process.env.PORT ?? 5173);
  await buildPages();
  if (cmd === 'serve') {
    const { url } = await servePages({ port });
    console.log(`\nedgebus demo:           ${url}`);
    console.log(`edgebus benchmark page: ${url}bench/`);
    console.log('(Ctrl-C to stop)');
  } else if (cmd !== 'build') {
    console.error(`unknown command: ${cmd} (build | serve)`);
    process.exit(2);
  }
}

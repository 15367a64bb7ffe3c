// Builds the demo site (www/) and the benchmark page (bench-web/) with Vite, and serves the built
// pages on localhost: the demo at `/`, the benchmark page at `/bench/`.
//
//   node pkg-scripts/web.mjs build            build both into dist/www and dist/bench-web
//   node pkg-scripts/web.mjs serve [--port N] build, then serve on 127.0.0.1 until stopped
//
// For the edge hub demo, `serve` also answers `GET /dev/edge.json`: whether the local edge hub
// answers (the server asks it, so the page logs no failed connection) and, only when the hub's
// development secret is given (EDGEBUS_DEV_SECRET, or --edge-secret), a token for `chat.>` minted
// with the same code as edge/scripts/mint-token.mjs. The hub's URL is EDGEBUS_HUB_URL (or --hub;
// default http://127.0.0.1:8787).
//
// The package must be built first (`node pkg-scripts/build.mjs`; node_modules/edgebus → ../pkg).
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signToken } from '../edge/src/auth.js';

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

export const DEFAULT_HUB_URL = 'http://127.0.0.1:8787';
/** What the development token allows, and for how long (seconds). */
export const DEV_TOKEN_CLAIMS = { pub: ['chat.>'], sub: ['chat.>'] };
const DEV_TOKEN_TTL = 3600;

/**
 * The answer of `/dev/edge.json`: `{ hub, running, devTokens, token?, claims?, expires? }`. `running`: the hub
 * answered an HTTP request. `token` only when a development secret was given.
 */
export async function devEdgeInfo({ hubUrl = DEFAULT_HUB_URL, secret } = {}) {
  const info = { hub: hubUrl, running: false, devTokens: secret !== undefined };
  try {
    // Any HTTP answer (the Worker answers unknown paths with 404) means the hub is up.
    const r = await fetch(new URL('/dev-probe', hubUrl), { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    info.running = true;
  } catch {
    return info;
  }
  if (secret !== undefined) {
    const exp = Math.floor(Date.now() / 1000) + DEV_TOKEN_TTL;
    info.token = await signToken({ ...DEV_TOKEN_CLAIMS, exp }, secret);
    info.claims = DEV_TOKEN_CLAIMS;
    info.expires = new Date(exp * 1000).toISOString();
  }
  return info;
}

/**
 * Serves the built pages; resolves with `{ url, close() }` once listening (port 0: any free port).
 * `edge: { hubUrl, secret }` configures `/dev/edge.json` (see the top of this file).
 */
export function servePages({ port = 0, host = '127.0.0.1', edge = {} } = {}) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    if (path === '/dev/edge.json') {
      devEdgeInfo(edge).then((info) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(info));
      }, (err) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${err?.message ?? err}\n`);
      });
      return;
    }
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
  const flag = (name) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const port = Number(flag('--port') ?? process.env.PORT ?? 5173);
  const edge = {
    hubUrl: flag('--hub') ?? process.env.EDGEBUS_HUB_URL ?? DEFAULT_HUB_URL,
    secret: flag('--edge-secret') ?? (process.env.EDGEBUS_DEV_SECRET || undefined),
  };
  await buildPages();
  if (cmd === 'serve') {
    const { url } = await servePages({ port, edge });
    console.log(`\nedgebus demo:           ${url}`);
    console.log(`edgebus benchmark page: ${url}bench/`);
    console.log(`edge hub for the demo:  ${edge.hubUrl} (${edge.secret === undefined
      ? 'no development secret: paste a token in the page, or set EDGEBUS_DEV_SECRET'
      : 'development tokens for chat.> from /dev/edge.json'})`);
    console.log('(Ctrl-C to stop)');
  } else if (cmd !== 'build') {
    console.error(`unknown command: ${cmd} (build | serve)`);
    process.exit(2);
  }
}

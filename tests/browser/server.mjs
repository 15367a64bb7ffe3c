// A static file server for the browser tests and the benchmark page: 127.0.0.1, an ephemeral port,
// the repository as its root, correct MIME types (application/wasm included), and the COOP/COEP
// headers that make the page cross-origin isolated (SharedArrayBuffer, Atomics.wait in workers),
// except for a request with `?open`.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

/** Serves `root`; resolves to { url, requests (path → count), missing (paths answered 404), close() }. */
export async function serve(root) {
  const requests = new Map();
  const missing = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const file = normalize(join(root, path));
    if (!file.startsWith(normalize(root) + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      // `?open`: a page that is not cross-origin isolated (no SharedArrayBuffer), for the fallbacks.
      const isolation = new URL(req.url, 'http://x').searchParams.has('open') ? {} : {
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
      };
      res.writeHead(200, {
        'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
        ...isolation,
        'Cache-Control': 'no-store',
      });
      res.end(body);
    } catch {
      missing.push(path);
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    missing,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Chromium as the tests and the benchmark launch it. */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
};

/**
 * Collects into `problems` what a test page must not show: console errors, uncaught page errors,
 * failed requests and HTTP error answers.
 */
export function recordProblems(page, problems) {
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
}
